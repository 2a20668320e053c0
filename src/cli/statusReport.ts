import type { Logger } from 'pino';
import type { ForwarderStatus } from '../forwarder.js';

/**
 * The answer to SIGUSR1: what the tunnel is doing, as log records (so it
 * goes wherever the log goes, in its format): the SSH link, the sessions
 * open, and each transfer under way with its bytes and rate. It only
 * reads; nothing is paused or reset.
 */
export function logStatus(logger: Logger, parts: readonly ForwarderStatus[], now = Date.now()): void {
  for (const part of parts) {
    if (part.ssh) logger.info({ ssh: part.sshTarget, ...part.ssh }, 'status: SSH');
    const transfersUnderWay = part.sessions.reduce((sum, session) => sum + session.transfers.length, 0);
    logger.info({ kind: part.kind, open: part.sessions.length, transfersUnderWay, ...part.stats }, 'status: sessions');
    for (const session of part.sessions) {
      const log = logger.child({ session: session.id });
      log.info({ client: session.client, durationMs: now - session.startedAt, transfersUnderWay: session.transfers.length }, 'status: session');
      for (const transfer of session.transfers) log.info({ ...transfer, command: transfer.command ?? undefined }, 'status: transfer');
    }
  }
}
