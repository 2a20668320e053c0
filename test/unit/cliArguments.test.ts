import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDestination, parseForwardSpec, parseListenerSpec, type Destination } from '../../src/cli/arguments.js';
import { toBridgeSettings } from '../../src/cli/bridgeOptions.js';
import type { ListenerSpec } from '../../src/tunnel.js';
import { parseOptionOverrides, resolveSshTarget, type SshCommandLine } from '../../src/cli/sshTarget.js';
import { loadSshConfig } from '../../src/ssh/sshConfig.js';
import type { SshOptions } from '../../src/forwarder.js';
import { FtpfwdError } from '../../src/errors.js';
import type { ForwardSpec } from '../../src/forwarder.js';

/** What a parser should do with one input: return this value, or refuse with a usage error whose message matches. */
type Expected<T> = { value: T } | { usageError: RegExp };

interface Case<I, T> {
  title: string;
  input: I;
  expected: Expected<T>;
}

function check<I, T>(parse: (input: I) => T, input: I, expected: Expected<T>): void {
  if ('value' in expected) {
    assert.deepEqual(parse(input), expected.value);
    return;
  }
  assert.throws(
    () => parse(input),
    (error: unknown) => {
      assert.ok(error instanceof FtpfwdError, `expected an FtpfwdError, got ${String(error)}`);
      assert.equal(error.code, 'ERR_FTPFWD_USAGE');
      assert.match(error.message, expected.usageError);
      return true;
    },
  );
}

function forward(bindAddress: string, bindPort: number, ftpHost: string, ftpPort: number): Expected<ForwardSpec> {
  return { value: { bindAddress, bindPort, ftpHost, ftpPort } };
}

describe('parseForwardSpec', () => {
  const cases: Array<Case<string, ForwardSpec>> = [
    { title: 'three fields: loopback by default', input: '2121:ftp.internal:21', expected: forward('127.0.0.1', 2121, 'ftp.internal', 21) },
    { title: 'four fields', input: '192.168.1.5:2121:ftp.internal:21', expected: forward('192.168.1.5', 2121, 'ftp.internal', 21) },
    { title: 'empty bind address means loopback', input: ':2121:ftp:21', expected: forward('127.0.0.1', 2121, 'ftp', 21) },
    { title: 'localhost means IPv4 loopback', input: 'localhost:2121:ftp:21', expected: forward('127.0.0.1', 2121, 'ftp', 21) },
    { title: '* means every address', input: '*:2121:ftp:21', expected: forward('0.0.0.0', 2121, 'ftp', 21) },
    { title: 'an explicit 0.0.0.0', input: '0.0.0.0:2121:ftp:21', expected: forward('0.0.0.0', 2121, 'ftp', 21) },
    { title: 'bracketed IPv6 bind address', input: '[::1]:2121:ftp:21', expected: forward('::1', 2121, 'ftp', 21) },
    { title: 'bracketed IPv6 FTP host', input: '2121:[fd00::5]:21', expected: forward('127.0.0.1', 2121, 'fd00::5', 21) },
    { title: 'IPv6 on both sides', input: '[::]:2121:[fd00::5]:2121', expected: forward('::', 2121, 'fd00::5', 2121) },
    { title: 'an IPv4 FTP host', input: '2121:10.0.5.7:21', expected: forward('127.0.0.1', 2121, '10.0.5.7', 21) },
    { title: 'listen port 0 picks a free port', input: '0:ftp:21', expected: forward('127.0.0.1', 0, 'ftp', 21) },
    { title: 'the highest ports', input: '65535:ftp:65535', expected: forward('127.0.0.1', 65535, 'ftp', 65535) },
    { title: 'port 1', input: '1:ftp:1', expected: forward('127.0.0.1', 1, 'ftp', 1) },
    { title: 'a leading zero within five digits', input: '02121:ftp:021', expected: forward('127.0.0.1', 2121, 'ftp', 21) },
    { title: 'FTP port 0 is refused', input: '2121:ftp:0', expected: { usageError: /bad FTP port 0/ } },
    { title: 'listen port 65536', input: '65536:ftp:21', expected: { usageError: /bad listen port 65536/ } },
    { title: 'FTP port 65536', input: '2121:ftp:65536', expected: { usageError: /bad FTP port 65536/ } },
    { title: 'six digits', input: '2121:ftp:000021', expected: { usageError: /bad FTP port/ } },
    { title: 'non-numeric listen port', input: 'ftp:ftp:21', expected: { usageError: /bad listen port "ftp"/ } },
    { title: 'non-numeric FTP port', input: '2121:ftp:ftp', expected: { usageError: /bad FTP port "ftp"/ } },
    { title: 'negative port', input: '-1:ftp:21', expected: { usageError: /bad listen port "-1"/ } },
    { title: 'fractional port', input: '2121:ftp:2.1', expected: { usageError: /bad FTP port "2\.1"/ } },
    { title: 'a space before the port', input: ' 2121:ftp:21', expected: { usageError: /bad listen port/ } },
    { title: 'empty listen port', input: ':ftp:21', expected: { usageError: /bad listen port ""/ } },
    { title: 'empty FTP port', input: '2121:ftp:', expected: { usageError: /bad FTP port ""/ } },
    { title: 'two fields', input: '2121:ftp', expected: { usageError: /bad forward "2121:ftp": use \[bind_address:\]port:ftp_host:ftp_port/ } },
    { title: 'one field', input: '2121', expected: { usageError: /bad forward "2121"/ } },
    { title: 'empty spec', input: '', expected: { usageError: /bad forward ""/ } },
    { title: 'five fields', input: 'a:b:2121:ftp:21', expected: { usageError: /bad forward "a:b:2121:ftp:21"/ } },
    { title: 'unbracketed IPv6 bind address', input: '::1:2121:ftp:21', expected: { usageError: /bad forward/ } },
    { title: 'unbracketed IPv6 FTP host', input: '2121:fd00::5:21', expected: { usageError: /bad forward/ } },
    { title: 'unclosed bracket in the bind address', input: '[::1:2121:ftp:21', expected: { usageError: /unclosed \[ in "\[::1:2121:ftp:21"/ } },
    { title: 'unclosed bracket in the FTP host', input: '2121:[fd00::5:21', expected: { usageError: /unclosed \[/ } },
    { title: 'empty FTP host', input: '2121::21', expected: { usageError: /no FTP host/ } },
    { title: 'empty FTP host, four fields', input: '127.0.0.1:2121::21', expected: { usageError: /no FTP host/ } },
    { title: 'empty brackets as FTP host', input: '2121:[]:21', expected: { usageError: /no FTP host/ } },
  ];
  for (const { title, input, expected } of cases) {
    it(`${title}: ${JSON.stringify(input)}`, () => check(parseForwardSpec, input, expected));
  }
});

describe('parseDestination', () => {
  const cases: Array<Case<string, Destination>> = [
    { title: 'host alone', input: 'bastion', expected: { value: { host: 'bastion' } } },
    { title: 'user and host', input: 'deploy@bastion', expected: { value: { user: 'deploy', host: 'bastion' } } },
    { title: 'the user is everything before the last @', input: 'user@host@x', expected: { value: { user: 'user@host', host: 'x' } } },
    { title: 'an IPv4 address', input: 'deploy@10.0.0.1', expected: { value: { user: 'deploy', host: '10.0.0.1' } } },
    { title: 'a bracketed IPv6 address', input: '[::1]', expected: { value: { host: '::1' } } },
    { title: 'user and bracketed IPv6 address', input: 'deploy@[fd00::5]', expected: { value: { user: 'deploy', host: 'fd00::5' } } },
    { title: 'ssh:// with user and port', input: 'ssh://user@host:2222', expected: { value: { user: 'user', host: 'host', port: 2222 } } },
    { title: 'ssh:// with host only', input: 'ssh://host', expected: { value: { host: 'host' } } },
    { title: 'ssh:// with a trailing slash', input: 'ssh://host/', expected: { value: { host: 'host' } } },
    { title: 'ssh:// with bracketed IPv6 and port', input: 'ssh://[::1]:22', expected: { value: { host: '::1', port: 22 } } },
    { title: 'ssh:// with user and bracketed IPv6', input: 'ssh://deploy@[fd00::5]', expected: { value: { user: 'deploy', host: 'fd00::5' } } },
    { title: 'empty', input: '', expected: { usageError: /bad destination ""/ } },
    { title: 'empty user', input: '@host', expected: { usageError: /empty user name/ } },
    { title: 'empty user in ssh://', input: 'ssh://@host', expected: { usageError: /empty user name/ } },
    { title: 'empty host', input: 'user@', expected: { usageError: /bad destination "user@"/ } },
    { title: 'empty brackets', input: '[]', expected: { usageError: /bad destination/ } },
    { title: 'a space inside the host', input: 'my host', expected: { usageError: /bad destination "my host"/ } },
    { title: 'a leading space', input: ' host', expected: { usageError: /bad destination/ } },
    { title: 'a trailing space', input: 'deploy@host ', expected: { usageError: /bad destination/ } },
    { title: 'a tab in the host', input: 'ho\tst', expected: { usageError: /bad destination/ } },
    { title: 'a path after the host', input: 'host/path', expected: { usageError: /bad destination/ } },
    { title: 'ssh:// with a path', input: 'ssh://host:22/path', expected: { usageError: /bad destination/ } },
    { title: 'ssh:// with port 0', input: 'ssh://host:0', expected: { usageError: /bad SSH port 0/ } },
    { title: 'ssh:// with port 65536', input: 'ssh://host:65536', expected: { usageError: /bad SSH port 65536/ } },
    { title: 'ssh:// with a non-numeric port', input: 'ssh://host:ssh', expected: { usageError: /bad destination/ } },
    { title: 'ssh:// with an empty host', input: 'ssh://', expected: { usageError: /bad destination "ssh:\/\/"/ } },
  ];
  for (const { title, input, expected } of cases) {
    it(`${title}: ${JSON.stringify(input)}`, () => check(parseDestination, input, expected));
  }
});

describe('resolveSshTarget: command line over -o over ssh_config, per hop', () => {
  const home = '/home/me';
  const environment = { localUser: 'me', homeDir: home, env: { SSH_AUTH_SOCK: '/run/agent.sock' } };
  const CONFIG = [
    'Host prod',
    '  HostName bastion.example.com',
    '  User deploy',
    '  Port 2200',
    '  IdentityFile ~/.ssh/id_prod',
    '  ProxyJump jump1',
    'Host jump1',
    '  HostName j1.example.com',
    '  User hopper',
    'Host jump2',
    '  ProxyJump jump1',
    'Host loop',
    '  ProxyJump loop',
    'Host noagent',
    '  IdentityAgent none',
    'Host only',
    '  IdentitiesOnly yes',
    'Host batch',
    '  BatchMode yes',
    'Host cmd-first',
    '  ProxyCommand ssh -W %h:%p gw',
    'Host via-cmd',
    '  ProxyCommand nc %h %p',
    'Host strict',
    '  StrictHostKeyChecking accept-new',
    '  UserKnownHostsFile ~/.ssh/kh_a ~/.ssh/kh_b',
    '',
  ].join('\n');

  async function resolve(destination: string, line: Partial<SshCommandLine> = {}) {
    const config = await loadSshConfig({ homeDir: home, file: '/cfg', readFile: async (path) => (path === '/cfg' ? CONFIG : null) });
    return resolveSshTarget(config, { destination: parseDestination(destination), identityFiles: [], options: [], ...line }, environment);
  }

  const cases: Array<{ title: string; destination: string; line?: Partial<SshCommandLine>; expected: Partial<SshOptions> | { error: RegExp } }> = [
    { title: 'a plain host with nothing configured', destination: 'ftp-gw', expected: { host: 'ftp-gw', port: 22, username: 'me', agentSocket: '/run/agent.sock', useDefaultIdentities: true, strictHostKeyChecking: 'yes' } },
    { title: 'user@ in the destination', destination: 'ops@ftp-gw', expected: { username: 'ops' } },
    { title: 'an alias from ssh_config', destination: 'prod', expected: { host: 'bastion.example.com', username: 'deploy', port: 2200, optionalIdentityFiles: [`${home}/.ssh/id_prod`], useDefaultIdentities: false } },
    { title: '-o wins over ssh_config', destination: 'prod', line: { options: ['User=ops', 'Port 2201'] }, expected: { username: 'ops', port: 2201 } },
    { title: '-l and -p win over -o and ssh_config', destination: 'prod', line: { login: 'root', port: 22, options: ['User=ops', 'Port=2201'] }, expected: { username: 'root', port: 22 } },
    { title: '-i is explicit and turns off the default keys', destination: 'ftp-gw', line: { identityFiles: ['/k/id'] }, expected: { identityFiles: ['/k/id'], useDefaultIdentities: false } },
    { title: 'IdentityAgent none', destination: 'noagent', expected: { agentSocket: undefined } },
    { title: 'IdentitiesOnly yes keeps the agent, to narrow its keys', destination: 'only', expected: { agentSocket: '/run/agent.sock', identitiesOnly: true } },
    { title: 'known_hosts files default to the user files, then the global ones', destination: 'ftp-gw', expected: { knownHostsFiles: [`${home}/.ssh/known_hosts`, `${home}/.ssh/known_hosts2`, '/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'] } },
    { title: 'UserKnownHostsFile and StrictHostKeyChecking from ssh_config', destination: 'strict', expected: { strictHostKeyChecking: 'accept-new', knownHostsFiles: [`${home}/.ssh/kh_a`, `${home}/.ssh/kh_b`, '/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'] } },
    { title: 'a password goes to the target', destination: 'ftp-gw', line: { password: 'pw' }, expected: { password: 'pw' } },
    { title: 'a bad -o value', destination: 'ftp-gw', line: { options: ['Port=abc'] }, expected: { error: /Port/ } },
    { title: '-o without a value', destination: 'ftp-gw', line: { options: ['User='] }, expected: { error: /bad -o option/ } },
    { title: 'a ProxyJump loop', destination: 'loop', expected: { error: /jump hosts/ } },
  ];
  for (const { title, destination, line, expected } of cases) {
    it(title, async () => {
      if ('error' in expected) {
        await assert.rejects(resolve(destination, line), (error: unknown) => error instanceof FtpfwdError && expected.error.test(error.message));
        return;
      }
      const { ssh } = await resolve(destination, line);
      for (const [key, value] of Object.entries(expected)) {
        assert.deepEqual(ssh[key as keyof SshOptions], value, key);
      }
    });
  }

  it('resolves ProxyJump hops with their own config blocks', async () => {
    const { ssh } = await resolve('prod');
    assert.deepEqual(
      ssh.jumpHosts?.map((hop) => `${hop.username}@${hop.host}:${hop.port}`),
      ['hopper@j1.example.com:22'],
    );
  });

  it('-J overrides ProxyJump, and a jump host\'s own ProxyJump comes first', async () => {
    const { ssh } = await resolve('prod', { jump: 'jump2,ops@last.example.com:2222' });
    assert.deepEqual(
      ssh.jumpHosts?.map((hop) => `${hop.username}@${hop.host}:${hop.port}`),
      ['hopper@j1.example.com:22', 'me@jump2:22', 'ops@last.example.com:2222'],
    );
  });

  it('reports BatchMode and unsupported options', async () => {
    assert.equal((await resolve('batch')).batchMode, true);
    const { unsupported } = await resolve('ftp-gw', { options: ['Ciphers=aes128-ctr'] });
    assert.deepEqual(unsupported.map((option) => option.key.toLowerCase()), ['ciphers']);
  });

  it('a ProxyCommand goes to the hop it reaches, with the shell and the command environment', async () => {
    const withShell = { ...environment, env: { ...environment.env, SHELL: '/bin/bash' }, commandEnv: { PATH: '/bin' } };
    const config = await loadSshConfig({ homeDir: home, file: '/cfg', readFile: async (path) => (path === '/cfg' ? CONFIG : null) });
    const { ssh } = resolveSshTarget(config, { destination: parseDestination('ftp-gw'), identityFiles: [], options: ['ProxyCommand=nc -X 5 -x proxy:1080 %h %p'] }, withShell);
    assert.deepEqual(ssh.proxyCommand, { command: 'nc -X 5 -x proxy:1080 ftp-gw 22', shell: '/bin/bash', env: { PATH: '/bin' } });
    assert.equal((await resolve('ftp-gw', { options: ['ProxyCommand=nc %h %p'] })).ssh.proxyCommand?.shell, '/bin/sh');
  });

  it("the first jump host's ProxyCommand reaches it; later hops and -J targets use none", async () => {
    const { ssh } = await resolve('prod', { jump: 'jump1,via-cmd', options: [] });
    assert.equal(ssh.proxyCommand, undefined);
    const withCommand = await resolve('via-cmd', { jump: 'cmd-first,jump1' });
    assert.deepEqual(withCommand.ssh.jumpHosts?.map((hop) => hop.proxyCommand?.command), ['ssh -W cmd-first:22 gw', undefined]);
    assert.equal(withCommand.ssh.proxyCommand, undefined, '-J replaces the target\'s own ProxyCommand');
    assert.equal((await resolve('prod', { jump: 'jump1,cmd-first' })).ssh.jumpHosts?.[1]?.proxyCommand, undefined);
  });

  it('-J with -o ProxyCommand is a usage error, as in ssh', async () => {
    await assert.rejects(resolve('ftp-gw', { jump: 'jump1', options: ['ProxyCommand=nc %h %p'] }), (error: unknown) => error instanceof FtpfwdError && error.code === 'ERR_FTPFWD_USAGE' && /Cannot specify -J with ProxyCommand/.test(error.message));
    assert.equal((await resolve('ftp-gw', { jump: 'jump1', options: ['ProxyCommand=none'] })).ssh.jumpHosts?.length, 1);
  });
});

describe('parseOptionOverrides', () => {
  it('keeps every value of a repeated key, first first', () => {
    assert.deepEqual(parseOptionOverrides(['IdentityFile=/a', 'User deploy', 'IdentityFile /b']), { IdentityFile: ['/a', '/b'], User: 'deploy' });
  });
});

describe('parseListenerSpec: the SFTP bridge listener', () => {
  const sftp = (bindAddress: string, bindPort: number): Expected<ListenerSpec> => ({ value: { kind: 'sftp', listener: { bindAddress, bindPort } } });
  const ftp = (bindAddress: string, bindPort: number, ftpHost: string, ftpPort: number): Expected<ListenerSpec> => ({ value: { kind: 'ftp', forward: { bindAddress, bindPort, ftpHost, ftpPort } } });
  const cases: Array<Case<string, ListenerSpec>> = [
    { title: 'port:sftp:', input: '2121:sftp:', expected: sftp('127.0.0.1', 2121) },
    { title: 'with a bind address', input: '0.0.0.0:2121:sftp:', expected: sftp('0.0.0.0', 2121) },
    { title: 'with an IPv6 bind address', input: '[::1]:0:sftp:', expected: sftp('::1', 0) },
    { title: '* binds every address', input: '*:2121:sftp:', expected: sftp('0.0.0.0', 2121) },
    { title: 'a host named sftp with a port is an FTP forward', input: '2121:sftp:21', expected: ftp('127.0.0.1', 2121, 'sftp', 21) },
    { title: 'an ordinary forward', input: '2121:ftp.internal:21', expected: ftp('127.0.0.1', 2121, 'ftp.internal', 21) },
    { title: 'SFTP in capitals is a host name, whose port is missing', input: '2121:SFTP:', expected: { usageError: /bad FTP port ""/ } },
    { title: 'two fields', input: '2121:sftp', expected: { usageError: /bad forward/ } },
    { title: 'a bad listen port', input: 'x:sftp:', expected: { usageError: /bad listen port "x"/ } },
  ];
  for (const { title, input, expected } of cases) {
    it(`${title}: ${JSON.stringify(input)}`, () => check(parseListenerSpec, input, expected));
  }
});

describe('toBridgeSettings: a bridge needs a credential', () => {
  const bridge: ListenerSpec[] = [{ kind: 'sftp', listener: { bindAddress: '127.0.0.1', bindPort: 0 } }];
  const forwardOnly: ListenerSpec[] = [{ kind: 'ftp', forward: { bindAddress: '127.0.0.1', bindPort: 0, ftpHost: 'ftp', ftpPort: 21 } }];
  const env = { FTP_PW: 'from-env', EMPTY: '' };
  const refused = async (promise: Promise<unknown>, code: string, message: RegExp): Promise<void> => {
    await assert.rejects(promise, (error: unknown) => error instanceof FtpfwdError && error.code === code && message.test(error.message));
  };

  it('refuses a bridge with no login at all', () => refused(toBridgeSettings({}, bridge, 'deploy', env), 'ERR_FTPFWD_USAGE', /must not serve files without a login/));
  it('--ftp-auth ssh', async () => assert.deepEqual(await toBridgeSettings({ ftpAuth: 'ssh' }, bridge, 'deploy', env), { login: { kind: 'ssh' }, atomicUploads: false }));
  it('--ftp-password-env, user defaulting to the SSH user', async () => {
    assert.deepEqual(await toBridgeSettings({ ftpPasswordEnv: 'FTP_PW', sftpRoot: '/srv', sftpAtomicUploads: true }, bridge, 'deploy', env), {
      login: { kind: 'account', account: { user: 'deploy', password: 'from-env' } },
      root: '/srv',
      atomicUploads: true,
    });
  });
  it('--ftp-user names the FTP user', async () => {
    const settings = await toBridgeSettings({ ftpPasswordEnv: 'FTP_PW', ftpUser: 'scanner' }, bridge, 'deploy', env);
    assert.deepEqual(settings?.login, { kind: 'account', account: { user: 'scanner', password: 'from-env' } });
  });
  it('--ftp-auth password without a password', () => refused(toBridgeSettings({ ftpAuth: 'password' }, bridge, 'deploy', env), 'ERR_FTPFWD_USAGE', /needs --ftp-password-file/));
  it('--ftp-auth ssh with a password', () => refused(toBridgeSettings({ ftpAuth: 'ssh', ftpPasswordEnv: 'FTP_PW' }, bridge, 'deploy', env), 'ERR_FTPFWD_USAGE', /do not apply/));
  it('an empty password', () => refused(toBridgeSettings({ ftpPasswordEnv: 'EMPTY' }, bridge, 'deploy', env), 'ERR_FTPFWD_CONFIG', /empty/));
  it('an unset variable', () => refused(toBridgeSettings({ ftpPasswordEnv: 'NOPE' }, bridge, 'deploy', env), 'ERR_FTPFWD_CONFIG', /NOPE/));
  it('both a file and a variable', () => refused(toBridgeSettings({ ftpPasswordEnv: 'FTP_PW', ftpPasswordFile: '/x' }, bridge, 'deploy', env), 'ERR_FTPFWD_USAGE', /not both/));
  it('bridge options without a bridge listener', () => refused(toBridgeSettings({ sftpRoot: '/srv' }, forwardOnly, 'deploy', env), 'ERR_FTPFWD_USAGE', /--sftp-root is for the SFTP bridge/));
  it('no bridge, no bridge options: nothing', async () => assert.equal(await toBridgeSettings({}, forwardOnly, 'deploy', env), undefined));
});
