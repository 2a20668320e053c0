import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { lookupAccount, startupError, waitUntilListening, withBindMount } from './ftpServer.js';
import { freePort } from './ports.js';
import { assertSucceeded, run, startProcess, type ProcessHandle } from './processes.js';
import { knownHostsLine } from './sshd.js';
import { makeTempDir, removeDir } from './tmp.js';

const DROPBEAR = '/usr/sbin/dropbear';
const DROPBEARKEY = '/usr/bin/dropbearkey';
const START_TIMEOUT_MS = 15_000;

export interface DropbearOptions {
  /** Default 127.0.0.1 (IPv4). */
  listenAddress?: string;
  /** Default: a free port on loopback, or 22 inside a network namespace. */
  port?: number;
  netns?: string;
  /**
   * `-a`: remote forwards may bind the address the client asks for, so
   * other hosts can connect to them. Without it Dropbear binds every
   * remote forward to loopback, whatever address was requested.
   */
  remoteForwardsOnAnyAddress?: boolean;
}

/** The parts of SshdInstance that tests use, for a Dropbear server. */
export interface DropbearInstance {
  host: string;
  port: number;
  user: string;
  /** Unencrypted ed25519 private key (OpenSSH format) accepted for `user`. */
  identityFile: string;
  /** The host key's public line (`ssh-ed25519 AAAA...`). */
  hostPublicKey: string;
  /** A known_hosts file that trusts exactly this server. */
  knownHostsFile: string;
  dir: string;
  netns: string | undefined;
  stop(): Promise<void>;
  /** Dropbear's own log (stderr, `-E`). */
  log(): string;
}

/**
 * Starts Dropbear (Debian's dropbear-bin) in the foreground, accepting one
 * generated key for the current user; password logins are off. Dropbear
 * reads authorized_keys only from `~/.ssh/authorized_keys`, so it runs in a
 * private mount namespace where a temporary directory is bind-mounted over
 * the user's `~/.ssh` (over the home directory itself when it has no
 * `.ssh`): the real home is never touched. Needs root for the mount.
 */
export async function startDropbear(opts: DropbearOptions = {}): Promise<DropbearInstance> {
  if (userInfo().uid !== 0) throw new Error('dropbear is started in a private mount namespace, which needs root');
  const host = opts.listenAddress ?? '127.0.0.1';
  const port = opts.port ?? (opts.netns === undefined ? await freePort(host) : 22);
  const user = userInfo().username;
  const dir = await makeTempDir('ftpfwd-dropbear-');
  let proc: ProcessHandle | undefined;
  try {
    const hostKey = join(dir, 'dropbear_ed25519_host_key');
    assertSucceeded(await run(DROPBEARKEY, ['-t', 'ed25519', '-f', hostKey], { timeoutMs: 15_000 }), 'dropbearkey (host key)');
    const shown = await run(DROPBEARKEY, ['-y', '-f', hostKey], { timeoutMs: 15_000 });
    assertSucceeded(shown, 'dropbearkey -y');
    const hostPublicKey = shown.stdout.split('\n').find((line) => line.startsWith('ssh-ed25519 '))?.trim();
    if (hostPublicKey === undefined) throw new Error(`dropbearkey -y printed no public key:\n${shown.stdout}`);
    const identityFile = join(dir, 'id_ed25519');
    assertSucceeded(
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ftpfwd-test-user', '-f', identityFile], { timeoutMs: 15_000 }),
      'ssh-keygen (user key)',
    );
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, knownHostsLine(host, port, hostPublicKey));

    // What Dropbear will see as ~/.ssh: authorized_keys, owned by the user, 0600 in a 0700 directory.
    const home = (await lookupAccount(user)).home;
    if (home === '' || !existsSync(home)) throw new Error(`the home directory of ${user} (${home || 'none'}) does not exist`);
    const realSshDir = join(home, '.ssh');
    const overHome = !existsSync(realSshDir);
    const mountSource = join(dir, overHome ? 'home' : 'ssh');
    const sshDir = overHome ? join(mountSource, '.ssh') : mountSource;
    await mkdir(sshDir, { recursive: true, mode: 0o700 });
    await chmod(mountSource, 0o700);
    await writeFile(join(sshDir, 'authorized_keys'), await readFile(`${identityFile}.pub`), { mode: 0o600 });

    const listen = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const args = [
      '-F', // foreground
      '-E', // log to stderr
      '-s', // no password logins
      '-r', hostKey,
      '-p', listen,
      '-P', join(dir, 'dropbear.pid'),
      ...(opts.remoteForwardsOnAnyAddress === true ? ['-a'] : []),
    ];
    const [cmd, argv] = withBindMount(mountSource, overHome ? home : realSshDir, [DROPBEAR, ...args]);
    const started = await startProcess(cmd, argv, { netns: opts.netns });
    proc = started;
    await waitUntilListening(started, 'dropbear', host, port, opts.netns, START_TIMEOUT_MS);
    return {
      host,
      port,
      user,
      identityFile,
      hostPublicKey,
      knownHostsFile,
      dir,
      netns: opts.netns,
      log: () => started.stderr(),
      stop: async () => {
        await started.stop();
        await removeDir(dir);
      },
    };
  } catch (err) {
    const log = proc?.stderr() ?? '';
    await proc?.stop();
    await removeDir(dir);
    throw startupError(err, 'dropbear', log);
  }
}
