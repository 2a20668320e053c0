import { Command, Option } from 'commander';
import { createRequire } from 'node:module';
import type { ActiveMode } from '../forwarder.js';
import type { LogFormat } from '../log.js';
import { addBridgeOptions, type BridgeCliOptions } from './bridgeOptions.js';
import { addTlsOptions, type TlsCliOptions } from './tlsOptions.js';

export interface CliOptions extends BridgeCliOptions, TlsCliOptions {
  L: string[];
  port?: string;
  login?: string;
  identity: string[];
  o: string[];
  F?: string;
  J?: string;
  passwordFile?: string;
  passwordEnv?: string;
  passphraseFile?: string;
  passphraseEnv?: string;
  activeAddress?: string;
  activeMode: ActiveMode;
  honourPassiveAddress?: boolean;
  sshdNodelay?: boolean;
  exitOnDisconnect?: boolean;
  maxSessions?: string;
  idleTimeout?: string;
  acceptTimeout?: string;
  shutdownTimeout?: string;
  printPort?: boolean;
  readyFile?: string;
  pidFile?: string;
  background?: boolean;
  verbose: number;
  quiet?: boolean;
  logFormat?: LogFormat;
  logFile?: string;
  progressInterval?: string;
  check?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function packageVersion(): string {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
  return pkg.version;
}

export const EXIT_CODE_HELP = `
Exit codes:
  0  stopped cleanly (SIGINT/SIGTERM/SIGHUP)
  1  unexpected internal error
  2  bad command line
  3  bad configuration (ssh_config, key or known_hosts file)
  4  SSH host name could not be resolved
  5  SSH connection refused, timed out or lost (lost: with --exit-on-disconnect)
  6  SSH host key unknown, changed or revoked
  7  SSH authentication failed
  8  the SSH server refused a forward or the SFTP subsystem
  9  a local listener could not be opened
  10 --check: the FTP server did not answer as FTP (no greeting, an unusable passive reply)
  With -- command: the command's own exit code (128+N if killed by signal N).

Signals:
  SIGINT, SIGTERM, SIGHUP  stop, letting transfers finish for up to --shutdown-timeout; a second one stops at once
                           (with -- command: passed on to the command)
  SIGUSR1                  log the status: the SSH connection (up since, reconnects, keepalive round trip),
                           the sessions open and each transfer under way with its bytes and rate

Examples:
  ftpfwd -L 2121:ftp.internal:21 deploy@bastion
  curl -O ftp://user:pass@127.0.0.1:2121/file.txt

  # run a command inside the tunnel; ftpfwd exits with its exit code
  ftpfwd -L 0:ftp.internal:21 bastion -- lftp -e 'mirror /out ./in; quit' ftp://user@127.0.0.1:{port}

  # in the background, for scripts: returns once listening
  ftpfwd -f --pid-file /run/ftpfwd.pid -L 2121:ftp.internal:21 bastion

  # through a jump host, FTP server on the bastion itself
  ftpfwd -J jump.example.com -L 2121:localhost:21 deploy@bastion

  # FTP served from the SSH server's SFTP subsystem (no FTP server needed)
  ftpfwd -L 2121:sftp: --ftp-password-file /etc/ftpfwd/ftp-password --sftp-root /srv/exports deploy@sftp.example.com

  # is the setup right? the same options, plus --check
  ftpfwd --check -L 2121:ftp.internal:21 deploy@bastion`;

export function buildProgram(): Command {
  const program = new Command()
    .name('ftpfwd')
    .description('Carry FTP, control and data connections in passive and active mode, through one SSH connection.')
    .usage('[options] [user@]sshhost [-- command [args...]]')
    .argument('<destination>', 'SSH server, as [user@]host, ssh://[user@]host[:port], or a Host alias from ssh_config')
    .argument('[command...]', 'run this command inside the tunnel (after --); {port}, {host} and {url} are replaced')
    .option('-L <spec>', 'local FTP listener [bind_address:]port:ftp_host:ftp_port (repeatable; ftp_host is resolved by the SSH server; port 0 picks a free one), or [bind_address:]port:sftp: for FTP served from SFTP', collect, [])
    .option('-p, --port <port>', 'SSH port')
    .option('-l, --login <user>', 'SSH user name')
    .option('-i, --identity <file>', 'private key file (repeatable); ssh-agent (SSH_AUTH_SOCK) is tried first', collect, [])
    .option('-o <option>', 'ssh_config option as Key=Value (repeatable), e.g. StrictHostKeyChecking=accept-new', collect, [])
    .option('-F <file>', 'ssh_config file instead of ~/.ssh/config ("none" for none)')
    .option('-J <jumps>', 'jump hosts [user@]host[:port][,...], like ssh -J (overrides ProxyJump)')
    .option('--password-file <file>', 'read the SSH password from this file (first line)')
    .option('--password-env <name>', 'read the SSH password from this environment variable')
    .option('--passphrase-file <file>', 'read the private key passphrase from this file (first line)')
    .option('--passphrase-env <name>', 'read the private key passphrase from this environment variable')
    .option('--active-address <addr>', "address on the SSH server's side that the FTP server connects to in active mode")
    .addOption(new Option('--active-mode <mode>', 'how PORT/EPRT are carried').choices(['auto', 'forward', 'convert']).default('auto'))
    .option('--honour-passive-address', "connect data channels to the address in the server's 227 reply instead of the FTP host")
    .option('--sshd-nodelay', "start and close the SSH server's sftp subsystem once per connection, so that sshd sends small packets at once (faster small files on long links; under a forced command, that command runs instead)")
    .option('--exit-on-disconnect', 'exit (code 5) when the SSH connection drops instead of reconnecting')
    .option('--max-sessions <n>', 'FTP sessions at once; more get 421 (default 64)')
    .option('--idle-timeout <seconds>', 'close control sessions idle this long, 0 for never (default 1800)')
    .option('--accept-timeout <seconds>', 'how long a data listener waits for its connection (default 60)')
    .option('--shutdown-timeout <seconds>', 'on SIGTERM, let transfers finish for up to this long (default 30)')
    .option('--print-port', 'print only the listening port numbers on stdout, one per line, once ready')
    .option('--ready-file <path>', 'write "host port" per listener to this file (atomically) once ready')
    .option('--pid-file <path>', 'write the process ID to this file once ready')
    .option('-f, --background', 'go to the background once listening (exit 0), or exit non-zero if setup fails')
    .option('-v, --verbose', 'more logging (-v debug, -vv trace)', (_value: string, previous: number) => previous + 1, 0)
    .option('-q, --quiet', 'log only errors')
    .addOption(new Option('--log-format <format>', 'log format (default: pretty on a terminal, json otherwise)').choices(['pretty', 'json']))
    .option('--log-file <path>', 'append logs to this file instead of stderr')
    .option('--progress-interval <seconds>', 'log the progress of a transfer still running after this long, and again after each further interval, 0 for never (default 10)')
    .option('--check', 'check the setup step by step and exit: SSH, then per -L the control channel, FTP greeting and a passive data channel, then the active-mode remote forward; opens no listener')
    .version(packageVersion(), '-V, --version')
    .addHelpText('after', EXIT_CODE_HELP)
    .exitOverride()
    .configureOutput({
      writeErr: (text) => process.stderr.write(text),
      // Like every other failure: one line on stderr, starting with "ftpfwd:".
      outputError: (text, write) => write(`ftpfwd: ${oneLine(text.replace(/^error: /, ''))} (run ftpfwd --help for usage)\n`),
    });
  return addTlsOptions(addBridgeOptions(program));
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}
