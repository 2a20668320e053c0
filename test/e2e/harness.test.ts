import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  curlDownload,
  curlList,
  curlUpload,
  FTP_MODES,
  ftpUrl,
  ftplibDownload,
  ftplibList,
  ftplibUpload,
  lftpDownload,
  lftpList,
  lftpUpload,
  type ClientResult,
  type FtpMode,
  type LftpMode,
} from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { createBastionTopology, isRoot, type BastionTopology } from '../helpers/netns.js';
import { assertSucceeded, run } from '../helpers/processes.js';
import { startSshd, sshClientArgs, type SshdInstance } from '../helpers/sshd.js';
import { canConnect } from '../helpers/tcp.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

const NEEDS_ROOT = 'needs root: vsftpd, sshd and network namespaces run as root';
const SMALL_FILE = 'small.bin';
const SMALL_SIZE = 1024;
const TEST_TIMEOUT_MS = 120_000;

const DATA_COMMAND: Record<FtpMode, string> = { pasv: 'PASV', epsv: 'EPSV', port: 'PORT', eprt: 'EPRT' };

/** The data-connection commands a client sent, read from its control-channel trace. */
function dataCommandsSent(trace: string, sentMarker: string): string[] {
  const sent = new Set<string>();
  for (const line of trace.split('\n')) {
    if (!line.startsWith(sentMarker)) continue;
    const command = line.slice(sentMarker.length).trim().split(' ')[0]?.toUpperCase() ?? '';
    if (['PASV', 'EPSV', 'PORT', 'EPRT'].includes(command)) sent.add(command);
  }
  return [...sent];
}

function assertTransferOk(result: ClientResult, what: string, server: VsftpdInstance | undefined): void {
  try {
    assertSucceeded(result, what);
  } catch (err) {
    const log = server?.log() ?? '';
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- vsftpd log ---\n${log.slice(-4000)}`);
  }
}

function requireValue<T>(value: T | undefined, name: string): T {
  assert.ok(value !== undefined, `${name} was not set up`);
  return value;
}

describe('vsftpd on loopback with real FTP clients', { skip: isRoot() ? false : NEEDS_ROOT, timeout: TEST_TIMEOUT_MS }, () => {
  let dir: string | undefined;
  let server: VsftpdInstance | undefined;
  let expectedSha = '';

  const ftpd = (): VsftpdInstance => requireValue(server, 'vsftpd');
  const work = (): string => requireValue(dir, 'temp dir');

  before(async () => {
    dir = await makeTempDir('ftpfwd-harness-');
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, SMALL_FILE), SMALL_SIZE);
    expectedSha = await sha256File(join(root, SMALL_FILE));
    server = await startVsftpd({ root });
  });

  after(async () => {
    await server?.stop();
    if (dir !== undefined) await removeDir(dir);
  });

  async function uploadSource(name: string): Promise<{ file: string; sha: string }> {
    const file = join(work(), name);
    await writeRandomFile(file, SMALL_SIZE);
    return { file, sha: await sha256File(file) };
  }

  for (const mode of FTP_MODES) {
    it(`curl downloads in ${mode} mode`, async () => {
      const out = join(work(), `curl-down-${mode}.bin`);
      const result = await curlDownload(ftpUrl(ftpd(), `/${SMALL_FILE}`), out, mode);
      assertTransferOk(result, `curl download (${mode})`, server);
      assert.deepEqual(dataCommandsSent(result.stderr, '> '), [DATA_COMMAND[mode]]);
      assert.equal(await sha256File(out), expectedSha);
    });

    it(`curl uploads in ${mode} mode`, async () => {
      const { file, sha } = await uploadSource(`curl-up-${mode}.bin`);
      const result = await curlUpload(ftpUrl(ftpd(), `/incoming/curl-up-${mode}.bin`), file, mode);
      assertTransferOk(result, `curl upload (${mode})`, server);
      assert.deepEqual(dataCommandsSent(result.stderr, '> '), [DATA_COMMAND[mode]]);
      assert.equal(await sha256File(join(ftpd().uploadDir, `curl-up-${mode}.bin`)), sha);
    });
  }

  it('curl lists the root directory', async () => {
    const result = await curlList(ftpUrl(ftpd(), '/'), 'epsv');
    assertTransferOk(result, 'curl list', server);
    assert.match(result.stdout, new RegExp(`${SMALL_FILE}$`, 'm'));
  });

  const lftpModes: LftpMode[] = ['pasv', 'epsv', 'port'];
  for (const mode of lftpModes) {
    it(`lftp downloads in ${mode} mode`, async () => {
      const out = join(work(), `lftp-down-${mode}.bin`);
      const result = await lftpDownload(ftpd(), `/${SMALL_FILE}`, out, mode);
      assertTransferOk(result, `lftp download (${mode})`, server);
      assert.deepEqual(dataCommandsSent(result.stderr, '---> '), [DATA_COMMAND[mode]]);
      assert.equal(await sha256File(out), expectedSha);
    });
  }

  it('lftp uploads and lists', async () => {
    const { file, sha } = await uploadSource('lftp-up.bin');
    const up = await lftpUpload(ftpd(), file, '/incoming/lftp-up.bin', 'pasv');
    assertTransferOk(up, 'lftp upload', server);
    assert.equal(await sha256File(join(ftpd().uploadDir, 'lftp-up.bin')), sha);
    const list = await lftpList(ftpd(), '/incoming', 'port');
    assertTransferOk(list, 'lftp list', server);
    assert.match(list.stdout, /lftp-up\.bin$/m);
  });

  for (const mode of FTP_MODES) {
    it(`ftplib gets, puts and lists in ${mode} mode`, async () => {
      const out = join(work(), `ftplib-down-${mode}.bin`);
      const get = await ftplibDownload(ftpd(), `/${SMALL_FILE}`, out, mode);
      assertTransferOk(get, `ftplib get (${mode})`, server);
      assert.deepEqual(dataCommandsSent(get.stderr, '--> '), [DATA_COMMAND[mode]]);
      assert.equal(await sha256File(out), expectedSha);

      const { file, sha } = await uploadSource(`ftplib-up-${mode}.bin`);
      const put = await ftplibUpload(ftpd(), file, `/incoming/ftplib-up-${mode}.bin`, mode);
      assertTransferOk(put, `ftplib put (${mode})`, server);
      assert.equal(await sha256File(join(ftpd().uploadDir, `ftplib-up-${mode}.bin`)), sha);

      const list = await ftplibList(ftpd(), '/incoming', mode);
      assertTransferOk(list, `ftplib list (${mode})`, server);
      assert.match(list.stdout, new RegExp(`ftplib-up-${mode}\\.bin$`, 'm'));
    });
  }
});

describe('OpenSSH server on loopback', { skip: isRoot() ? false : NEEDS_ROOT, timeout: TEST_TIMEOUT_MS }, () => {
  let server: SshdInstance | undefined;
  const sshd = (): SshdInstance => requireValue(server, 'sshd');

  before(async () => {
    server = await startSshd();
  });

  after(async () => {
    await server?.stop();
  });

  it('accepts the generated user key and is trusted through the known_hosts file', async () => {
    const result = await run('ssh', [...sshClientArgs(sshd()), 'true'], { timeoutMs: 30_000 });
    assertSucceeded(result, `ssh (sshd log:\n${sshd().log()})`);
  });

  it('is not trusted without that known_hosts file', async () => {
    const emptyKnownHosts = join(sshd().dir, 'empty_known_hosts');
    await writeFile(emptyKnownHosts, '');
    const trusting = `UserKnownHostsFile=${sshd().knownHostsFile}`;
    const args = sshClientArgs(sshd()).map((arg) => (arg === trusting ? `UserKnownHostsFile=${emptyKnownHosts}` : arg));
    const result = await run('ssh', [...args, 'true'], { timeoutMs: 30_000 });
    assert.equal(result.code, 255);
    assert.match(result.stderr, /Host key verification failed/);
  });
});

/** Interface names in the caller's own network namespace. */
async function rootNamespaceLinks(): Promise<string[]> {
  const result = await run('ip', ['-o', 'link', 'show'], { timeoutMs: 10_000 });
  assertSucceeded(result, 'ip link show');
  return result.stdout
    .split('\n')
    .map((line) => line.split(': ')[1]?.split('@')[0] ?? '')
    .filter((name) => name !== '')
    .sort();
}

async function namespaceNames(): Promise<string[]> {
  const result = await run('ip', ['netns', 'list'], { timeoutMs: 10_000 });
  assertSucceeded(result, 'ip netns list');
  return result.stdout.split('\n').map((line) => line.split(' ')[0] ?? '').filter((name) => name !== '');
}

describe('client - bastion - ftp network namespaces', { timeout: TEST_TIMEOUT_MS }, () => {
  let linksBefore: string[] = [];
  let topology: BastionTopology | undefined;
  let dir: string | undefined;
  let ftpServer: VsftpdInstance | undefined;
  let bastionSshd: SshdInstance | undefined;

  before(async () => {
    if (!isRoot()) return;
    linksBefore = await rootNamespaceLinks();
    topology = await createBastionTopology();
    dir = await makeTempDir('ftpfwd-harness-netns-');
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, SMALL_FILE), SMALL_SIZE);
    ftpServer = await startVsftpd({ root, listenAddress: topology.ftpAddr, netns: topology.ftp });
    bastionSshd = await startSshd({ listenAddress: topology.bastionClientSideAddr, netns: topology.bastion });
  });

  after(async () => {
    await bastionSshd?.stop();
    await ftpServer?.stop();
    await topology?.destroy();
    if (dir !== undefined) await removeDir(dir);
  });

  it('leaves the root network namespace without new links', async (t) => {
    if (!isRoot()) return t.skip(NEEDS_ROOT);
    requireValue(topology, 'topology');
    assert.deepEqual(await rootNamespaceLinks(), linksBefore);
  });

  it('keeps the ftp host unreachable from the client namespace', async (t) => {
    if (!isRoot()) return t.skip(NEEDS_ROOT);
    const topo = requireValue(topology, 'topology');
    const ftpd = requireValue(ftpServer, 'vsftpd');
    assert.equal(await canConnect(topo.ftpAddr, ftpd.port, { netns: topo.client, timeoutMs: 3_000 }), false);
    assert.equal(await canConnect(topo.bastionFtpSideAddr, 22, { netns: topo.client, timeoutMs: 3_000 }), false);
  });

  it('lets the bastion reach the ftp host', async (t) => {
    if (!isRoot()) return t.skip(NEEDS_ROOT);
    const topo = requireValue(topology, 'topology');
    const ftpd = requireValue(ftpServer, 'vsftpd');
    assert.equal(await canConnect(topo.ftpAddr, ftpd.port, { netns: topo.bastion, timeoutMs: 3_000 }), true);
  });

  for (const mode of FTP_MODES) {
    it(`carries ${mode} data connections between the bastion and the ftp host`, async (t) => {
      if (!isRoot()) return t.skip(NEEDS_ROOT);
      const topo = requireValue(topology, 'topology');
      const ftpd = requireValue(ftpServer, 'vsftpd');
      const out = join(requireValue(dir, 'temp dir'), `bastion-${mode}.bin`);
      const result = await curlDownload(ftpUrl(ftpd, `/${SMALL_FILE}`), out, mode, { netns: topo.bastion });
      assertTransferOk(result, `curl from the bastion (${mode})`, ftpd);
      assert.equal(await sha256File(out), await sha256File(join(ftpd.root, SMALL_FILE)));
    });
  }

  it('lets the client log in to the bastion sshd', async (t) => {
    if (!isRoot()) return t.skip(NEEDS_ROOT);
    const topo = requireValue(topology, 'topology');
    const sshd = requireValue(bastionSshd, 'bastion sshd');
    const result = await run('ssh', [...sshClientArgs(sshd), 'true'], { netns: topo.client, timeoutMs: 30_000 });
    assertSucceeded(result, `ssh from the client namespace (sshd log:\n${sshd.log()})`);
  });

  it('removes every namespace on destroy, and destroy is idempotent', async (t) => {
    if (!isRoot()) return t.skip(NEEDS_ROOT);
    const topo = requireValue(topology, 'topology');
    await bastionSshd?.stop();
    await ftpServer?.stop();
    await topo.destroy();
    await topo.destroy();
    const left = await namespaceNames();
    for (const ns of [topo.client, topo.bastion, topo.ftp]) assert.ok(!left.includes(ns), `${ns} still exists`);
  });
});
