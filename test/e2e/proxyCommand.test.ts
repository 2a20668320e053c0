import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { curlDownload } from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { createBastionTopology, isRoot, type BastionTopology } from '../helpers/netns.js';
import { descendantPids, run, startProcess, type ProcessHandle, type RunResult } from '../helpers/processes.js';
import { escapeRegExp, knownHostsLine, logSince, startSshd, type SshdInstance } from '../helpers/sshd.js';
import { delay } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

const CLI = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
const SOCKS_SERVER = fileURLToPath(new URL('../helpers/socks5ServerMain.ts', import.meta.url));
const SOCKS_PORT = 1080;
const LISTENING = /^ftpfwd: listening on 127\.0\.0\.1:(\d+) /m;
const DATA_SIZE = 512 * 1024;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * ProxyCommand in the topology it is for: the client namespace reaches only
 * the bastion (a jump sshd and a SOCKS5 proxy), and the SSH server that can
 * reach the FTP server sits behind it, on the FTP host. The target's sshd
 * log proves where each connection came from.
 */
describe('ProxyCommand through a bastion (ssh -W, nc -X 5 through SOCKS5, failures)', { skip: isRoot() ? false : 'needs root: creates network namespaces' }, () => {
  let dir: string;
  let net: BastionTopology;
  let jump: SshdInstance;
  let target: SshdInstance;
  let vsftpd: VsftpdInstance;
  let socks: ProcessHandle;
  let dataSum: string;
  let knownHosts: string;
  const started = new Set<ProcessHandle>();

  before(async () => {
    dir = await makeTempDir('ftpfwd-proxycommand-');
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, 'data.bin'), DATA_SIZE);
    dataSum = await sha256File(join(root, 'data.bin'));
    net = await createBastionTopology({ ipv6: false });
    jump = await startSshd({ netns: net.bastion, listenAddress: net.bastionClientSideAddr, extraConfig: ['LogLevel DEBUG1'] });
    target = await startSshd({ netns: net.ftp, listenAddress: net.ftpAddr });
    vsftpd = await startVsftpd({ netns: net.ftp, listenAddress: net.ftpAddr, root });
    socks = await startProcess('node', ['--import', 'tsx', SOCKS_SERVER, net.bastionClientSideAddr, String(SOCKS_PORT)], { netns: net.bastion });
    await socks.waitForOutput(/^listening /m, 15_000);
    knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, knownHostsLine(net.ftpAddr, 22, target.hostPublicKey));
  });

  after(async () => {
    for (const handle of started) await handle.stop();
    await socks?.stop();
    await vsftpd?.stop();
    await target?.stop();
    await jump?.stop();
    await net?.destroy();
    if (dir) await removeDir(dir);
  });

  /** ftpfwd in the client namespace, to the target by its address on the FTP host's network. */
  function cliArgs(proxyCommand: string, logFile: string, extra: string[] = []): string[] {
    return [
      CLI,
      '-L', `0:${net.ftpAddr}:21`,
      '-i', target.identityFile,
      '-o', `UserKnownHostsFile=${knownHosts}`,
      '-o', `ProxyCommand=${proxyCommand}`,
      '-o', 'BatchMode=yes',
      '--log-format', 'json',
      '--log-file', logFile,
      ...extra,
      `${target.user}@${net.ftpAddr}`,
    ];
  }

  async function startCli(proxyCommand: string, logFile: string, extra: string[] = []): Promise<{ handle: ProcessHandle; port: number }> {
    const handle = await startProcess('node', cliArgs(proxyCommand, logFile, extra), { netns: net.client });
    started.add(handle);
    try {
      await handle.waitForOutput(LISTENING, 20_000);
    } catch (error) {
      throw new Error(`${String(error)}\n${handle.stderr()}\n${await readFile(logFile, 'utf8').catch(() => '')}`, { cause: error });
    }
    return { handle, port: Number(LISTENING.exec(handle.stdout())![1]) };
  }

  async function stopCli(handle: ProcessHandle): Promise<void> {
    process.kill(handle.pid, 'SIGTERM');
    assert.deepEqual(await handle.waitExit(10_000), { code: 0, signal: null }, handle.stderr());
    started.delete(handle);
  }

  async function assertTransfer(port: number): Promise<void> {
    const out = join(dir, `download-${port}.bin`);
    const result = await curlDownload(`ftp://127.0.0.1:${port}/data.bin`, out, 'pasv', { netns: net.client, timeoutMs: 15_000 });
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    assert.equal(await sha256File(out), dataSum);
    await rm(out);
  }

  /** sshd's line for a login that came from the bastion's address on the FTP host's network. */
  const acceptedFromBastion = (): RegExp => new RegExp(`Accepted publickey for ${escapeRegExp(target.user)} from ${escapeRegExp(net.bastionFtpSideAddr)} port \\d+`);

  it('ssh -W %h:%p through a jump sshd: the jump opens the channel, the target sees the bastion; restarted after the command dies; killed at exit', async () => {
    const jumpKnownHosts = join(dir, 'jump_known_hosts');
    await writeFile(jumpKnownHosts, knownHostsLine(net.bastionClientSideAddr, 22, jump.hostPublicKey));
    const sshW = `ssh -F none -i ${jump.identityFile} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${jumpKnownHosts} -W %h:%p ${jump.user}@${net.bastionClientSideAddr}`;
    const marks = { jump: jump.log(), target: target.log() };
    const logFile = join(dir, 'ssh-w.log');
    const { handle, port } = await startCli(sshW, logFile);
    await assertTransfer(port);
    assert.match(logSince(jump, marks.jump), new RegExp(`server_request_direct_tcpip: originator \\S+ port \\d+, target ${escapeRegExp(net.ftpAddr)} port 22\\b`));
    assert.match(logSince(target, marks.target), acceptedFromBastion());

    // The command dies: the link reconnects by starting it again.
    const [proxyPid] = descendantPids(handle.pid).filter((pid) => /^ssh\b/.test(commandLineOf(pid)));
    assert.ok(proxyPid !== undefined, 'no ProxyCommand process under ftpfwd');
    const beforeKill = target.log();
    process.kill(proxyPid, 'SIGKILL');
    for (let attempt = 0; attempt < 100 && !/SSH connection re-established/.test(await readFile(logFile, 'utf8')); attempt += 1) await delay(100);
    assert.match(await readFile(logFile, 'utf8'), /SSH connection re-established/);
    assert.match(logSince(target, beforeKill), acceptedFromBastion(), 'the second login did not come through the jump host');
    await assertTransfer(port);

    const [again] = descendantPids(handle.pid).filter((pid) => /^ssh\b/.test(commandLineOf(pid)));
    assert.ok(again !== undefined && again !== proxyPid, 'no new ProxyCommand process');
    await stopCli(handle);
    for (let attempt = 0; attempt < 50 && pidAlive(again); attempt += 1) await delay(100);
    assert.equal(pidAlive(again), false, 'the ProxyCommand outlived ftpfwd');
  });

  it('nc -X 5 -x through a SOCKS5 proxy on the bastion', async () => {
    const mark = target.log();
    const socksMark = socks.stdout();
    const { handle, port } = await startCli(`nc -X 5 -x ${net.bastionClientSideAddr}:${SOCKS_PORT} %h %p`, join(dir, 'nc.log'));
    await assertTransfer(port);
    await stopCli(handle);
    assert.ok(socks.stdout().slice(socksMark.length).includes(`CONNECT ${net.ftpAddr}:22`), `the proxy carried nothing:\n${socks.stdout()}`);
    assert.match(logSince(target, mark), acceptedFromBastion());
  });

  it('a command that exits before the handshake: exit 5, one line with its last stderr line, and its stderr in the log', async () => {
    const mark = target.log();
    const logFile = join(dir, 'fail.log');
    // Nothing listens on the port after the proxy's: nc (-v: say why) fails to connect.
    const result: RunResult = await run('node', cliArgs(`nc -v -X 5 -x ${net.bastionClientSideAddr}:${SOCKS_PORT + 1} %h %p`, logFile), { netns: net.client, timeoutMs: 20_000 });
    assert.equal(result.code, 5, result.stderr);
    assert.match(result.stderr, /^ftpfwd: SSH connection to \S+ failed: ProxyCommand exited with status 1 \(nc: connect to 10\.251\.1\.2 port 1081 \(tcp\) failed: Connection refused\) before the handshake was done\n$/);
    const warned = (await readFile(logFile, 'utf8')).split('\n').filter((line) => line.includes('"level":40') && line.includes('ProxyCommand: nc: connect to'));
    assert.equal(warned.length, 1, await readFile(logFile, 'utf8'));
    assert.doesNotMatch(logSince(target, mark), /Accepted|Connection from/);

    const missing = await run('node', cliArgs('/nonexistent/proxy %h %p', join(dir, 'missing.log')), { netns: net.client, timeoutMs: 20_000 });
    assert.equal(missing.code, 5, missing.stderr);
    assert.match(missing.stderr, /^ftpfwd: .*ProxyCommand exited with status 127 \([^)]*nonexistent[^)]*\) before the handshake was done\n$/);
  });
});

/** A process's command line, "" once it is gone. */
function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}
