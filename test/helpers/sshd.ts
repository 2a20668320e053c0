import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { assertSucceeded, run, startProcess, type ProcessHandle } from './processes.js';
import { makeTempDir, removeDir } from './tmp.js';

const SSHD = '/usr/sbin/sshd';
/** sshd refuses to start without its privilege-separation directory. */
const PRIVSEP_DIR = '/run/sshd';
const START_TIMEOUT_MS = 15_000;

export interface SshdOptions {
  /** Default 127.0.0.1. */
  listenAddress?: string;
  /** Default: a free port on loopback, or 22 inside a network namespace. */
  port?: number;
  netns?: string;
  gatewayPorts?: 'no' | 'yes' | 'clientspecified';
  /**
   * Extra sshd_config lines, appended as given. sshd keeps the first value
   * of a keyword, so a keyword given here before any `Match` line replaces
   * the default line for it (e.g. `PasswordAuthentication yes`, `LogLevel DEBUG1`).
   */
  extraConfig?: string[];
}

export interface SshdInstance {
  host: string;
  port: number;
  user: string;
  /** Unencrypted ed25519 private key accepted for `user`. */
  identityFile: string;
  /** The host key's `.pub` line. */
  hostPublicKey: string;
  /** A known_hosts file that trusts exactly this server. */
  knownHostsFile: string;
  dir: string;
  netns: string | undefined;
  /** The listening daemon's PID (a new one after restart); its children serve the connections. */
  pid(): number;
  stop(): Promise<void>;
  /**
   * Simulates a crash and restart: the daemon and every connection it
   * serves are killed, and after `downMs` the same server (same port and
   * host key) starts again.
   */
  restart(downMs: number): Promise<void>;
  /** sshd's own log (stderr, LogLevel VERBOSE). */
  log(): string;
}

async function generateKey(file: string, comment: string): Promise<void> {
  const result = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], {
    timeoutMs: 15_000,
  });
  assertSucceeded(result, `ssh-keygen ${file}`);
}

/** What `sshd` logged after `mark` (an earlier `log()`); the whole log if the tail buffer has moved on. */
export function logSince(sshd: SshdInstance, mark: string): string {
  const now = sshd.log();
  return now.startsWith(mark) ? now.slice(mark.length) : now;
}

/** `text` matched literally inside a RegExp (user names, fingerprints, paths in sshd's log lines). */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** known_hosts names a non-default port as `[host]:port`. */
export function knownHostsLine(host: string, port: number, publicKeyLine: string): string {
  const [keyType, key] = publicKeyLine.trim().split(/\s+/);
  if (keyType === undefined || key === undefined) throw new Error(`malformed public key line: ${publicKeyLine}`);
  const name = port === 22 ? host : `[${host}]:${port}`;
  return `${name} ${keyType} ${key}\n`;
}

/**
 * OpenSSH client arguments that trust exactly `sshd` and log in with its key,
 * ignoring the user's own ssh configuration; append the remote command.
 */
export function sshClientArgs(sshd: Pick<SshdInstance, 'host' | 'port' | 'user' | 'identityFile' | 'knownHostsFile'>): string[] {
  return [
    '-F', 'none',
    '-i', sshd.identityFile,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-p', String(sshd.port),
    `${sshd.user}@${sshd.host}`,
  ];
}

/** An sshd_config line's keyword, lower-cased; '' for blank and comment lines. */
function configKeyword(line: string): string {
  const word = line.trim().split(/[\s=]+/, 1)[0] ?? '';
  return word.startsWith('#') ? '' : word.toLowerCase();
}

function sshdConfig(dir: string, host: string, port: number, opts: SshdOptions): string {
  const extra = opts.extraConfig ?? [];
  const firstMatch = extra.findIndex((line) => configKeyword(line) === 'match');
  const replaced = new Set(extra.slice(0, firstMatch === -1 ? extra.length : firstMatch).map(configKeyword));
  const defaults = [
    `Port ${port}`,
    `ListenAddress ${host}`,
    `HostKey ${join(dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'AllowTcpForwarding yes',
    `GatewayPorts ${opts.gatewayPorts ?? 'no'}`,
    'PrintMotd no',
    'UseDNS no',
    'LogLevel VERBOSE',
  ].filter((line) => !replaced.has(configKeyword(line)));
  return `${[...defaults, ...extra].join('\n')}\n`;
}

/** Starts a private OpenSSH server that accepts one generated key for the current user. */
export async function startSshd(opts: SshdOptions = {}): Promise<SshdInstance> {
  const host = opts.listenAddress ?? '127.0.0.1';
  const port = opts.port ?? (opts.netns === undefined ? await freePort(host) : 22);
  const user = userInfo().username;
  const dir = await makeTempDir('ftpfwd-sshd-');
  let proc: ProcessHandle | undefined;
  try {
    const hostKey = join(dir, 'ssh_host_ed25519_key');
    const identityFile = join(dir, 'id_ed25519');
    await generateKey(hostKey, 'ftpfwd-test-host');
    await generateKey(identityFile, 'ftpfwd-test-user');
    const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim();
    await writeFile(join(dir, 'authorized_keys'), await readFile(`${identityFile}.pub`), { mode: 0o600 });
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, knownHostsLine(host, port, hostPublicKey));

    const configFile = join(dir, 'sshd_config');
    await writeFile(configFile, sshdConfig(dir, host, port, opts));
    await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
    assertSucceeded(await run(SSHD, ['-t', '-f', configFile], { timeoutMs: 15_000 }), 'sshd -t (config check)');

    const launch = async (): Promise<ProcessHandle> => {
      const launched = await startProcess(SSHD, ['-D', '-e', '-f', configFile], { netns: opts.netns });
      proc = launched;
      await launched.waitForOutput(/Server listening on .* port \d+/, START_TIMEOUT_MS);
      return launched;
    };
    let started = await launch();

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
      pid: () => started.pid,
      stop: async () => {
        await started.stop();
        await removeDir(dir);
      },
      restart: async (downMs: number) => {
        await started.killChildren();
        await started.stop();
        await new Promise((resolve) => setTimeout(resolve, downMs));
        started = await launch();
      },
    };
  } catch (err) {
    const log = proc?.stderr() ?? '';
    await proc?.stop();
    await removeDir(dir);
    if (log === '') throw err;
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- sshd log ---\n${log}`, { cause: err });
  }
}
