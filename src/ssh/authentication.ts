import type { Logger } from 'pino';
import type { AnyAuthMethod, AuthHandlerMiddleware, AuthenticationType, ParsedKey, Prompt } from 'ssh2';
import { errorMessage } from '../errors.js';
import { listAgentIdentities, type AgentIdentity } from './agentClient.js';
import { certificateValidAt, type OpenSshCertificate } from './certificates.js';
import { CandidateAgent, describeCandidate, orderPublicKeyCandidates } from './publicKeys.js';

/** An identity file's key, or a certificate for one; `source` names the file (never the key itself). */
export type SshIdentity =
  /** `key` is absent when only the public half could be read: the private key is in an agent, or locked. */
  | { kind: 'key'; source: string; publicKeyBlob: Buffer; key?: ParsedKey }
  | { kind: 'certificate'; source: string; blob: Buffer; certificate: OpenSshCertificate };

export interface PromptRequest {
  /** Text from the server (keyboard-interactive) or our own question. */
  name: string;
  instructions: string;
  prompts: Array<{ prompt: string; echo: boolean }>;
}

/** Asks a person; resolves null when nobody can answer (no terminal, batch mode). */
export type Prompter = (request: PromptRequest) => Promise<string[] | null>;

export interface AuthOptions {
  username: string;
  /** Identity files (keys, public halves, their `-cert.pub`), in order. */
  identities: SshIdentity[];
  /** CertificateFile certificates, offered first. */
  certificates: SshIdentity[];
  /** ssh-agent socket path; its keys are tried as OpenSSH orders them (see publicKeys.ts). */
  agentSocket?: string;
  /** IdentitiesOnly: of the agent's keys, only those that are identity files. */
  identitiesOnly: boolean;
  publicKey: boolean;
  keyboardInteractive: boolean;
  password: boolean;
  /** A password given without a prompt (file or environment), used for password and keyboard-interactive. */
  knownPassword?: string;
  /** How to ask for what is missing; absent in batch mode. */
  prompt?: Prompter;
  /** How many times a person may type a password (OpenSSH's NumberOfPasswordPrompts). */
  passwordAttempts: number;
  /** For messages: `user@host:port`. */
  target: string;
}

/** What the handler has done so far: method names for the failure message, and the attempt under way. */
export interface AuthProgress {
  tried: string[];
  /** The method (and key) last offered: the one that succeeded once the connection is ready. */
  current?: { method: string; fields: Record<string, string> };
}

type Step = () => Promise<AnyAuthMethod | null>;
interface PlannedStep {
  method: AuthenticationType;
  /** The name the failure message lists. */
  name: string;
  step: Step;
  fields?: Record<string, string>;
}

/**
 * Builds ssh2's authHandler: the methods in OpenSSH's order (public keys
 * and certificates from the agent and the identity files, then
 * keyboard-interactive, then password), each offered only while the server
 * still lists it. The agent is asked for its keys when public-key
 * authentication is first reached, on every connection.
 */
export function createAuthHandler(options: AuthOptions, progress: AuthProgress, log: Logger): AuthHandlerMiddleware {
  const steps: Array<PlannedStep | 'public keys'> = [];
  const { username } = options;
  if (options.publicKey) steps.push('public keys');
  if (options.keyboardInteractive && (options.knownPassword !== undefined || options.prompt)) {
    steps.push({ method: 'keyboard-interactive', name: 'keyboard-interactive', step: async () => keyboardInteractive(options) });
  }
  if (options.password) {
    if (options.knownPassword !== undefined) {
      const password = options.knownPassword;
      steps.push({ method: 'password', name: 'password', step: async () => ({ type: 'password', username, password }) });
    } else if (options.prompt) {
      const prompt = options.prompt;
      for (let attempt = 0; attempt < options.passwordAttempts; attempt += 1) {
        steps.push({
          method: 'password',
          name: 'password',
          step: async () => {
            const answers = await prompt({ name: '', instructions: '', prompts: [{ prompt: `${options.target}'s password: `, echo: false }] });
            return answers?.[0] === undefined ? null : { type: 'password', username, password: answers[0] };
          },
        });
      }
    }
  }

  return (methodsLeft, _partialSuccess, next) => {
    // ssh2 takes `false` as "no more methods", which its typings omit.
    const nextOrStop = next as (method: AnyAuthMethod | false) => void;
    void (async () => {
      for (let entry = steps.shift(); entry !== undefined; entry = steps.shift()) {
        if (entry === 'public keys') {
          if (methodsLeft === null || methodsLeft.includes('publickey')) steps.unshift(...(await publicKeySteps(options, log)));
          continue;
        }
        // On the first call the server has not said what it accepts yet.
        if (methodsLeft !== null && !methodsLeft.includes(entry.method)) continue;
        const method = await entry.step();
        if (method === null) continue;
        if (!progress.tried.includes(entry.name)) progress.tried.push(entry.name);
        progress.current = { method: entry.method, fields: entry.fields ?? {} };
        if (entry.fields?.['keyId'] !== undefined) log.info(entry.fields, 'offering a certificate');
        else if (entry.fields !== undefined) log.debug(entry.fields, 'offering a public key');
        return nextOrStop(method);
      }
      return nextOrStop(false);
    })().catch((error: unknown) => {
      log.debug({ reason: errorMessage(error) }, 'authentication step failed');
      nextOrStop(false);
    });
  };
}

/** One step per key or certificate, in OpenSSH's order; the agent's list is read now. */
async function publicKeySteps(options: AuthOptions, log: Logger): Promise<PlannedStep[]> {
  let agentKeys: AgentIdentity[] | null = null;
  if (options.agentSocket !== undefined) {
    try {
      agentKeys = await listAgentIdentities(options.agentSocket);
      log.debug({ keys: agentKeys.length }, 'agent keys listed');
    } catch (error) {
      log.debug({ reason: errorMessage(error) }, 'no keys from the agent');
    }
  }
  const candidates = orderPublicKeyCandidates(options.identities, options.certificates, agentKeys, {
    identitiesOnly: options.identitiesOnly,
    ...(options.agentSocket === undefined ? {} : { agentSocket: options.agentSocket }),
  });
  const now = new Date();
  return candidates.map((candidate) => {
    const fields = describeCandidate(candidate);
    if (candidate.certificate !== undefined && !certificateValidAt(candidate.certificate, now)) {
      log.warn(fields, 'a certificate to be offered is not valid now; the server will refuse it');
    }
    return {
      method: 'publickey' as const,
      name: candidate.signer.kind === 'agent' ? 'agent' : 'publickey',
      fields,
      step: async (): Promise<AnyAuthMethod> => ({ type: 'agent', username: options.username, agent: new CandidateAgent(candidate) }),
    };
  });
}

function keyboardInteractive(options: AuthOptions): AnyAuthMethod {
  return {
    type: 'keyboard-interactive',
    username: options.username,
    prompt: (name: string, instructions: string, _lang: string, prompts: Prompt[], finish: (answers: string[]) => void) => {
      // The usual single "Password:" prompt is answered with a known
      // password, so scripts with --password-file work against PAM setups.
      if (options.knownPassword !== undefined && prompts.length === 1 && !prompts[0]!.echo) {
        finish([options.knownPassword]);
        return;
      }
      if (prompts.length === 0) {
        finish([]);
        return;
      }
      if (!options.prompt) {
        finish([]);
        return;
      }
      options
        .prompt({ name, instructions, prompts: prompts.map((p) => ({ prompt: p.prompt, echo: p.echo ?? false })) })
        .then(
          (answers) => finish(answers ?? []),
          () => finish([]),
        );
    },
  };
}
