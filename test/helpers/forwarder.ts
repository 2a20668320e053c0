import { Writable } from 'node:stream';
import { createLogger, startForwarder, type Forwarder, type ForwarderOptions } from '../../src/index.js';
import type { SshdInstance } from './sshd.js';

export interface TestForwarder {
  forwarder: Forwarder;
  /** Where FTP clients connect. */
  host: string;
  port: number;
  /** Every log record so far, parsed. */
  logs(): Array<Record<string, unknown>>;
}

/** A forwarder through `sshd` to an FTP server that sshd reaches at ftpHost:ftpPort, with its logs captured. */
export async function startTestForwarder(
  sshd: SshdInstance,
  ftpHost: string,
  ftpPort: number,
  extra: Partial<Omit<ForwarderOptions, 'ssh' | 'forwards' | 'logger'>> = {},
): Promise<TestForwarder> {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') records.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  const forwarder = await startForwarder({
    ssh: {
      host: sshd.host,
      port: sshd.port,
      username: sshd.user,
      identityFiles: [sshd.identityFile],
      useDefaultIdentities: false,
      knownHostsFiles: [sshd.knownHostsFile],
    },
    forwards: [{ bindAddress: '127.0.0.1', bindPort: 0, ftpHost, ftpPort }],
    logger: createLogger({ level: 'debug', format: 'json', destination: sink }),
    ...extra,
  });
  const listener = forwarder.listeners[0]!;
  return { forwarder, host: listener.host, port: listener.port, logs: () => records };
}
