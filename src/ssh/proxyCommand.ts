/**
 * ProxyCommand as OpenSSH runs it (sshconnect.c ssh_proxy_connect()): the
 * command through the user's shell as `exec <command>`, its stdin and stdout
 * the SSH transport, its stderr passed on (here: to the log, at warn level),
 * and the process hung up on (SIGHUP) when the connection ends.
 *
 * A child process has four things that can fail on their own (spawn, stdin,
 * stdout, the exit); each has a listener for its whole life, and every
 * failure ends up as one destroy() of the transport, with the command's exit
 * status and the last line it wrote to stderr, for the handshake to report.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { Duplex } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';

export interface ProxyCommandOptions {
  /** The command with its `%` tokens already expanded (see ResolvedSshConfig.proxyCommand). */
  command: string;
  /** The user's shell (OpenSSH: $SHELL); default /bin/sh. */
  shell?: string;
  /** The command's environment; default this process's. */
  env?: NodeJS.ProcessEnv;
}

/** A line of stderr longer than this is cut for the log. */
const MAX_STDERR_LINE = 1_000;
/** After stdout ends, how long to wait for the exit status before ending the stream anyway. */
const EXIT_WAIT_MS = 2_000;
/** After SIGHUP, how long the command may take to exit before SIGKILL. */
const KILL_GRACE_MS = 2_000;

type ProxyChild = ChildProcessByStdio<Writable, Readable, Readable>;

/** Every command still running, so that none outlives ftpfwd however it exits. */
const running = new Set<ProxyChild>();
let exitHookInstalled = false;

function hangUpOnExit(child: ProxyChild): void {
  running.add(child);
  child.once('close', () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const each of running) each.kill('SIGHUP');
  });
}

/** The SSH transport through a ProxyCommand: the command's stdout to read, its stdin to write. */
export class ProxyCommandTransport extends Duplex {
  private readonly child: ProxyChild;
  private exitStatus: string | null = null;
  private spawnError: Error | null = null;
  private lastStderrLine = '';
  private stderrRest = '';
  private childClosed = false;

  private constructor(
    private readonly options: ProxyCommandOptions,
    private readonly log: Logger,
  ) {
    super({ allowHalfOpen: false });
    this.child = spawn(options.shell ?? '/bin/sh', ['-c', `exec ${options.command}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    hangUpOnExit(this.child);
    const { child } = this;
    log.debug({ pid: child.pid, command: options.command }, 'ProxyCommand started');
    child.on('error', (error) => {
      this.spawnError = error;
      this.fail(error);
    });
    child.stdin.on('error', (error) => this.fail(error));
    child.stdout.on('error', (error) => this.fail(error));
    child.stderr.on('error', () => undefined);
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout.pause();
    });
    // The stream ends once the exit status is known, so that whoever sees
    // the end can say how the command ended.
    child.stdout.once('end', () => this.afterExit(() => this.push(null)));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => this.onStderr(text));
    child.once('exit', (code, signal) => {
      this.exitStatus = signal === null ? `exited with status ${String(code)}` : `was killed by ${signal}`;
    });
    child.once('close', () => {
      this.childClosed = true;
      this.flushStderr();
      this.log.debug({ pid: child.pid, status: this.exitStatus }, 'ProxyCommand ended');
    });
  }

  static start(options: ProxyCommandOptions, log: Logger): ProxyCommandTransport {
    return new ProxyCommandTransport(options, log);
  }

  /**
   * Why the command is gone, once it is: how it exited and the last line it
   * wrote to stderr; null while it runs.
   */
  failure(): string | null {
    if (this.spawnError !== null) return `ProxyCommand could not be started: ${errorMessage(this.spawnError)}`;
    if (this.exitStatus === null) return null;
    const said = this.lastStderrLine === '' ? 'nothing on stderr' : this.lastStderrLine;
    return `ProxyCommand ${this.exitStatus} (${said})`;
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  /**
   * A write to a command that has gone (EPIPE) is not this stream's error
   * yet: it ends, through fail(), once the exit status explains why.
   */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const { stdin } = this.child;
    if (stdin.destroyed || !stdin.writable) {
      this.fail(new Error('the ProxyCommand no longer reads its input'));
      callback();
      return;
    }
    stdin.write(chunk, (error) => {
      if (error) this.fail(error);
      callback();
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.child.stdin.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const { child } = this;
    if (!this.childClosed && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGHUP');
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      timer.unref();
      child.once('exit', () => clearTimeout(timer));
    }
    child.stdin.destroy();
    child.stdout.destroy();
    callback(error);
  }

  /** A broken pipe or spawn failure: ends the stream, after the exit status is in (bounded). */
  private fail(error: Error): void {
    if (this.destroyed) return;
    this.afterExit(() => this.destroy(new Error(this.failure() ?? errorMessage(error))));
  }

  private afterExit(action: () => void): void {
    if (this.childClosed || this.spawnError !== null) {
      action();
      return;
    }
    const timer = setTimeout(action, EXIT_WAIT_MS);
    timer.unref();
    this.child.once('close', () => {
      clearTimeout(timer);
      action();
    });
  }

  private onStderr(text: string): void {
    const lines = (this.stderrRest + text).split(/\r?\n/);
    this.stderrRest = lines.pop()!.slice(-MAX_STDERR_LINE);
    for (const line of lines) this.stderrLine(line);
  }

  private flushStderr(): void {
    if (this.stderrRest !== '') this.stderrLine(this.stderrRest);
    this.stderrRest = '';
  }

  private stderrLine(raw: string): void {
    // The command's own words, made safe for a terminal and a log line.
    const line = raw.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').slice(0, MAX_STDERR_LINE).trim();
    if (line === '') return;
    this.lastStderrLine = line;
    this.log.warn({ proxyCommand: this.options.command }, `ProxyCommand: ${line}`);
  }
}
