import { isIP, isIPv4 } from 'node:net';
import { normalizeAddress, sameAddress } from '../net/addresses.js';
import { parseEprtArgument, parsePortArgument, type ActiveTarget } from './dataAddresses.js';

export type ActiveVerb = 'PORT' | 'EPRT';

/** Why a PORT/EPRT was refused: each maps to one 501 reply. */
export type ActiveRefusal = { kind: 'syntax'; detail: string } | { kind: 'bounce' } | { kind: 'privileged-port'; minimum: number };

export type ActiveCheck = { ok: true; target: ActiveTarget } | { ok: false; refusal: ActiveRefusal };

/**
 * The rules every PORT/EPRT must pass, wherever it is handled (the
 * forwarder's control state and the SFTP bridge): parsed strictly, the
 * address must be the control connection's own peer (RFC 2577, the FTP
 * bounce attack) and the port at least `minimumPort`. The unspecified
 * address names no other host (lftp sends `EPRT |2|::|port|` on an IPv6
 * loopback connection): it means the client itself.
 */
export function checkActiveCommand(verb: ActiveVerb, argument: string, clientAddress: string, minimumPort: number): ActiveCheck {
  const parsed = verb === 'PORT' ? parsePortArgument(argument) : parseEprtArgument(argument);
  if (!parsed.ok) return { ok: false, refusal: { kind: 'syntax', detail: parsed.reason } };
  const own = isUnspecified(parsed.value) && isIP(clientAddress) !== 0;
  const target = own ? ownAddress(parsed.value, clientAddress) : parsed.value;
  if (!sameAddress(target.host, clientAddress)) return { ok: false, refusal: { kind: 'bounce' } };
  if (target.port < minimumPort) return { ok: false, refusal: { kind: 'privileged-port', minimum: minimumPort } };
  return { ok: true, target };
}

/** `0.0.0.0`, or `::` in any spelling (the host was already checked to be valid IPv6). */
function isUnspecified(target: ActiveTarget): boolean {
  return target.family === 4 ? target.host === '0.0.0.0' : /^[0:]+$/.test(target.host);
}

function ownAddress(target: ActiveTarget, clientAddress: string): ActiveTarget {
  const host = normalizeAddress(clientAddress);
  return { family: isIPv4(host) ? 4 : 6, host, port: target.port };
}

