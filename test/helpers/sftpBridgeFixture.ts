import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertSucceeded, run, startProcess, type ProcessHandle } from './processes.js';
import { startSshd, type SshdInstance } from './sshd.js';
import { delay } from './time.js';
import { makeTempDir, removeDir } from './tmp.js';

/**
 * The SSH side of the SFTP bridge tests: an OpenSSH sshd with
 * `Subsystem sftp internal-sftp` on loopback, and two temporary system
 * accounts besides root's: an ordinary user (key and password, for both
 * bridge logins), and the usual SFTP-only account (`ForceCommand
 * internal-sftp`, `ChrootDirectory`). Needs root; every account and
 * directory is removed again by stop().
 */

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
  password: string;
  /** The home directory, as the system sees it (for the chrooted user: inside the chroot). */
  home: string;
}

export interface BridgeServer {
  sshd: SshdInstance;
  /** An ordinary account: its home is `ordinary.home`. */
  ordinary: SystemUser;
  /** SFTP only, chrooted to `chroot`, starting in its writable `chroot/data`. */
  chrooted: SystemUser & { chroot: string };
  /** Scratch space of the tests, readable by the accounts. */
  dir: string;
  stop(): Promise<void>;
}

const CLI = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
const LISTENING = /ftpfwd: listening on 127\.0\.0\.1:(\d+) /;
const START_TIMEOUT_MS = 20_000;

async function userExists(name: string): Promise<boolean> {
  return (await run('getent', ['passwd', name], { timeoutMs: 5_000 })).code === 0;
}

async function idOf(name: string, flag: '-u' | '-g'): Promise<number> {
  const result = await run('id', [flag, name], { timeoutMs: 5_000 });
  assertSucceeded(result, `id ${flag} ${name}`);
  return Number(result.stdout.trim());
}

/** A system user with a random password; `home` is created (outside a chroot) unless it is inside one. */
export async function createSystemUser(name: string, home: string, createHome: string | null): Promise<SystemUser> {
  if (!(await userExists(name))) assertSucceeded(await run('useradd', ['-M', '-d', home, '-s', '/bin/sh', name], { timeoutMs: 10_000 }), `useradd ${name}`);
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  assertSucceeded(await run('chpasswd', [], { input: `${name}:${password}\n`, timeoutMs: 10_000 }), 'chpasswd');
  const uid = await idOf(name, '-u');
  const gid = await idOf(name, '-g');
  if (createHome !== null) {
    await mkdir(createHome, { recursive: true });
    await chown(createHome, uid, gid);
  }
  return { name, uid, gid, password, home };
}

/** userdel refuses while a process (an sshd session) still runs as the user: retried for a few seconds. */
export async function removeSystemUser(name: string): Promise<void> {
  for (let attempt = 0; attempt < 20 && (await userExists(name)); attempt += 1) {
    const result = await run('userdel', [name], { timeoutMs: 10_000 });
    if (result.code === 0) return;
    await delay(250);
  }
  if (await userExists(name)) throw new Error(`could not remove the user ${name}`);
}

/** Whether a process with this PID exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Accounts and chroots are tagged with the PID of the test process that
 * made them; those of a process that was killed before it could clean up
 * are removed here.
 */
async function removeStale(): Promise<void> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const match of passwd.matchAll(/^(ffb(\d+)[oc]):/gm)) {
    if (!alive(Number(match[2]))) await removeSystemUser(match[1]!).catch(() => undefined);
  }
  for (const name of await readdir('/run')) {
    const tag = /^ftpfwd-chroot-(\d+)-/.exec(name)?.[1];
    if (tag !== undefined && !alive(Number(tag))) await removeDir(join('/run', name));
  }
}

export async function startBridgeServer(prefix: string): Promise<BridgeServer> {
  await removeStale();
  const dir = await makeTempDir(`ftpfwd-${prefix}-`);
  // The accounts must be able to reach their homes under it.
  await chmod(dir, 0o755);
  const tag = `${process.pid}`;
  // sshd wants every component of a chroot owned by root and writable by nobody else: /tmp (1777) will not do.
  const chroot = await mkdtemp(`/run/ftpfwd-chroot-${tag}-`);
  await chmod(chroot, 0o755);
  const created: string[] = [];
  let sshd: SshdInstance | undefined;
  const cleanup = async (): Promise<void> => {
    await sshd?.stop();
    for (const name of created) await removeSystemUser(name);
    await removeDir(chroot);
    await removeDir(dir);
  };
  try {
    const ordinaryName = `ffb${tag}o`;
    const chrootedName = `ffb${tag}c`;
    created.push(ordinaryName, chrootedName);
    const ordinary = await createSystemUser(ordinaryName, join(dir, 'home'), join(dir, 'home'));
    const chrooted = await createSystemUser(chrootedName, '/data', null);
    await mkdir(join(chroot, 'data'));
    await chown(join(chroot, 'data'), chrooted.uid, chrooted.gid);
    sshd = await startSshd({
      extraConfig: [
        'Subsystem sftp internal-sftp',
        'PasswordAuthentication yes',
        `Match User ${chrootedName}`,
        `  ChrootDirectory ${chroot}`,
        '  ForceCommand internal-sftp',
        '  AllowTcpForwarding no',
      ],
    });
    // sshd reads authorized_keys with the user's own rights: the accounts must be able to reach it.
    await chmod(sshd.dir, 0o711);
    await chmod(join(sshd.dir, 'authorized_keys'), 0o644);
    const server = sshd;
    return { sshd: server, ordinary, chrooted: { ...chrooted, chroot }, dir, stop: cleanup };
  } catch (error) {
    await cleanup().catch(() => undefined);
    throw error;
  }
}

export interface RunningBridge {
  host: string;
  port: number;
  proc: ProcessHandle;
  /** The CLI's JSON log so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The real CLI as an SFTP bridge on 127.0.0.1 (a free port), logged in to
 * `server` as `sshUser` with its key, plus `extra` arguments (the login
 * mode, --sftp-root ...).
 */
export async function startBridgeCli(server: BridgeServer, sshUser: string, extra: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<RunningBridge> {
  const logFile = join(server.dir, `bridge-${randomBytes(4).toString('hex')}.log`);
  const { sshd } = server;
  const args = [CLI, '-L', '127.0.0.1:0:sftp:', '-F', 'none', '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-o', 'BatchMode=yes', '-p', String(sshd.port), '--log-format', 'json', '-v', '--log-file', logFile, ...extra, `${sshUser}@127.0.0.1`];
  const proc = await startProcess('node', args, { env });
  try {
    await proc.waitForOutput(LISTENING, START_TIMEOUT_MS);
  } catch (error) {
    await proc.stop();
    throw new Error(`the bridge did not start: ${error instanceof Error ? error.message : String(error)}\n${proc.stderr()}`, { cause: error });
  }
  const port = Number(LISTENING.exec(proc.stdout())![1]);
  return {
    host: '127.0.0.1',
    port,
    proc,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    stop: async () => {
      await proc.stop();
    },
  };
}

/** A file holding `text` (mode 0600), for --ftp-password-file. */
export async function secretFile(dir: string, text: string): Promise<string> {
  const path = join(dir, `secret-${randomBytes(4).toString('hex')}`);
  await writeFile(path, `${text}\n`, { mode: 0o600 });
  return path;
}
