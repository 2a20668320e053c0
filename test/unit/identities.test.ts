import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FtpfwdError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { Prompter, SshIdentity } from '../../src/ssh/authentication.js';
import { defaultIdentityFiles, loadIdentities, loadIdentity } from '../../src/ssh/identities.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

const PASSPHRASE = 'correct horse battery';
const WRONG_PASSPHRASE = 'incorrect donkey';

function sshKeygen(args: string[]): string {
  return execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Generates a key pair and returns the private key's path. */
function generate(dir: string, name: string, args: string[], passphrase = ''): string {
  const file = join(dir, name);
  sshKeygen(['-q', '-N', passphrase, '-C', name, '-f', file, ...args]);
  return file;
}

async function publicBlob(privateFile: string): Promise<Buffer> {
  const [, base64] = (await readFile(`${privateFile}.pub`, 'utf8')).split(' ');
  return Buffer.from(base64 ?? '', 'base64');
}

async function expectFtpfwdError(promise: Promise<unknown>, code: string): Promise<FtpfwdError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof FtpfwdError, `expected FtpfwdError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

let dir: string;
const files: Record<string, string> = {};

before(async () => {
  dir = await makeTempDir('ftpfwd-identities-');
  files['ed25519'] = generate(dir, 'id_ed25519', ['-t', 'ed25519']);
  files['ecdsa'] = generate(dir, 'id_ecdsa', ['-t', 'ecdsa', '-b', '256']);
  files['ecdsa384'] = generate(dir, 'id_ecdsa384', ['-t', 'ecdsa', '-b', '384']);
  files['rsa'] = generate(dir, 'id_rsa', ['-t', 'rsa', '-b', '2048']);
  files['rsaPem'] = generate(dir, 'id_rsa_pem', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']);
  files['ecdsaPem'] = generate(dir, 'id_ecdsa_pem', ['-t', 'ecdsa', '-b', '256', '-m', 'PEM']);
  files['ed25519Encrypted'] = generate(dir, 'id_ed25519_enc', ['-t', 'ed25519'], PASSPHRASE);
  files['rsaPemEncrypted'] = generate(dir, 'id_rsa_pem_enc', ['-t', 'rsa', '-b', '2048', '-m', 'PEM'], PASSPHRASE);
});

after(async () => {
  await removeDir(dir);
});

function file(name: string): string {
  const path = files[name];
  assert.ok(path !== undefined, `no key ${name}`);
  return path;
}

describe('loadIdentity', () => {
  const cases = [
    { title: 'ed25519 (OpenSSH format)', name: 'ed25519', type: 'ssh-ed25519' },
    { title: 'ecdsa p-256 (OpenSSH format)', name: 'ecdsa', type: 'ecdsa-sha2-nistp256' },
    { title: 'ecdsa p-384 (OpenSSH format)', name: 'ecdsa384', type: 'ecdsa-sha2-nistp384' },
    { title: 'rsa (OpenSSH format)', name: 'rsa', type: 'ssh-rsa' },
    { title: 'rsa (PEM)', name: 'rsaPem', type: 'ssh-rsa' },
    { title: 'ecdsa (PEM)', name: 'ecdsaPem', type: 'ecdsa-sha2-nistp256' },
    { title: 'encrypted ed25519 with its passphrase', name: 'ed25519Encrypted', type: 'ssh-ed25519', passphrase: PASSPHRASE },
    { title: 'encrypted PEM rsa with its passphrase', name: 'rsaPemEncrypted', type: 'ssh-rsa', passphrase: PASSPHRASE },
    {
      title: 'encrypted ed25519 with the passphrase as a Buffer',
      name: 'ed25519Encrypted',
      type: 'ssh-ed25519',
      passphrase: Buffer.from(PASSPHRASE),
    },
    { title: 'a passphrase for an unencrypted key is ignored', name: 'ed25519', type: 'ssh-ed25519', passphrase: 'unused' },
  ];
  for (const { title, name, type, passphrase } of cases) {
    it(title, async () => {
      const path = file(name);
      const identity = await loadIdentity(path, { passphrase });
      assert.equal(identity.path, path);
      assert.equal(identity.key.type, type);
      assert.ok(identity.key.isPrivateKey());
      assert.deepEqual(identity.publicKeyBlob, await publicBlob(path));
      const data = Buffer.from('session data to sign');
      assert.ok(identity.key.verify(data, identity.key.sign(data)));
    });
  }

  const refusals = [
    {
      title: 'encrypted OpenSSH key without a passphrase',
      name: 'ed25519Encrypted',
      passphrase: undefined,
      code: 'ERR_FTPFWD_AUTH',
      message: (path: string) => `identity file ${path} is encrypted; give its passphrase with --passphrase-file`,
    },
    {
      title: 'encrypted OpenSSH key with an empty passphrase',
      name: 'ed25519Encrypted',
      passphrase: '',
      code: 'ERR_FTPFWD_AUTH',
      message: (path: string) => `identity file ${path} is encrypted; give its passphrase with --passphrase-file`,
    },
    {
      title: 'encrypted PEM key without a passphrase',
      name: 'rsaPemEncrypted',
      passphrase: undefined,
      code: 'ERR_FTPFWD_AUTH',
      message: (path: string) => `identity file ${path} is encrypted; give its passphrase with --passphrase-file`,
    },
    {
      title: 'encrypted OpenSSH key with the wrong passphrase',
      name: 'ed25519Encrypted',
      passphrase: WRONG_PASSPHRASE,
      code: 'ERR_FTPFWD_AUTH',
      message: (path: string) => `wrong passphrase for identity file ${path}`,
    },
    {
      title: 'encrypted PEM key with the wrong passphrase',
      name: 'rsaPemEncrypted',
      passphrase: WRONG_PASSPHRASE,
      code: 'ERR_FTPFWD_AUTH',
      message: (path: string) => `wrong passphrase for identity file ${path}`,
    },
  ];
  for (const { title, name, passphrase, code, message } of refusals) {
    it(`refuses ${title}`, async () => {
      const path = file(name);
      const error = await expectFtpfwdError(loadIdentity(path, { passphrase }), code);
      assert.equal(error.message, message(path));
      assert.ok(!error.message.includes(WRONG_PASSPHRASE) && !error.message.includes(PASSPHRASE));
      assert.equal(error.details['path'], path);
    });
  }

  it('refuses a missing file, naming it', async () => {
    const path = join(dir, 'no_such_key');
    const error = await expectFtpfwdError(loadIdentity(path), 'ERR_FTPFWD_CONFIG');
    assert.equal(error.message, `identity file ${path} does not exist`);
  });

  it('refuses a file that is not a key, naming it', async () => {
    const path = join(dir, 'garbage');
    await writeFile(path, 'this is not a key\n');
    const error = await expectFtpfwdError(loadIdentity(path), 'ERR_FTPFWD_CONFIG');
    assert.ok(error.message.startsWith(`cannot use identity file ${path}: `), error.message);
    assert.ok(!error.message.includes('\n'));
  });

  it('refuses a public key given as an identity', async () => {
    const path = `${file('ed25519')}.pub`;
    const error = await expectFtpfwdError(loadIdentity(path), 'ERR_FTPFWD_CONFIG');
    assert.equal(error.message, `identity file ${path} does not contain a private key`);
  });

  it('refuses a directory', async () => {
    const path = join(dir, 'a_directory');
    await mkdir(path);
    const error = await expectFtpfwdError(loadIdentity(path), 'ERR_FTPFWD_CONFIG');
    assert.ok(error.message.startsWith(`cannot read identity file ${path}`), error.message);
  });
});

describe('defaultIdentityFiles', () => {
  it('lists the supported default files under ~/.ssh', () => {
    assert.deepEqual(defaultIdentityFiles('/home/user'), [
      '/home/user/.ssh/id_rsa',
      '/home/user/.ssh/id_ecdsa',
      '/home/user/.ssh/id_ed25519',
    ]);
  });

  it("keeps the order of OpenSSH's own defaults (ssh -G)", () => {
    const names = sshGIdentityNames();
    const ours = defaultIdentityFiles('/home/user').map((path) => basename(path));
    assert.deepEqual(
      names.filter((name) => ours.includes(name)),
      ours,
    );
  });
});

/** Basenames of the identity files `ssh -G` reports with no configuration file. */
function sshGIdentityNames(): string[] {
  const output = execFileSync('ssh', ['-G', '-F', '/dev/null', 'example.invalid'], { encoding: 'utf8' });
  return output
    .split('\n')
    .filter((line) => line.startsWith('identityfile '))
    .map((line) => basename(line.slice('identityfile '.length).trim()));
}

/** The type of a loaded private key; 'public only' or 'certificate' for the other identities. */
function privateKeyType(identity: SshIdentity): string {
  if (identity.kind === 'certificate') return 'certificate';
  return identity.key?.type ?? 'public only';
}

describe('loadIdentities', () => {
  let home: string;
  const quiet = { log: silentLogger() };
  const defaults = { explicit: false, mayPrompt: false };
  const named = { explicit: true, mayPrompt: true };

  before(async () => {
    home = join(dir, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true });
    await writeFile(join(home, '.ssh', 'id_ed25519'), await readFile(file('ed25519')));
    await writeFile(join(home, '.ssh', 'id_rsa'), await readFile(file('rsaPem')));
  });

  /** A prompter that answers each question from `answers` in turn and records the questions. */
  function scriptedPrompt(answers: Array<string | null>): { prompt: Prompter; asked: string[] } {
    const asked: string[] = [];
    const prompt: Prompter = async (request) => {
      asked.push(request.prompts.map((item) => item.prompt).join('|'));
      const answer = answers.shift();
      return answer === undefined || answer === null ? null : [answer];
    };
    return { prompt, asked };
  }

  it('skips missing default files and keeps the order of the rest', async () => {
    const identities = await loadIdentities(defaultIdentityFiles(home), defaults, quiet);
    assert.deepEqual(
      identities.map((identity) => [basename(identity.source), privateKeyType(identity)]),
      [
        ['id_rsa', 'ssh-rsa'],
        ['id_ed25519', 'ssh-ed25519'],
      ],
    );
  });

  it('returns nothing when no default file exists', async () => {
    assert.deepEqual(await loadIdentities(defaultIdentityFiles(join(dir, 'empty-home')), defaults, quiet), []);
  });

  it('loads named files in the given order, with the passphrase given beforehand', async () => {
    const identities = await loadIdentities([file('ecdsa'), file('ed25519Encrypted')], named, { ...quiet, passphrase: PASSPHRASE });
    assert.deepEqual(
      identities.map(privateKeyType),
      ['ecdsa-sha2-nistp256', 'ssh-ed25519'],
    );
  });

  it('fails on a missing named file', async () => {
    const missing = join(dir, 'typo_id_ed25519');
    const error = await expectFtpfwdError(loadIdentities([file('ed25519'), missing], named, quiet), 'ERR_FTPFWD_CONFIG');
    assert.equal(error.message, `identity file ${missing} does not exist`);
  });

  it('passes over an encrypted default file without a passphrase, never asking (an agent may hold that key)', async () => {
    const encryptedHome = join(dir, 'encrypted-home');
    await mkdir(join(encryptedHome, '.ssh'), { recursive: true });
    await writeFile(join(encryptedHome, '.ssh', 'id_ed25519'), await readFile(file('ed25519Encrypted')));
    const { prompt, asked } = scriptedPrompt([PASSPHRASE]);
    assert.deepEqual(await loadIdentities(defaultIdentityFiles(encryptedHome), defaults, { ...quiet, prompt }), []);
    assert.deepEqual(asked, []);
  });

  it('still fails on a named encrypted file without a passphrase and nobody to ask', async () => {
    await expectFtpfwdError(loadIdentities([file('ed25519Encrypted')], named, quiet), 'ERR_FTPFWD_AUTH');
  });

  it('asks for the passphrase of a named encrypted file until it is right, naming the file', async () => {
    const path = file('ed25519Encrypted');
    const { prompt, asked } = scriptedPrompt([WRONG_PASSPHRASE, PASSPHRASE]);
    const [identity] = await loadIdentities([path], named, { ...quiet, prompt });
    assert.equal(identity && privateKeyType(identity), 'ssh-ed25519');
    assert.deepEqual(asked, [`Enter passphrase for key '${path}': `, `Enter passphrase for key '${path}': `]);
  });

  it('gives up after three wrong passphrases, and when the person does not answer', async () => {
    const path = file('ed25519Encrypted');
    const wrong = scriptedPrompt([WRONG_PASSPHRASE, WRONG_PASSPHRASE, WRONG_PASSPHRASE, PASSPHRASE]);
    const error = await expectFtpfwdError(loadIdentities([path], named, { ...quiet, prompt: wrong.prompt }), 'ERR_FTPFWD_AUTH');
    assert.equal(error.message, `wrong passphrase for identity file ${path}`);
    assert.equal(wrong.asked.length, 3);
    const silent = scriptedPrompt([null]);
    await expectFtpfwdError(loadIdentities([path], named, { ...quiet, prompt: silent.prompt }), 'ERR_FTPFWD_AUTH');
  });
});
