import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import type { SshIdentity } from '../../src/ssh/authentication.js';
import { checkHostCertificate, describeCertificate, parseCertificate } from '../../src/ssh/certificates.js';
import { checkHostKey, hostKeyAlgorithmsFor, parseKnownHosts } from '../../src/ssh/knownHosts.js';
import { orderPublicKeyCandidates } from '../../src/ssh/publicKeys.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

const NOW = new Date();

let dir: string;

function keygen(args: string[]): void {
  execFileSync('ssh-keygen', ['-q', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A new key pair in the test directory; returns the private key's path. */
function newKey(name: string, type: string[] = ['-t', 'ed25519']): string {
  const file = join(dir, name);
  keygen([...type, '-N', '', '-C', name, '-f', file]);
  return file;
}

/** `ssh-keygen -s ca`: certifies `key`.pub; returns the certificate blob. */
function certify(ca: string, key: string, args: string[]): Buffer {
  keygen(['-s', ca, ...args, `${key}.pub`]);
  return blobOf(`${key}-cert.pub`);
}

function blobOf(publicFile: string): Buffer {
  return Buffer.from(readFileSync(publicFile, 'utf8').trim().split(/\s+/)[1]!, 'base64');
}

function publicLine(publicFile: string): string {
  return readFileSync(publicFile, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
}

before(async () => {
  dir = await makeTempDir('ftpfwd-certificates-');
});
after(async () => {
  await removeDir(dir);
});

describe('OpenSSH certificates', () => {
  let ca: string;
  let rsaCa: string;
  let ecdsaCa: string;
  let host: string;

  before(() => {
    ca = newKey('ca');
    rsaCa = newKey('rsa_ca', ['-t', 'rsa', '-b', '2048']);
    ecdsaCa = newKey('ecdsa_ca', ['-t', 'ecdsa', '-b', '384']);
    host = newKey('host');
  });

  it('parses what ssh-keygen -s writes: type, key, serial, key ID, principals, validity', () => {
    const certificate = parseCertificate(certify(ca, host, ['-h', '-I', 'web-1', '-z', '42', '-n', 'web1.example.com,*.web.example.com', '-V', '20200101000000:20300101000000']));
    assert.equal(certificate.type, 'ssh-ed25519-cert-v01@openssh.com');
    assert.equal(certificate.certType, 'host');
    assert.deepEqual(certificate.publicKeyBlob, blobOf(`${host}.pub`));
    assert.deepEqual(certificate.signatureKey, blobOf(`${ca}.pub`));
    assert.deepEqual(describeCertificate(certificate), {
      keyId: 'web-1',
      serial: '42',
      principals: 'web1.example.com,*.web.example.com',
      validAfter: new Date(2020, 0, 1).toISOString().replace('.000Z', 'Z'),
      validBefore: new Date(2030, 0, 1).toISOString().replace('.000Z', 'Z'),
    });
  });

  const hostCases: Array<{ title: string; args: string[]; name: string; signer?: () => string; problem: RegExp | null }> = [
    { title: 'valid, listed principal', args: ['-h', '-n', 'web1.example.com', '-V', '-5m:+1h'], name: 'web1.example.com', problem: null },
    { title: 'a wildcard principal', args: ['-h', '-n', '*.example.com', '-V', '-5m:+1h'], name: 'web2.example.com', problem: null },
    { title: 'no principals: any host, as ssh accepts', args: ['-h', '-V', '-5m:+1h'], name: 'anything.test', problem: null },
    { title: 'principals compare with the lower-cased name', args: ['-h', '-n', 'web1.example.com', '-V', '-5m:+1h'], name: 'WEB1.example.com', problem: null },
    { title: 'signed by an RSA CA (rsa-sha2-512)', args: ['-h', '-n', 'h', '-V', '-5m:+1h'], name: 'h', signer: () => rsaCa, problem: null },
    { title: 'signed by an ECDSA P-384 CA', args: ['-h', '-n', 'h', '-V', '-5m:+1h'], name: 'h', signer: () => ecdsaCa, problem: null },
    { title: 'expired', args: ['-h', '-n', 'h', '-V', '20200101:20200102'], name: 'h', problem: /^it expired at 2020-01-02T/ },
    { title: 'not valid yet', args: ['-h', '-n', 'h', '-V', '+1d:+2d'], name: 'h', problem: /^it is not valid yet \(valid from / },
    { title: 'another principal', args: ['-h', '-n', 'other.example.com', '-V', '-5m:+1h'], name: 'h', problem: /^it is not valid for h \(principals: other\.example\.com\)$/ },
    { title: 'a user certificate', args: ['-n', 'h', '-V', '-5m:+1h'], name: 'h', problem: /user certificate, not a host certificate/ },
    { title: 'a critical option', args: ['-h', '-n', 'h', '-V', '-5m:+1h', '-O', 'force-command=true'], name: 'h', problem: /critical options/ },
  ];
  for (const { title, args, name, signer, problem } of hostCases) {
    it(`host certificate, ${title}`, () => {
      const key = newKey(`host-${title.replace(/\W+/g, '-')}`);
      const certificate = parseCertificate(certify(signer?.() ?? ca, key, ['-I', 'id', ...args]));
      const result = checkHostCertificate(certificate, name, NOW);
      if (problem === null) assert.equal(result, null);
      else assert.match(result ?? 'accepted', problem);
    });
  }

  it('a certificate whose signed bytes were changed does not verify', () => {
    const blob = Buffer.from(certify(ca, host, ['-h', '-I', 'id', '-n', 'h', '-V', '-5m:+1h']));
    const certificate = parseCertificate(Buffer.from(blob));
    // The key ID's last byte: still well-formed, no longer what the CA signed.
    const keyIdAt = blob.indexOf(Buffer.from('id')) + 1;
    blob[keyIdAt] = 'x'.charCodeAt(0);
    assert.match(checkHostCertificate(parseCertificate(blob), 'h', NOW) ?? '', /CA signature is not valid: the signature does not verify/);
    assert.equal(checkHostCertificate(certificate, 'h', NOW), null);
  });

  it('malformed blobs are errors that say so', () => {
    assert.throws(() => parseCertificate(blobOf(`${host}.pub`)), /malformed OpenSSH certificate: ssh-ed25519 is not a certificate type/);
    const blob = certify(ca, host, ['-h', '-I', 'id', '-V', '-5m:+1h']);
    assert.throws(() => parseCertificate(blob.subarray(0, blob.length - 3)), /malformed OpenSSH certificate: truncated/);
  });

  describe('in known_hosts (checkHostKey)', () => {
    let certificate: Buffer;
    let expired: Buffer;
    let plain: string;
    let otherCa: string;

    before(() => {
      certificate = certify(ca, host, ['-h', '-I', 'web', '-n', 'web.example.com', '-V', '-5m:+1h']);
      const old = newKey('old-host');
      expired = certify(ca, old, ['-h', '-I', 'old', '-n', 'web.example.com', '-V', '20200101:20200102']);
      plain = publicLine(`${old}.pub`);
      otherCa = newKey('other_ca');
    });

    const check = (lines: string[], blob: Buffer, name = 'web.example.com', port = 22) => checkHostKey(parseKnownHosts(lines.join('\n'), 'kh'), name, port, blob, NOW);

    it('a valid certificate from the listed CA is accepted', () => {
      const result = check([`@cert-authority *.example.com ${publicLine(`${ca}.pub`)}`], certificate);
      assert.equal(result.kind, 'certificate');
    });

    it('[host]:port patterns apply to @cert-authority lines too', () => {
      assert.equal(check([`@cert-authority [web.example.com]:2222 ${publicLine(`${ca}.pub`)}`], certificate, 'web.example.com', 2222).kind, 'certificate');
      assert.equal(check([`@cert-authority [web.example.com]:2222 ${publicLine(`${ca}.pub`)}`], certificate).kind, 'certificate-invalid');
    });

    it('a CA marked @revoked refuses it', () => {
      const result = check([`@cert-authority *.example.com ${publicLine(`${ca}.pub`)}`, `@revoked * ${publicLine(`${ca}.pub`)}`], certificate);
      assert.deepEqual([result.kind, result.kind === 'revoked' ? result.what : ''], ['revoked', 'CA']);
    });

    it('a @revoked certified key refuses it', () => {
      const result = check([`@cert-authority * ${publicLine(`${ca}.pub`)}`, `@revoked * ${publicLine(`${host}.pub`)}`], certificate);
      assert.deepEqual([result.kind, result.kind === 'revoked' ? result.what : ''], ['revoked', 'certified key']);
    });

    it('an expired one is refused, saying so, unless its key is on record as a plain key', () => {
      const result = check([`@cert-authority * ${publicLine(`${ca}.pub`)}`], expired);
      assert.equal(result.kind, 'certificate-invalid');
      assert.match(result.kind === 'certificate-invalid' ? result.reason : '', /expired/);
      assert.equal(check([`@cert-authority * ${publicLine(`${ca}.pub`)}`, `web.example.com ${plain}`], expired).kind, 'match');
    });

    it('one from a CA no line names is refused', () => {
      const result = check([`@cert-authority * ${publicLine(`${otherCa}.pub`)}`], certificate);
      assert.equal(result.kind, 'certificate-invalid');
      assert.match(result.kind === 'certificate-invalid' ? result.reason : '', /its CA is not one a @cert-authority line for this host names/);
    });

    it('certificate algorithms are asked for first only when a @cert-authority line covers the host', () => {
      const entries = parseKnownHosts([`@cert-authority *.example.com ${publicLine(`${ca}.pub`)}`, `other.test ${plain}`].join('\n'), 'kh');
      assert.deepEqual(hostKeyAlgorithmsFor(entries, 'web.example.com', 22, ['ssh-ed25519', 'rsa-sha2-256']).slice(0, 2), ['ssh-ed25519-cert-v01@openssh.com', 'ecdsa-sha2-nistp256-cert-v01@openssh.com']);
      assert.deepEqual(hostKeyAlgorithmsFor(entries, 'other.test', 22, ['rsa-sha2-256', 'ssh-ed25519']), ['ssh-ed25519', 'rsa-sha2-256']);
    });
  });
});

describe('which keys are offered, in which order (pubkey_prepare)', () => {
  const parse = (file: string) => ssh2.utils.parseKey(readFileSync(file)) as ssh2.ParsedKey;
  let keys: Record<'a' | 'b' | 'c', { file: string; blob: Buffer; certBlob: Buffer }>;
  const file = (name: 'a' | 'b' | 'c', withPrivate = true): SshIdentity => ({
    kind: 'key',
    source: keys[name].file,
    publicKeyBlob: keys[name].blob,
    ...(withPrivate ? { key: parse(keys[name].file) } : {}),
  });
  const cert = (name: 'a' | 'b' | 'c'): SshIdentity => ({ kind: 'certificate', source: `${keys[name].file}-cert.pub`, blob: keys[name].certBlob, certificate: parseCertificate(keys[name].certBlob) });
  const agent = (...names: Array<'a' | 'b' | 'c' | 'certA'>) => names.map((name) => ({ blob: name === 'certA' ? keys.a.certBlob : keys[name].blob, comment: name }));
  const names = (candidates: ReturnType<typeof orderPublicKeyCandidates>) =>
    candidates.map((candidate) => {
      const which = (['a', 'b', 'c'] as const).find((name) => candidate.blob.equals(keys[name].blob) || candidate.blob.equals(keys[name].certBlob))!;
      return `${candidate.certificate ? 'cert' : 'key'}-${which}/${candidate.signer.kind}`;
    });

  before(() => {
    const ca = newKey('order_ca');
    const make = (name: string) => {
      const path = newKey(`order_${name}`);
      return { file: path, blob: blobOf(`${path}.pub`), certBlob: certify(ca, path, ['-I', name, '-n', 'me', '-V', '-5m:+1h']) };
    };
    keys = { a: make('a'), b: make('b'), c: make('c') };
  });

  const socket = { agentSocket: '/run/agent' };

  it('CertificateFile first, then agent keys in agent order (files they hold take that place), then the other files', () => {
    const order = orderPublicKeyCandidates([file('a'), cert('a'), file('c')], [cert('b')], agent('c', 'b'), { identitiesOnly: false, ...socket });
    assert.deepEqual(names(order), ['cert-b/agent', 'key-c/agent', 'key-b/agent', 'key-a/key', 'cert-a/key']);
  });

  it('IdentitiesOnly: of the agent keys only the identity files', () => {
    const order = orderPublicKeyCandidates([file('c', false)], [], agent('a', 'b', 'c'), { identitiesOnly: true, ...socket });
    assert.deepEqual(names(order), ['key-c/agent']);
  });

  it('a public half nobody can sign with is not offered, nor a certificate without its key', () => {
    const order = orderPublicKeyCandidates([file('a', false), cert('b')], [], null, { identitiesOnly: false });
    assert.deepEqual(names(order), []);
  });

  it("an agent-held certificate is signed by the agent; a file certificate by the agent holding its key", () => {
    assert.deepEqual(names(orderPublicKeyCandidates([], [], agent('certA'), { identitiesOnly: false, ...socket })), ['cert-a/agent']);
    assert.deepEqual(names(orderPublicKeyCandidates([cert('a')], [], agent('a'), { identitiesOnly: false, ...socket })), ['key-a/agent', 'cert-a/agent']);
  });
});
