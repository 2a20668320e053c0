/**
 * The delay line as a process of its own (see delayLine.ts):
 *
 *   node --import tsx test/helpers/delayLineMain.ts --listen 127.0.0.1:0 --target 127.0.0.1:22 --rtt 50
 *
 * Prints "delay line listening on HOST:PORT" once it listens; on SIGTERM or
 * SIGINT it closes and prints one line of stats as JSON.
 */
import { parseArgs } from 'node:util';
import { STATS_PREFIX, startDelayLine } from './delayLine.js';

function hostPort(value: string | undefined, name: string): { host: string; port: number } {
  const match = value === undefined ? null : /^(.+):(\d{1,5})$/.exec(value);
  if (match === null || Number(match[2]) > 65535) throw new Error(`--${name} must be host:port, not ${String(value)}`);
  return { host: match[1]!, port: Number(match[2]) };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string', default: '127.0.0.1:0' },
      target: { type: 'string' },
      rtt: { type: 'string' },
      'max-buffered': { type: 'string' },
    },
    strict: true,
  });
  const listen = hostPort(values.listen, 'listen');
  const target = hostPort(values.target, 'target');
  const rttMs = Number(values.rtt);
  if (values.rtt === undefined || !(rttMs >= 0) || rttMs > 10_000) throw new Error(`--rtt must be milliseconds from 0 to 10000, not ${String(values.rtt)}`);
  const maxBuffered = values['max-buffered'] === undefined ? undefined : Number(values['max-buffered']);
  if (maxBuffered !== undefined && !(Number.isSafeInteger(maxBuffered) && maxBuffered > 0)) throw new Error('--max-buffered must be a positive number of bytes');
  const line = await startDelayLine({
    listenHost: listen.host,
    listenPort: listen.port,
    targetHost: target.host,
    targetPort: target.port,
    rttMs,
    ...(maxBuffered === undefined ? {} : { maxBufferedBytes: maxBuffered }),
  });
  process.stdout.write(`delay line listening on ${line.host}:${line.port}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await line.close();
  process.stdout.write(`${STATS_PREFIX}${JSON.stringify(line.stats())}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`delay line: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
