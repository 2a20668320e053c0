import { CommanderError } from 'commander';
import { createWriteStream, openSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { LevelWithSilent, Logger } from 'pino';
import { errorCode, errorMessage, EXIT_CODES, exitCodeFor, FtpfwdError, isFtpfwdError } from '../errors.js';
import { createLogger } from '../log.js';
import { formatHostPort } from '../net/addresses.js';
import { loadSshConfig } from '../ssh/sshConfig.js';
import { startTunnel, type Tunnel, type TunnelOptions } from '../tunnel.js';
import { parseDestination, parseListenerSpec, parseSshPort } from './arguments.js';
import { BACKGROUND_CHILD_ENV, goToBackground, reportToForeground } from './background.js';
import { toBridgeSettings } from './bridgeOptions.js';
import { toTlsSettings } from './tlsOptions.js';
import { runCheck } from './check.js';
import { buildProgram, type CliOptions } from './program.js';
import { ReadinessFiles } from './readiness.js';
import { runCommand, type RunningCommand } from './runCommand.js';
import { logStatus } from './statusReport.js';
import { readSecret } from './secrets.js';
import { resolveSshTarget, type Environment } from './sshTarget.js';
import { createTerminalPrompter } from './terminalPrompt.js';
import { MAX_TIMER_SECONDS } from '../timers.js';

const DEFAULT_SHUTDOWN_TIMEOUT_S = 30;

function logLevel(options: CliOptions): LevelWithSilent {
  if (options.quiet) return 'error';
  if (options.verbose >= 2) return 'trace';
  if (options.verbose === 1) return 'debug';
  // A check's own lines say what happened; the log adds only what goes wrong.
  return options.check ? 'warn' : 'info';
}

function wholeNumber(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text)) throw new FtpfwdError('ERR_FTPFWD_USAGE', `${what} takes a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

/** Whole seconds; more than a timer can hold (about 24.8 days) means "as long as possible". */
function seconds(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new FtpfwdError('ERR_FTPFWD_USAGE', `${what} takes a whole number of seconds, not ${JSON.stringify(text)}`);
  return Math.min(Number(text), MAX_TIMER_SECONDS);
}

/** The numeric options, checked before anything starts, so that a typo never leaves a half-started forwarder. */
interface RunSettings {
  idleMs?: number;
  acceptMs?: number;
  graceMs: number;
  maxSessions?: number;
  progressIntervalMs?: number;
}

export function parseRunSettings(options: CliOptions): RunSettings {
  const idle = seconds(options.idleTimeout, '--idle-timeout');
  const accept = seconds(options.acceptTimeout, '--accept-timeout');
  const maxSessions = wholeNumber(options.maxSessions, '--max-sessions');
  if (maxSessions === 0) throw new FtpfwdError('ERR_FTPFWD_USAGE', '--max-sessions must be at least 1');
  const progress = seconds(options.progressInterval, '--progress-interval');
  return {
    ...(progress === undefined ? {} : { progressIntervalMs: progress * 1000 }),
    ...(idle === undefined ? {} : { idleMs: idle * 1000 }),
    ...(accept === undefined ? {} : { acceptMs: Math.max(1, accept) * 1000 }),
    graceMs: (seconds(options.shutdownTimeout, '--shutdown-timeout') ?? DEFAULT_SHUTDOWN_TIMEOUT_S) * 1000,
    ...(maxSessions === undefined ? {} : { maxSessions }),
  };
}

/** Writes what the log file still holds; set once a log file is open. */
const logFileFlush: { flush: (() => Promise<void>) | null } = { flush: null };

/** How long the log file may take to be written out at exit. */
const LOG_FLUSH_MS = 1_000;

function createCliLogger(options: CliOptions): Logger {
  const level = logLevel(options);
  if (options.logFile) {
    const path = options.logFile;
    let fd: number;
    try {
      // Opened now, so that a path that cannot be written is a start-up error, not a crash later.
      fd = openSync(path, 'a', 0o600);
    } catch (error) {
      throw new FtpfwdError('ERR_FTPFWD_CONFIG', `cannot open the log file ${path}: ${errorCode(error) ?? errorMessage(error)}`, { cause: error });
    }
    const destination = createWriteStream('', { fd });
    let reported = false;
    destination.on('error', (error) => {
      // A full disk must not stop the forwarder: say so once, keep forwarding.
      if (!reported) process.stderr.write(`ftpfwd: cannot write to the log file ${path}: ${errorCode(error) ?? error.message}\n`);
      reported = true;
    });
    logFileFlush.flush = () => new Promise<void>((resolve) => destination.end(() => resolve()));
    return createLogger({ level, format: options.logFormat ?? 'json', destination });
  }
  // https://no-color.org: set and not empty.
  const colors = process.stderr.isTTY && !process.env['NO_COLOR'];
  return createLogger({ level, format: options.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json'), colors });
}

/** Turns the command line (and ssh_config) into library options: the only place that reads the environment. */
export async function toForwarderOptions(destinationText: string, options: CliOptions, logger: Logger, environment: Environment, settings = parseRunSettings(options)): Promise<TunnelOptions> {
  const listeners = options.L.map(parseListenerSpec);
  if (listeners.length === 0) throw new FtpfwdError('ERR_FTPFWD_USAGE', 'no forward given: use -L [bind_address:]port:ftp_host:ftp_port (or [bind_address:]port:sftp: for FTP served from SFTP)');
  const { homeDir, env } = environment;
  const expandHome = (path: string): string => (path === '~' || path.startsWith('~/') ? homeDir + path.slice(1) : path);
  const config = await loadSshConfig({ homeDir, ...(options.F === undefined ? {} : { file: expandHome(options.F) }) });
  const target = resolveSshTarget(
    config,
    {
      destination: parseDestination(destinationText),
      ...(options.login === undefined ? {} : { login: options.login }),
      ...(options.port === undefined ? {} : { port: parseSshPort(options.port) }),
      identityFiles: options.identity.map(expandHome),
      options: options.o,
      ...(options.J === undefined ? {} : { jump: options.J }),
      password: await readSecret('password', options.passwordFile, options.passwordEnv, env),
      passphrase: await readSecret('passphrase', options.passphraseFile, options.passphraseEnv, env),
    },
    environment,
  );
  for (const option of target.unsupported) {
    if (option.securityRelevant) {
      logger.warn({ option: option.key, value: option.value, file: option.file, line: option.line }, `ssh_config option ${option.key} is not supported and is ignored`);
    }
  }
  const { maxSessions, progressIntervalMs } = settings;
  const timeouts = {
    ...(settings.idleMs === undefined ? {} : { idleMs: settings.idleMs }),
    ...(settings.acceptMs === undefined ? {} : { acceptMs: settings.acceptMs }),
  };
  const bridge = await toBridgeSettings(options, listeners, target.ssh.username, env);
  const tls = await toTlsSettings(options, listeners);
  return {
    ...tls,
    ssh: target.ssh,
    listeners,
    ...(bridge === undefined ? {} : { bridge }),
    activeMode: options.activeMode,
    activeAddress: options.activeAddress,
    honourPassiveAddress: options.honourPassiveAddress ?? false,
    sshdNoDelay: options.sshdNodelay ?? false,
    logger,
    homeDir,
    timeouts,
    ...(maxSessions === undefined ? {} : { maxSessions }),
    ...(progressIntervalMs === undefined ? {} : { progressIntervalMs }),
    reconnect: { enabled: !options.exitOnDisconnect },
    ...(collectGarbage === undefined ? {} : { collectGarbage }),
    // BatchMode and a background process have nobody to ask.
    ...(target.batchMode || options.background || env[BACKGROUND_CHILD_ENV] === '1' ? {} : { prompt: createTerminalPrompter() }),
  };
}

/**
 * A minor garbage collection for the relays' pacing (ForwarderOptions.
 * collectGarbage). The command line owns its process, so it may enable
 * V8's gc function; a library user decides for theirs.
 */
function minorCollector(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? () => (gc as (options: { type: 'minor' }) => void)({ type: 'minor' }) : undefined;
  } catch {
    return undefined;
  }
}

const collectGarbage = minorCollector();

function describeError(error: unknown): string {
  return isFtpfwdError(error) ? error.message : `internal error: ${errorMessage(error)}`;
}

/** The command's environment: ours, without the variables that held our secrets. */
export function commandEnvironment(env: NodeJS.ProcessEnv, options: Pick<CliOptions, 'passwordEnv' | 'passphraseEnv' | 'ftpPasswordEnv'>): NodeJS.ProcessEnv {
  const result = { ...env };
  for (const name of [options.passwordEnv, options.passphraseEnv, options.ftpPasswordEnv, BACKGROUND_CHILD_ENV]) if (name !== undefined) delete result[name];
  return result;
}

function listeningLines(forwarder: Tunnel): string {
  return forwarder.listeners.map(({ host, port, target }) => `ftpfwd: listening on ${formatHostPort(host, port)} -> ${target} via ${forwarder.sshTarget}\n`).join('');
}

/** Runs the command line; resolves with the process exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    program.parse(argv);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
    throw error;
  }
  const options = program.opts<CliOptions>();
  const [destination, command] = program.processedArgs as [string, string[]];
  // The background copy runs with the same argv, -f included however it
  // was spelt (-f, -fv, -vf, --background): the marker, not the argv,
  // decides that it never forks again.
  const inBackground = process.env[BACKGROUND_CHILD_ENV] === '1' && process.send !== undefined;
  if (options.background && command.length > 0) {
    process.stderr.write('ftpfwd: -f and a command to run cannot be combined\n');
    return EXIT_CODES.usage;
  }
  const failed = (error: unknown, logger?: Logger): number => {
    process.stderr.write(`ftpfwd: ${describeError(error)}\n`);
    if (!isFtpfwdError(error)) logger?.debug({ err: error }, 'startup failed');
    const exitCode = exitCodeFor(error);
    if (inBackground) reportToForeground({ kind: 'failed', exitCode });
    return exitCode;
  };
  let settings: RunSettings;
  let logger: Logger;
  try {
    settings = parseRunSettings(options);
    logger = createCliLogger(options);
  } catch (error) {
    return failed(error);
  }
  onStatusSignal.report = () => logger.info('status: starting, not listening yet');
  const environment: Environment = { localUser: userInfo().username, homeDir: homedir(), env: process.env, commandEnv: commandEnvironment(process.env, options) };
  if (options.check) {
    try {
      // The SSH side and every FTP forward are checked; a bridge listener needs only the SSH connection.
      const { listeners, bridge: _bridge, ...shared } = await toForwarderOptions(destination, options, logger, environment, settings);
      const forwards = listeners.flatMap((spec) => (spec.kind === 'ftp' ? [spec.forward] : []));
      return await runCheck({ ...shared, forwards }, process.stdout);
    } catch (error) {
      return failed(error, logger);
    }
  }
  if (inBackground) options.background = false;
  else if (options.background) return goToBackground(argv);
  const readiness = new ReadinessFiles(options.readyFile, options.pidFile);

  let forwarder: Tunnel;
  try {
    forwarder = await startTunnel(await toForwarderOptions(destination, options, logger, environment, settings));
  } catch (error) {
    return failed(error, logger);
  }
  lastResort.forwarder = forwarder;
  lastResort.logger = logger;
  lastResort.readiness = readiness;
  onStatusSignal.report = () => logStatus(logger, forwarder.status());

  const { graceMs } = settings;
  let running: RunningCommand | null = null;
  // Signals are handled before anything announces readiness: whoever
  // waits for it may signal at once.
  let signalled = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signalled += 1;
    if (running) return running.signal(signal);
    // A second signal means "now": no more waiting for transfers.
    void forwarder.close({ graceMs: signalled > 1 ? 0 : graceMs });
    if (signalled > 1) logger.warn('second signal: closing without waiting for transfers');
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);

  try {
    await readiness.markReady(forwarder.listeners);
  } catch (error) {
    process.stderr.write(`ftpfwd: cannot write ready or pid file: ${describeError(error)}\n`);
    await forwarder.close();
    return EXIT_CODES.config;
  }
  // The command starts once the ready and pid files exist, so it may use
  // them; a signal that came first means it never starts.
  if (command.length > 0 && signalled === 0) running = runCommand(command, forwarder.listeners, commandEnvironment(process.env, options));
  const ports = forwarder.listeners.map((listener) => `${listener.port}\n`).join('');
  // stdout belongs to the command when there is one, and to --print-port when asked.
  const announcement = options.printPort ? ports : listeningLines(forwarder);
  if (inBackground) reportToForeground({ kind: 'ready', stdout: announcement });
  else if (running) {
    if (!options.quiet) process.stderr.write(listeningLines(forwarder));
  }
  else process.stdout.write(announcement);

  let exitCode: number;
  if (running) {
    const outcome = await Promise.race([running.exitCode.then((code) => ({ kind: 'command' as const, code })), forwarder.closed.then((closed) => ({ kind: 'tunnel' as const, closed }))]);
    if (outcome.kind === 'command') {
      await forwarder.close({ graceMs: 0 });
      exitCode = outcome.code;
    } else {
      // The tunnel is gone for good: the command cannot succeed through it.
      process.stderr.write(`ftpfwd: ${describeError(outcome.closed.error ?? new Error('tunnel closed'))}\n`);
      running.signal('SIGTERM');
      await running.exitCode;
      exitCode = outcome.closed.error ? exitCodeFor(outcome.closed.error) : EXIT_CODES.failure;
    }
  } else {
    const outcome = await forwarder.closed;
    if (outcome.error) process.stderr.write(`ftpfwd: ${describeError(outcome.error)}\n`);
    exitCode = outcome.error ? exitCodeFor(outcome.error) : EXIT_CODES.ok;
  }
  for (const signal of signals) process.removeListener(signal, onSignal);
  await readiness.remove();
  return exitCode;
}

/** What SIGUSR1 logs, once there is a logger; until then it is ignored. */
const onStatusSignal: { report: (() => void) | null } = { report: null };

/** What the last-resort handler can still close when something unforeseen throws. */
const lastResort: { forwarder?: Tunnel; logger?: Logger; readiness?: ReadinessFiles; fired: boolean } = { fired: false };

/** How long the last-resort handler waits for what it closes before it exits. */
const LAST_RESORT_CLOSE_MS = 2_000;

/**
 * The end of every path that nothing else handled: one `ftpfwd:` line
 * (the stack only at debug level), close what can be closed, exit 1.
 */
function onInternalError(error: unknown): void {
  if (lastResort.fired) return;
  lastResort.fired = true;
  process.stderr.write(`ftpfwd: internal error: ${errorMessage(error)}\n`);
  lastResort.logger?.debug({ err: error }, 'internal error');
  const closing = Promise.all([lastResort.forwarder?.close({ graceMs: 0 }), lastResort.readiness?.remove()]);
  const timer = setTimeout(() => process.exit(EXIT_CODES.failure), LAST_RESORT_CLOSE_MS);
  void closing.finally(() => {
    clearTimeout(timer);
    process.exit(EXIT_CODES.failure);
  });
}

/**
 * Process-wide handlers the CLI installs (never the library, whose users
 * own their process): a reader that goes away (`ftpfwd --help | head`)
 * is not an error, and nothing unforeseen ends in a stack trace.
 */
export function installProcessHandlers(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      // EPIPE: whoever read our output has gone; there is nobody to tell.
      if (error.code !== 'EPIPE') lastResort.logger?.debug({ reason: error.message }, 'cannot write to stdout or stderr');
    });
  }
  process.on('uncaughtException', onInternalError);
  process.on('unhandledRejection', onInternalError);
  // Installed at once: until a process has a listener of its own, Node
  // answers SIGUSR1 by starting its inspector on a local port.
  process.on('SIGUSR1', () => onStatusSignal.report?.());
}

export function main(argv: string[]): void {
  installProcessHandlers();
  run(argv).then(
    (code) => {
      // Everything is closed by now, so nothing is lost by ending here; the
      // process is not left to end by itself because Node's clean-up of
      // handles at exit was seen to spin for good after a data socket was
      // reset at shutdown (after `-- command` exited mid-transfer), and a
      // script must never wait on that. stdout and stderr are written
      // synchronously; a log file is written out first.
      const exit = (): never => process.exit(code);
      if (!logFileFlush.flush) exit();
      setTimeout(exit, LOG_FLUSH_MS);
      void logFileFlush.flush!().then(exit, exit);
    },
    (error: unknown) => onInternalError(error),
  );
}
