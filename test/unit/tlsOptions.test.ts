import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { toTlsSettings, type TlsCliOptions } from '../../src/cli/tlsOptions.js';
import { FtpfwdError } from '../../src/errors.js';
import { resolveTls, type ForwarderOptions } from '../../src/forwarder.js';
import { resolveClientTls, resolveServerTls } from '../../src/session/tlsSettings.js';
import type { ListenerSpec } from '../../src/tunnel.js';
import { createTestCa, type IssuedCertificate, type TestCa } from '../helpers/certificates.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

const forward: ListenerSpec[] = [{ kind: 'ftp', forward: { bindAddress: '127.0.0.1', bindPort: 0, ftpHost: 'ftp.internal', ftpPort: 21 } }];
const bridgeOnly: ListenerSpec[] = [{ kind: 'sftp', listener: { bindAddress: '127.0.0.1', bindPort: 0 } }];
const PIN_HEX = 'AB:'.repeat(31) + 'AB';

function refusedWith(code: string, message: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof FtpfwdError, `expected an FtpfwdError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  };
}

describe('toTlsSettings: the command line TLS options', () => {
  let dir: string;
  let ca: TestCa;
  let cert: IssuedCertificate;
  before(async () => {
    dir = await makeTempDir('ftpfwd-tls-options-');
    ca = await createTestCa(join(dir, 'ca'));
    cert = await ca.issue({ name: 'ftpfwd', dnsNames: ['ftpfwd.test'] });
  });
  after(() => removeDir(dir));

  const options = (more: Partial<TlsCliOptions>): TlsCliOptions => ({ ftpTlsFingerprint: [], ...more });

  const usageErrors: Array<{ title: string; given: Partial<TlsCliOptions>; listeners?: ListenerSpec[]; message: RegExp }> = [
    { title: '--ftp-tls-ca without --ftp-tls', given: { ftpTlsCa: '/x.pem' }, message: /--ftp-tls-ca needs --ftp-tls/ },
    { title: '--ftp-tls-fingerprint without --ftp-tls', given: { ftpTlsFingerprint: [PIN_HEX] }, message: /--ftp-tls-fingerprint needs --ftp-tls/ },
    { title: '--ftp-tls-servername without --ftp-tls', given: { ftpTlsServername: 'ftp' }, message: /--ftp-tls-servername needs --ftp-tls/ },
    { title: '--ftp-tls-insecure without --ftp-tls', given: { ftpTlsInsecure: true }, message: /--ftp-tls-insecure needs --ftp-tls/ },
    { title: '--ftp-tls-insecure with a pin', given: { ftpTls: 'explicit', ftpTlsInsecure: true, ftpTlsFingerprint: [PIN_HEX] }, message: /cannot be combined/ },
    { title: '--ftp-tls-insecure with a CA', given: { ftpTls: 'explicit', ftpTlsInsecure: true, ftpTlsCa: '/x.pem' }, message: /cannot be combined/ },
    { title: '--tls-cert without --tls-key', given: { tlsCert: '/c.pem' }, message: /go together/ },
    { title: '--tls-key without --tls-cert', given: { tlsKey: '/k.pem' }, message: /go together/ },
    { title: '--tls-implicit alone', given: { tlsImplicit: true }, message: /--tls-implicit needs --tls-cert/ },
    { title: '--ftp-tls with only bridge listeners', given: { ftpTls: 'explicit' }, listeners: bridgeOnly, message: /--ftp-tls is for FTP forwards/ },
    { title: '--tls-cert with only bridge listeners', given: { tlsCert: '/c.pem', tlsKey: '/k.pem' }, listeners: bridgeOnly, message: /--tls-cert is for FTP forwards/ },
  ];
  for (const { title, given, listeners, message } of usageErrors) {
    it(`refuses ${title}`, () => assert.rejects(toTlsSettings(options(given), listeners ?? forward), refusedWith('ERR_FTPFWD_USAGE', message)));
  }

  it('nothing asked, nothing given', async () => assert.deepEqual(await toTlsSettings(options({}), forward), {}));

  it('--ftp-tls with a CA file, a servername and pins', async () => {
    const settings = await toTlsSettings(options({ ftpTls: 'implicit', ftpTlsCa: ca.certFile, ftpTlsServername: 'ftp.example.com', ftpTlsFingerprint: [PIN_HEX] }), forward);
    assert.equal(settings.ftpTls?.mode, 'implicit');
    assert.equal(String(settings.ftpTls?.ca), ca.pem);
    assert.equal(settings.ftpTls?.caSource, `--ftp-tls-ca ${ca.certFile}`);
    assert.equal(settings.ftpTls?.servername, 'ftp.example.com');
    assert.deepEqual(settings.ftpTls?.fingerprints, [PIN_HEX]);
    assert.equal(settings.ftpTls?.insecure, false);
    assert.equal(settings.clientTls, undefined);
  });

  it('--tls-cert and --tls-key, implicit', async () => {
    const settings = await toTlsSettings(options({ tlsCert: cert.certFile, tlsKey: cert.keyFile, tlsImplicit: true }), forward);
    assert.equal(String(settings.clientTls?.cert), cert.pem);
    assert.equal(settings.clientTls?.implicit, true);
    assert.equal(settings.ftpTls, undefined);
  });

  it('a CA file that cannot be read is a configuration error naming it', () =>
    assert.rejects(toTlsSettings(options({ ftpTls: 'explicit', ftpTlsCa: join(dir, 'missing.pem') }), forward), refusedWith('ERR_FTPFWD_CONFIG', /cannot read the CA certificate file .*missing\.pem: ENOENT/)));

  describe('resolving the settings, before anything starts', () => {
    it('the name checked is the FTP host of the forward unless given', () => {
      assert.equal(resolveServerTls({ mode: 'explicit', ca: ca.pem }, 'ftp.internal').servername, 'ftp.internal');
      assert.equal(resolveServerTls({ mode: 'explicit', ca: ca.pem, servername: 'ftp.example.com' }, 'ftp.internal').servername, 'ftp.example.com');
    });

    it('the system CA store by default, the given CAs otherwise', () => {
      assert.match(resolveServerTls({ mode: 'explicit' }, 'ftp').caSource, /system CA store|bundled CA store/);
      assert.equal(resolveServerTls({ mode: 'explicit', ca: ca.pem, caSource: '--ftp-tls-ca x.pem' }, 'ftp').caSource, '--ftp-tls-ca x.pem');
    });

    it('pins in either form become SHA-256 digests; a pin that is neither is a usage error', () => {
      const pins = resolveServerTls({ mode: 'explicit', fingerprints: [PIN_HEX, `SHA256:${Buffer.alloc(32, 0xab).toString('base64').replace(/=+$/, '')}`] }, 'ftp').fingerprints;
      assert.deepEqual(pins, [Buffer.alloc(32, 0xab), Buffer.alloc(32, 0xab)]);
      assert.throws(() => resolveServerTls({ mode: 'explicit', fingerprints: ['MD5:00'] }, 'ftp'), refusedWith('ERR_FTPFWD_USAGE', /bad certificate fingerprint "MD5:00"/));
    });

    it('CAs that are not PEM certificates are a configuration error, not a store that trusts nothing', async () => {
      const refused = (ca: string | Buffer, detail: RegExp): void => {
        assert.throws(() => resolveServerTls({ mode: 'explicit', ca, caSource: '--ftp-tls-ca x.pem' }, 'ftp'), refusedWith('ERR_FTPFWD_CONFIG', /cannot use the CA certificates from --ftp-tls-ca x\.pem: /));
        assert.throws(() => resolveServerTls({ mode: 'explicit', ca }, 'ftp'), (error: unknown) => error instanceof FtpfwdError && detail.test(error.message));
      };
      refused(await readFile(cert.keyFile), /no PEM certificate/);
      refused('garbage', /no PEM certificate/);
      refused('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n', /ERR_OSSL|asn1|decode/i);
      assert.equal(resolveServerTls({ mode: 'explicit', ca: [ca.pem, Buffer.from(cert.pem)] }, 'ftp').caSource, 'the given CA certificates');
    });

    it('a key that does not belong to the certificate is a configuration error', async () => {
      const other = await ca.issue({ name: 'other', dnsNames: ['other.test'] });
      const key = await readFile(other.keyFile);
      assert.throws(() => resolveClientTls({ cert: cert.pem, key }), refusedWith('ERR_FTPFWD_CONFIG', /cannot serve TLS with the given certificate and key/));
    });

    it('a forward of its own overrides the forwarder-wide setting; plain forwards stay plain', () => {
      const forwards: ForwarderOptions['forwards'] = [
        { bindAddress: '127.0.0.1', bindPort: 0, ftpHost: 'a.example', ftpPort: 21 },
        { bindAddress: '127.0.0.1', bindPort: 0, ftpHost: 'b.example', ftpPort: 990, tls: { mode: 'implicit', ca: ca.pem } },
      ];
      const resolved = resolveTls({ forwards, ftpTls: { mode: 'explicit', ca: ca.pem } });
      assert.deepEqual(resolved.forwards.map((tls) => tls && [tls.mode, tls.servername]), [['explicit', 'a.example'], ['implicit', 'b.example']]);
      assert.equal(resolved.client, null);
      const plain = resolveTls({ forwards });
      assert.deepEqual(plain.forwards.map((tls) => tls?.mode ?? null), [null, 'implicit']);
    });
  });
});
