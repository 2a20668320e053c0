import { Command, CommanderError, Option } from 'commander';
import { createRequire } from 'node:module';
import { homedir, userInfo } from 'node:os';
import type { LevelWithSilent, Logger } from 'pino';
import { EXIT_CODES, exitCodeFor, FtpfwdError, isFtpfwdError } from '../errors.js';
import { startForwarder, type ActiveMode, type Forwarder, type ForwarderOptions } from '../forwarder.js';
import { createLogger, type LogFormat } from '../log.js';
import { formatHostPort } from '../ssh/sshConnection.js';
import { parseDestination, parseForwardSpec, parseSshOptions, parseSshPort } from './arguments.js';

interface CliOptions {
  L: string[];
  port?: string;
  login?: string;
  identity: string[];
  o: string[];
  activeAddress?: string;
  activeMode: ActiveMode;
  honourPassiveAddress?: boolean;
  verbose: number;
  quiet?: boolean;
  logFormat?: LogFormat;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function version(): string {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
  return pkg.version;
}

const EXIT_CODE_HELP = `
Exit codes:
  0  stopped cleanly (SIGINT/SIGTERM)
  1  unexpected internal error
  2  bad command line
  3  bad configuration (e.g. unreadable key or known_hosts file)
  4  SSH host name could not be resolved
  5  SSH connection refused, timed out or lost
  6  SSH host key unknown, changed or revoked
  7  SSH authentication failed
  8  the SSH server refused a forward
  9  a local listener could not be opened

Examples:
  ftpfwd -L 2121:ftp.internal:21 deploy@bastion
  curl ftp://user:pass@127.0.0.1:2121/file.txt -o file.txt
  ftpfwd -L 0:localhost:21 -o StrictHostKeyChecking=accept-new bastion`;

function buildProgram(): Command {
  return new Command()
    .name('ftpfwd')
    .description('Carry FTP, control and data connections in passive and active mode, through one SSH connection.')
    .usage('[options] [user@]sshhost')
    .argument('<destination>', 'SSH server, as [user@]host or ssh://[user@]host[:port]')
    .option('-L <spec>', 'local FTP listener [bind_address:]port:ftp_host:ftp_port (repeatable; ftp_host is resolved by the SSH server; port 0 picks a free one)', collect, [])
    .option('-p, --port <port>', 'SSH port (default 22)')
    .option('-l, --login <user>', 'SSH user name')
    .option('-i, --identity <file>', 'private key file (repeatable); ssh-agent (SSH_AUTH_SOCK) is tried as well', collect, [])
    .option('-o <option>', 'ssh_config option Key=Value: StrictHostKeyChecking, UserKnownHostsFile, IdentityFile, User, Port, ConnectTimeout, ServerAliveInterval, ServerAliveCountMax, BatchMode (repeatable)', collect, [])
    .option('--active-address <addr>', "address on the SSH server's side that the FTP server connects to in active mode")
    .addOption(new Option('--active-mode <mode>', 'how PORT/EPRT are carried').choices(['auto', 'forward', 'convert']).default('auto'))
    .option('--honour-passive-address', "connect data channels to the address in the server's 227 reply instead of the FTP host")
    .option('-v, --verbose', 'more logging (-v debug, -vv trace)', (_value: string, previous: number) => previous + 1, 0)
    .option('-q, --quiet', 'log only errors')
    .addOption(new Option('--log-format <format>', 'log format (default: pretty on a terminal, json otherwise)').choices(['pretty', 'json']))
    .version(version(), '-V, --version')
    .addHelpText('after', EXIT_CODE_HELP)
    .exitOverride()
    .configureOutput({
      writeErr: (text) => process.stderr.write(text),
      // Like every other failure: one line on stderr, starting with "ftpfwd:".
      outputError: (text, write) => write(`ftpfwd: ${oneLine(text.replace(/^error: /, ''))} (run ftpfwd --help for usage)\n`),
    });
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}

function logLevel(options: CliOptions): LevelWithSilent {
  if (options.quiet) return 'error';
  if (options.verbose >= 2) return 'trace';
  if (options.verbose === 1) return 'debug';
  return 'info';
}

function seconds(value: number | undefined): number | undefined {
  return value === undefined ? undefined : value * 1000;
}

/** Turns the parsed command line into library options: the only place that reads the environment. */
export function toForwarderOptions(destinationText: string, options: CliOptions, logger: Logger): ForwarderOptions {
  const destination = parseDestination(destinationText);
  const overrides = parseSshOptions(options.o);
  const forwards = options.L.map(parseForwardSpec);
  if (forwards.length === 0) throw new FtpfwdError('ERR_FTPFWD_USAGE', 'no forward given: use -L [bind_address:]port:ftp_host:ftp_port');
  const home = homedir();
  const expandHome = (path: string): string => (path === '~' || path.startsWith('~/') ? home + path.slice(1) : path);
  const port = options.port !== undefined ? parseSshPort(options.port) : (destination.port ?? overrides.port);
  const identityFiles = [...options.identity, ...(overrides.identityFiles ?? [])].map(expandHome);
  return {
    ssh: {
      host: destination.host,
      port: port ?? 22,
      username: options.login ?? destination.user ?? overrides.user ?? userInfo().username,
      identityFiles,
      useDefaultIdentities: true,
      agentSocket: process.env['SSH_AUTH_SOCK'] || undefined,
      knownHostsFiles: overrides.knownHostsFiles?.map(expandHome),
      strictHostKeyChecking: overrides.strictHostKeyChecking,
      connectTimeoutMs: seconds(overrides.connectTimeoutSeconds),
      keepaliveIntervalMs: seconds(overrides.serverAliveIntervalSeconds),
      keepaliveCountMax: overrides.serverAliveCountMax,
    },
    forwards,
    activeMode: options.activeMode,
    activeAddress: options.activeAddress,
    honourPassiveAddress: options.honourPassiveAddress ?? false,
    logger,
    homeDir: home,
  };
}

function describeError(error: unknown): string {
  if (isFtpfwdError(error)) return error.message;
  return error instanceof Error ? `internal error: ${error.message}` : `internal error: ${String(error)}`;
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
  const logger = createLogger({ level: logLevel(options), format: options.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json') });

  let forwarder: Forwarder;
  try {
    forwarder = await startForwarder(toForwarderOptions(program.args[0]!, options, logger));
  } catch (error) {
    process.stderr.write(`ftpfwd: ${describeError(error)}\n`);
    if (!isFtpfwdError(error)) logger.debug({ err: error }, 'startup failed');
    return exitCodeFor(error);
  }

  // Before the listening lines: whoever waits for them may signal at once.
  const stop = (): void => void forwarder.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  for (const listener of forwarder.listeners) {
    const { forward } = listener;
    process.stdout.write(
      `ftpfwd: listening on ${formatHostPort(listener.host, listener.port)} -> ${formatHostPort(forward.ftpHost, forward.ftpPort)} via ${forwarder.sshTarget}\n`,
    );
  }
  const outcome = await forwarder.closed;
  process.removeListener('SIGINT', stop);
  process.removeListener('SIGTERM', stop);
  if (outcome.error) {
    process.stderr.write(`ftpfwd: ${describeError(outcome.error)}\n`);
    return exitCodeFor(outcome.error);
  }
  return EXIT_CODES.ok;
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
