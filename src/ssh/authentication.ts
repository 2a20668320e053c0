import type { AnyAuthMethod, AuthHandlerMiddleware, AuthenticationType, ParsedKey, Prompt } from 'ssh2';

export interface SshIdentity {
  /** Where the key came from, for messages (never the key itself). */
  source: string;
  key: ParsedKey;
}

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
  identities: SshIdentity[];
  /** ssh-agent socket path; tried before identity files, as OpenSSH does. */
  agentSocket?: string;
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

type Step = () => Promise<AnyAuthMethod | null>;

/**
 * Builds ssh2's authHandler: the methods in OpenSSH's order (agent and
 * public keys, then keyboard-interactive, then password), each offered only
 * while the server still lists it. `tried` collects the method names used,
 * for the error message when all fail.
 */
export function createAuthHandler(options: AuthOptions, tried: string[]): AuthHandlerMiddleware {
  const steps: Array<{ method: AuthenticationType; step: Step }> = [];
  const { username } = options;
  if (options.publicKey && options.agentSocket) {
    const agent = options.agentSocket;
    steps.push({ method: 'publickey', step: async () => ({ type: 'agent', username, agent }) });
  }
  if (options.publicKey) {
    for (const identity of options.identities) {
      steps.push({ method: 'publickey', step: async () => ({ type: 'publickey', username, key: identity.key }) });
    }
  }
  if (options.keyboardInteractive && (options.knownPassword !== undefined || options.prompt)) {
    steps.push({ method: 'keyboard-interactive', step: async () => keyboardInteractive(options) });
  }
  if (options.password) {
    if (options.knownPassword !== undefined) {
      const password = options.knownPassword;
      steps.push({ method: 'password', step: async () => ({ type: 'password', username, password }) });
    } else if (options.prompt) {
      const prompt = options.prompt;
      for (let attempt = 0; attempt < options.passwordAttempts; attempt += 1) {
        steps.push({
          method: 'password',
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
        // On the first call the server has not said what it accepts yet.
        if (methodsLeft !== null && !methodsLeft.includes(entry.method)) continue;
        const method = await entry.step();
        if (method === null) continue;
        const name = method.type === 'agent' ? 'agent' : method.type;
        if (!tried.includes(name)) tried.push(name);
        return nextOrStop(method);
      }
      return nextOrStop(false);
    })();
  };
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
