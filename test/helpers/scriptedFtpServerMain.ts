/**
 * Runs the scripted FTP server as its own process, so that it can be
 * started inside a network namespace:
 *
 *   node --import tsx scriptedFtpServerMain.ts '<ScriptedServerConfig as JSON>'
 *
 * Prints "listening HOST PORT" on stdout once it listens; the protocol trace
 * goes to stderr. Stops on SIGTERM or SIGINT.
 */
import { ScriptedFtpServer, type ScriptedServerConfig } from './scriptedFtpServer.js';

function parseConfig(text: string | undefined): ScriptedServerConfig {
  if (text === undefined) throw new Error('usage: scriptedFtpServerMain.ts <config JSON>');
  const value = JSON.parse(text) as Partial<ScriptedServerConfig>;
  if (typeof value.root !== 'string' || typeof value.host !== 'string' || typeof value.port !== 'number' || typeof value.variant !== 'object') {
    throw new Error(`incomplete config: ${text}`);
  }
  return { checkDataPeer: true, ...value } as ScriptedServerConfig;
}

async function main(): Promise<void> {
  const config = parseConfig(process.argv[2]);
  const server = await ScriptedFtpServer.listen(config, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`listening ${config.host} ${server.port}\n`);
  const stop = (): void => {
    void server.close().then(() => {
      process.exitCode = 0;
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`scripted FTP server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
