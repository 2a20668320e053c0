import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { FtpfwdError } from '../../src/errors.js';
import {
  createHostKeyVerifier,
  parseStrictHostKeyChecking,
  readKnownHostsFiles,
  toSsh2HostVerifier,
  type HostKeyAcceptedInfo,
  type StrictHostKeyCheckingSetting,
} from '../../src/ssh/hostKeyVerifier.js';
import {
  checkHostKey,
  formatKnownHostsLine,
  hostKeyLookupName,
  knownKeyTypesForHost,
  parseKnownHosts,
  parseKnownHostsWithWarnings,
  preferKnownHostKeyAlgorithms,
  sha256Fingerprint,
  type HostKeyCheckResult,
  type KnownHostsEntry,
} from '../../src/ssh/knownHosts.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

interface HostKey {
  privateFile: string;
  publicFile: string;
  type: string;
  base64: string;
  blob: Buffer;
  /** `type base64`, the tail of a known_hosts line. */
  entry: string;
}

function sshKeygen(args: string[]): string {
  return execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function generateHostKey(dir: string, name: string, args: string[]): Promise<HostKey> {
  const privateFile = join(dir, name);
  sshKeygen(['-q', '-N', '', '-C', name, '-f', privateFile, ...args]);
  const publicFile = `${privateFile}.pub`;
  const [type, base64] = (await readFile(publicFile, 'utf8')).trim().split(' ');
  assert.ok(type !== undefined && base64 !== undefined);
  return { privateFile, publicFile, type, base64, blob: Buffer.from(base64, 'base64'), entry: `${type} ${base64}` };
}

/** Whether `ssh-keygen -F name -f file` finds an entry. */
function sshKeygenFinds(file: string, name: string): boolean {
  const result = spawnSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' });
  return result.status === 0 && result.stdout.includes('found: line');
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

function lineOf(result: HostKeyCheckResult): number | undefined {
  return 'entry' in result ? result.entry?.line : undefined;
}

let dir: string;
let edA: HostKey;
let edB: HostKey;
let rsaA: HostKey;
let ecA: HostKey;

before(async () => {
  dir = await makeTempDir('ftpfwd-known-hosts-');
  [edA, edB, rsaA, ecA] = await Promise.all([
    generateHostKey(dir, 'ed_a', ['-t', 'ed25519']),
    generateHostKey(dir, 'ed_b', ['-t', 'ed25519']),
    generateHostKey(dir, 'rsa_a', ['-t', 'rsa', '-b', '2048']),
    generateHostKey(dir, 'ec_a', ['-t', 'ecdsa', '-b', '256']),
  ]);
});

after(async () => {
  await removeDir(dir);
});

describe('sha256Fingerprint', () => {
  it('equals ssh-keygen -lf for each key type', () => {
    for (const key of [edA, edB, rsaA, ecA]) {
      const printed = sshKeygen(['-lf', key.publicFile]).split(' ')[1];
      assert.equal(sha256Fingerprint(key.blob), printed, key.type);
    }
  });
});

describe('hostKeyLookupName', () => {
  const cases = [
    { title: 'port 22 is the bare name', host: 'example.com', port: 22, expected: 'example.com' },
    { title: 'other ports use brackets', host: '127.0.0.1', port: 2222, expected: '[127.0.0.1]:2222' },
    { title: 'IPv6 with a port', host: '::1', port: 2222, expected: '[::1]:2222' },
    { title: 'IPv6 on port 22', host: '::1', port: 22, expected: '::1' },
    { title: 'names are lowercased', host: 'Example.COM', port: 22, expected: 'example.com' },
  ];
  for (const { title, host, port, expected } of cases) {
    it(title, () => assert.equal(hostKeyLookupName(host, port), expected));
  }
});

describe('parseKnownHosts and checkHostKey', () => {
  const file = '/home/user/.ssh/known_hosts';
  let lines: string[];
  let entries: KnownHostsEntry[];

  before(() => {
    lines = [
      '# known hosts for the tests', // 1
      '', // 2
      `example.com,192.0.2.10 ${edA.entry}`, // 3
      `[127.0.0.1]:2222 ${edA.entry} added by hand`, // 4
      `*.wild.test,!bad.wild.test ${edA.entry}`, // 5
      `changed.test ${edB.entry}`, // 6
      `rsaonly.test ${rsaA.entry}`, // 7
      `@revoked revoked.test ${edA.entry}`, // 8
      `revoked.test ${edA.entry}`, // 9
      `@cert-authority *.ca.test ${edB.entry}`, // 10
      `multi.test ${edB.entry}`, // 11
      `multi.test ${edA.entry}`, // 12
      `host?.q.test ${edA.entry}`, // 13
      `  \t# an indented comment`, // 14
      'onlyonefield', // 15: malformed
      'broken.test ssh-ed25519 !!!notbase64', // 16: malformed
      `mismatch.test ssh-rsa ${edA.base64}`, // 17: malformed, type differs from the key's own
      `@bogus bogus.test ${edA.entry}`, // 18: malformed
      `|1|bad|bad ${edA.entry}`, // 19: malformed
      'truncated.test ssh-ed25519', // 20: malformed
      `crlf.test ${edA.entry}\r`, // 21
      `ecdsa.test\t${ecA.entry}`, // 22
      `mixed.test ${rsaA.entry}`, // 23
      `mixed.test ${edB.entry}`, // 24
      `ca-and-plain.ca.test ${edA.entry}`, // 25
      `@revoked othertype.test ${edA.entry}`, // 26
      `othertype.test ${rsaA.entry}`, // 27
    ];
    entries = parseKnownHosts(lines.join('\n'), file);
  });

  it('keeps file, line, marker, hosts, type, key and comment', () => {
    const entry = entries.find((candidate) => candidate.line === 4);
    assert.ok(entry !== undefined);
    assert.equal(entry.file, file);
    assert.equal(entry.marker, 'none');
    assert.deepEqual(entry.hosts, { kind: 'patterns', patterns: [{ pattern: '[127.0.0.1]:2222', negated: false }] });
    assert.equal(entry.keyType, 'ssh-ed25519');
    assert.deepEqual(entry.keyBlob, edA.blob);
    assert.equal(entry.comment, 'added by hand');

    assert.equal(entries.find((candidate) => candidate.line === 8)?.marker, 'revoked');
    assert.equal(entries.find((candidate) => candidate.line === 10)?.marker, 'cert-authority');
    assert.deepEqual(entries.find((candidate) => candidate.line === 5)?.hosts, {
      kind: 'patterns',
      patterns: [
        { pattern: '*.wild.test', negated: false },
        { pattern: 'bad.wild.test', negated: true },
      ],
    });
  });

  it('skips blank, comment and malformed lines, reporting the malformed ones', () => {
    const { warnings } = parseKnownHostsWithWarnings(lines.join('\n'), file);
    assert.deepEqual(
      warnings.map((warning) => warning.line),
      [15, 16, 17, 18, 19, 20],
    );
    for (const warning of warnings) {
      assert.equal(warning.file, file);
      assert.ok(warning.reason.length > 0);
    }
    const parsedLines = entries.map((entry) => entry.line);
    for (const skipped of [1, 2, 14, 15, 16, 17, 18, 19, 20]) assert.ok(!parsedLines.includes(skipped));
  });

  const cases: { title: string; host: string; port: number; key: () => HostKey; kind: string; line?: number }[] = [
    { title: 'plain name', host: 'example.com', port: 22, key: () => edA, kind: 'match', line: 3 },
    { title: 'second name in the list', host: '192.0.2.10', port: 22, key: () => edA, kind: 'match', line: 3 },
    { title: 'names compare case-insensitively', host: 'EXAMPLE.com', port: 22, key: () => edA, kind: 'match', line: 3 },
    { title: '[host]:port entry', host: '127.0.0.1', port: 2222, key: () => edA, kind: 'match', line: 4 },
    { title: '[host]:port entry does not cover port 22', host: '127.0.0.1', port: 22, key: () => edA, kind: 'unknown' },
    { title: 'plain entry does not cover another port', host: 'example.com', port: 2222, key: () => edA, kind: 'unknown' },
    { title: 'wildcard', host: 'a.wild.test', port: 22, key: () => edA, kind: 'match', line: 5 },
    { title: 'wildcard spans dots', host: 'deep.sub.wild.test', port: 22, key: () => edA, kind: 'match', line: 5 },
    { title: 'negated pattern excludes', host: 'bad.wild.test', port: 22, key: () => edA, kind: 'unknown' },
    { title: 'wildcard needs its prefix', host: 'wild.test', port: 22, key: () => edA, kind: 'unknown' },
    { title: '? matches one character', host: 'host1.q.test', port: 22, key: () => edA, kind: 'match', line: 13 },
    { title: '? matches only one character', host: 'host12.q.test', port: 22, key: () => edA, kind: 'unknown' },
    { title: 'same type, other key', host: 'changed.test', port: 22, key: () => edA, kind: 'changed', line: 6 },
    { title: 'only another key type known: changed, as OpenSSH says', host: 'rsaonly.test', port: 22, key: () => edA, kind: 'changed', line: 7 },
    { title: 'RSA key', host: 'rsaonly.test', port: 22, key: () => rsaA, kind: 'match', line: 7 },
    { title: 'ECDSA key, tab separated', host: 'ecdsa.test', port: 22, key: () => ecA, kind: 'match', line: 22 },
    { title: '@revoked wins over a match', host: 'revoked.test', port: 22, key: () => edA, kind: 'revoked', line: 8 },
    { title: '@revoked with another key is ignored', host: 'revoked.test', port: 22, key: () => edB, kind: 'changed', line: 9 },
    { title: '@revoked wins over unknown', host: 'othertype.test', port: 22, key: () => edA, kind: 'revoked', line: 26 },
    { title: '@cert-authority, but a plain key', host: 'x.ca.test', port: 22, key: () => edA, kind: 'certificate-expected', line: 10 },
    { title: 'plain key beside @cert-authority', host: 'ca-and-plain.ca.test', port: 22, key: () => edA, kind: 'match', line: 25 },
    { title: 'any matching entry accepts', host: 'multi.test', port: 22, key: () => edA, kind: 'match', line: 12 },
    { title: 'first matching entry', host: 'multi.test', port: 22, key: () => edB, kind: 'match', line: 11 },
    { title: 'changed beside another type', host: 'mixed.test', port: 22, key: () => edA, kind: 'changed', line: 24 },
    { title: 'CRLF line', host: 'crlf.test', port: 22, key: () => edA, kind: 'match', line: 21 },
    { title: 'malformed lines never match', host: 'mismatch.test', port: 22, key: () => edA, kind: 'unknown' },
    { title: 'unknown host', host: 'nowhere.test', port: 22, key: () => edA, kind: 'unknown' },
  ];
  for (const { title, host, port, key, kind, line } of cases) {
    it(`${title}: ${hostKeyLookupName(host, port)} -> ${kind}`, () => {
      const result = checkHostKey(entries, host, port, key().blob);
      assert.equal(result.kind, kind);
      assert.equal(lineOf(result), line);
    });
  }


  it('lists the key types known for a host, for host key algorithm preference', () => {
    assert.deepEqual(knownKeyTypesForHost(entries, 'mixed.test', 22), ['ssh-rsa', 'ssh-ed25519']);
    assert.deepEqual(knownKeyTypesForHost(entries, 'othertype.test', 22), ['ssh-rsa']);
    assert.deepEqual(
      preferKnownHostKeyAlgorithms(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256'], ['ssh-rsa']),
      ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-ed25519', 'ecdsa-sha2-nistp256'],
    );
  });
});

describe('hashed entries made by ssh-keygen -H', () => {
  let entries: KnownHostsEntry[];

  before(async () => {
    const file = join(dir, 'hashed_known_hosts');
    await writeFile(file, `hashed.test ${edA.entry}\n[hashed.test]:2200 ${edA.entry}\n`);
    sshKeygen(['-H', '-f', file]);
    const text = await readFile(file, 'utf8');
    for (const line of text.trim().split('\n')) assert.match(line, /^\|1\|/);
    entries = parseKnownHosts(text, file);
    assert.equal(entries.length, 2);
  });

  const cases = [
    { title: 'host on port 22', host: 'hashed.test', port: 22, kind: 'match', line: 1 },
    { title: '[host]:port', host: 'hashed.test', port: 2200, kind: 'match', line: 2 },
    { title: 'name is lowercased before hashing', host: 'Hashed.TEST', port: 22, kind: 'match', line: 1 },
    { title: 'other port', host: 'hashed.test', port: 2201, kind: 'unknown' },
    { title: 'other host', host: 'unhashed.test', port: 22, kind: 'unknown' },
  ];
  for (const { title, host, port, kind, line } of cases) {
    it(title, () => {
      const result = checkHostKey(entries, host, port, edA.blob);
      assert.equal(result.kind, kind);
      assert.equal(lineOf(result), line);
    });
  }

  it('detects a changed key behind a hashed name', () => {
    const result = checkHostKey(entries, 'hashed.test', 2200, edB.blob);
    assert.equal(result.kind, 'changed');
    assert.equal(lineOf(result), 2);
  });
});

describe('formatKnownHostsLine', () => {
  it('writes [host]:port, type and key', () => {
    assert.equal(formatKnownHostsLine('127.0.0.1', 2222, edA.blob), `[127.0.0.1]:2222 ssh-ed25519 ${edA.base64}`);
    assert.equal(formatKnownHostsLine('Example.com', 22, rsaA.blob), `example.com ssh-rsa ${rsaA.base64}`);
  });

  it('writes hashed lines that ssh-keygen -F and checkHostKey both find', async () => {
    const file = join(dir, 'formatted_hashed');
    const salt = Buffer.alloc(20, 7);
    const text = [
      formatKnownHostsLine('127.0.0.1', 2222, edA.blob, { hashed: true }),
      formatKnownHostsLine('plain22.test', 22, ecA.blob, { hashed: true, salt }),
    ].join('\n');
    await writeFile(file, `${text}\n`);
    assert.ok(sshKeygenFinds(file, '[127.0.0.1]:2222'));
    assert.ok(sshKeygenFinds(file, 'plain22.test'));
    assert.ok(!sshKeygenFinds(file, '127.0.0.1'));
    const entries = parseKnownHosts(text, file);
    assert.equal(checkHostKey(entries, '127.0.0.1', 2222, edA.blob).kind, 'match');
    assert.equal(checkHostKey(entries, 'plain22.test', 22, ecA.blob).kind, 'match');
    assert.match(text.split('\n')[1] ?? '', new RegExp(`^\\|1\\|${salt.toString('base64').replace(/[+/]/g, '\\$&')}\\|`));
  });
});

describe('parseStrictHostKeyChecking', () => {
  const cases = [
    { text: 'yes', expected: 'yes' },
    { text: 'Yes', expected: 'yes' },
    { text: 'true', expected: 'yes' },
    { text: 'ask', expected: 'yes' },
    { text: 'accept-new', expected: 'accept-new' },
    { text: 'no', expected: 'no' },
    { text: 'off', expected: 'no' },
    { text: 'false', expected: 'no' },
  ];
  for (const { text, expected } of cases) {
    it(`${text} -> ${expected}`, () => assert.equal(parseStrictHostKeyChecking(text), expected));
  }
  it('refuses other values', () => {
    assert.throws(
      () => parseStrictHostKeyChecking('maybe'),
      (error: unknown) => error instanceof FtpfwdError && error.code === 'ERR_FTPFWD_CONFIG',
    );
  });
});

describe('createHostKeyVerifier', () => {
  let verifierDir: string;
  let knownHosts: string;
  let counter = 0;

  before(async () => {
    verifierDir = join(dir, 'verifier');
    await mkdir(verifierDir);
    knownHosts = join(verifierDir, 'known_hosts');
    await writeFile(
      knownHosts,
      [
        `[127.0.0.1]:2222 ${edA.entry}`, // 1
        `@revoked [127.0.0.1]:2223 ${edA.entry}`, // 2
        `@cert-authority [127.0.0.1]:2224 ${edB.entry}`, // 3
        `[127.0.0.1]:2225 ${rsaA.entry}`, // 4
        'not a valid line', // 5
        `[127.0.0.1]:2226 ${edB.entry}`, // 6
        '',
      ].join('\n'),
    );
  });

  function freshPath(...parts: string[]): string {
    counter += 1;
    return join(verifierDir, `case${counter}`, ...parts);
  }

  function verifierFor(port: number, strict: StrictHostKeyCheckingSetting, files: string[] = [knownHosts]) {
    const accepted: HostKeyAcceptedInfo[] = [];
    const warnings: number[] = [];
    const verifier = createHostKeyVerifier({
      host: '127.0.0.1',
      port,
      knownHostsFiles: files,
      strict,
      onAccepted: (info) => accepted.push(info),
      onWarning: (warning) => warnings.push(warning.line),
    });
    return { verifier, accepted, warnings };
  }

  it('accepts a known key under yes and reports where it is recorded', async () => {
    const { verifier, accepted, warnings } = verifierFor(2222, 'yes');
    await verifier.verify(edA.blob);
    assert.equal(accepted.length, 1);
    assert.deepEqual(
      { outcome: accepted[0]?.outcome, file: accepted[0]?.file, line: accepted[0]?.line },
      { outcome: 'known', file: knownHosts, line: 1 },
    );
    assert.equal(accepted[0]?.fingerprint, sha256Fingerprint(edA.blob));
    assert.deepEqual(warnings, [5]);
  });

  for (const strict of ['yes', 'ask'] as const) {
    it(`refuses an unknown key under ${strict} with a one-line message`, async () => {
      const { verifier, accepted } = verifierFor(2299, strict);
      const error = await expectFtpfwdError(verifier.verify(edA.blob), 'ERR_FTPFWD_HOST_KEY_UNKNOWN');
      assert.equal(
        error.message,
        `host key for [127.0.0.1]:2299 is not known (ssh-ed25519 ${sha256Fingerprint(edA.blob)}); ` +
          `add it to ${knownHosts} or use -o StrictHostKeyChecking=accept-new`,
      );
      assert.deepEqual(
        { fingerprint: error.details['fingerprint'], keyType: error.details['keyType'] },
        { fingerprint: sha256Fingerprint(edA.blob), keyType: 'ssh-ed25519' },
      );
      assert.equal(accepted.length, 0);
    });
  }

  for (const strict of ['yes', 'accept-new', 'no', 'off'] as const) {
    it(`refuses a changed key under ${strict}, naming file:line`, async () => {
      const { verifier } = verifierFor(2226, strict);
      const error = await expectFtpfwdError(verifier.verify(edA.blob), 'ERR_FTPFWD_HOST_KEY_CHANGED');
      assert.ok(error.message.includes(`${knownHosts}:6`), error.message);
      assert.ok(error.message.includes(sha256Fingerprint(edA.blob)), error.message);
      assert.ok(!error.message.includes('\n'));
      assert.equal(error.details['line'], 6);
      assert.equal(error.details['fingerprint'], sha256Fingerprint(edA.blob));
    });

    it(`refuses a revoked key under ${strict}`, async () => {
      const { verifier } = verifierFor(2223, strict);
      const error = await expectFtpfwdError(verifier.verify(edA.blob), 'ERR_FTPFWD_HOST_KEY_REVOKED');
      assert.ok(error.message.includes(`${knownHosts}:2`), error.message);
    });
  }

  it('refuses a plain key for a @cert-authority host unless checking is off', async () => {
    const error = await expectFtpfwdError(verifierFor(2224, 'accept-new').verifier.verify(edA.blob), 'ERR_FTPFWD_HOST_KEY_UNKNOWN');
    assert.ok(error.message.includes('@cert-authority'), error.message);
    await verifierFor(2224, 'no').verifier.verify(edA.blob);
  });

  it('reports a key of a type not on record as changed, as OpenSSH does, even under accept-new and no', async () => {
    const before = await readFile(knownHosts, 'utf8');
    for (const strict of ['accept-new', 'no'] as const) {
      const error = await expectFtpfwdError(verifierFor(2225, strict).verifier.verify(edA.blob), 'ERR_FTPFWD_HOST_KEY_CHANGED');
      assert.ok(error.message.includes(`has changed: the server sent ssh-ed25519`), error.message);
      assert.ok(error.message.includes(`${knownHosts}:4 records ssh-rsa`), error.message);
    }
    assert.equal(await readFile(knownHosts, 'utf8'), before);
  });

  it('accept-new from eight verifiers at once appends one line', async () => {
    const file = freshPath('concurrent', 'known_hosts');
    await Promise.all(Array.from({ length: 8 }, () => verifierFor(2240, 'accept-new', [file]).verifier.verify(edB.blob)));
    assert.equal((await readFile(file, 'utf8')).split('\n').filter((line) => line !== '').length, 1);
  });

  it('accept-new adds an unknown key to the first file, creating it 0600 in a 0700 directory', async () => {
    const file = freshPath('.ssh', 'known_hosts');
    const { verifier, accepted } = verifierFor(2222, 'accept-new', [file, knownHosts]);
    // knownHosts has edA for port 2222; present edB on a port nobody knows instead.
    const other = verifierFor(2230, 'accept-new', [file, knownHosts]);
    await other.verifier.verify(edB.blob);
    assert.deepEqual(
      other.accepted.map((info) => [info.outcome, info.file]),
      [['added', file]],
    );
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(file, '..'))).mode & 0o777, 0o700);
    assert.equal(await readFile(file, 'utf8'), `[127.0.0.1]:2230 ssh-ed25519 ${edB.base64}\n`);
    assert.ok(sshKeygenFinds(file, '[127.0.0.1]:2230'));

    // The key now matches; known entries in later files are still used.
    await other.verifier.verify(edB.blob);
    assert.equal(other.accepted[1]?.outcome, 'known');
    await verifier.verify(edA.blob);
    assert.deepEqual(
      accepted.map((info) => [info.outcome, info.file, info.line]),
      [['known', knownHosts, 1]],
    );
  });

  it("accept-new writes a line that ssh-keygen -F '[127.0.0.1]:2222' finds, after a last line without newline", async () => {
    const file = freshPath('known_hosts');
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, `# no trailing newline`);
    await verifierFor(2222, 'accept-new', [file]).verifier.verify(edA.blob);
    assert.equal(await readFile(file, 'utf8'), `# no trailing newline\n[127.0.0.1]:2222 ssh-ed25519 ${edA.base64}\n`);
    assert.ok(sshKeygenFinds(file, '[127.0.0.1]:2222'));
  });

  it('accept-new writes hashed names when asked', async () => {
    const file = freshPath('known_hosts');
    const verifier = createHostKeyVerifier({
      host: '127.0.0.1',
      port: 2222,
      knownHostsFiles: [file],
      strict: 'accept-new',
      hashKnownHosts: true,
    });
    await verifier.verify(edA.blob);
    const text = await readFile(file, 'utf8');
    assert.match(text, /^\|1\|[^ ]+ ssh-ed25519 /);
    assert.ok(sshKeygenFinds(file, '[127.0.0.1]:2222'));
    await verifier.verify(edA.blob);
    assert.equal(await readFile(file, 'utf8'), text);
  });

  for (const strict of ['no', 'off'] as const) {
    it(`${strict} accepts an unknown key without writing anything`, async () => {
      const file = freshPath('known_hosts');
      const { verifier, accepted } = verifierFor(2222, strict, [file]);
      await verifier.verify(edA.blob);
      assert.deepEqual(
        accepted.map((info) => info.outcome),
        ['unchecked'],
      );
      await assert.rejects(stat(join(file, '..')), { code: 'ENOENT' });
    });
  }

  it('treats missing files as empty', async () => {
    const parsed = await readKnownHostsFiles([freshPath('missing'), knownHosts, freshPath('also-missing')]);
    assert.equal(parsed.entries.length, 5);
    await verifierFor(2222, 'yes', [freshPath('missing'), knownHosts]).verifier.verify(edA.blob);
  });

  it('refuses an unknown key when no file is configured', async () => {
    const error = await expectFtpfwdError(verifierFor(2222, 'accept-new', []).verifier.verify(edA.blob), 'ERR_FTPFWD_HOST_KEY_UNKNOWN');
    assert.ok(error.message.includes('no known_hosts file'), error.message);
  });
});

describe('toSsh2HostVerifier', () => {
  function answer(
    verify: (key: Buffer) => Promise<void>,
    key: Buffer,
  ): Promise<{ valid: boolean; errors: FtpfwdError[]; errorsBeforeAnswer: number }> {
    return new Promise((resolve) => {
      const errors: FtpfwdError[] = [];
      const hostVerifier = toSsh2HostVerifier({ verify }, (error) => errors.push(error));
      hostVerifier(key, (valid) => resolve({ valid, errors, errorsBeforeAnswer: errors.length }));
    });
  }

  it('answers true when the key is accepted', async () => {
    const result = await answer(async () => {}, edA.blob);
    assert.deepEqual(result, { valid: true, errors: [], errorsBeforeAnswer: 0 });
  });

  it('reports the precise error before answering false', async () => {
    const refusal = new FtpfwdError('ERR_FTPFWD_HOST_KEY_CHANGED', 'changed');
    const result = await answer(() => Promise.reject(refusal), edA.blob);
    assert.equal(result.valid, false);
    assert.equal(result.errorsBeforeAnswer, 1);
    assert.equal(result.errors[0], refusal);
  });

  it('wraps unexpected failures', async () => {
    const result = await answer(() => Promise.reject(new Error('boom')), edA.blob);
    assert.equal(result.valid, false);
    assert.equal(result.errors[0]?.code, 'ERR_FTPFWD_SSH');
  });

  describe('in a real ssh2 handshake', () => {
    let server: ssh2.Server;
    let port: number;

    before(async () => {
      server = new ssh2.Server({ hostKeys: [await readFile(edA.privateFile)] }, (client) => {
        client.on('authentication', (context) => context.accept());
        client.on('error', () => {});
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      port = (server.address() as AddressInfo).port;
    });

    after(() => {
      server.close();
    });

    async function connect(knownHostsLine: string): Promise<{ outcome: string; reported: FtpfwdError[] }> {
      const file = join(dir, `handshake_known_hosts_${knownHostsLine.length}_${Date.now()}`);
      await writeFile(file, `${knownHostsLine}\n`);
      const verifier = createHostKeyVerifier({ host: '127.0.0.1', port, knownHostsFiles: [file], strict: 'yes' });
      const reported: FtpfwdError[] = [];
      const client = new ssh2.Client();
      const outcome = new Promise<string>((resolve) => {
        client.on('ready', () => resolve('ready'));
        client.on('error', (error) => resolve(`error: ${error.message}`));
      });
      client.connect({
        host: '127.0.0.1',
        port,
        username: 'tester',
        readyTimeout: 5000,
        hostVerifier: toSsh2HostVerifier(verifier, (error) => reported.push(error)),
      });
      const result = await outcome;
      client.end();
      return { outcome: result, reported };
    }

    it('completes the handshake for a known key', async () => {
      const { outcome, reported } = await connect(formatKnownHostsLine('127.0.0.1', port, edA.blob));
      assert.equal(outcome, 'ready');
      assert.deepEqual(reported, []);
    });

    it('aborts the handshake for a changed key and reports why', async () => {
      const { outcome, reported } = await connect(formatKnownHostsLine('127.0.0.1', port, edB.blob));
      assert.match(outcome, /^error: /);
      assert.equal(reported.length, 1);
      assert.equal(reported[0]?.code, 'ERR_FTPFWD_HOST_KEY_CHANGED');
      assert.equal(reported[0]?.details['fingerprint'], sha256Fingerprint(edA.blob));
    });
  });
});
