import { connect } from 'node:net';
import { run } from './processes.js';
import { delay } from './time.js';

const MAX_WAIT_ATTEMPTS = 200;
const FIRST_PAUSE_MS = 20;
const MAX_PAUSE_MS = 250;
const MAX_ATTEMPT_MS = 1_000;

export interface ConnectOptions {
  /** Connect from inside this network namespace. */
  netns?: string;
  timeoutMs?: number;
}

function connectHere(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Node cannot enter a namespace, so there bash's /dev/tcp does the connect. */
async function connectInNetns(host: string, port: number, netns: string, timeoutMs: number): Promise<boolean> {
  const result = await run('bash', ['-c', 'exec 3<>"/dev/tcp/$0/$1"', host, String(port)], { netns, timeoutMs });
  return result.code === 0;
}

/** One TCP connection attempt: true when the handshake completes within the timeout. */
export function canConnect(host: string, port: number, opts: ConnectOptions = {}): Promise<boolean> {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  return opts.netns === undefined
    ? connectHere(host, port, timeoutMs)
    : connectInNetns(host, port, opts.netns, timeoutMs);
}

/** Polls until `host:port` accepts a connection; throws after `timeoutMs`. */
export async function waitForTcp(host: string, port: number, timeoutMs: number, netns?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pause = FIRST_PAUSE_MS;
  for (let attempt = 0; attempt < MAX_WAIT_ATTEMPTS; attempt++) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    if (await canConnect(host, port, { netns, timeoutMs: Math.min(remaining, MAX_ATTEMPT_MS) })) return;
    await delay(Math.max(0, Math.min(pause, deadline - Date.now())));
    pause = Math.min(pause * 2, MAX_PAUSE_MS);
  }
  const where = netns === undefined ? '' : ` in netns ${netns}`;
  throw new Error(`nothing accepted connections on ${host}:${port}${where} within ${timeoutMs} ms`);
}
