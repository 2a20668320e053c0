import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { TransferBytes } from '../session/transferProgress.js';
import type { SessionFiles } from './fileOps.js';
import { fileKind, formatListLine, formatMlsdLine, type ListEntry } from './listing.js';
import { baseName } from './paths.js';
import { pipelineDownload, pipelineUpload, type PipelineResult, type PipelineTuning, type RunningPipeline } from './pipeline.js';
import type { TransferOutcome, TransferRequest } from './protocol.js';
import { FsError, isConnectionFailure, toFsError } from './sftpErrors.js';
import { OPEN } from './sftpFs.js';
import { AsciiDecoder, AsciiEncoder } from './textMode.js';

export interface TransferContext {
  files: SessionFiles;
  request: TransferRequest;
  /** The data connection (accepted or connected); null when none could be made. */
  openData(): Promise<Socket | null>;
  /** Writes the 150 reply on the control connection. */
  sendPreliminary(info: { size?: number; uniqueName?: string }): void;
  atomicUploads: boolean;
  tuning: PipelineTuning;
  /** How long a finished data connection may take to close by itself. */
  lingerMs: number;
  log: Logger;
}

export interface TransferReport {
  outcome: TransferOutcome;
  bytesToClient: number;
  bytesToServer: number;
  durationMs: number;
  /** Why it failed, for the log; null when it completed. */
  error: string | null;
}

export interface RunningTransfer {
  readonly done: Promise<TransferReport>;
  /** Bytes moved over the data connection so far. */
  readonly bytes: number;
  /** The same, by direction. */
  moved(): TransferBytes;
  /** ABOR, or the session ending: stop at once. */
  abort(): void;
}

class Aborted extends Error {}

/** Refused before the 150: the outcome says why. */
class Refused extends Error {
  constructor(readonly outcome: TransferOutcome) {
    super('refused');
  }
}

/** Files that lose their STOU race are retried under a new name this often. */
const UNIQUE_NAME_ATTEMPTS = 5;
const LISTING_CHUNK_LINES = 256;

/**
 * Carries out one transfer command (RETR, STOR, APPE, STOU, LIST, NLST,
 * MLSD): opens the file or directory on the SSH server, sends the 150,
 * takes the data connection, moves the data and tidies up, and reports an
 * outcome for the final reply. Anything that fails before the 150 leaves
 * no trace on the server; an upload that fails after it never reports
 * success, and with atomic uploads never leaves a partial file under the
 * target name.
 */
export function runTransfer(context: TransferContext): RunningTransfer {
  const startedAt = Date.now();
  let aborted = false;
  let socket: Socket | null = null;
  let pipeline: RunningPipeline | null = null;
  let listedBytes = 0;
  let abortWaiter: (() => void) | null = null;
  const abortSignal = new Promise<never>((_resolve, reject) => {
    abortWaiter = () => reject(new Aborted());
  });
  abortSignal.catch(() => undefined);
  const step = <T>(promise: Promise<T>): Promise<T> => (aborted ? Promise.reject(new Aborted()) : Promise.race([promise, abortSignal]));

  const { request } = context;
  const direction = request.command === 'STOR' || request.command === 'APPE' || request.command === 'STOU' ? 'upload' : 'download';
  const moved = (): TransferBytes => {
    const bytes = pipeline?.bytes ?? listedBytes;
    return { bytesToClient: direction === 'download' ? bytes : 0, bytesToServer: direction === 'upload' ? bytes : 0 };
  };
  const report = (outcome: TransferOutcome, error: string | null): TransferReport => ({ outcome, ...moved(), durationMs: Date.now() - startedAt, error });

  const takeData = async (): Promise<Socket> => {
    const data = await step(context.openData());
    if (data === null) throw new Refused({ kind: 'no-data-connection' });
    if (aborted) {
      data.destroy();
      throw new Aborted();
    }
    socket = data;
    return data;
  };

  const body = async (): Promise<TransferOutcome> => {
    switch (request.command) {
      case 'RETR':
        return retrieve(context, step, takeData, (running) => (pipeline = running));
      case 'STOR':
      case 'APPE':
      case 'STOU':
        return store(context, step, takeData, (running) => (pipeline = running));
      case 'LIST':
      case 'NLST':
      case 'MLSD':
        return list(context, step, takeData, (bytes) => (listedBytes += bytes));
    }
  };

  const done = body().then(
    (outcome) => report(outcome, outcome.kind === 'complete' ? null : outcome.kind),
    (error: unknown) => {
      if (error instanceof Aborted || aborted) return report({ kind: 'aborted' }, 'aborted');
      if (error instanceof Refused) return report(error.outcome, error.outcome.kind);
      const failure = toFsError(error);
      const outcome: TransferOutcome = isConnectionFailure(failure.kind) ? { kind: 'ssh-lost' } : { kind: 'refused', reason: { kind: 'fs', failure: failure.kind } };
      return report(outcome, failure.message);
    },
  );
  void done.finally(() => {
    const data = socket as Socket | null;
    if (data) settleSocket(data, context.lingerMs);
  });

  return {
    done,
    get bytes() {
      return pipeline?.bytes ?? listedBytes;
    },
    moved,
    abort: () => {
      if (aborted) return;
      aborted = true;
      pipeline?.abort();
      (socket as Socket | null)?.destroy();
      abortWaiter?.();
    },
  };
}

type Step = <T>(promise: Promise<T>) => Promise<T>;

/** What a pipeline's failure means for the reply. */
function pipelineOutcome(result: PipelineResult & { ok: false }): TransferOutcome {
  const { failure } = result;
  switch (failure.side) {
    case 'aborted':
      return { kind: 'aborted' };
    case 'client':
      return { kind: 'data-connection-lost' };
    case 'server':
      return isConnectionFailure(failure.error.kind) ? { kind: 'ssh-lost' } : { kind: 'server-failed', failure: failure.error.kind };
  }
}

async function retrieve(context: TransferContext, step: Step, takeData: () => Promise<Socket>, started: (pipeline: RunningPipeline) => void): Promise<TransferOutcome> {
  const { files, request } = context;
  const { fs } = files;
  const remote = files.remote(request.path);
  // Confinement, open and stat in one round trip (and one write); nothing is read before the check passed.
  const [opening, statting, confining] = fs.batch(() => [fs.open(remote, OPEN.READ), fs.stat(remote), files.confined(request.path)] as const);
  // Whichever fails first is the one reported; the others must not count as unhandled meanwhile.
  opening.catch(() => undefined);
  statting.catch(() => undefined);
  let handle: Buffer | null = null;
  try {
    await step(confining);
    const attrs = await step(statting);
    handle = await step(opening);
    if (fileKind(attrs.mode) !== 'file') throw new Refused({ kind: 'refused', reason: { kind: 'not-a-file' } });
    const size = attrs.size ?? 0;
    if (request.offset > size) throw new Refused({ kind: 'refused', reason: { kind: 'rest-beyond-end', size } });
    context.sendPreliminary({ size: size - request.offset });
    const socket = await takeData();
    const encoder = request.ascii ? new AsciiEncoder() : null;
    const running = pipelineDownload(fs, handle, request.offset, size, socket, encoder ? (chunk) => encoder.transform(chunk) : null, context.tuning);
    started(running);
    const result = await running.done;
    return result.ok ? { kind: 'complete' } : pipelineOutcome(result);
  } finally {
    const opened = handle ?? (await opening.catch(() => null));
    if (opened) void fs.close(opened).catch(() => undefined);
  }
}

async function store(context: TransferContext, step: Step, takeData: () => Promise<Socket>, started: (pipeline: RunningPipeline) => void): Promise<TransferOutcome> {
  const { files, request } = context;
  const { fs } = files;
  let target = await step(files.confined(request.path));
  let handle: Buffer | null = null;
  let temporary: string | null = null;
  let start = 0;
  let uniqueName: string | undefined;
  let announced = false;
  let completed = false;
  try {
    if (request.command === 'STOU') {
      ({ handle, target, name: uniqueName } = await step(openUnique(context, target)));
    } else if (request.command === 'STOR' && request.offset === 0) {
      if (context.atomicUploads) {
        temporary = joinRemote(parentRemote(target), temporaryName(baseName(target)));
        handle = await step(fs.open(temporary, OPEN.WRITE | OPEN.CREAT | OPEN.EXCL | OPEN.TRUNC));
      } else {
        handle = await step(fs.open(target, OPEN.WRITE | OPEN.CREAT | OPEN.TRUNC));
      }
    } else {
      // REST + STOR resumes an existing file in place; APPE appends, creating the file if need be.
      handle = await step(fs.open(target, request.command === 'APPE' ? OPEN.WRITE | OPEN.CREAT : OPEN.WRITE));
      const size = (await step(fs.fstat(handle))).size ?? 0;
      if (request.command === 'APPE') start = size;
      else if (request.offset > size) throw new Refused({ kind: 'refused', reason: { kind: 'rest-beyond-end', size } });
      else start = request.offset;
    }
    context.sendPreliminary(uniqueName === undefined ? {} : { uniqueName });
    announced = true;
    const socket = await takeData();
    const decoder = request.ascii ? new AsciiDecoder() : null;
    const running = pipelineUpload(fs, { handle, start }, socket, decoder, context.tuning);
    started(running);
    const result = await running.done;
    if (!result.ok) return pipelineOutcome(result);
    // Resumed at an offset: what was there beyond the new end is not part of the file any more.
    if (request.command === 'STOR' && request.offset > 0) await step(fs.fsetstat(handle, { size: start + result.bytes }));
    const closing = handle;
    handle = null;
    await step(fs.close(closing));
    if (temporary !== null) {
      await step(files.replace(temporary, target));
      temporary = null;
    }
    completed = true;
    return { kind: 'complete' };
  } catch (error) {
    if (error instanceof Refused || error instanceof Aborted) throw error;
    const failure = toFsError(error);
    if (isConnectionFailure(failure.kind)) return { kind: 'ssh-lost' };
    // Before the 150 nothing was transferred: the file operation's own reply (550).
    if (!announced) throw failure;
    return { kind: 'server-failed', failure: failure.kind };
  } finally {
    if (handle) void fs.close(handle).catch(() => undefined);
    if (temporary !== null && !completed) {
      const leftover = temporary;
      void fs.unlink(leftover).catch((error: unknown) => context.log.warn({ file: leftover, reason: toFsError(error).message }, 'could not remove the temporary file of a failed upload'));
    }
  }
}

/** STOU: creates a file under a name nobody has, with O_EXCL so that a race cannot hand out the same name twice. */
async function openUnique(context: TransferContext, proposed: string): Promise<{ handle: Buffer; target: string; name: string }> {
  const { fs } = context.files;
  const directory = parentRemote(proposed);
  const base = baseName(proposed);
  for (let attempt = 0; attempt < UNIQUE_NAME_ATTEMPTS; attempt += 1) {
    const name = attempt === 0 && context.request.nameGiven ? base : `${base}.${randomBytes(4).toString('hex')}`;
    const target = joinRemote(directory, name);
    try {
      const handle = await fs.open(target, OPEN.WRITE | OPEN.CREAT | OPEN.EXCL);
      return { handle, target, name };
    } catch (error) {
      const failure = toFsError(error);
      if (failure.kind !== 'failure') throw failure;
    }
  }
  throw new FsError('failure', 'no unique file name found');
}

async function list(context: TransferContext, step: Step, takeData: () => Promise<Socket>, counted: (bytes: number) => void): Promise<TransferOutcome> {
  const { files, request } = context;
  const remote = await step(files.confined(request.path));
  const entry = await step(files.entry(request.path, remote));
  const isDirectory = fileKind(entry.attrs.mode) === 'dir';
  if (request.command === 'MLSD' && !isDirectory) throw new Refused({ kind: 'refused', reason: { kind: 'not-a-directory' } });
  if (!isDirectory && request.glob !== null) throw new Refused({ kind: 'refused', reason: { kind: 'fs', failure: 'no-such-file' } });
  const now = Math.floor(Date.now() / 1000);
  const format = (listed: ListEntry): string => {
    switch (request.command) {
      case 'NLST':
        return isDirectory ? `${request.namePrefix}${listed.name}` : request.argument;
      case 'MLSD':
        return formatMlsdLine(listed, request.facts);
      default:
        return formatListLine(listed, now);
    }
  };
  // Opened before the 150, so that a directory that cannot be read gets a 550 rather than an empty listing.
  const directory = isDirectory ? await step(files.fs.opendir(remote)) : null;
  let socket: Socket;
  try {
    context.sendPreliminary({});
    socket = await takeData();
  } catch (error) {
    if (directory) void files.fs.close(directory).catch(() => undefined);
    throw error;
  }
  const send = (lines: string[]): Promise<void> => {
    const text = Buffer.from(lines.map((line) => `${line}\r\n`).join(''), 'utf8');
    counted(text.length);
    return step(writeAll(socket, text));
  };
  try {
    if (!directory) await send([format(entry)]);
    else {
      await files.list(directory, remote, request.glob, async (batch) => {
        for (let index = 0; index < batch.length; index += LISTING_CHUNK_LINES) await send(batch.slice(index, index + LISTING_CHUNK_LINES).map(format));
        return true;
      });
    }
    await step(endSocket(socket));
  } catch (error) {
    if (error instanceof Aborted || error instanceof ClientGone) return error instanceof Aborted ? { kind: 'aborted' } : { kind: 'data-connection-lost' };
    const failure = toFsError(error);
    return isConnectionFailure(failure.kind) ? { kind: 'ssh-lost' } : { kind: 'server-failed', failure: failure.kind };
  }
  return { kind: 'complete' };
}

class ClientGone extends Error {}

/** Writes `data`, waiting for the socket to drain; rejects if the client goes away meanwhile. */
function writeAll(socket: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return reject(new ClientGone('the data connection is closed'));
    const onGone = (): void => {
      cleanup();
      reject(new ClientGone('the client closed the data connection'));
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      socket.removeListener('close', onGone);
      socket.removeListener('error', onGone);
      socket.removeListener('drain', onDrain);
    };
    socket.once('close', onGone);
    socket.once('error', onGone);
    if (socket.write(data)) {
      cleanup();
      resolve();
    } else socket.once('drain', onDrain);
  });
}

function endSocket(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onGone = (): void => reject(new ClientGone('the client closed the data connection'));
    socket.once('error', onGone);
    socket.end(() => {
      socket.removeListener('error', onGone);
      resolve();
    });
  });
}

/**
 * After the transfer: what the client still sends is read and dropped (an
 * unread byte would turn our close into a reset, which can destroy data
 * the client has not read yet), and the socket is closed once the client
 * has closed its side, or after `lingerMs`.
 */
function settleSocket(socket: Socket, lingerMs: number): void {
  if (socket.destroyed) return;
  if (!socket.writableEnded) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
  socket.on('data', () => undefined);
  socket.resume();
}

function parentRemote(remote: string): string {
  const slash = remote.lastIndexOf('/');
  return slash <= 0 ? '/' : remote.slice(0, slash);
}

function joinRemote(directory: string, name: string): string {
  return directory === '/' ? `/${name}` : `${directory}/${name}`;
}

/** A hidden name beside the target, for atomic uploads; programs watching the directory skip dot files. */
function temporaryName(base: string): string {
  // Keep within NAME_MAX (255 bytes) however long the target's name is.
  const kept = Buffer.from(base, 'utf8').length > 200 ? [...base].slice(0, 60).join('') : base;
  return `.${kept}.ftpfwd-${randomBytes(6).toString('hex')}.part`;
}
