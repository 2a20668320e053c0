import type { TransferRecord } from './dataConnections.js';

/** Running totals over the forwarder's life, for the summary line at exit. */
export interface ForwarderStats {
  sessions: number;
  /** Sessions turned away: session limit reached or SSH down. */
  refusedSessions: number;
  transfers: number;
  failedTransfers: number;
  bytesToServer: number;
  bytesToClient: number;
}

export function emptyStats(): ForwarderStats {
  return { sessions: 0, refusedSessions: 0, transfers: 0, failedTransfers: 0, bytesToServer: 0, bytesToClient: 0 };
}

export function addTransfer(stats: ForwarderStats, record: TransferRecord): void {
  stats.transfers += 1;
  if (record.error !== null) stats.failedTransfers += 1;
  stats.bytesToServer += record.bytesToServer;
  stats.bytesToClient += record.bytesToClient;
}

export type TransferDirection = 'download' | 'upload' | 'both' | 'none';

export function transferDirection(record: Pick<TransferRecord, 'bytesToClient' | 'bytesToServer'>): TransferDirection {
  if (record.bytesToClient > 0) return record.bytesToServer > 0 ? 'both' : 'download';
  return record.bytesToServer > 0 ? 'upload' : 'none';
}

/** MB/s (10^6 bytes), one decimal; 0 for instant or empty transfers. */
export function transferRate(record: TransferRecord): number {
  const bytes = record.bytesToClient + record.bytesToServer;
  if (record.durationMs <= 0 || bytes === 0) return 0;
  return Math.round((bytes / record.durationMs / 1000) * 10) / 10;
}
