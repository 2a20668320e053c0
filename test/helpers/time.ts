import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return sleep(ms);
}

/**
 * Settles like `promise`, or rejects with `message` after `ms`. The timer is
 * cleared on every path so a settled wait never holds the event loop.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (after ${ms} ms)`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
