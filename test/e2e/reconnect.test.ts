import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isFtpfwdError } from '../../src/index.js';
import { curlDownload, ftpUrl } from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { startTestForwarder, type TestForwarder } from '../helpers/forwarder.js';
import { ControlClient } from '../helpers/ftpControl.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { withTimeout } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

describe('SSH connection lost and back: sessions get 421, the forwarder reconnects', () => {
  let dir: string;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  let reconnecting: TestForwarder;
  let exiting: TestForwarder;
  let sum: string;

  before(async () => {
    dir = await makeTempDir('ftpfwd-reconnect-');
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, 'file.bin'), 2 * 1024 * 1024);
    sum = await sha256File(join(root, 'file.bin'));
    sshd = await startSshd();
    vsftpd = await startVsftpd({ root });
    reconnecting = await startTestForwarder(sshd, '127.0.0.1', vsftpd.port, { reconnect: { enabled: true, initialDelayMs: 200, maxDelayMs: 1_000 } });
    exiting = await startTestForwarder(sshd, '127.0.0.1', vsftpd.port, { reconnect: { enabled: false } });
  });

  after(async () => {
    await reconnecting?.forwarder.close();
    await exiting?.forwarder.close();
    await vsftpd?.stop();
    await sshd?.stop();
    if (dir) await removeDir(dir);
  });

  it('answers the session in flight with 421, then serves new sessions after sshd is back', async () => {
    const inFlight = await ControlClient.open(reconnecting.host, reconnecting.port);
    assert.equal((await inFlight.reply()).code, 220);
    assert.equal((await inFlight.command('USER anonymous')).code, 331);
    const before = reconnecting.forwarder.status().ssh;
    assert.deepEqual([before?.state, before?.reconnects], ['up', 0]);

    const restartedAt = Date.now();
    await sshd.restart(1_500);

    const goodbye = await inFlight.reply(10_000);
    assert.equal(goodbye.code, 421);
    assert.match(goodbye.lines[0]!, /SSH connection was lost/);
    assert.equal(await inFlight.closedWithin(5_000), true);
    inFlight.close();

    const out = join(dir, 'after-restart.out');
    const result = await curlDownload(ftpUrl({ host: reconnecting.host, port: reconnecting.port }, '/file.bin'), out, 'pasv', { timeoutMs: 30_000 });
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    assert.equal(await sha256File(out), sum);

    const messages = reconnecting.logs().map((record) => record['msg']);
    assert.ok(messages.includes('SSH connection lost; reconnecting'), messages.join(' | '));
    assert.ok(messages.includes('SSH connection re-established'), messages.join(' | '));
    // The status a SIGUSR1 reports: the link is up again, on a connection made after the restart.
    const status = reconnecting.forwarder.status();
    assert.deepEqual([status.ssh?.state, status.ssh?.reconnects], ['up', 1]);
    assert.ok(Number(status.ssh?.upSince) > restartedAt, `up since ${String(status.ssh?.upSince)}, restarted at ${restartedAt}`);
    assert.equal(typeof status.ssh?.cipher, 'string');
  });

  it('with reconnecting off, ends the forwarder with the loss as its error', async () => {
    const outcome = await withTimeout(exiting.forwarder.closed, 10_000, 'the forwarder did not stop');
    assert.ok(outcome.error && isFtpfwdError(outcome.error), String(outcome.error));
    assert.equal(outcome.error.code, 'ERR_FTPFWD_SSH');
    assert.match(outcome.error.message, /SSH connection lost/);
  });
});
