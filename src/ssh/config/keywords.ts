/** Every ssh_config keyword OpenSSH knows, and what ftpfwd does with each. */

type UnsupportedSpec = { kind: 'unsupported'; name: string; securityRelevant: boolean; inert?: readonly string[]; accumulates?: boolean };
export type KeywordSpec = { kind: 'supported' } | { kind: 'ignored' } | UnsupportedSpec;

const OFF = ['no', 'false'] as const;

function unsupported(name: string, securityRelevant: boolean, extra: { inert?: readonly string[]; accumulates?: boolean } = {}): UnsupportedSpec {
  return { kind: 'unsupported', name, securityRelevant, ...extra };
}

/**
 * Every client keyword of OpenSSH up to 10.x (plus Apple's UseKeychain), by
 * its lower-case name. Keys ftpfwd does not implement are:
 *
 * - reported with securityRelevant: true when honouring them changes who or
 *   what is trusted or run: commands (LocalCommand,
 *   KnownHostsCommand), host-key checking (HostKeyAlias, CheckHostIP,
 *   VerifyHostKeyDNS, RevokedHostKeys), algorithm restrictions, other key
 *   sources (PKCS11Provider, SecurityKeyProvider),
 *   agent forwarding, canonicalisation, RefuseConnection;
 * - reported with securityRelevant: false when the user may expect an effect
 *   a port forwarder does not give (forwards, bind address, address family,
 *   connection attempts, preferred authentications, GSSAPI, ...);
 * - ignored silently when they cannot matter to a forwarder (terminal,
 *   session, X11, logging, multiplexing, SendEnv, Compression, keepalive
 *   socket options, AddKeysToAgent, deprecated keywords).
 *
 * A value listed as inert (e.g. `ForwardAgent no`) is what ftpfwd does
 * anyway, so it is not reported.
 */
const KEYWORDS: ReadonlyMap<string, KeywordSpec> = new Map<string, KeywordSpec>([
  // implemented
  ...[
    'host', 'match', 'include', 'hostname', 'user', 'port', 'identityfile', 'identityfile2', 'identitiesonly', 'identityagent',
    'proxyjump', 'proxycommand', 'userknownhostsfile', 'globalknownhostsfile', 'stricthostkeychecking', 'serveraliveinterval',
    'serveralivecountmax', 'connecttimeout', 'batchmode', 'passwordauthentication', 'kbdinteractiveauthentication',
    'challengeresponseauthentication', 'skeyauthentication', 'tisauthentication', 'pubkeyauthentication', 'dsaauthentication',
    'hashknownhosts', 'ignoreunknown', 'hostkeyalias', 'certificatefile',
  ].map((name): [string, KeywordSpec] => [name, { kind: 'supported' }]),
  // security relevant
  ['localcommand', unsupported('LocalCommand', true)],
  ['permitlocalcommand', unsupported('PermitLocalCommand', true, { inert: OFF })],
  ['forwardagent', unsupported('ForwardAgent', true, { inert: OFF })],
  ['pkcs11provider', unsupported('PKCS11Provider', true, { inert: ['none'] })],
  ['smartcarddevice', unsupported('PKCS11Provider', true, { inert: ['none'] })],
  ['securitykeyprovider', unsupported('SecurityKeyProvider', true, { inert: ['internal'] })],
  ['knownhostscommand', unsupported('KnownHostsCommand', true, { inert: ['none'] })],
  ['checkhostip', unsupported('CheckHostIP', true, { inert: OFF })],
  ['verifyhostkeydns', unsupported('VerifyHostKeyDNS', true, { inert: OFF })],
  ['revokedhostkeys', unsupported('RevokedHostKeys', true, { inert: ['none'] })],
  ['ciphers', unsupported('Ciphers', true)],
  ['kexalgorithms', unsupported('KexAlgorithms', true)],
  ['macs', unsupported('MACs', true)],
  ['hostkeyalgorithms', unsupported('HostKeyAlgorithms', true)],
  ['casignaturealgorithms', unsupported('CASignatureAlgorithms', true)],
  ['pubkeyacceptedalgorithms', unsupported('PubkeyAcceptedAlgorithms', true)],
  ['pubkeyacceptedkeytypes', unsupported('PubkeyAcceptedAlgorithms', true)],
  ['hostbasedacceptedalgorithms', unsupported('HostbasedAcceptedAlgorithms', true)],
  ['hostbasedkeytypes', unsupported('HostbasedAcceptedAlgorithms', true)],
  ['requiredrsasize', unsupported('RequiredRSASize', true)],
  ['canonicalizehostname', unsupported('CanonicalizeHostname', true, { inert: OFF })],
  ['refuseconnection', unsupported('RefuseConnection', true, { inert: OFF })],
  // not security relevant, but the user may expect an effect
  ['localforward', unsupported('LocalForward', false, { accumulates: true })],
  ['remoteforward', unsupported('RemoteForward', false, { accumulates: true })],
  ['dynamicforward', unsupported('DynamicForward', false, { accumulates: true })],
  ['gatewayports', unsupported('GatewayPorts', false, { inert: OFF })],
  ['permitremoteopen', unsupported('PermitRemoteOpen', false, { inert: ['any'] })],
  ['tunnel', unsupported('Tunnel', false, { inert: OFF })],
  ['tunneldevice', unsupported('TunnelDevice', false)],
  ['connectionattempts', unsupported('ConnectionAttempts', false, { inert: ['1'] })],
  ['numberofpasswordprompts', unsupported('NumberOfPasswordPrompts', false)],
  ['preferredauthentications', unsupported('PreferredAuthentications', false)],
  ['hostbasedauthentication', unsupported('HostbasedAuthentication', false, { inert: OFF })],
  ['enablesshkeysign', unsupported('EnableSSHKeysign', false, { inert: OFF })],
  ['bindaddress', unsupported('BindAddress', false)],
  ['bindinterface', unsupported('BindInterface', false)],
  ['addressfamily', unsupported('AddressFamily', false, { inert: ['any'] })],
  ['rekeylimit', unsupported('RekeyLimit', false)],
  ['nohostauthenticationforlocalhost', unsupported('NoHostAuthenticationForLocalhost', false, { inert: OFF })],
  ['updatehostkeys', unsupported('UpdateHostKeys', false, { inert: OFF })],
  // irrelevant to a port forwarder
  ...[
    'addkeystoagent', 'kbdinteractivedevices', 'forwardx11', 'forwardx11trusted', 'forwardx11timeout', 'xauthlocation',
    'clearallforwardings', 'exitonforwardfailure', 'sendenv', 'setenv', 'controlmaster', 'controlpath', 'controlpersist',
    'compression', 'tcpkeepalive', 'keepalive', 'ipqos', 'loglevel', 'logverbose', 'syslogfacility', 'escapechar',
    'enableescapecommandline', 'requesttty', 'remotecommand', 'sessiontype', 'stdinnull', 'forkafterauthentication',
    'visualhostkey', 'fingerprinthash', 'streamlocalbindmask', 'streamlocalbindunlink', 'proxyusefdpass', 'canonicaldomains',
    'canonicalizemaxdots', 'canonicalizefallbacklocal', 'canonicalizepermittedcnames', 'channeltimeout',
    'obscurekeystroketiming', 'tag', 'warnweakcrypto', 'versionaddendum', 'usekeychain',
    // ignored or deprecated by OpenSSH itself
    'protocol', 'cipher', 'fallbacktorsh', 'globalknownhostsfile2', 'rhostsauthentication', 'userknownhostsfile2', 'useroaming',
    'usersh', 'useprivilegedport', 'afstokenpassing', 'kerberosauthentication', 'kerberostgtpassing', 'rsaauthentication',
    'rhostsrsaauthentication', 'compressionlevel',
  ].map((name): [string, KeywordSpec] => [name, { kind: 'ignored' }]),
]);

/** `written` is the keyword as the file spells it, to name the GSSAPI keywords. */
export function keywordSpec(keyword: string, written: string): KeywordSpec | undefined {
  const spec = KEYWORDS.get(keyword);
  if (spec !== undefined) return spec;
  // GSSAPIAuthentication, GSSAPIDelegateCredentials and the distributions' GSSAPI key-exchange keywords.
  // Without GSSAPI a login can only fail, never trust more (and Debian's own
  // /etc/ssh/ssh_config turns it on), so these are not worth a warning.
  if (keyword.startsWith('gssapi')) return unsupported(written, false, { inert: OFF });
  return undefined;
}
