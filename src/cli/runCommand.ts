import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { formatHostPort } from '../net/addresses.js';
import type { ListenerAddress } from '../tunnel.js';

function ftpUrl(listener: ListenerAddress): string {
  return `ftp://${formatHostPort(listener.host, listener.port)}/`;
}

/**
 * FTPFWD_HOST, FTPFWD_PORT and FTPFWD_URL name the first listener; with
 * several, FTPFWD_PORT_1, FTPFWD_PORT_2, ... name each, numbered in -L order.
 */
export function tunnelEnvironment(listeners: readonly ListenerAddress[]): Record<string, string> {
  const env: Record<string, string> = {};
  const first = listeners[0];
  if (first) {
    env['FTPFWD_HOST'] = first.host;
    env['FTPFWD_PORT'] = String(first.port);
    env['FTPFWD_URL'] = ftpUrl(first);
  }
  if (listeners.length > 1) {
    listeners.forEach((listener, index) => {
      env[`FTPFWD_HOST_${index + 1}`] = listener.host;
      env[`FTPFWD_PORT_${index + 1}`] = String(listener.port);
      env[`FTPFWD_URL_${index + 1}`] = ftpUrl(listener);
    });
  }
  return env;
}

/** Replaces {port}, {host}, {url} (first listener) and {port2}, {host2}, {url2}, ... in an argument. */
export function substitutePlaceholders(argument: string, listeners: readonly ListenerAddress[]): string {
  return argument.replace(/\{(port|host|url)(\d*)\}/g, (placeholder: string, name: string, number: string) => {
    const listener = listeners[number === '' ? 0 : Number(number) - 1];
    if (!listener) return placeholder;
    if (name === 'port') return String(listener.port);
    if (name === 'host') return listener.host;
    return ftpUrl(listener);
  });
}

export interface RunningCommand {
  /** The command's exit code, or 128 + N when signal N killed it (as shells report it). */
  readonly exitCode: Promise<number>;
  /** Passes a signal on to the command. */
  signal(signal: NodeJS.Signals): void;
}

/** Starts the command with the tunnel's environment; its stdio is ours. */
export function runCommand(argv: readonly string[], listeners: readonly ListenerAddress[], env: NodeJS.ProcessEnv): RunningCommand {
  const [command, ...args] = argv.map((argument) => substitutePlaceholders(argument, listeners));
  const child = spawn(command!, args, { stdio: 'inherit', env: { ...env, ...tunnelEnvironment(listeners) } });
  const exitCode = new Promise<number>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      process.stderr.write(`ftpfwd: cannot run ${command}: ${error.code ?? error.message}\n`);
      // 127 and 126, as a shell reports a command it cannot find or run.
      resolve(error.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => {
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
  return {
    exitCode,
    signal: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
