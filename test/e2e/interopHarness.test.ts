import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curlDownload, curlList, curlUpload, FTP_MODES, ftpUrl, type ClientResult, type FtpMode, type FtpTarget } from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { ControlClient, type Reply } from '../helpers/ftpControl.js';
import type { FtpServerInstance, FtpServerOptions } from '../helpers/ftpServer.js';
import { commandsFromTrace, dataCommands, FTP_CLIENTS, tnftpDownload, type FtpClientDriver, type MoreClientResult } from '../helpers/moreClients.js';
import { createBastionTopology, isRoot, type BastionTopology } from '../helpers/netns.js';
import { findProftpd, startProftpd } from '../helpers/proftpd.js';
import { findPureFtpd, startPureFtpd } from '../helpers/pureFtpd.js';
import { startPyftpdlib } from '../helpers/pyftpdlib.js';
import {
  formatPassiveReply,
  SCRIPTED_VARIANT_NAMES,
  SCRIPTED_VARIANTS,
  startScriptedFtpServer,
  type ScriptedVariant,
} from '../helpers/scriptedFtpServer.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd } from '../helpers/vsftpd.js';

const NEEDS_ROOT = 'needs root: proftpd, pure-ftpd and vsftpd chroot, namespaces need root';
const FILE = 'payload.bin';
const FILE_SIZE = 256 * 1024;
const CLIENT_TIMEOUT_MS = 20_000;
/** Start-up budget per server once its package is unpacked (the first unpack downloads it). */
const START_BUDGET_MS = 5_000;
const VERB: Record<FtpMode, string> = { pasv: 'PASV', epsv: 'EPSV', port: 'PORT', eprt: 'EPRT' };

type ServerStarter = (opts: FtpServerOptions) => Promise<FtpServerInstance>;

const SERVERS: ReadonlyArray<readonly [string, ServerStarter]> = [
  ['proftpd', startProftpd],
  ['pure-ftpd', startPureFtpd],
  ['pyftpdlib', startPyftpdlib],
  ['scripted', startScriptedFtpServer],
];

function assertOk(result: ClientResult, what: string, server?: FtpServerInstance): void {
  const log = server === undefined ? '' : `\n--- server log ---\n${server.log().slice(-3000)}`;
  assert.equal(result.code, 0, `${what} failed (exit ${String(result.code)}):\n${result.stderr.slice(-3000)}${log}`);
}

/** curl's `-v` trace shows each command sent as `> CMD`. */
function curlDataCommands(result: ClientResult): string[] {
  return dataCommands(commandsFromTrace(result.stderr, /^> (.*)$/));
}

/** Logs in anonymously; pure-ftpd accepts `USER anonymous` at once (230), the others ask for a password. */
async function login(target: FtpTarget): Promise<{ control: ControlClient; greeting: Reply }> {
  const control = await ControlClient.open(target.host, target.port);
  try {
    const greeting = await control.reply();
    assert.equal(greeting.code, 220);
    const user = await control.command('USER anonymous');
    if (user.code !== 230) {
      assert.equal(user.code, 331);
      assert.equal((await control.command('PASS harness@example.com')).code, 230);
    }
    return { control, greeting };
  } catch (err) {
    control.close();
    throw err;
  }
}

describe('interop harness', { skip: isRoot() ? false : NEEDS_ROOT }, () => {
  let dir: string;
  let source: string;
  let sum: string;
  let uploads = 0;

  before(async () => {
    dir = await makeTempDir('ftpfwd-interop-');
    source = join(dir, FILE);
    await writeRandomFile(source, FILE_SIZE);
    sum = await sha256File(source);
    // The first run downloads and unpacks the packages; later runs find them in the cache.
    await findProftpd();
    await findPureFtpd();
  }, { timeout: 300_000 });

  after(async () => {
    if (dir !== undefined) await removeDir(dir);
  });

  async function makeRoot(name: string): Promise<string> {
    const root = join(dir, `${name}-root`);
    await mkdir(root, { recursive: true });
    await copyFile(source, join(root, FILE));
    return root;
  }

  function uploadName(label: string): string {
    uploads += 1;
    return `${label}-${uploads}.bin`;
  }

  for (const [name, start] of SERVERS) {
    describe(`${name} served directly`, () => {
      let server: FtpServerInstance | undefined;
      let startedInMs = 0;
      const srv = (): FtpServerInstance => {
        assert.ok(server, `${name} did not start`);
        return server;
      };

      before(async () => {
        const root = await makeRoot(name);
        const t0 = Date.now();
        server = await start({ root });
        startedInMs = Date.now() - t0;
      });

      after(async () => {
        await server?.stop();
      });

      it(`starts within ${START_BUDGET_MS} ms`, () => {
        assert.ok(startedInMs < START_BUDGET_MS, `${name} took ${startedInMs} ms to start`);
      });

      for (const mode of FTP_MODES) {
        it(`carries a curl download and upload in ${mode} mode`, async () => {
          const out = join(dir, `${name}-${mode}.out`);
          const down = await curlDownload(ftpUrl(srv(), `/${FILE}`), out, mode, { timeoutMs: CLIENT_TIMEOUT_MS });
          assertOk(down, `curl download (${mode})`, srv());
          assert.deepEqual(curlDataCommands(down), [VERB[mode]]);
          assert.equal(await sha256File(out), sum);

          const remote = uploadName(`${name}-${mode}`);
          const up = await curlUpload(ftpUrl(srv(), `/incoming/${remote}`), source, mode, { timeoutMs: CLIENT_TIMEOUT_MS });
          assertOk(up, `curl upload (${mode})`, srv());
          assert.deepEqual(curlDataCommands(up), [VERB[mode]]);
          assert.equal(await sha256File(join(srv().uploadDir, remote)), sum);
        });
      }

      it('lists the root and the upload directory', async () => {
        const root = await curlList(ftpUrl(srv(), '/'), 'pasv', { timeoutMs: CLIENT_TIMEOUT_MS });
        assertOk(root, 'curl list /', srv());
        assert.match(root.stdout, new RegExp(`${FILE.replace('.', '\\.')}\\r?$`, 'm'));
        assert.match(root.stdout, /incoming\r?$/m);
      });

      it('refuses PORT and EPRT naming another address than the control peer', async () => {
        const { control } = await login(srv());
        try {
          assert.ok((await control.command('PORT 192,0,2,7,31,144')).code >= 500);
          assert.ok((await control.command('EPRT |1|192.0.2.7|8080|')).code >= 500);
          assert.equal((await control.command('NOOP')).code, 200);
        } finally {
          control.close();
        }
      });
    });
  }

  describe('more clients against vsftpd', () => {
    let vsftpd: FtpServerInstance | undefined;
    const srv = (): FtpServerInstance => {
      assert.ok(vsftpd, 'vsftpd did not start');
      return vsftpd;
    };
    const newClients = FTP_CLIENTS.filter((client) => !['curl', 'lftp', 'ftplib'].includes(client.name));

    before(async () => {
      vsftpd = await startVsftpd({ root: await makeRoot('vsftpd') });
    });

    after(async () => {
      await vsftpd?.stop();
    });

    function assertUsed(result: MoreClientResult, mode: FtpMode, client: FtpClientDriver): void {
      assert.deepEqual(dataCommands(result.commands), [VERB[mode]], `${client.name} sent: ${result.commands.join(' | ')}`);
    }

    for (const client of newClients) {
      for (const mode of client.modes) {
        it(`${client.name} downloads${client.upload ? ', uploads' : ''} and lists in ${mode} mode`, async () => {
          const opts = { timeoutMs: CLIENT_TIMEOUT_MS };
          const out = join(dir, `${client.name}-${mode}.out`);
          const down = await client.download(srv(), `/${FILE}`, out, mode, opts);
          assertOk(down, `${client.name} download (${mode})`, srv());
          assertUsed(down, mode, client);
          assert.equal(await sha256File(out), sum);

          if (client.upload) {
            const remote = uploadName(`${client.name}-${mode}`);
            const up = await client.upload(srv(), source, `/incoming/${remote}`, mode, opts);
            assertOk(up, `${client.name} upload (${mode})`, srv());
            assertUsed(up, mode, client);
            assert.equal(await sha256File(join(srv().uploadDir, remote)), sum);
          }

          const listing = await client.list(srv(), '/', mode, opts);
          assertOk(listing, `${client.name} list (${mode})`, srv());
          assertUsed(listing, mode, client);
          assert.match(listing.stdout, new RegExp(FILE.replace('.', '\\.')));
        });
      }

      it(`${client.name} reports a failed download (550) as a failure`, async () => {
        const out = join(dir, `${client.name}-missing.out`);
        const result = await client.download(srv(), '/no-such-file.bin', out, client.modes[0]!, { timeoutMs: CLIENT_TIMEOUT_MS });
        assert.notEqual(result.code, 0, `${client.name} exited 0:\n${result.stderr.slice(-2000)}`);
      });
    }

    it('masks the password in the recorded commands', async () => {
      const result = await tnftpDownload(srv(), `/${FILE}`, join(dir, 'masked.out'), 'pasv', { timeoutMs: CLIENT_TIMEOUT_MS });
      assertOk(result, 'tnftp download');
      assert.ok(result.commands.includes('PASS ****'), result.commands.join(' | '));
    });
  });

  describe('scripted server variants', () => {
    for (const variantName of SCRIPTED_VARIANT_NAMES) {
      const variant: ScriptedVariant = SCRIPTED_VARIANTS[variantName];
      it(`${variantName}: replies as scripted and serves curl in pasv mode`, async () => {
        const server = await startScriptedFtpServer({ root: await makeRoot(`variant-${variantName}`), variant: variantName });
        try {
          const { control, greeting } = await login(server);
          try {
            assert.deepEqual(greeting.lines, variant.greeting);
            assert.deepEqual((await control.command('SYST')).lines, [variant.syst]);
            const feat = await control.command('FEAT');
            if (variant.feat === undefined) assert.equal(feat.code, 500);
            else assert.deepEqual(feat.lines, variant.feat);

            const pasv = await control.command('PASV');
            assert.equal(pasv.lines.length, 1);
            const numbers = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(pasv.lines[0]!);
            assert.ok(numbers, `no address in ${pasv.lines[0]}`);
            const port = Number(numbers[5]) * 256 + Number(numbers[6]);
            const named = variant.pasvAddress ?? server.host;
            assert.equal(pasv.lines[0], formatPassiveReply(variant.pasv, named, port));

            const epsv = await control.command('EPSV');
            if (variant.epsv === undefined) {
              assert.equal(epsv.code, 500);
            } else {
              const epsvPort = Number(/(\d+)\D*$/.exec(epsv.lines[0]!)?.[1]);
              assert.equal(epsv.lines[0], formatPassiveReply(variant.epsv, server.host, epsvPort));
            }
            assert.equal((await control.command('EPRT |1|127.0.0.1|40000|')).code, variant.eprt ? 200 : 500);
          } finally {
            control.close();
          }

          const out = join(dir, `variant-${variantName}.out`);
          const down = await curlDownload(ftpUrl(server, `/${FILE}`), out, 'pasv', { timeoutMs: CLIENT_TIMEOUT_MS });
          assertOk(down, `curl download from ${variantName}`, server);
          assert.deepEqual(curlDataCommands(down), ['PASV']);
          assert.equal(await sha256File(out), sum);
          const remote = uploadName(`variant-${variantName}`);
          const up = await curlUpload(ftpUrl(server, `/incoming/${remote}`), source, 'pasv', { timeoutMs: CLIENT_TIMEOUT_MS });
          assertOk(up, `curl upload to ${variantName}`, server);
          assert.equal(await sha256File(join(server.uploadDir, remote)), sum);
        } finally {
          await server.stop();
        }
      });
    }

    it('refuses passive data connections from another address than the control peer', async () => {
      const server = await startScriptedFtpServer({ root: await makeRoot('peer-check') });
      const { control } = await login(server);
      try {
        const pasv = await control.command('PASV');
        const numbers = /(\d+),(\d+)\)/.exec(pasv.lines[0]!);
        assert.ok(numbers);
        const intruder = connect({ host: server.host, port: Number(numbers[1]) * 256 + Number(numbers[2]), localAddress: '127.0.0.2' });
        intruder.on('error', () => undefined);
        const closed = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 5_000);
          intruder.once('close', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        assert.equal(closed, true, 'the connection from 127.0.0.2 was kept');
        assert.match(server.log(), /refused a data connection from 127\.0\.0\.2/);
      } finally {
        control.close();
        await server.stop();
      }
    });
  });

  describe('every server inside the ftp namespace of a bastion topology', () => {
    let net: BastionTopology | undefined;

    before(async () => {
      net = await createBastionTopology();
    });

    after(async () => {
      await net?.destroy();
    });

    for (const [name, start] of [...SERVERS, ['scripted (iis)', (o: FtpServerOptions) => startScriptedFtpServer({ ...o, variant: 'iis' })] as const]) {
      it(`${name} serves curl on the bastion in pasv and port mode`, async () => {
        assert.ok(net);
        const server = await start({ root: await makeRoot(`ns-${name.replace(/\W+/g, '-')}`), netns: net.ftp, listenAddress: net.ftpAddr });
        try {
          assert.equal(server.port, 21);
          for (const mode of ['pasv', 'port'] as const) {
            const out = join(dir, `ns-${name.replace(/\W+/g, '-')}-${mode}.out`);
            const down = await curlDownload(ftpUrl(server, `/${FILE}`), out, mode, { netns: net.bastion, timeoutMs: CLIENT_TIMEOUT_MS });
            assertOk(down, `curl download from ${name} (${mode})`, server);
            assert.equal(await sha256File(out), sum);
            const remote = uploadName(`ns-${mode}`);
            const up = await curlUpload(ftpUrl(server, `/incoming/${remote}`), source, mode, { netns: net.bastion, timeoutMs: CLIENT_TIMEOUT_MS });
            assertOk(up, `curl upload to ${name} (${mode})`, server);
            assert.equal(await sha256File(join(server.uploadDir, remote)), sum);
          }
        } finally {
          await server.stop();
        }
      });
    }
  });
});
