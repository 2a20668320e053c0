import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { isFtpfwdError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { DEFAULT_PROGRESS_INTERVAL_MS, progressInterval, TransferWatch, type TransferBytes } from '../../src/session/transferProgress.js';
import { MAX_TIMER_MS } from '../../src/timers.js';

function jsonLog(): { log: ReturnType<typeof createLogger>; records(): Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      callback();
    },
  });
  return { log: createLogger({ level: 'info', format: 'json', destination: stream }), records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('TransferWatch', () => {
  it('logs a progress record each interval while the transfer runs, and none once stopped', async () => {
    const { log, records } = jsonLog();
    const bytes: TransferBytes = { bytesToServer: 0, bytesToClient: 0 };
    const pump = setInterval(() => (bytes.bytesToClient += 10_000), 5);
    const watch = new TransferWatch({ command: () => 'RETR big.iso', bytes: () => ({ ...bytes }) }, log, 40);
    try {
      await sleep(150);
      watch.stop();
      const logged = records().length;
      assert.ok(logged >= 2 && logged <= 4, `${logged} progress records in 150 ms at one per 40 ms`);
      await sleep(100);
      assert.equal(records().length, logged, 'progress records after stop()');
    } finally {
      clearInterval(pump);
      watch.stop();
    }
    const [first, second] = records();
    assert.equal(first!['msg'], 'transfer progress');
    assert.equal(first!['command'], 'RETR big.iso');
    assert.equal(first!['direction'], 'download');
    assert.ok(Number(second!['bytesToClient']) > Number(first!['bytesToClient']), 'the bytes did not grow');
    assert.ok(Number(second!['elapsedMs']) > Number(first!['elapsedMs']));
    // About 2 MB/s are pumped (10 kB per 5 ms); timers on a busy machine are late, never early.
    for (const record of records()) assert.ok(Number(record['bytesPerSecond']) > 200_000, `rate ${String(record['bytesPerSecond'])}`);
  });

  it('with interval 0 logs nothing, and still reports its state', async () => {
    const { log, records } = jsonLog();
    const watch = new TransferWatch({ command: () => null, bytes: () => ({ bytesToServer: 4_000, bytesToClient: 0 }) }, log, 0);
    await sleep(30);
    const status = watch.status();
    watch.stop();
    assert.deepEqual(records(), []);
    assert.equal(status.command, null);
    assert.equal(status.direction, 'upload');
    assert.equal(status.bytesToServer, 4_000);
    assert.ok(status.elapsedMs >= 25, `elapsed ${status.elapsedMs}`);
    // Since the start: 4000 bytes in about 30 ms.
    assert.ok(status.bytesPerSecond > 10_000 && status.bytesPerSecond <= 160_000, `rate ${status.bytesPerSecond}`);
  });
});

describe('progressInterval', () => {
  it('defaults to 10 s', () => assert.equal(progressInterval(undefined), DEFAULT_PROGRESS_INTERVAL_MS));
  it('keeps 0 (never) and clamps what a timer cannot hold', () => {
    assert.equal(progressInterval(0), 0);
    assert.equal(progressInterval(1e12), MAX_TIMER_MS);
  });
  it('refuses a negative interval as a usage error', () => {
    assert.throws(() => progressInterval(-1), (error: unknown) => isFtpfwdError(error) && error.code === 'ERR_FTPFWD_USAGE');
  });
});
