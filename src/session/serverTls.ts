import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ClientChannel } from 'ssh2';
import { errorMessage } from '../errors.js';
import { LineBuffer } from '../ftp/lineFramer.js';
import { UpstreamTlsNegotiation, type NegotiationStep } from '../ftp/upstreamTls.js';
import { startServerTls, TlsCertificateError, type CertificateFacts, type ResumableSession, type ServerTlsSettings } from './tls.js';

/** The control connection to the FTP server, protected, and the greeting still owed to the client. */
export interface SecuredControl {
  socket: TLSSocket;
  greeting: Buffer[];
}

/** TLS with the FTP server could not be had: `reply` is the 421 for the client, `reason` the log's words. */
export class ServerTlsError extends Error {
  constructor(
    readonly reply: string,
    readonly reason: string,
    readonly certificate: CertificateFacts | null = null,
  ) {
    super(reason);
    this.name = 'ServerTlsError';
  }
}

/**
 * Carries out UpstreamTlsNegotiation on the control channel: reads the
 * server's lines (plain, then through TLS), sends what it says, and runs the
 * handshake when it says so. Within `timeoutMs` in all. Nothing of the
 * client's is read meanwhile (the session attaches it only afterwards).
 *
 * A 234 must be the last thing the server sends in plaintext: bytes after
 * it and before the handshake are refused, so no one on the path can slip
 * replies in ahead of TLS. What arrives after the last reply (nothing, from
 * a sane server) is put back into the TLS socket for the session to read.
 */
export function negotiateServerTls(
  channel: ClientChannel,
  settings: ServerTlsSettings,
  sessions: ResumableSession,
  maxLineLength: number,
  timeoutMs: number,
): Promise<SecuredControl> {
  const negotiation = new UpstreamTlsNegotiation(settings.mode);
  const lines = new LineBuffer(maxLineLength);
  let stream: Duplex = channel;
  let secured: TLSSocket | null = null;
  let settled = false;
  return new Promise<SecuredControl>((resolve, reject) => {
    const timer = setTimeout(() => fail(new ServerTlsError('421 Service not available: the FTP server did not complete TLS in time; closing.', `TLS with the FTP server was not set up within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    timer.unref();

    const detach = (): void => {
      stream.pause();
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', onError);
    };
    const attach = (next: Duplex): void => {
      stream = next;
      next.on('data', onData);
      next.once('end', onEnd);
      next.on('error', onError);
    };
    const fail = (error: ServerTlsError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      detach();
      secured?.destroy();
      reject(error);
    };
    const onEnd = (): void => fail(new ServerTlsError('421 Service not available: the FTP server closed the connection while TLS was set up; closing.', 'the FTP server closed the connection while TLS was set up'));
    const onError = (error: Error): void => fail(new ServerTlsError('421 Service not available: the connection to the FTP server failed while TLS was set up; closing.', `the connection to the FTP server failed while TLS was set up: ${error.message}`));

    /** Carries out one step; false when reading must stop (a handshake, the end). */
    const perform = (step: NegotiationStep): boolean => {
      switch (step.kind) {
        case 'wait':
          return true;
        case 'send':
          stream.write(step.line);
          return true;
        case 'start-tls':
          if (lines.bufferedBytes > 0) {
            fail(new ServerTlsError('421 Service not available: the FTP server sent plaintext after agreeing to TLS; closing.', 'the FTP server sent more plaintext after 234, before the TLS handshake'));
            return false;
          }
          detach();
          handshake();
          return false;
        case 'ready': {
          settled = true;
          clearTimeout(timer);
          detach();
          const rest = lines.takeRest();
          if (rest.length > 0) stream.unshift(rest);
          resolve({ socket: secured!, greeting: step.greeting });
          return false;
        }
        case 'fail':
          fail(new ServerTlsError(step.reply, step.reason));
          return false;
      }
    };

    const drain = (): void => {
      while (!settled) {
        const next = lines.next();
        if (next.kind === 'none') return;
        if (next.kind === 'overflow') {
          fail(new ServerTlsError('421 Service not available: the server sent an over-long line.', 'the FTP server sent a line over the limit while TLS was set up'));
          return;
        }
        if (!perform(negotiation.onServerLine(next.line))) return;
      }
    };

    function onData(chunk: Buffer): void {
      lines.push(chunk);
      drain();
    }

    const handshake = (): void => {
      startServerTls(channel, settings, sessions, timeoutMs).then(
        (socket) => {
          if (settled) {
            socket.destroy();
            return;
          }
          secured = socket;
          attach(socket);
          if (perform(negotiation.tlsUp())) drain();
        },
        (error: unknown) => {
          if (error instanceof TlsCertificateError) {
            fail(new ServerTlsError(`421 Service not available: ${error.message}; closing.`, error.message, error.certificate));
            return;
          }
          fail(new ServerTlsError(`421 Service not available: TLS with the FTP server failed (${errorMessage(error)}); closing.`, errorMessage(error)));
        },
      );
    };

    attach(channel);
    if (perform(negotiation.start())) drain();
  });
}
