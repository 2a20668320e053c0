import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import {
  curlDownload,
  curlUpload,
  FTP_MODES,
  ftplibDownload,
  ftpUrl,
  lftpDownload,
  lftpUpload,
  type ClientResult,
  type FtpTarget,
} from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { createBastionTopology, isRoot, type BastionTopology } from '../helpers/netns.js';
import { startProcess, type ProcessHandle } from '../helpers/processes.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { canConnect } from '../helpers/tcp.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

const CLI = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
const LARGE = 12 * 1024 * 1024;

function assertOk(result: ClientResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed (exit ${String(result.code)}):\n${result.stderr.slice(-3000)}`);
}

/**
 * The topology ftpfwd exists for: the client can reach only the bastion,
 * and only the bastion can reach the FTP server. Every data connection must
 * therefore go through SSH. Needs root for the network namespaces.
 */
describe('ftpfwd in a bastion topology (client / bastion with sshd / FTP host)', { skip: isRoot() ? false : 'needs root: creates network namespaces' }, () => {
  let dir: string;
  let net: BastionTopology;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  /** Default options: active mode converted to passive upstream. */
  let converting: ProcessHandle;
  /** --active-address: active mode through a remote forward on the bastion. */
  let forwarding: ProcessHandle;
  /** A second sshd on the bastion with GatewayPorts no: remote forwards bind loopback only. */
  let loopbackOnlySshd: SshdInstance;
  let fallingBack: ProcessHandle;
  let largeSum: string;
  let uploads = 0;

  const converted: FtpTarget = { host: '127.0.0.1', port: 2121 };
  const remoteForward: FtpTarget = { host: '127.0.0.1', port: 2122 };
  const fallback: FtpTarget = { host: '127.0.0.1', port: 2123 };

  async function startCli(port: number, extra: string[], server: SshdInstance = sshd): Promise<ProcessHandle> {
    const args = [
      CLI,
      '-L',
      `127.0.0.1:${port}:${net.ftpAddr}:21`,
      '-i',
      server.identityFile,
      '-o',
      `UserKnownHostsFile=${server.knownHostsFile}`,
      '-p',
      String(server.port),
      '--log-format',
      'json',
      ...extra,
      `${server.user}@${net.bastionClientSideAddr}`,
    ];
    const handle = await startProcess('node', args, { netns: net.client });
    await handle.waitForOutput(/ftpfwd: listening on/, 20_000);
    return handle;
  }

  before(async () => {
    dir = await makeTempDir('ftpfwd-bastion-');
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, 'large.bin'), LARGE);
    await copyFile(join(root, 'large.bin'), join(dir, 'large.bin'));
    largeSum = await sha256File(join(root, 'large.bin'));
    net = await createBastionTopology();
    sshd = await startSshd({ netns: net.bastion, listenAddress: net.bastionClientSideAddr, gatewayPorts: 'clientspecified' });
    vsftpd = await startVsftpd({ netns: net.ftp, listenAddress: net.ftpAddr, root });
    converting = await startCli(converted.port, []);
    forwarding = await startCli(remoteForward.port, ['--active-address', net.bastionFtpSideAddr]);
    loopbackOnlySshd = await startSshd({ netns: net.bastion, listenAddress: net.bastionClientSideAddr, port: 2222, gatewayPorts: 'no' });
    fallingBack = await startCli(fallback.port, ['--active-address', net.bastionFtpSideAddr], loopbackOnlySshd);
  });

  after(async () => {
    await converting?.stop();
    await forwarding?.stop();
    await fallingBack?.stop();
    await loopbackOnlySshd?.stop();
    await vsftpd?.stop();
    await sshd?.stop();
    await net?.destroy();
    if (dir) await removeDir(dir);
  });

  it('cannot reach the FTP host from the client except through ftpfwd', async () => {
    assert.equal(await canConnect(net.ftpAddr, 21, { netns: net.client, timeoutMs: 2_000 }), false);
    assert.equal(await canConnect(net.ftpAddr, 21, { netns: net.bastion, timeoutMs: 2_000 }), true);
  });

  for (const mode of FTP_MODES) {
    it(`curl downloads and uploads in ${mode} mode (active converted to passive upstream)`, async () => {
      const out = join(dir, `conv-${mode}.out`);
      assertOk(await curlDownload(ftpUrl(converted, '/large.bin'), out, mode, { netns: net.client }), 'curl download');
      assert.equal(await sha256File(out), largeSum);
      uploads += 1;
      const name = `conv-${mode}-${uploads}.bin`;
      assertOk(await curlUpload(ftpUrl(converted, `/incoming/${name}`), join(dir, 'large.bin'), mode, { netns: net.client }), 'curl upload');
      assert.equal(await sha256File(join(vsftpd.uploadDir, name)), largeSum);
    });
  }

  for (const mode of ['port', 'eprt'] as const) {
    it(`curl downloads and uploads in ${mode} mode through a remote forward on the bastion`, async () => {
      const out = join(dir, `fwd-${mode}.out`);
      assertOk(await curlDownload(ftpUrl(remoteForward, '/large.bin'), out, mode, { netns: net.client }), 'curl download');
      assert.equal(await sha256File(out), largeSum);
      uploads += 1;
      const name = `fwd-${mode}-${uploads}.bin`;
      assertOk(await curlUpload(ftpUrl(remoteForward, `/incoming/${name}`), join(dir, 'large.bin'), mode, { netns: net.client }), 'curl upload');
      assert.equal(await sha256File(join(vsftpd.uploadDir, name)), largeSum);
    });
  }

  for (const [label, target] of [
    ['converted', converted],
    ['remote forward', remoteForward],
  ] as const) {
    for (const mode of ['pasv', 'port'] as const) {
      it(`lftp gets and puts in ${mode === 'pasv' ? 'passive' : 'active'} mode (${label})`, async () => {
        const out = join(dir, `lftp-${label}-${mode}.out`);
        assertOk(await lftpDownload(target, '/large.bin', out, mode, { netns: net.client }), 'lftp get');
        assert.equal(await sha256File(out), largeSum);
        uploads += 1;
        const name = `lftp-${mode}-${uploads}.bin`;
        assertOk(await lftpUpload(target, join(dir, 'large.bin'), `/incoming/${name}`, mode, { netns: net.client }), 'lftp put');
        assert.equal(await sha256File(join(vsftpd.uploadDir, name)), largeSum);
      });
    }
  }

  for (const mode of FTP_MODES) {
    it(`ftplib gets in ${mode} mode`, async () => {
      const out = join(dir, `ftplib-${mode}.out`);
      assertOk(await ftplibDownload(remoteForward, '/large.bin', out, mode, { netns: net.client }), 'ftplib get');
      assert.equal(await sha256File(out), largeSum);
    });
  }

  it('notices when sshd binds remote forwards to loopback only (GatewayPorts no), says so, and converts instead', async () => {
    assert.match(fallingBack.stderr(), /GatewayPorts clientspecified or yes/);
    assert.match(fallingBack.stderr(), /converted to passive upstream instead/);
    const out = join(dir, 'fallback-port.out');
    assertOk(await curlDownload(ftpUrl(fallback, '/large.bin'), out, 'port', { netns: net.client }), 'curl download');
    assert.equal(await sha256File(out), largeSum);
    assert.match(fallingBack.stderr(), /"mode":"active-converted"/);
  });

  it('refuses to start with --active-mode forward when the remote forward cannot work', async () => {
    const handle = await startProcess(
      'node',
      [CLI, '-L', `127.0.0.1:2124:${net.ftpAddr}:21`, '-i', loopbackOnlySshd.identityFile, '-o', `UserKnownHostsFile=${loopbackOnlySshd.knownHostsFile}`, '-p', '2222',
        '--active-mode', 'forward', '--active-address', net.bastionFtpSideAddr, `${loopbackOnlySshd.user}@${net.bastionClientSideAddr}`],
      { netns: net.client },
    );
    const status = await handle.waitExit(20_000);
    assert.equal(status.code, 8, handle.stderr());
    assert.match(handle.stderr(), /^ftpfwd: active mode through a remote forward cannot work: .*GatewayPorts/m);
  });

  it('logs which active-mode path each forwarder took', () => {
    assert.match(converting.stderr(), /"mode":"active-converted"/);
    assert.doesNotMatch(converting.stderr(), /"mode":"active-forward"/);
    assert.match(forwarding.stderr(), /"mode":"active-forward"/);
  });

  it('stops cleanly on SIGTERM with exit code 0', async () => {
    const status = await converting.stop();
    assert.equal(status.code, 0, `exit ${String(status.code)} signal ${String(status.signal)}\n${converting.stderr().slice(-2000)}`);
    assert.match(converting.stderr(), /forwarder stopped/);
  });
});
