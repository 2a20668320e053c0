import { run } from './processes.js';

const SS_TIMEOUT_MS = 10_000;

/** One TCP socket as `ss -tanp` reports it. */
export interface TcpSocket {
  /** `LISTEN`, `ESTAB`, `TIME-WAIT`, `CLOSE-WAIT`, ... */
  state: string;
  local: string;
  localPort: number;
  peer: string;
  peerPort: number;
  /** The processes holding the socket: none for a socket the kernel finishes alone (TIME-WAIT, orphaned FIN-WAIT). */
  pids: number[];
  /** The line as ss printed it, for messages. */
  line: string;
}

function portOf(endpoint: string): number {
  return Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
}

/** Parses `ss -tanpH` output (state, queues, local, peer, processes). */
export function parseSs(output: string): TcpSocket[] {
  const sockets: TcpSocket[] = [];
  for (const line of output.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const [state, , , local, peer] = fields as [string, string, string, string, string];
    const pids = [...line.matchAll(/pid=(\d+)/g)].map((match) => Number(match[1]));
    sockets.push({ state, local, localPort: portOf(local), peer, peerPort: portOf(peer), pids, line: line.trim() });
  }
  return sockets;
}

/** Every TCP socket of a network namespace (IPv4 and IPv6), with the processes that hold it. */
export async function tcpSockets(netns: string): Promise<TcpSocket[]> {
  const result = await run('ss', ['-tanpH'], { netns, timeoutMs: SS_TIMEOUT_MS });
  if (result.code !== 0) throw new Error(`ss in ${netns} failed: ${result.stderr.trim() || `code ${String(result.code)}`}`);
  return parseSs(result.stdout);
}

/** The sockets some process holds (what a leak would be), leaving out those only the kernel still finishes. */
export function heldSockets(sockets: readonly TcpSocket[]): TcpSocket[] {
  return sockets.filter((socket) => socket.pids.length > 0);
}
