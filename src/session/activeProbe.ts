import type { SshConnection } from '../ssh/sshConnection.js';
import { errorMessage } from '../errors.js';

/**
 * Why a remote forward on the address cannot carry active mode: the SSH
 * server refused the forward, accepted it but nothing listens on that
 * address (OpenSSH's GatewayPorts no binds loopback only), or a connection
 * to it did not come back through the forward.
 */
export type ProbeFailure = 'refused' | 'not-listening' | 'not-returned';

export type ProbeResult = { ok: true } | { ok: false; failure: ProbeFailure; reason: string };

/** The bytes sent through the probe, to be sure what arrives is ours. */
const PROBE_TOKEN = Buffer.from('ftpfwd-active-probe\n');

/**
 * Checks that a remote forward on `address` is really reachable there. An
 * OpenSSH server with `GatewayPorts no` accepts a forward request for any
 * address but silently binds loopback only, so an FTP server on another
 * host could never connect and active mode would fail with a bare 425.
 * The probe binds a forward on `address`, asks the SSH server to connect
 * to that same address and port, and sees whether the connection comes
 * back through the forward.
 */
export async function probeRemoteForward(ssh: SshConnection, address: string, timeoutMs: number): Promise<ProbeResult> {
  let arrived: (ok: boolean) => void = () => undefined;
  const came = new Promise<boolean>((resolve) => {
    arrived = resolve;
  });
  let forward;
  try {
    forward = await ssh.bindRemoteForward(
      address,
      (_details, accept) => {
        const channel = accept();
        const chunks: Buffer[] = [];
        channel.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          if (Buffer.concat(chunks).equals(PROBE_TOKEN)) {
            arrived(true);
            channel.end();
          }
        });
        channel.on('error', () => arrived(false));
        channel.on('close', () => arrived(false));
      },
      timeoutMs,
    );
  } catch (error) {
    // The error already says what was refused, and where.
    return { ok: false, failure: 'refused', reason: errorMessage(error) };
  }
  const timer = setTimeout(() => arrived(false), timeoutMs);
  timer.unref();
  try {
    const outbound = await ssh.openDirectTcpip({ host: '127.0.0.1', port: 0 }, address, forward.port, timeoutMs);
    outbound.on('error', () => arrived(false));
    outbound.end(PROBE_TOKEN);
    if (await came) return { ok: true };
    return { ok: false, failure: 'not-returned', reason: `a connection to ${address}:${forward.port} did not come back through the forward` };
  } catch {
    return {
      ok: false,
      failure: 'not-listening',
      reason: `the SSH server accepted a remote forward on ${address} but nothing listens there (an OpenSSH server needs GatewayPorts clientspecified or yes)`,
    };
  } finally {
    clearTimeout(timer);
    forward.close();
  }
}
