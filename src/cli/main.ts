import { CommanderError } from 'commander';
import { createWriteStream } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import type { LevelWithSilent, Logger } from 'pino';
import { EXIT_CODES, exitCodeFor, FtpfwdError, isFtpfwdError } from '../errors.js';
import { createLogger } from '../log.js';
import { loadSshConfig } from '../ssh/sshConfig.js';
import { formatHostPort } from '../ssh/sshConnection.js';
import { startTunnel, type Tunnel, type TunnelOptions } from '../tunnel.js';
import { parseDestination, parseListenerSpec, parseSshPort } from './arguments.js';
import { BACKGROUND_CHILD_ENV, goToBackground, reportToForeground } from './background.js';
import { toBridgeSettings } from './bridgeOptions.js';
import { buildProgram, type CliOptions } from './program.js';
import { ReadinessFiles } from './readiness.js';
import { runCommand, type RunningCommand } from './runCommand.js';
import { readSecret } from './secrets.js';
import { resolveSshTarget, type Environment } from './sshTarget.js';
import { createTerminalPrompter } from './terminalPrompt.js';

const DEFAULT_SHUTDOWN_TIMEOUT_S = 30;

function logLevel(options: CliOptions): LevelWithSilent {
  if (options.quiet) return 'error';
  if (options.verbose >= 2) return 'trace';
  if (options.verbose === 1) return 'debug';
  return 'info';
}

function wholeNumber(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text)) throw new FtpfwdError('ERR_FTPFWD_USAGE', `${what} takes a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

function createCliLogger(options: CliOptions): Logger {
  const level = logLevel(options);
  if (options.logFile) {
    const destination = createWriteStream(options.logFile, { flags: 'a' });
    return createLogger({ level, format: options.logFormat ?? 'json', destination });
  }
  return createLogger({ level, format: options.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json') });
}

/** Turns the command line (and ssh_config) into library options: the only place that reads the environment. */
export async function toForwarderOptions(destinationText: string, options: CliOptions, logger: Logger, environment: Environment): Promise<TunnelOptions> {
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
    if (option.key.toLowerCase() === 'proxycommand') {
      throw new FtpfwdError('ERR_FTPFWD_CONFIG', `ProxyCommand (${option.file}${option.line ? `:${option.line}` : ''}) is not supported; use ProxyJump (-J) instead`);
    }
    if (option.securityRelevant) {
      logger.warn({ option: option.key, value: option.value, file: option.file, line: option.line }, `ssh_config option ${option.key} is not supported and is ignored`);
    }
  }
  const timeouts = {
    ...(options.idleTimeout === undefined ? {} : { idleMs: wholeNumber(options.idleTimeout, '--idle-timeout')! * 1000 }),
    ...(options.acceptTimeout === undefined ? {} : { acceptMs: Math.max(1, wholeNumber(options.acceptTimeout, '--accept-timeout')!) * 1000 }),
  };
  const maxSessions = wholeNumber(options.maxSessions, '--max-sessions');
  if (maxSessions === 0) throw new FtpfwdError('ERR_FTPFWD_USAGE', '--max-sessions must be at least 1');
  const bridge = await toBridgeSettings(options, listeners, target.ssh.username, env);
  return {
    ssh: target.ssh,
    listeners,
    ...(bridge === undefined ? {} : { bridge }),
    activeMode: options.activeMode,
    activeAddress: options.activeAddress,
    honourPassiveAddress: options.honourPassiveAddress ?? false,
    logger,
    homeDir,
    timeouts,
    ...(maxSessions === undefined ? {} : { maxSessions }),
    reconnect: { enabled: !options.exitOnDisconnect },
    // BatchMode and a background process have nobody to ask.
    ...(target.batchMode || options.background || env[BACKGROUND_CHILD_ENV] === '1' ? {} : { prompt: createTerminalPrompter() }),
  };
}

function describeError(error: unknown): string {
  if (isFtpfwdError(error)) return error.message;
  return error instanceof Error ? `internal error: ${error.message}` : `internal error: ${String(error)}`;
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
  if (inBackground) options.background = false;
  else if (options.background) return goToBackground(argv);

  const logger = createCliLogger(options);
  const environment: Environment = { localUser: userInfo().username, homeDir: homedir(), env: process.env };
  const readiness = new ReadinessFiles(options.readyFile, options.pidFile);

  let forwarder: Tunnel;
  try {
    forwarder = await startTunnel(await toForwarderOptions(destination, options, logger, environment));
  } catch (error) {
    process.stderr.write(`ftpfwd: ${describeError(error)}\n`);
    if (!isFtpfwdError(error)) logger.debug({ err: error }, 'startup failed');
    const exitCode = exitCodeFor(error);
    if (inBackground) reportToForeground({ kind: 'failed', exitCode });
    return exitCode;
  }

  const graceMs = (wholeNumber(options.shutdownTimeout, '--shutdown-timeout') ?? DEFAULT_SHUTDOWN_TIMEOUT_S) * 1000;
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

export function main(argv: string[]): void {
  run(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`ftpfwd: ${describeError(error)}\n`);
      process.exitCode = EXIT_CODES.failure;
    },
  );
}
