import { startSftpBridge, type SftpBridge, type SftpBridgeListenerSpec, type SftpBridgeOptions } from './bridge/bridge.js';
import { FtpfwdError } from './errors.js';
import { startForwarder, type CloseOptions, type Forwarder, type ForwarderOptions, type ForwarderStatus, type ForwardSpec } from './forwarder.js';
import { formatHostPort } from './net/addresses.js';

/** A local listener of either kind, in the order the command line gave them. */
export type ListenerSpec = { kind: 'ftp'; forward: ForwardSpec } | { kind: 'sftp'; listener: SftpBridgeListenerSpec };

/** What the SFTP bridge needs beyond the options it shares with the forwarder. */
export type BridgeSettings = Pick<SftpBridgeOptions, 'login' | 'root' | 'atomicUploads'>;

export interface TunnelOptions extends Omit<ForwarderOptions, 'forwards'> {
  listeners: ListenerSpec[];
  /** Required when a listener is of kind `sftp`. */
  bridge?: BridgeSettings;
}

/** Where a listener accepts FTP clients. */
export interface ListenerAddress {
  host: string;
  port: number;
}

export interface TunnelListener extends ListenerAddress {
  /** Where the listener leads, for messages: `ftp.internal:21` or `sftp:/srv/data`. */
  target: string;
}

/** The forwarder and the SFTP bridge behind one face, for the command line. */
export interface Tunnel {
  readonly listeners: readonly TunnelListener[];
  readonly sshTarget: string;
  readonly closed: Promise<{ reason: string; error: Error | null }>;
  /** The forwarder's status, then the bridge's, for whichever runs. */
  status(): ForwarderStatus[];
  close(options?: CloseOptions): Promise<void>;
}

/**
 * Starts what the listeners need: the forwarder for FTP forwards, the SFTP
 * bridge for bridge listeners, or both (each then has its own SSH
 * connection). Whichever stops first stops the other.
 */
export async function startTunnel(options: TunnelOptions): Promise<Tunnel> {
  const forwards = options.listeners.flatMap((spec) => (spec.kind === 'ftp' ? [spec.forward] : []));
  const bridged = options.listeners.flatMap((spec) => (spec.kind === 'sftp' ? [spec.listener] : []));
  if (forwards.length === 0 && bridged.length === 0) {
    throw new FtpfwdError('ERR_FTPFWD_USAGE', 'no listener given (use -L [bind_address:]port:ftp_host:ftp_port, or -L [bind_address:]port:sftp: for the SFTP bridge)');
  }
  const { listeners: _specs, bridge: settings, ...shared } = options;
  const forwarder: Forwarder | null = forwards.length > 0 ? await startForwarder({ ...shared, forwards }) : null;
  let bridge: SftpBridge | null = null;
  if (bridged.length > 0) {
    if (!settings) throw new FtpfwdError('ERR_FTPFWD_USAGE', 'an SFTP bridge listener needs its login settings');
    try {
      bridge = await startSftpBridge({ ...shared, ...settings, listeners: bridged });
    } catch (error) {
      await forwarder?.close();
      throw error;
    }
  }
  const parts = [forwarder, bridge].filter((part): part is Forwarder | SftpBridge => part !== null);
  const close = (closeOptions?: CloseOptions): Promise<void> => Promise.all(parts.map((part) => part.close(closeOptions))).then(() => undefined);
  const closed = Promise.race(parts.map((part) => part.closed)).then(async (outcome) => {
    await close();
    return outcome;
  });
  // Back in command-line order: {port}, {port2} ... and the ready file follow it.
  const forwardListeners = [...(forwarder?.listeners ?? [])];
  const bridgeListeners = [...(bridge?.listeners ?? [])];
  const root = settings?.root;
  const listeners = options.listeners.map((spec): TunnelListener => {
    if (spec.kind === 'ftp') {
      const bound = forwardListeners.shift()!;
      return { host: bound.host, port: bound.port, target: formatHostPort(spec.forward.ftpHost, spec.forward.ftpPort) };
    }
    const bound = bridgeListeners.shift()!;
    return { host: bound.host, port: bound.port, target: `sftp:${root ?? ''}` };
  });
  return {
    listeners,
    sshTarget: [forwarder?.sshTarget, bridge?.sshTarget].filter((target) => target !== undefined).filter((target, index, all) => all.indexOf(target) === index).join(', '),
    closed,
    status: () => parts.map((part) => part.status()),
    close,
  };
}
