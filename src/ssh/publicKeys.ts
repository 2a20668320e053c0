/**
 * Which public keys and certificates are offered, in which order, and who
 * signs for each: sshconnect2.c pubkey_prepare() and sign_and_send_pubkey().
 *
 * - CertificateFile certificates first;
 * - then the agent's keys in the agent's order, those that are also
 *   identity files (or their `-cert.pub`) taking that place; with
 *   IdentitiesOnly the agent's other keys are left out;
 * - then the identity files (each followed by its `-cert.pub`) the agent
 *   does not hold.
 *
 * A certificate is signed by whoever holds its key: the agent when it holds
 * the certificate itself, else the first identity in that order with the
 * certified key (an agent key or a private key file). A key nobody can sign
 * with (a public half only, not in the agent) is not offered: it would only
 * spend one of the server's MaxAuthTries.
 *
 * Each candidate reaches ssh2 as a one-key agent (its BaseAgent), whose
 * sign() asks the real agent or signs with the private key.
 */
import ssh2, { type IdentityCallback, type ParsedKey, type SignCallback, type SigningRequestOptions } from 'ssh2';
import { errorMessage } from '../errors.js';
import { agentSign, type AgentIdentity } from './agentClient.js';
import type { SshIdentity } from './authentication.js';
import { describeCertificate, isCertificateType, parseCertificate, type OpenSshCertificate } from './certificates.js';
import { keyTypeOfBlob, sha256Fingerprint } from './knownHosts.js';

export type Signer = { kind: 'agent'; socket: string; blob: Buffer } | { kind: 'key'; key: ParsedKey };

export interface PublicKeyCandidate {
  /** A file, or `agent` with the key's comment. */
  source: string;
  /** What is offered: a public key or a certificate blob. */
  blob: Buffer;
  certificate?: OpenSshCertificate;
  signer: Signer;
}

interface Listed {
  source: string;
  blob: Buffer;
  /** The plain key: the blob itself, or a certificate's certified key. */
  plainBlob: Buffer;
  certificate?: OpenSshCertificate;
  /** Held by the agent (then it signs), else the private key if loaded. */
  agent: boolean;
  key?: ParsedKey;
}

function fromIdentity(identity: SshIdentity): Listed {
  if (identity.kind === 'certificate') {
    return { source: identity.source, blob: identity.blob, plainBlob: identity.certificate.publicKeyBlob, certificate: identity.certificate, agent: false };
  }
  return { source: identity.source, blob: identity.publicKeyBlob, plainBlob: identity.publicKeyBlob, agent: false, ...(identity.key === undefined ? {} : { key: identity.key }) };
}

function fromAgent(identity: AgentIdentity): Listed | null {
  const source = `agent${identity.comment === '' ? '' : ` (${identity.comment})`}`;
  if (!isCertificateType(keyTypeOfBlob(identity.blob))) return { source, blob: identity.blob, plainBlob: identity.blob, agent: true };
  try {
    const certificate = parseCertificate(identity.blob);
    return certificate.certType === 'user' ? { source, blob: identity.blob, plainBlob: certificate.publicKeyBlob, certificate, agent: true } : null;
  } catch {
    return null;
  }
}

/**
 * The candidates in OpenSSH's order. `agentKeys` null: no agent (or none
 * reachable). Pure, so that the order can be tested without servers.
 */
export function orderPublicKeyCandidates(
  files: readonly SshIdentity[],
  certificateFiles: readonly SshIdentity[],
  agentKeys: readonly AgentIdentity[] | null,
  options: { identitiesOnly: boolean; agentSocket?: string },
): PublicKeyCandidate[] {
  const remaining = files.map(fromIdentity);
  const ordered = certificateFiles.map(fromIdentity);
  const agentOnly: Listed[] = [];
  for (const agentKey of agentKeys ?? []) {
    const index = remaining.findIndex((file) => file.blob.equals(agentKey.blob));
    if (index !== -1) {
      const [file] = remaining.splice(index, 1);
      ordered.push({ ...file!, agent: true });
    } else if (!options.identitiesOnly) {
      const listed = fromAgent(agentKey);
      if (listed) agentOnly.push(listed);
    }
  }
  ordered.push(...agentOnly, ...remaining);

  const candidates: PublicKeyCandidate[] = [];
  const signerOf = (listed: Listed): Signer | undefined => {
    if (listed.agent && options.agentSocket !== undefined) return { kind: 'agent', socket: options.agentSocket, blob: listed.blob };
    return listed.key === undefined ? undefined : { kind: 'key', key: listed.key };
  };
  for (const listed of ordered) {
    if (candidates.some((candidate) => candidate.blob.equals(listed.blob))) continue;
    let signer = signerOf(listed);
    if (signer === undefined && listed.certificate !== undefined) {
      const holder = ordered.find((other) => other.certificate === undefined && other.plainBlob.equals(listed.plainBlob) && signerOf(other) !== undefined);
      if (holder !== undefined) signer = signerOf(holder);
    }
    if (signer === undefined) continue;
    candidates.push({ source: listed.source, blob: listed.blob, signer, ...(listed.certificate === undefined ? {} : { certificate: listed.certificate }) });
  }
  return candidates;
}

/** What the log says about a candidate: its source and fingerprint, and a certificate's key ID, principals and validity. */
export function describeCandidate(candidate: PublicKeyCandidate): Record<string, string> {
  const { certificate } = candidate;
  return {
    source: candidate.source,
    keyType: keyTypeOfBlob(candidate.blob) ?? 'unknown',
    fingerprint: sha256Fingerprint(certificate?.publicKeyBlob ?? candidate.blob),
    signedBy: candidate.signer.kind === 'agent' ? 'agent' : 'private key file',
    ...(certificate === undefined ? {} : { ...describeCertificate(certificate), ca: sha256Fingerprint(certificate.signatureKey) }),
  };
}

/** One candidate as an ssh2 agent: it lists that key and signs with its signer. */
export class CandidateAgent extends ssh2.BaseAgent<ParsedKey> {
  constructor(private readonly candidate: PublicKeyCandidate) {
    super();
  }

  override getIdentities(callback: IdentityCallback<ParsedKey>): void {
    const key = ssh2.utils.parseKey(this.candidate.blob);
    if (key instanceof Error) callback(key);
    else callback(null, [key]);
  }

  override sign(_key: ParsedKey, data: Buffer, options: SigningRequestOptions | SignCallback, callback?: SignCallback): void {
    const done = typeof options === 'function' ? options : callback!;
    const hash = typeof options === 'function' ? undefined : options.hash;
    const { signer } = this.candidate;
    if (signer.kind === 'agent') {
      agentSign(signer.socket, signer.blob, data, hash).then(
        (signature) => done(null, signature),
        (error: unknown) => done(new Error(`agent signature failed: ${errorMessage(error)}`)),
      );
      return;
    }
    const signature = signer.key.sign(data, hash);
    if (signature instanceof Error) done(signature);
    else done(null, signature);
  }
}
