/**
 * The two ssh-agent requests a client needs (draft-miller-ssh-agent): list
 * the identities, and sign with one. ssh2's own agent client drops the
 * certificates an agent holds (it cannot parse them), so ftpfwd asks the
 * agent itself. One connection per request, as ssh2 and ssh-add do; every
 * answer is bounded in size and time.
 */
import { connect } from 'node:net';
import { errorMessage } from '../errors.js';
import { sshString, WireReader } from './wire.js';

export interface AgentIdentity {
  /** The public key or certificate blob. */
  blob: Buffer;
  comment: string;
}

const SSH_AGENT_FAILURE = 5;
const SSH_AGENTC_REQUEST_IDENTITIES = 11;
const SSH_AGENT_IDENTITIES_ANSWER = 12;
const SSH_AGENTC_SIGN_REQUEST = 13;
const SSH_AGENT_SIGN_RESPONSE = 14;
/** Sign flags for RSA keys: which SHA-2 the signature uses. */
const SSH_AGENT_RSA_SHA2_256 = 2;
const SSH_AGENT_RSA_SHA2_512 = 4;
/** OpenSSH's own limit on an agent message (authfd.c MAX_AGENT_REPLY_LEN). */
const MAX_REPLY = 256 * 1024;
const LIST_TIMEOUT_MS = 10_000;
/** Long enough for a key added with `ssh-add -c`, whose use a person confirms. */
const SIGN_TIMEOUT_MS = 60_000;

/** Sends one request to the agent and resolves with its answer (type byte first). */
function request(socketPath: string, payload: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (error: Error | null, answer?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(answer!);
    };
    const timer = setTimeout(() => finish(new Error(`the agent did not answer within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    socket.on('error', (error) => finish(new Error(`cannot talk to the agent at ${socketPath}: ${errorMessage(error)}`)));
    socket.on('close', () => finish(new Error('the agent closed the connection without an answer')));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4) return;
      const length = received.readUInt32BE(0);
      if (length === 0 || length > MAX_REPLY) return finish(new Error(`the agent sent a message of ${length} bytes`));
      if (received.length >= 4 + length) finish(null, received.subarray(4, 4 + length));
    });
    socket.write(sshString(payload));
  });
}

/** The agent's keys and certificates, in its order. */
export async function listAgentIdentities(socketPath: string): Promise<AgentIdentity[]> {
  const answer = await request(socketPath, Buffer.from([SSH_AGENTC_REQUEST_IDENTITIES]), LIST_TIMEOUT_MS);
  if (answer[0] !== SSH_AGENT_IDENTITIES_ANSWER) throw new Error(`the agent refused to list its keys (message ${answer[0]})`);
  try {
    const reader = new WireReader(answer, 1);
    const count = reader.uint32();
    const identities: AgentIdentity[] = [];
    for (let index = 0; index < count; index++) {
      const blob = Buffer.from(reader.bytes());
      identities.push({ blob, comment: reader.bytes().toString('utf8') });
    }
    return identities;
  } catch (error) {
    throw new Error(`the agent sent a malformed list of keys: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * Asks the agent to sign `data` with the key or certificate `blob`; `hash`
 * picks the SHA-2 variant for RSA. Resolves with the bare signature (the
 * signature blob without its algorithm name), as ssh2 expects from an agent.
 */
export async function agentSign(socketPath: string, blob: Buffer, data: Buffer, hash: string | undefined): Promise<Buffer> {
  const flags = Buffer.alloc(4);
  flags.writeUInt32BE(hash === 'sha512' ? SSH_AGENT_RSA_SHA2_512 : hash === 'sha256' ? SSH_AGENT_RSA_SHA2_256 : 0);
  const answer = await request(socketPath, Buffer.concat([Buffer.from([SSH_AGENTC_SIGN_REQUEST]), sshString(blob), sshString(data), flags]), SIGN_TIMEOUT_MS);
  if (answer[0] === SSH_AGENT_FAILURE) throw new Error('the agent refused to sign');
  if (answer[0] !== SSH_AGENT_SIGN_RESPONSE) throw new Error(`the agent sent message ${answer[0]} instead of a signature`);
  try {
    const signature = new WireReader(new WireReader(answer, 1).bytes());
    signature.bytes(); // the algorithm name
    return Buffer.from(signature.bytes());
  } catch (error) {
    throw new Error(`the agent sent a malformed signature: ${errorMessage(error)}`, { cause: error });
  }
}
