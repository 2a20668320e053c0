import { run } from './processes.js';

const IP_TIMEOUT_MS = 10_000;

export interface BastionTopology {
  /** Namespace names. */
  client: string;
  bastion: string;
  ftp: string;
  /** client <-> bastion link, 10.251.1.0/24. */
  clientAddr: string;
  bastionClientSideAddr: string;
  /** bastion <-> ftp link, 10.251.2.0/24. */
  bastionFtpSideAddr: string;
  ftpAddr: string;
  /**
   * The same links over IPv6 (ULA, fd00:251:1::/64 and fd00:251:2::/64),
   * assigned with `nodad` so they are usable at once; undefined when the
   * topology was created with `ipv6: false`.
   */
  clientAddr6: string | undefined;
  bastionClientSideAddr6: string | undefined;
  bastionFtpSideAddr6: string | undefined;
  ftpAddr6: string | undefined;
  /** Deletes every namespace that was created; safe to call more than once. */
  destroy(): Promise<void>;
}

export interface BastionTopologyOptions {
  /** Also give both links IPv6 addresses; default true. */
  ipv6?: boolean;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

let sequence = 0;

async function ip(args: readonly string[]): Promise<void> {
  const result = await run('ip', args, { timeoutMs: IP_TIMEOUT_MS });
  if (result.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr.trim() || `code ${String(result.code)}`}`);
}

function namespaceRemover(created: string[]): () => Promise<void> {
  let removal: Promise<void> | undefined;
  async function removeAll(): Promise<void> {
    const failures: string[] = [];
    for (let ns = created.pop(); ns !== undefined; ns = created.pop()) {
      const result = await run('ip', ['netns', 'delete', ns], { timeoutMs: IP_TIMEOUT_MS });
      if (result.code !== 0) failures.push(`${ns}: ${result.stderr.trim()}`);
    }
    if (failures.length > 0) throw new Error(`could not delete network namespaces: ${failures.join('; ')}`);
  }
  return () => {
    removal ??= removeAll();
    return removal;
  };
}

/**
 * Three namespaces, client - bastion - ftp, joined by two veth pairs. The
 * bastion does not forward (IPv4 nor IPv6) and nobody has a default route,
 * so the client can reach the bastion but not the ftp host. Every link is
 * created inside the namespaces; the caller's own network namespace is left
 * untouched.
 */
export async function createBastionTopology(options: BastionTopologyOptions = {}): Promise<BastionTopology> {
  const ipv6 = options.ipv6 ?? true;
  sequence += 1;
  const base = `ffw${process.pid % 10000}-${sequence}`;
  const client = `${base}c`;
  const bastion = `${base}b`;
  const ftp = `${base}f`;
  const created: string[] = [];
  const destroy = namespaceRemover(created);
  const topology: BastionTopology = {
    client,
    bastion,
    ftp,
    clientAddr: '10.251.1.1',
    bastionClientSideAddr: '10.251.1.2',
    bastionFtpSideAddr: '10.251.2.1',
    ftpAddr: '10.251.2.2',
    clientAddr6: ipv6 ? 'fd00:251:1::1' : undefined,
    bastionClientSideAddr6: ipv6 ? 'fd00:251:1::2' : undefined,
    bastionFtpSideAddr6: ipv6 ? 'fd00:251:2::1' : undefined,
    ftpAddr6: ipv6 ? 'fd00:251:2::2' : undefined,
    destroy,
  };
  try {
    for (const ns of [client, bastion, ftp]) {
      await ip(['netns', 'add', ns]);
      created.push(ns);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await ip(['-n', client, 'link', 'add', 'to-bastion', 'type', 'veth', 'peer', 'name', 'to-client', 'netns', bastion]);
    await ip(['-n', bastion, 'link', 'add', 'to-ftp', 'type', 'veth', 'peer', 'name', 'to-bastion', 'netns', ftp]);
    const addresses: Array<[string, string, string]> = [
      [client, 'to-bastion', `${topology.clientAddr}/24`],
      [bastion, 'to-client', `${topology.bastionClientSideAddr}/24`],
      [bastion, 'to-ftp', `${topology.bastionFtpSideAddr}/24`],
      [ftp, 'to-bastion', `${topology.ftpAddr}/24`],
    ];
    for (const [ns, dev, cidr] of addresses) {
      await ip(['-n', ns, 'addr', 'add', cidr, 'dev', dev]);
      await ip(['-n', ns, 'link', 'set', dev, 'up']);
    }
    if (ipv6) {
      const addresses6: Array<[string, string, string | undefined]> = [
        [client, 'to-bastion', topology.clientAddr6],
        [bastion, 'to-client', topology.bastionClientSideAddr6],
        [bastion, 'to-ftp', topology.bastionFtpSideAddr6],
        [ftp, 'to-bastion', topology.ftpAddr6],
      ];
      // nodad: no duplicate address detection, so the addresses can be bound at once.
      for (const [ns, dev, address] of addresses6) await ip(['-n', ns, '-6', 'addr', 'add', `${String(address)}/64`, 'dev', dev, 'nodad']);
    }
    const forwarding = ['net.ipv4.ip_forward=0', ...(ipv6 ? ['net.ipv6.conf.all.forwarding=0'] : [])];
    const sysctl = await run('sysctl', ['-q', '-w', ...forwarding], { netns: bastion, timeoutMs: IP_TIMEOUT_MS });
    if (sysctl.code !== 0) throw new Error(`cannot disable forwarding in ${bastion}: ${sysctl.stderr.trim()}`);
    return topology;
  } catch (err) {
    try {
      await destroy();
    } catch (cleanupErr) {
      throw new AggregateError([err, cleanupErr], 'network topology setup failed, and so did its cleanup');
    }
    throw err;
  }
}
