import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { logRecords, startCli, type RunningCli } from '../helpers/cli.js';
import { curlDownload, curlUpload, ftpUrl } from '../helpers/clients.js';
import { startDelayLineProcess, type DelayLineProcess } from '../helpers/delayLine.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { isRoot } from '../helpers/netns.js';
import { knownHostsLine, startSshd, type SshdInstance } from '../helpers/sshd.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

/**
 * ftpfwd on a long link: the SSH connection goes through the benchmark's
 * delay line (50 ms round trip). A download's data channel earns a receive
 * window larger than ssh2's 2 MiB and arrives intact, an upload arrives
 * intact, and the log says how sshd's small packets are kept from waiting.
 */

const RTT_MS = 50;
const SIZE = 48 * 1024 * 1024;
const MiB = 1024 * 1024;

describe('ftpfwd through a 50 ms delay line', { skip: isRoot() ? false : 'needs root (vsftpd)' }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  let line: DelayLineProcess;
  let knownHosts: string;
  let fileSum: string;
  const clis = new Set<RunningCli>();

  before(async () => {
    dir = await makeTempDir('ftpfwd-longlink-');
    const home = join(dir, 'home');
    await mkdir(home);
    env = { ...process.env, HOME: home };
    delete env['SSH_AUTH_SOCK'];
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, 'big.bin'), SIZE);
    fileSum = await sha256File(join(root, 'big.bin'));
    sshd = await startSshd({ extraConfig: ['Subsystem sftp internal-sftp'] });
    vsftpd = await startVsftpd({ root });
    line = await startDelayLineProcess({ targetHost: sshd.host, targetPort: sshd.port, rttMs: RTT_MS });
    knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, knownHostsLine(line.host, line.port, sshd.hostPublicKey));
  });

  after(async () => {
    for (const cli of clis) await cli.stop();
    await line?.stop();
    await vsftpd?.stop();
    await sshd?.stop();
    if (dir) await removeDir(dir);
  });

  async function start(extra: string[] = []): Promise<RunningCli> {
    const cli = await startCli(
      ['-v', '--log-format', 'json', '-F', 'none', '-p', String(line.port), '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${knownHosts}`, '-L', `127.0.0.1:0:127.0.0.1:${vsftpd.port}`, ...extra, `${sshd.user}@${line.host}`],
      { env, cwd: dir },
    );
    clis.add(cli);
    return cli;
  }

  it('a download earns a larger receive window and arrives intact; an upload arrives intact', async (t) => {
    const cli = await start();
    const port = cli.ports[0]!;
    const target = { host: '127.0.0.1', port };
    const out = join(dir, 'down.bin');
    const down = await curlDownload(ftpUrl(target, '/big.bin'), out, 'epsv', { timeoutMs: 120_000 });
    assert.equal(down.code, 0, down.stderr);
    assert.equal(await sha256File(out), fileSum);
    const up = await curlUpload(ftpUrl(target, '/incoming/up.bin'), out, 'epsv', { timeoutMs: 120_000 });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(await sha256File(join(vsftpd.uploadDir, 'up.bin')), fileSum);
    const records = logRecords(cli.handle.stderr());
    const windows = records.filter((record) => record['msg'] === 'data channel window raised').map((record) => Number(record['windowBytes']));
    t.diagnostic(`windows: ${windows.map((bytes) => `${bytes / MiB} MiB`).join(', ')}`);
    assert.ok(windows.length > 0 && Math.max(...windows) >= 8 * MiB, `the download's window was not raised: ${windows.join(', ')}`);
    assert.ok(records.some((record) => record['msg'] === 'small packets from sshd: acknowledged at once (SSH_MSG_IGNORE)'));
  });

  it('--sshd-nodelay starts and closes the sftp subsystem once, and says so', async () => {
    const cli = await start(['--sshd-nodelay']);
    const records = logRecords(cli.handle.stderr());
    assert.ok(records.some((record) => String(record['msg']).startsWith('small packets from sshd: sent at once')), cli.handle.stderr());
    assert.match(sshd.log(), /subsystem 'sftp'/);
  });
});
