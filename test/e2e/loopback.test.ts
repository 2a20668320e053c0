import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  curlDownload,
  curlList,
  curlUpload,
  FTP_MODES,
  ftplibDownload,
  ftplibList,
  ftplibUpload,
  ftpUrl,
  lftpDownload,
  lftpList,
  lftpUpload,
  type ClientResult,
  type FtpMode,
  type FtpTarget,
} from '../helpers/clients.js';
import { ControlClient } from '../helpers/ftpControl.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { startTestForwarder, type TestForwarder } from '../helpers/forwarder.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

const SIZES = { empty: 0, small: 1024, large: 10 * 1024 * 1024 } as const;
type SizeName = keyof typeof SIZES;

function assertOk(result: ClientResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed (exit ${String(result.code)}):\n${result.stderr.slice(-3000)}`);
}

/** Checks in the client's trace that the mode really was used, not a fallback. */
function assertUsedCommand(result: ClientResult, mode: FtpMode): void {
  const verb = mode.toUpperCase();
  assert.match(result.stderr, new RegExp(`\\b${verb}\\b`), `the client did not send ${verb}`);
}

describe('ftpfwd through real OpenSSH to real vsftpd on loopback', () => {
  let dir: string;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  /** FTP server on the SSH host: active mode through a remote forward. */
  let viaForward: TestForwarder;
  /** Same server, active mode converted to passive upstream. */
  let viaConversion: TestForwarder;
  const sums = new Map<SizeName, string>();
  let uploadCounter = 0;

  const target = (forwarder: TestForwarder): FtpTarget => ({ host: forwarder.host, port: forwarder.port });
  const local = (name: string): string => join(dir, 'client', name);

  before(async () => {
    dir = await makeTempDir('ftpfwd-loopback-');
    const root = join(dir, 'root');
    await mkdir(root);
    await mkdir(join(dir, 'client'));
    for (const [name, size] of Object.entries(SIZES) as Array<[SizeName, number]>) {
      await writeRandomFile(join(root, `${name}.bin`), size);
      await copyFile(join(root, `${name}.bin`), local(`${name}.bin`));
      sums.set(name, await sha256File(join(root, `${name}.bin`)));
    }
    sshd = await startSshd();
    vsftpd = await startVsftpd({ root });
    viaForward = await startTestForwarder(sshd, '127.0.0.1', vsftpd.port);
    viaConversion = await startTestForwarder(sshd, '127.0.0.1', vsftpd.port, { activeMode: 'convert' });
  });

  after(async () => {
    await viaForward?.forwarder.close();
    await viaConversion?.forwarder.close();
    await vsftpd?.stop();
    await sshd?.stop();
    if (dir) await removeDir(dir);
  });

  async function expectUploaded(remoteName: string, size: SizeName): Promise<void> {
    assert.equal(await sha256File(join(vsftpd.uploadDir, remoteName)), sums.get(size), `uploaded ${remoteName} differs`);
  }

  function uploadName(label: string): string {
    uploadCounter += 1;
    return `${label}-${uploadCounter}.bin`;
  }

  describe('curl', () => {
    for (const mode of FTP_MODES) {
      for (const size of Object.keys(SIZES) as SizeName[]) {
        it(`downloads the ${size} file in ${mode} mode`, async () => {
          const out = local(`curl-${mode}-${size}.out`);
          const result = await curlDownload(ftpUrl(target(viaForward), `/${size}.bin`), out, mode);
          assertOk(result, 'curl download');
          assertUsedCommand(result, mode);
          assert.equal(await sha256File(out), sums.get(size));
        });
        it(`uploads the ${size} file in ${mode} mode`, async () => {
          const name = uploadName(`curl-${mode}-${size}`);
          const result = await curlUpload(ftpUrl(target(viaForward), `/incoming/${name}`), local(`${size}.bin`), mode);
          assertOk(result, 'curl upload');
          assertUsedCommand(result, mode);
          await expectUploaded(name, size);
        });
      }
      it(`lists a directory in ${mode} mode`, async () => {
        const result = await curlList(ftpUrl(target(viaForward), '/'), mode);
        assertOk(result, 'curl list');
        for (const name of ['empty.bin', 'small.bin', 'large.bin', 'incoming']) assert.match(result.stdout, new RegExp(name));
      });
    }
  });

  describe('lftp', () => {
    for (const mode of ['pasv', 'port'] as const) {
      it(`downloads, uploads and lists in ${mode === 'pasv' ? 'passive' : 'active'} mode`, async () => {
        const out = local(`lftp-${mode}.out`);
        assertOk(await lftpDownload(target(viaForward), '/large.bin', out, mode), 'lftp get');
        assert.equal(await sha256File(out), sums.get('large'));
        const name = uploadName(`lftp-${mode}`);
        assertOk(await lftpUpload(target(viaForward), local('large.bin'), `/incoming/${name}`, mode), 'lftp put');
        await expectUploaded(name, 'large');
        const listing = await lftpList(target(viaForward), '/', mode);
        assertOk(listing, 'lftp ls');
        assert.match(listing.stdout, /small\.bin/);
      });
    }
  });

  describe("Python's ftplib", () => {
    for (const mode of FTP_MODES) {
      it(`gets, puts and lists in ${mode} mode`, async () => {
        const out = local(`ftplib-${mode}.out`);
        assertOk(await ftplibDownload(target(viaForward), '/large.bin', out, mode), 'ftplib get');
        assert.equal(await sha256File(out), sums.get('large'));
        const name = uploadName(`ftplib-${mode}`);
        assertOk(await ftplibUpload(target(viaForward), local('small.bin'), `/incoming/${name}`, mode), 'ftplib put');
        await expectUploaded(name, 'small');
        const listing = await ftplibList(target(viaForward), '/', mode);
        assertOk(listing, 'ftplib list');
        assert.match(listing.stdout, /large\.bin/);
      });
    }
  });

  describe('active mode converted to passive upstream', () => {
    for (const mode of ['port', 'eprt'] as const) {
      it(`carries curl's ${mode.toUpperCase()} download and upload with no remote forward`, async () => {
        const out = local(`converted-${mode}.out`);
        const download = await curlDownload(ftpUrl(target(viaConversion), '/large.bin'), out, mode);
        assertOk(download, 'curl download');
        assertUsedCommand(download, mode);
        assert.equal(await sha256File(out), sums.get('large'));
        const name = uploadName(`converted-${mode}`);
        assertOk(await curlUpload(ftpUrl(target(viaConversion), `/incoming/${name}`), local('small.bin'), mode), 'curl upload');
        await expectUploaded(name, 'small');
      });
    }
    it('logs that the conversion path was taken', () => {
      const modes = viaConversion.logs().filter((record) => record['msg'] === 'transfer done').map((record) => record['mode']);
      assert.ok(modes.includes('active-converted'), `data connection modes logged: ${modes.join(', ')}`);
      assert.ok(!modes.includes('active-forward'));
    });
  });

  it('serves 8 sessions at once, each transferring the large file intact', async () => {
    const modes: FtpMode[] = [...FTP_MODES, ...FTP_MODES];
    const results = await Promise.all(
      modes.map(async (mode, index) => {
        const out = local(`parallel-${index}.out`);
        const result = await curlDownload(ftpUrl(target(viaForward), '/large.bin'), out, mode);
        return { result, out };
      }),
    );
    for (const { result, out } of results) {
      assertOk(result, 'parallel curl download');
      assert.equal(await sha256File(out), sums.get('large'));
    }
  });

  describe('control connection policy', () => {
    async function loggedIn(): Promise<ControlClient> {
      const control = await ControlClient.open(viaForward.host, viaForward.port);
      assert.equal((await control.reply()).code, 220);
      assert.equal((await control.command('USER anonymous')).code, 331);
      assert.equal((await control.command('PASS secret-password')).code, 230);
      return control;
    }

    it('refuses AUTH TLS with 534, and the session goes on', async () => {
      const control = await loggedIn();
      try {
        const reply = await control.command('AUTH TLS');
        assert.equal(reply.code, 534);
        assert.match(reply.lines[0]!, /SSH/);
        assert.equal((await control.command('NOOP')).code, 200);
      } finally {
        control.close();
      }
    });

    it('refuses a PORT to another host (bounce) and to a privileged port, and LPRT', async () => {
      const control = await loggedIn();
      try {
        assert.equal((await control.command('PORT 192,0,2,7,31,144')).code, 501);
        assert.equal((await control.command('PORT 127,0,0,1,0,25')).code, 501);
        assert.equal((await control.command('EPRT |1|192.0.2.7|8080|')).code, 501);
        assert.equal((await control.command('LPRT 4,4,127,0,0,1,2,31,144')).code, 502);
        assert.equal((await control.command('NOOP')).code, 200);
      } finally {
        control.close();
      }
    });

    it('answers pipelined commands in order, local replies included', async () => {
      const control = await loggedIn();
      try {
        control.send('PASV\r\nAUTH TLS\r\nEPSV\r\nNOOP\r\n');
        const pasv = await control.reply();
        assert.equal(pasv.code, 227);
        assert.match(pasv.lines[0]!, /\(127,0,0,1,\d+,\d+\)/);
        assert.equal((await control.reply()).code, 534);
        assert.match((await control.reply()).lines[0]!, /^229 .*\(\|\|\|\d+\|\)/);
        assert.equal((await control.reply()).code, 200);
      } finally {
        control.close();
      }
    });

    it('logs each transfer with its command, direction, bytes and rate', () => {
      const transfers = viaForward.logs().filter((record) => record['msg'] === 'transfer done');
      const download = transfers.find((record) => record['command'] === 'RETR large.bin' && record['mode'] === 'passive');
      assert.ok(download, `no passive RETR large.bin among ${transfers.length} transfers`);
      assert.equal(download['direction'], 'download');
      assert.equal(download['bytesToClient'], SIZES.large);
      assert.equal(download['bytesToServer'], 0);
      assert.equal(typeof download['durationMs'], 'number');
      assert.equal(typeof download['rateMBps'], 'number');
      const upload = transfers.find((record) => typeof record['command'] === 'string' && String(record['command']).startsWith('STOR') && record['bytesToServer'] === SIZES.large);
      assert.ok(upload, 'no upload of the large file logged');
      assert.equal(upload['direction'], 'upload');
    });

    it('never logs the password', () => {
      const text = JSON.stringify(viaForward.logs());
      assert.ok(!text.includes('secret-password'));
      assert.match(text, /PASS \*\*\*\*/);
    });

    it('closes the client connection when the FTP server ends the session', async () => {
      const control = await loggedIn();
      try {
        assert.equal((await control.command('QUIT')).code, 221);
        assert.equal(await control.closedWithin(5_000), true);
      } finally {
        control.close();
      }
    });
  });
});
