import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  ANONYMOUS_USER,
  lookupAccount,
  launchFtpServer,
  prepareAnonymousTree,
  type FtpServerInstance,
  type FtpServerOptions,
} from './ftpServer.js';
import { startProcess } from './processes.js';

const SCRIPT = fileURLToPath(new URL('./pyftpdlib_server.py', import.meta.url));
/** python3-pyftpdlib installs into Debian's own Python, which another python3 on PATH may shadow. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const START_TIMEOUT_MS = 15_000;
const LISTENING = /^listening (\S+) (\d+)$/m;

export type PyftpdlibOptions = FtpServerOptions;
export type PyftpdlibInstance = FtpServerInstance;

/**
 * Starts pyftpdlib (python3-pyftpdlib) with an anonymous DummyAuthorizer:
 * read-only `elr` on `root`, `elradfmw` on `root/incoming`. Runs as the
 * calling user; root is not needed.
 */
export async function startPyftpdlib(opts: PyftpdlibOptions): Promise<PyftpdlibInstance> {
  const host = opts.listenAddress ?? '127.0.0.1';
  // Port 0 lets the server pick; it prints the port it bound.
  const requestedPort = opts.port ?? (opts.netns === undefined ? 0 : 21);
  const root = opts.root;
  return launchFtpServer({ name: 'pyftpdlib' }, async (adopt) => {
    const owner = userInfo().uid === 0 ? await lookupAccount(ANONYMOUS_USER) : undefined;
    const uploadDir = await prepareAnonymousTree(root, owner);
    const args = ['-u', SCRIPT, host, String(requestedPort), root];
    if (opts.pasvMinPort !== undefined && opts.pasvMaxPort !== undefined) args.push(String(opts.pasvMinPort), String(opts.pasvMaxPort));
    const proc = adopt(await startProcess(PYTHON, args, { netns: opts.netns }));
    await proc.waitForOutput(LISTENING, START_TIMEOUT_MS);
    const port = Number(LISTENING.exec(proc.stdout())?.[2]);
    return { host, port, root, uploadDir, netns: opts.netns };
  });
}
