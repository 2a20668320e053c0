import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDestination, parseForwardSpec, parseSshOptions, type Destination, type SshOptionOverrides } from '../../src/cli/arguments.js';
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

describe('parseSshOptions', () => {
  const cases: Array<Case<string[], SshOptionOverrides>> = [
    { title: 'no options', input: [], expected: { value: {} } },
    { title: 'Key=Value', input: ['User=deploy'], expected: { value: { user: 'deploy' } } },
    { title: 'Key Value', input: ['User deploy'], expected: { value: { user: 'deploy' } } },
    { title: 'spaces around =', input: ['User = deploy'], expected: { value: { user: 'deploy' } } },
    { title: 'surrounding spaces', input: ['  User=deploy  '], expected: { value: { user: 'deploy' } } },
    { title: 'lower-case key', input: ['user=deploy'], expected: { value: { user: 'deploy' } } },
    { title: 'upper-case key', input: ['USER=deploy'], expected: { value: { user: 'deploy' } } },
    { title: 'the value keeps its case', input: ['User=Deploy'], expected: { value: { user: 'Deploy' } } },
    { title: 'Port', input: ['Port=2222'], expected: { value: { port: 2222 } } },
    { title: 'Port 0', input: ['Port=0'], expected: { usageError: /bad SSH port 0/ } },
    { title: 'Port 65536', input: ['Port=65536'], expected: { usageError: /bad SSH port 65536/ } },
    { title: 'the first value wins', input: ['User=first', 'User=second'], expected: { value: { user: 'first' } } },
    { title: 'the first value wins, whatever the case of the key', input: ['Port=2222', 'port 2200', 'PORT=22'], expected: { value: { port: 2222 } } },
    {
      title: 'the first StrictHostKeyChecking wins',
      input: ['StrictHostKeyChecking=no', 'stricthostkeychecking=yes'],
      expected: { value: { strictHostKeyChecking: 'no' } },
    },
    { title: 'one IdentityFile', input: ['IdentityFile=/keys/a'], expected: { value: { identityFiles: ['/keys/a'] } } },
    {
      title: 'IdentityFile accumulates',
      input: ['IdentityFile=/keys/a', 'identityfile /keys/b', 'IDENTITYFILE=~/c'],
      expected: { value: { identityFiles: ['/keys/a', '/keys/b', '~/c'] } },
    },
    { title: 'one UserKnownHostsFile', input: ['UserKnownHostsFile=/k/one'], expected: { value: { knownHostsFiles: ['/k/one'] } } },
    {
      title: 'UserKnownHostsFile with several files',
      input: ['UserKnownHostsFile=/k/one /k/two   ~/k/three'],
      expected: { value: { knownHostsFiles: ['/k/one', '/k/two', '~/k/three'] } },
    },
    {
      title: 'the first UserKnownHostsFile wins',
      input: ['UserKnownHostsFile=/k/one /k/two', 'UserKnownHostsFile=/k/three'],
      expected: { value: { knownHostsFiles: ['/k/one', '/k/two'] } },
    },
    { title: 'StrictHostKeyChecking=yes', input: ['StrictHostKeyChecking=yes'], expected: { value: { strictHostKeyChecking: 'yes' } } },
    { title: 'StrictHostKeyChecking=accept-new', input: ['StrictHostKeyChecking=accept-new'], expected: { value: { strictHostKeyChecking: 'accept-new' } } },
    { title: 'StrictHostKeyChecking=no', input: ['StrictHostKeyChecking=no'], expected: { value: { strictHostKeyChecking: 'no' } } },
    { title: 'StrictHostKeyChecking value in upper case', input: ['StrictHostKeyChecking ACCEPT-NEW'], expected: { value: { strictHostKeyChecking: 'accept-new' } } },
    { title: 'StrictHostKeyChecking=off is no', input: ['StrictHostKeyChecking=off'], expected: { value: { strictHostKeyChecking: 'no' } } },
    { title: 'StrictHostKeyChecking=ask is yes (never prompts)', input: ['StrictHostKeyChecking=ask'], expected: { value: { strictHostKeyChecking: 'yes' } } },
    {
      title: 'a bad StrictHostKeyChecking value',
      input: ['StrictHostKeyChecking=maybe'],
      expected: { usageError: /invalid StrictHostKeyChecking value "maybe"; use yes, accept-new or no/ },
    },
    { title: 'BatchMode=yes', input: ['BatchMode=yes'], expected: { value: { batchMode: true } } },
    { title: 'BatchMode=no', input: ['BatchMode=no'], expected: { value: { batchMode: false } } },
    { title: 'BatchMode value in upper case', input: ['batchmode YES'], expected: { value: { batchMode: true } } },
    { title: 'a bad BatchMode value', input: ['BatchMode=sometimes'], expected: { usageError: /-o BatchMode takes yes or no, not "sometimes"/ } },
    { title: 'ConnectTimeout', input: ['ConnectTimeout=30'], expected: { value: { connectTimeoutSeconds: 30 } } },
    { title: 'ConnectTimeout 0', input: ['ConnectTimeout=0'], expected: { value: { connectTimeoutSeconds: 0 } } },
    { title: 'ConnectTimeout, six digits', input: ['ConnectTimeout=999999'], expected: { value: { connectTimeoutSeconds: 999999 } } },
    { title: 'ConnectTimeout, seven digits', input: ['ConnectTimeout=1000000'], expected: { usageError: /-o ConnectTimeout takes a whole number, not "1000000"/ } },
    { title: 'ConnectTimeout negative', input: ['ConnectTimeout=-1'], expected: { usageError: /-o ConnectTimeout takes a whole number, not "-1"/ } },
    { title: 'ConnectTimeout fractional', input: ['ConnectTimeout=1.5'], expected: { usageError: /-o ConnectTimeout takes a whole number/ } },
    { title: 'ConnectTimeout non-numeric', input: ['ConnectTimeout=soon'], expected: { usageError: /-o ConnectTimeout takes a whole number, not "soon"/ } },
    {
      title: 'ServerAliveInterval and ServerAliveCountMax',
      input: ['ServerAliveInterval=5', 'ServerAliveCountMax 2'],
      expected: { value: { serverAliveIntervalSeconds: 5, serverAliveCountMax: 2 } },
    },
    {
      title: 'every supported key at once',
      input: [
        'User=deploy',
        'Port=2222',
        'IdentityFile=/keys/a',
        'UserKnownHostsFile=/k/one',
        'StrictHostKeyChecking=accept-new',
        'ConnectTimeout=7',
        'ServerAliveInterval=9',
        'ServerAliveCountMax=4',
        'BatchMode=yes',
      ],
      expected: {
        value: {
          user: 'deploy',
          port: 2222,
          identityFiles: ['/keys/a'],
          knownHostsFiles: ['/k/one'],
          strictHostKeyChecking: 'accept-new',
          connectTimeoutSeconds: 7,
          serverAliveIntervalSeconds: 9,
          serverAliveCountMax: 4,
          batchMode: true,
        },
      },
    },
    { title: 'an unsupported key', input: ['ProxyJump=bastion'], expected: { usageError: /^unsupported -o option ProxyJump$/ } },
    { title: 'an unsupported key after supported ones', input: ['User=deploy', 'LocalForward 2121 ftp:21'], expected: { usageError: /unsupported -o option LocalForward/ } },
    { title: 'missing value after =', input: ['User='], expected: { usageError: /-o User needs a value/ } },
    { title: 'only spaces after =', input: ['User=   '], expected: { usageError: /-o User needs a value/ } },
    { title: 'a key with no value', input: ['User'], expected: { usageError: /bad -o option "User": use Key=Value/ } },
    { title: 'a value with no key', input: ['=deploy'], expected: { usageError: /bad -o option "=deploy"/ } },
    { title: 'an empty option', input: [''], expected: { usageError: /bad -o option ""/ } },
  ];
  for (const { title, input, expected } of cases) {
    it(`${title}: ${JSON.stringify(input)}`, () => check(parseSshOptions, input, expected));
  }
});
