import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FtpfwdError } from '../../src/errors.js';
import {
  loadSshConfig,
  matchSshPattern,
  matchSshPatternList,
  parseSshTime,
  resolveHost,
  type ParsedSshConfig,
  type ResolvedSshConfig,
  type ResolveHostContext,
} from '../../src/ssh/sshConfig.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

const HOME = '/home/ana';
const CONFIG = `${HOME}/.ssh/config`;

/** An in-memory file system: path → text. */
type Files = Record<string, string>;

function memoryFs(files: Files): { readFile: (path: string) => Promise<string | null>; listDirectory: (path: string) => Promise<string[] | null> } {
  return {
    readFile: async (path) => files[path] ?? null,
    listDirectory: async (path) => {
      const prefix = path.endsWith('/') ? path : `${path}/`;
      const names = new Set<string>();
      for (const file of Object.keys(files)) if (file.startsWith(prefix)) names.add(file.slice(prefix.length).split('/')[0]!);
      return names.size === 0 ? null : [...names];
    },
  };
}

function load(files: Files, file?: string): Promise<ParsedSshConfig> {
  return loadSshConfig({ homeDir: HOME, ...(file === undefined ? {} : { file }), ...memoryFs(files) });
}

const BASE_CONTEXT: ResolveHostContext = {
  localUser: 'ana',
  homeDir: HOME,
  env: { HOME, AGENT_DIR: '/run/agent', SOCK_VAR: '/run/sock' },
  localHostName: 'laptop.example.org',
  localUid: 1000,
};

async function resolveText(text: string, alias: string, context: Partial<ResolveHostContext> = {}, extra: Files = {}): Promise<ResolvedSshConfig> {
  const config = await load({ [CONFIG]: text, ...extra });
  return resolveHost(config, alias, { ...BASE_CONTEXT, ...context });
}

async function expectError(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<FtpfwdError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof FtpfwdError, `expected FtpfwdError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

interface Case {
  title: string;
  config: string;
  alias: string;
  context?: Partial<ResolveHostContext>;
  extraFiles?: Files;
  expected: Partial<ResolvedSshConfig>;
}

function pick(resolved: ResolvedSshConfig, expected: Partial<ResolvedSshConfig>): Partial<ResolvedSshConfig> {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(expected)) picked[key] = resolved[key as keyof ResolvedSshConfig];
  return picked as Partial<ResolvedSshConfig>;
}

function runCases(cases: readonly Case[]): void {
  for (const { title, config, alias, context, extraFiles, expected } of cases) {
    it(title, async () => {
      const resolved = await resolveText(config, alias, context, extraFiles);
      assert.deepEqual(pick(resolved, expected), expected);
    });
  }
}

describe('patterns', () => {
  const cases: Array<{ text: string; pattern: string; expected: boolean }> = [
    { text: 'abc', pattern: 'abc', expected: true },
    { text: 'abc', pattern: 'a*', expected: true },
    { text: 'abc', pattern: '*c', expected: true },
    { text: 'abc', pattern: 'a?c', expected: true },
    { text: 'ac', pattern: 'a?c', expected: false },
    { text: 'abbc', pattern: 'a?c', expected: false },
    { text: 'a.b.c', pattern: '*.c', expected: true },
    { text: 'abc', pattern: 'ABC', expected: false },
    { text: '', pattern: '*', expected: true },
    { text: 'a(b)', pattern: 'a(b)', expected: true },
  ];
  for (const { text, pattern, expected } of cases) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(text)}`, () => {
      assert.equal(matchSshPattern(text, pattern), expected);
    });
  }

  it('pattern lists: commas, negation, case folding of the patterns', () => {
    assert.equal(matchSshPatternList('web1', 'db*,web*', false), 1);
    assert.equal(matchSshPatternList('web1', '!web1,web*', false), -1);
    assert.equal(matchSshPatternList('web1', 'db*', false), 0);
    assert.equal(matchSshPatternList('web1', 'WEB*', true), 1);
    assert.equal(matchSshPatternList('web1', 'WEB*', false), 0);
  });

  it('times as convtime() reads them', () => {
    assert.equal(parseSshTime('90'), 90);
    assert.equal(parseSshTime('1m30s'), 90);
    assert.equal(parseSshTime('2h'), 7200);
    assert.equal(parseSshTime('1w1d'), 691200);
    assert.equal(parseSshTime('1x'), undefined);
    assert.equal(parseSshTime('30 s'), undefined);
    assert.equal(parseSshTime('5m1'), 301);
    assert.equal(parseSshTime(''), undefined);
  });
});

describe('Host matching and first obtained value', () => {
  runCases([
    {
      title: 'the first obtained value wins across Host blocks and Host *',
      config: 'Host web\n  User first\nHost web\n  User second\n  Port 2222\nHost *\n  User star\n  Port 22\n  ConnectTimeout 9\n',
      alias: 'web',
      expected: { user: 'first', port: 2222, connectTimeout: 9, hostName: 'web' },
    },
    {
      title: 'top-level lines before any Host apply to every host and win over later blocks',
      config: 'User global\nHost web\n  User web\n',
      alias: 'web',
      expected: { user: 'global' },
    },
    {
      title: 'Host * reached when nothing else matches',
      config: 'Host web\n  User web\nHost *\n  User star\n',
      alias: 'db',
      expected: { user: 'star' },
    },
    {
      title: 'a negated pattern excludes the host from the block',
      config: 'Host *.example.com !bad.example.com\n  User star\nHost *\n  User fallback\n',
      alias: 'bad.example.com',
      expected: { user: 'fallback' },
    },
    {
      title: 'the other hosts of a negated block still match',
      config: 'Host *.example.com !bad.example.com\n  User star\nHost *\n  User fallback\n',
      alias: 'good.example.com',
      expected: { user: 'star' },
    },
    {
      title: 'a negated pattern alone matches nothing',
      config: 'Host !bad\n  User neg\nHost *\n  User fallback\n',
      alias: 'good',
      expected: { user: 'fallback' },
    },
    { title: '? matches exactly one character', config: 'Host x?z\n  Port 2201\n', alias: 'xyz', expected: { port: 2201 } },
    { title: '? does not match zero characters', config: 'Host x?z\n  Port 2201\n', alias: 'xz', expected: { port: undefined } },
    { title: '? does not match two characters', config: 'Host x?z\n  Port 2201\n', alias: 'xyyz', expected: { port: undefined } },
    { title: 'several patterns on one Host line (first)', config: 'Host alpha beta\n  Port 1001\n', alias: 'alpha', expected: { port: 1001 } },
    { title: 'several patterns on one Host line (second)', config: 'Host alpha beta\n  Port 1001\n', alias: 'beta', expected: { port: 1001 } },
    { title: 'Host=value syntax and tabs', config: 'Host=alpha\n\tPort=1002\n', alias: 'alpha', expected: { port: 1002 } },
    {
      title: 'a comma on a Host line is part of the pattern, as in OpenSSH',
      config: 'Host alpha,beta\n  Port 1003\n',
      alias: 'alpha',
      expected: { port: undefined },
    },
    { title: 'a quoted pattern with a space is one pattern', config: 'Host "a b" alpha\n  Port 1004\n', alias: 'alpha', expected: { port: 1004 } },
    {
      title: 'Host patterns are case-sensitive against the alias as typed; HostName is lower-cased',
      config: 'Host Web\n  User upper\nHost *\n  User lower\n',
      alias: 'Web',
      expected: { user: 'upper', hostName: 'web' },
    },
    { title: 'keywords are case-insensitive', config: 'HOST web\n  hostname Real.Example.COM\n  pOrT 2\n', alias: 'web', expected: { hostName: 'real.example.com', port: 2 } },
    { title: 'HostName with %h', config: 'Host *.int\n  HostName %h.corp.example\n', alias: 'db.int', expected: { hostName: 'db.int.corp.example' } },
    { title: 'HostName with %%', config: 'Host web\n  HostName web%%1\n', alias: 'web', expected: { hostName: 'web%1' } },
    { title: 'no HostName: the alias', config: '', alias: 'plain', expected: { hostName: 'plain', user: undefined, port: undefined } },
    {
      title: 'comments, blank lines and trailing comments are ignored',
      config: "# top\n\nHost web # a comment\n  # inside, don't mind\n  User bob # it's a trailing comment\n",
      alias: 'web',
      expected: { user: 'bob' },
    },
  ]);

  it('HostName with an unknown token is an error', async () => {
    await expectError(resolveText('Host web\n  HostName %r.example\n', 'web'), 'ERR_FTPFWD_CONFIG', /line 2: HostName: unknown key %r/);
  });

  it('an alias with characters a shell would misread is refused, as ssh does', async () => {
    for (const alias of ['a,b', '-oProxyCommand=x', 'a;b', 'a b', 'a$b']) {
      await expectError(resolveText('', alias), 'ERR_FTPFWD_USAGE', /invalid characters/);
    }
  });
});

describe('IdentityFile', () => {
  runCases([
    {
      title: 'accumulates in order across blocks, duplicates dropped',
      config: 'Host web\n  IdentityFile /k/one\n  IdentityFile /k/two\nHost *\n  IdentityFile /k/one\n  IdentityFile /k/three\n',
      alias: 'web',
      expected: { identityFiles: ['/k/one', '/k/two', '/k/three'], identityFilesConfigured: true },
    },
    {
      title: '~ and every token expanded as ssh_config(5) TOKENS',
      config:
        'Host web\n  HostName Web.Example.org\n  User deploy\n  Port 2200\n' +
        '  IdentityFile ~/.ssh/id_%r@%h:%p\n  IdentityFile %d/keys/%u-%l-%L-%n-%i-%%\n  IdentityFile ~\n  IdentityFile ~ana/x\n  IdentityFile ~ana\n  IdentityFile ~//y\n  IdentityFile ${AGENT_DIR}/%k\n',
      alias: 'web',
      expected: {
        identityFiles: [
          '/home/ana/.ssh/id_deploy@web.example.org:2200',
          '/home/ana/keys/ana-laptop.example.org-laptop-web-1000-%',
          '/home/ana/',
          '/home/ana/x',
          '/home/ana/',
          '/home/ana/y',
          '/run/agent/web',
        ],
      },
    },
    {
      title: '%r and %p default to the local user and 22',
      config: 'IdentityFile /k/%r-%p\n',
      alias: 'web',
      expected: { identityFiles: ['/k/ana-22'] },
    },
    {
      title: 'tokens use the command-line user and port',
      config: 'IdentityFile /k/%r-%p\nUser fileuser\n',
      alias: 'web',
      context: { userOverride: 'cli', portOverride: 2022 },
      expected: { identityFiles: ['/k/cli-2022'], user: 'cli', port: 2022 },
    },
    {
      title: 'IdentityFile none is dropped but still counts as configured',
      config: 'IdentityFile none\n',
      alias: 'web',
      expected: { identityFiles: [], identityFilesConfigured: true },
    },
    { title: 'no IdentityFile: empty and not configured', config: 'User x\n', alias: 'web', expected: { identityFiles: [], identityFilesConfigured: false } },
    { title: 'a quoted path with a space', config: 'IdentityFile "/k/my key"\n', alias: 'web', expected: { identityFiles: ['/k/my key'] } },
    { title: "a quoted path with '#'", config: 'IdentityFile "/k/a#b" # comment\n', alias: 'web', expected: { identityFiles: ['/k/a#b'] } },
  ]);

  it('%C is the SHA-1 of %l%h%p%r', async () => {
    const resolved = await resolveText('IdentityFile /k/%C\n', 'web');
    const hash = createHash('sha1').update('laptop.example.orgweb22ana').digest('hex');
    assert.deepEqual(resolved.identityFiles, [`/k/${hash}`]);
  });

  it('an unknown token or unset ${VAR} is an error with file and line', async () => {
    await expectError(resolveText('\nIdentityFile /k/%z\n', 'web'), 'ERR_FTPFWD_CONFIG', /\/home\/ana\/\.ssh\/config line 2: IdentityFile: unknown key %z/);
    await expectError(resolveText('IdentityFile ${NOPE}/k\n', 'web'), 'ERR_FTPFWD_CONFIG', /line 1: .*\$\{NOPE\} is not set/);
    await expectError(resolveText('IdentityFile /k/%\n', 'web'), 'ERR_FTPFWD_CONFIG', /invalid format/);
  });

  it("~otheruser cannot be expanded", async () => {
    await expectError(resolveText('IdentityFile ~bob/.ssh/id\n', 'web'), 'ERR_FTPFWD_CONFIG', /~bob/);
    await expectError(resolveText('UserKnownHostsFile ~bob\n', 'web'), 'ERR_FTPFWD_CONFIG', /~bob/);
  });
});

describe('ProxyJump and ProxyCommand', () => {
  runCases([
    { title: 'raw ProxyJump value', config: 'Host web\n  ProxyJump bob@jump1:2222,jump2\n', alias: 'web', expected: { proxyJump: 'bob@jump1:2222,jump2' } },
    { title: 'ssh:// and [IPv6] hops', config: 'ProxyJump ssh://u@[2001:db8::1]:22,[::1]\n', alias: 'web', expected: { proxyJump: 'ssh://u@[2001:db8::1]:22,[::1]' } },
    {
      title: 'ProxyJump none stops later values',
      config: 'Host web\n  ProxyJump none\nHost *\n  ProxyJump jump\n',
      alias: 'web',
      expected: { proxyJump: undefined },
    },
    {
      title: 'ProxyJump first: a later ProxyCommand is ignored',
      config: 'Host web\n  ProxyJump jump\nHost *\n  ProxyCommand nc %h %p\n',
      alias: 'web',
      expected: { proxyJump: 'jump', unsupported: [] },
    },
    {
      title: 'ProxyCommand first: a later ProxyJump is ignored',
      config: 'Host web\n  ProxyCommand ssh -W "%h:%p" gw\nHost *\n  ProxyJump jump\n',
      alias: 'web',
      expected: { proxyJump: undefined, proxyCommand: 'ssh -W "web:22" gw', unsupported: [] },
    },
    {
      title: 'ProxyCommand none blocks a later ProxyJump',
      config: 'Host web\n  ProxyCommand none\nHost *\n  ProxyJump jump\n',
      alias: 'web',
      expected: { proxyJump: undefined, proxyCommand: undefined, unsupported: [] },
    },
    {
      title: "ProxyCommand is the rest of the line, for the shell: quotes, '#' and spacing kept",
      config: `Host web\n  ProxyCommand   sh -c 'exec nc -X 5 -x proxy:1080 %h %p'  # "kept"  \n`,
      alias: 'web',
      expected: { proxyCommand: `sh -c 'exec nc -X 5 -x proxy:1080 web 22'  # "kept"` },
    },
    {
      title: 'ProxyCommand tokens: %h after HostName, %p, %r, %n, %k (HostKeyAlias), %%',
      config: 'Host web\n  HostName web.example.com\n  User bob\n  Port 2222\n  HostKeyAlias webkey\n  ProxyCommand=connect %h %p %r %n %k 100%%\n',
      alias: 'web',
      expected: { proxyCommand: 'connect web.example.com 2222 bob web webkey 100%' },
    },
    {
      title: '%r in ProxyCommand is the local user when no User is set',
      config: 'ProxyCommand proxy %r@%h\n',
      alias: 'web',
      expected: { proxyCommand: 'proxy ana@web' },
    },
    {
      title: '-o ProxyCommand is taken as given and wins over the file',
      config: 'Host web\n  ProxyJump jump\n',
      alias: 'web',
      context: { overrides: { ProxyCommand: "sh -c 'nc %h %p'" } },
      expected: { proxyJump: undefined, proxyCommand: "sh -c 'nc web 22'" },
    },
  ]);

  it('a ProxyCommand token OpenSSH does not expand there is an error naming the line', async () => {
    await expectError(resolveText('Host web\n  ProxyCommand nc %h %d\n', 'web'), 'ERR_FTPFWD_CONFIG', /line 2: ProxyCommand: unknown key %d/);
  });

  it('a malformed ProxyJump is an error even in a block that does not apply', async () => {
    await expectError(resolveText('Host other\n  ProxyJump a:b\n', 'web'), 'ERR_FTPFWD_CONFIG', /line 2: Invalid ProxyJump "a:b"/);
  });
});

describe('-o overrides and command-line user and port', () => {
  runCases([
    {
      title: '-o values win over the file',
      config: 'Host web\n  User file\n  Port 2222\n  StrictHostKeyChecking no\n  IdentityFile /k/file\n',
      alias: 'web',
      context: { overrides: { User: 'opt', port: '2323', StrictHostKeyChecking: 'accept-new', IdentityFile: ['/k/a', '/k/b'] } },
      expected: { user: 'opt', port: 2323, strictHostKeyChecking: 'accept-new', identityFiles: ['/k/a', '/k/b', '/k/file'] },
    },
    {
      title: '-o HostName changes what Match host sees',
      config: 'Match host real.example\n  User matched\n',
      alias: 'web',
      context: { overrides: { HostName: 'real.example' } },
      expected: { hostName: 'real.example', user: 'matched' },
    },
    {
      title: 'user@ / -l and -p win over -o and the file',
      config: 'Host web\n  User file\n  Port 2222\n',
      alias: 'web',
      context: { overrides: { User: 'opt', Port: '2323' }, userOverride: 'cli', portOverride: 2424 },
      expected: { user: 'cli', port: 2424 },
    },
    {
      title: 'the command-line user is what Match user sees',
      config: 'Match user deploy\n  Port 7\n',
      alias: 'web',
      context: { userOverride: 'deploy' },
      expected: { port: 7 },
    },
    {
      title: '-o ProxyJump none overrides the file',
      config: 'ProxyJump jump\n',
      alias: 'web',
      context: { overrides: { ProxyJump: 'none' } },
      expected: { proxyJump: undefined },
    },
  ]);

  it('unsupported -o options are reported as from the command line', async () => {
    const resolved = await resolveText('', 'web', { overrides: { Ciphers: 'aes128-ctr' } });
    assert.deepEqual(resolved.unsupported, [{ key: 'Ciphers', value: 'aes128-ctr', file: 'command line', securityRelevant: true }]);
  });

  it('bad -o options are usage errors', async () => {
    await expectError(resolveText('', 'web', { overrides: { Port: 'abc' } }), 'ERR_FTPFWD_USAGE', /-o Port=abc: Bad port 'abc'/);
    await expectError(resolveText('', 'web', { overrides: { Host: 'x' } }), 'ERR_FTPFWD_USAGE', /not supported as a command-line option/);
    await expectError(resolveText('', 'web', { overrides: { Include: '/x' } }), 'ERR_FTPFWD_USAGE', /not supported as a command-line option/);
    await expectError(resolveText('', 'web', { overrides: { Bogus: 'x' } }), 'ERR_FTPFWD_USAGE', /Bad configuration option: bogus/);
    await expectError(resolveText('', 'web', { overrides: { 'Bad Key': 'x' } }), 'ERR_FTPFWD_USAGE', /bad option name/);
    await expectError(resolveText('', 'web', { portOverride: 70000 }), 'ERR_FTPFWD_USAGE', /Bad port/);
  });
});

describe('Include', () => {
  runCases([
    {
      title: 'an absolute Include is read where it appears',
      config: 'Include /etc/ftpfwd/common.conf\nHost web\n  User main\n',
      extraFiles: { '/etc/ftpfwd/common.conf': 'Host web\n  User included\n  Port 2001\n' },
      alias: 'web',
      expected: { user: 'included', port: 2001 },
    },
    {
      title: 'a relative Include is under ~/.ssh',
      config: 'Include conf.d/web.conf\n',
      extraFiles: { [`${HOME}/.ssh/conf.d/web.conf`]: 'Port 2002\n' },
      alias: 'web',
      expected: { port: 2002 },
    },
    {
      title: '~/ in an Include is the home directory',
      config: 'Include ~/other.conf\n',
      extraFiles: { [`${HOME}/other.conf`]: 'Port 2003\n' },
      alias: 'web',
      expected: { port: 2003 },
    },
    {
      title: 'a glob includes the matching files in sorted order, not dot files',
      config: 'Include conf.d/*.conf\n',
      extraFiles: {
        [`${HOME}/.ssh/conf.d/20-b.conf`]: 'IdentityFile /k/b\n',
        [`${HOME}/.ssh/conf.d/10-a.conf`]: 'IdentityFile /k/a\n',
        [`${HOME}/.ssh/conf.d/.hidden.conf`]: 'IdentityFile /k/hidden\n',
        [`${HOME}/.ssh/conf.d/notes.txt`]: 'IdentityFile /k/txt\n',
      },
      alias: 'web',
      expected: { identityFiles: ['/k/a', '/k/b'] },
    },
    {
      title: 'an Include that matches nothing is fine',
      config: 'Include /nonexistent/file\nInclude /nonexistent/*.conf\nPort 2004\n',
      alias: 'web',
      expected: { port: 2004 },
    },
    {
      title: 'inside a Host block that does not apply, nothing in the included file applies',
      config: 'Host other\n  Include inc.conf\nHost *\n  User main\n',
      extraFiles: { [`${HOME}/.ssh/inc.conf`]: 'Port 2005\nHost web\n  User included\n' },
      alias: 'web',
      expected: { port: undefined, user: 'main' },
    },
    {
      title: "inside a Host block that applies, the included file's Host lines do not leak out",
      config: 'Host web\n  Include inc.conf\n  IdentityFile /k/after\n',
      extraFiles: { [`${HOME}/.ssh/inc.conf`]: 'Port 2006\nHost nomatch\n  User nope\n' },
      alias: 'web',
      expected: { port: 2006, user: undefined, identityFiles: ['/k/after'] },
    },
  ]);

  it('lists every file read', async () => {
    const config = await load({ [CONFIG]: 'Include a.conf\n', [`${HOME}/.ssh/a.conf`]: 'Include /b.conf\n', '/b.conf': 'Port 1\n' });
    assert.deepEqual(config.files, [CONFIG, `${HOME}/.ssh/a.conf`, '/b.conf']);
  });

  it('errors in included files name that file and line', async () => {
    await expectError(load({ [CONFIG]: 'Include bad.conf\n', [`${HOME}/.ssh/bad.conf`]: '\n\nPort abc\n' }), 'ERR_FTPFWD_CONFIG', /\/home\/ana\/\.ssh\/bad\.conf line 3: Bad port 'abc'/);
  });

  it('a recursive Include stops at 16 levels', async () => {
    await expectError(load({ [CONFIG]: 'Include config\n' }), 'ERR_FTPFWD_CONFIG', /Too many recursive configuration includes/);
  });
});

describe('Match', () => {
  runCases([
    {
      title: 'Match host sees HostName with %h expanded',
      config: 'Host web\n  HostName %h.example.com\nMatch host web.example.com\n  User matched\n',
      alias: 'web',
      expected: { user: 'matched', hostName: 'web.example.com' },
    },
    {
      title: 'Match host is a case-insensitive comma list',
      config: 'Match host DB*,WEB*\n  Port 3001\n',
      alias: 'web1',
      expected: { port: 3001 },
    },
    {
      title: 'Match host with a negated entry in the list',
      config: 'Match host !web1,web*\n  Port 3002\n',
      alias: 'web1',
      expected: { port: undefined },
    },
    { title: 'Match !host', config: 'Match !host db*\n  Port 3003\n', alias: 'web', expected: { port: 3003 } },
    {
      title: 'Match originalhost sees the alias',
      config: 'Host web\n  HostName real\nMatch originalhost web\n  Port 3004\nMatch host web\n  User never\n',
      alias: 'web',
      expected: { port: 3004, user: undefined },
    },
    { title: 'Match all', config: 'Host other\n  Port 1\nMatch all\n  Port 3005\n', alias: 'web', expected: { port: 3005 } },
    { title: 'every criterion must match', config: 'Match host web user bob\n  Port 3006\n', alias: 'web', expected: { port: undefined } },
    { title: 'Match localuser', config: 'Match localuser ana\n  Port 3007\n', alias: 'web', expected: { port: 3007 } },
    {
      title: 'Match user sees the User obtained so far, else the local user',
      config: 'Match user ana\n  Port 3008\nUser bob\nMatch user bob\n  IdentityFile /k/bob\n',
      alias: 'web',
      expected: { port: 3008, identityFiles: ['/k/bob'] },
    },
    {
      title: 'Match final: a second pass where Host matches the resolved name',
      config:
        'Host m1\n  HostName real.example.com\nMatch final\n  IdentityFile /m/final\n  User finaluser\nMatch canonical\n  IdentityFile /m/canonical\n' +
        'Host real.example.com\n  IdentityFile /m/real\nHost *\n  IdentityFile /m/star\n  User star\n',
      alias: 'm1',
      expected: { user: 'star', identityFiles: ['/m/star', '/m/final', '/m/canonical', '/m/real'] },
    },
    {
      title: 'Match exec is not run: the block does not apply and the line is reported',
      config: 'Match exec "test -f /tmp/x"\n  Port 3009\n',
      alias: 'web',
      expected: { port: undefined, unsupported: [{ key: 'Match', value: 'exec test -f /tmp/x', file: CONFIG, line: 1, securityRelevant: true }] },
    },
    {
      title: 'Match exec after a failed criterion is skipped, as ssh does',
      config: 'Match host db exec "true"\n  Port 3010\n',
      alias: 'web',
      expected: { port: undefined, unsupported: [] },
    },
  ]);

  it('malformed Match lines are errors', async () => {
    await expectError(load({ [CONFIG]: 'Match bogus x\n' }), 'ERR_FTPFWD_CONFIG', /line 1: Unsupported Match attribute bogus/);
    await expectError(load({ [CONFIG]: 'Match canonical final all\n' }), 'ERR_FTPFWD_CONFIG', /cannot be combined/);
    await expectError(load({ [CONFIG]: 'Match all host x\n' }), 'ERR_FTPFWD_CONFIG', /cannot be combined/);
    await expectError(load({ [CONFIG]: 'Match canonical user\n' }), 'ERR_FTPFWD_CONFIG', /line 1: .*Missing (value for match criteria|Match criteria for) user/);
    await expectError(load({ [CONFIG]: 'Match !exec\n' }), 'ERR_FTPFWD_CONFIG', /line 1: .*Missing (value for match criteria|Match criteria for) !exec/);
  });
});

describe('loading', () => {
  it('a missing default file is an empty configuration', async () => {
    const config = await load({});
    assert.equal(config.found, false);
    assert.equal(config.path, CONFIG);
    assert.deepEqual(resolveHost(config, 'web', BASE_CONTEXT), { hostName: 'web', identityFiles: [], identityFilesConfigured: false, certificateFiles: [], unsupported: [] });
  });

  it('a missing -F file is a config error', async () => {
    await expectError(load({}, '/nope/config'), 'ERR_FTPFWD_CONFIG', /Can't open user config file \/nope\/config/);
  });

  it('-F none reads nothing', async () => {
    const config = await load({ [CONFIG]: 'Port 1\n' }, 'none');
    assert.equal(config.found, false);
    assert.equal(resolveHost(config, 'web', BASE_CONTEXT).port, undefined);
  });

  it('-F reads the given file instead of ~/.ssh/config', async () => {
    const config = await load({ [CONFIG]: 'Port 1\n', '/etc/alt': 'Port 2\n' }, '/etc/alt');
    assert.equal(resolveHost(config, 'web', BASE_CONTEXT).port, 2);
  });

  it('the default reader reads real files, and a missing one is fine', async () => {
    const dir = await makeTempDir('ftpfwd-sshconfig-');
    try {
      await mkdir(join(dir, '.ssh'));
      assert.equal((await loadSshConfig({ homeDir: dir })).found, false);
      await writeFile(join(dir, '.ssh', 'config'), 'Port 2345\n');
      const config = await loadSshConfig({ homeDir: dir });
      assert.equal(resolveHost(config, 'web', { ...BASE_CONTEXT, homeDir: dir }).port, 2345);
    } finally {
      await removeDir(dir);
    }
  });

  const malformed: Array<{ title: string; text: string; message: RegExp }> = [
    { title: 'Port abc', text: 'Host a\n  Port abc\n', message: /config line 2: Bad port 'abc'\./ },
    { title: 'Port 0', text: 'Port 0\n', message: /line 1: Bad port '0'/ },
    { title: 'Port 65536', text: 'Port 65536\n', message: /line 1: Bad port/ },
    { title: 'Port with two values', text: '\n\n# c\nPort 22 23\n', message: /line 4: keyword port extra arguments at end of line/ },
    { title: 'keyword without value', text: 'Host a\n  Port\n  User x\n', message: /line 2: no argument after keyword "port"/ },
    { title: 'empty quoted value', text: 'User ""\n', message: /line 1: keyword user empty argument/ },
    { title: 'unbalanced quote', text: 'User a\n\nIdentityFile "/k/x\n', message: /line 3: cannot parse/ },
    { title: 'bad StrictHostKeyChecking', text: 'StrictHostKeyChecking maybe\n', message: /line 1: unsupported option "maybe"/ },
    { title: 'bad BatchMode', text: 'BatchMode 1\n', message: /line 1: unsupported option "1"/ },
    { title: 'bad time', text: 'ConnectTimeout 5x\n', message: /line 1: invalid time value "5x"/ },
    { title: 'bad count', text: 'ServerAliveCountMax -1\n', message: /line 1: integer value "-1" is invalid/ },
    { title: 'none not alone', text: 'UserKnownHostsFile none /k\n', message: /"none" argument must appear alone/ },
    { title: 'Include with ~user', text: 'Include ~bob/x\n', message: /bad include path/ },
    { title: "'#' inside a used value", text: 'Host web\n  IdentityFile /k/a#b\n', message: /line 2: a '#' inside a value must be in double quotes/ },
    { title: 'single quotes in a used value', text: "IdentityFile '/k/a b'\n", message: /line 1: single quotes are not supported/ },
  ];
  for (const { title, text, message } of malformed) {
    it(`malformed: ${title} → ERR_FTPFWD_CONFIG with file and line`, async () => {
      const error = await expectError(load({ [CONFIG]: text }), 'ERR_FTPFWD_CONFIG', message);
      assert.equal(error.details['file'], CONFIG);
    });
  }

  it('line numbers survive CRLF line ends', async () => {
    await expectError(load({ [CONFIG]: 'Host a\r\n\r\n  Port x\r\n' }), 'ERR_FTPFWD_CONFIG', /line 3: Bad port 'x'/);
  });

  it('an unknown keyword is an error, even in a block that does not apply', async () => {
    const error = await expectError(resolveText('Host other\n  Bogus 1\n', 'web'), 'ERR_FTPFWD_CONFIG', /line 2: Bad configuration option: bogus/);
    assert.equal(error.details['line'], 2);
  });

  it('IgnoreUnknown names keywords to skip', async () => {
    const resolved = await resolveText('IgnoreUnknown bog*,UseSomething\nBogus 1\nUseSomething yes\n', 'web');
    assert.deepEqual(resolved.unsupported, []);
  });
});

describe('unsupported keys', () => {
  it('are reported with whether they matter for security', async () => {
    const resolved = await resolveText(
      [
        'Host web',
        '  Ciphers aes256-gcm@openssh.com',
        '  LocalCommand echo hi',
        '  ForwardAgent yes',
        '  CertificateFile ~/.ssh/id-cert.pub',
        '  CertificateFile ~/.ssh/other-cert.pub',
        '  LocalForward 8080 localhost:80',
        '  GSSAPIAuthentication yes',
        '  HostKeyAlias webkey',
        '  ForwardX11 yes',
        '  Compression yes',
        '  LogLevel DEBUG',
        '  SendEnv LANG',
        '  ControlMaster auto',
        '  RequestTTY yes',
        'Host *',
        '  Ciphers aes128-ctr',
        '  ForwardAgent no',
        '  CheckHostIP no',
        '  PermitLocalCommand no',
        '  ConnectionAttempts 3',
        '',
      ].join('\n'),
      'web',
    );
    assert.deepEqual(resolved.unsupported, [
      { key: 'Ciphers', value: 'aes256-gcm@openssh.com', file: CONFIG, line: 2, securityRelevant: true },
      { key: 'LocalCommand', value: 'echo hi', file: CONFIG, line: 3, securityRelevant: true },
      { key: 'ForwardAgent', value: 'yes', file: CONFIG, line: 4, securityRelevant: true },
      { key: 'LocalForward', value: '8080 localhost:80', file: CONFIG, line: 7, securityRelevant: false },
      { key: 'GSSAPIAuthentication', value: 'yes', file: CONFIG, line: 8, securityRelevant: false },
      { key: 'HostKeyAlias', value: 'webkey', file: CONFIG, line: 9, securityRelevant: true },
      { key: 'ConnectionAttempts', value: '3', file: CONFIG, line: 21, securityRelevant: false },
    ]);
  });

  it('values that match what ftpfwd does anyway are not reported', async () => {
    const resolved = await resolveText('ForwardAgent no\nCheckHostIP no\nGSSAPIAuthentication no\nProxyCommand none\nCanonicalizeHostname no\n', 'web');
    assert.deepEqual(resolved.unsupported, []);
  });

  it('keys in blocks that do not apply are not reported', async () => {
    const resolved = await resolveText('Host other\n  ProxyCommand nc %h %p\n  Ciphers aes128-ctr\n', 'web');
    assert.deepEqual(resolved.unsupported, []);
  });

  it('CanonicalizeHostname is reported and, like ssh, triggers the second pass', async () => {
    const resolved = await resolveText('CanonicalizeHostname yes\nMatch canonical\n  Port 4001\n', 'web');
    assert.equal(resolved.port, 4001);
    assert.deepEqual(resolved.unsupported, [{ key: 'CanonicalizeHostname', value: 'yes', file: CONFIG, line: 1, securityRelevant: true }]);
  });
});

describe('supported values', () => {
  const strict: Array<[string, ResolvedSshConfig['strictHostKeyChecking']]> = [
    ['yes', 'yes'],
    ['ask', 'yes'],
    ['true', 'yes'],
    ['YES', 'yes'],
    ['accept-new', 'accept-new'],
    ['no', 'no'],
    ['off', 'no'],
    ['false', 'no'],
  ];
  runCases(
    strict.map(([value, expected]) => ({
      title: `StrictHostKeyChecking ${value} → ${expected}`,
      config: `StrictHostKeyChecking ${value}\n`,
      alias: 'web',
      expected: { strictHostKeyChecking: expected },
    })),
  );

  runCases([
    { title: 'IdentityAgent SSH_AUTH_SOCK', config: 'IdentityAgent SSH_AUTH_SOCK\n', alias: 'web', expected: { identityAgent: 'SSH_AUTH_SOCK' } },
    { title: 'IdentityAgent none', config: 'IdentityAgent none\n', alias: 'web', expected: { identityAgent: 'none' } },
    {
      title: 'IdentityAgent path with ~, tokens and ${ENV}',
      config: 'Host web\n  IdentityAgent ~/.agent/%u@%h\nHost other\n  IdentityAgent ${AGENT_DIR}/%r.sock\n',
      alias: 'web',
      expected: { identityAgent: '/home/ana/.agent/ana@web' },
    },
    { title: 'IdentityAgent ${ENV}', config: 'IdentityAgent ${AGENT_DIR}/%r.sock\n', alias: 'web', expected: { identityAgent: '/run/agent/ana.sock' } },
    { title: 'IdentityAgent $VAR names a variable holding the path', config: 'IdentityAgent $SOCK_VAR\n', alias: 'web', expected: { identityAgent: '/run/sock' } },
    { title: 'IdentityAgent $VAR unset: no agent', config: 'IdentityAgent $UNSET_VAR\n', alias: 'web', expected: { identityAgent: 'none' } },
    {
      title: 'known hosts files: lists, ~ and tokens for the user files, global as given',
      config: 'UserKnownHostsFile ~/.ssh/kh %d/kh_%h "/k h/x"\nGlobalKnownHostsFile /etc/a /etc/b\n',
      alias: 'web',
      expected: { userKnownHostsFiles: ['/home/ana/.ssh/kh', '/home/ana/kh_web', '/k h/x'], globalKnownHostsFiles: ['/etc/a', '/etc/b'] },
    },
    { title: 'UserKnownHostsFile none: no files', config: 'UserKnownHostsFile none\n', alias: 'web', expected: { userKnownHostsFiles: [] } },
    {
      title: 'times and counts',
      config: 'ServerAliveInterval 1m30s\nServerAliveCountMax 5\nConnectTimeout none\nConnectTimeout 12\n',
      alias: 'web',
      expected: { serverAliveInterval: 90, serverAliveCountMax: 5, connectTimeout: 12 },
    },
    {
      title: 'authentication flags and their aliases',
      config: 'BatchMode yes\nPasswordAuthentication no\nChallengeResponseAuthentication no\nKbdInteractiveAuthentication yes\nPubkeyAuthentication host-bound\nIdentitiesOnly true\nHashKnownHosts yes\n',
      alias: 'web',
      expected: {
        batchMode: true,
        passwordAuthentication: false,
        kbdInteractiveAuthentication: false,
        pubkeyAuthentication: true,
        identitiesOnly: true,
        hashKnownHosts: true,
      },
    },
    { title: 'PubkeyAuthentication no', config: 'PubkeyAuthentication no\n', alias: 'web', expected: { pubkeyAuthentication: false } },
  ]);
});

/**
 * The real OpenSSH client resolves the same files: `ssh -G` prints its result
 * without connecting. IdentityFile is compared for token-free paths, since
 * ssh -G prints those unexpanded; UserKnownHostsFile it prints expanded.
 */
describe('agreement with ssh -G', () => {
  const ssh = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
  const haveSsh = ssh.status === 0;
  const me = userInfo();
  let dir: string;

  before(async () => {
    dir = await makeTempDir('ftpfwd-sshg-');
  });
  after(async () => {
    await removeDir(dir);
  });

  function sshG(file: string, alias: string, args: string[] = []): Map<string, string[]> {
    const result = spawnSync('ssh', ['-G', '-F', file, ...args, alias], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: me.homedir },
    });
    assert.equal(result.status, 0, result.stderr);
    const values = new Map<string, string[]>();
    for (const line of result.stdout.split('\n')) {
      const space = line.indexOf(' ');
      if (space === -1) continue;
      const key = line.slice(0, space);
      values.set(key, [...(values.get(key) ?? []), line.slice(space + 1)]);
    }
    return values;
  }

  const configs: Array<{ title: string; text: (dir: string) => string; includes?: Record<string, string>; aliases: string[]; args?: string[]; context?: Partial<ResolveHostContext> }> = [
    {
      title: 'Host blocks, negation, ?, %h, first match, accumulation',
      text: (d) =>
        [
          'Host Upper',
          '  User upper',
          'Host x?z',
          '  Port 2201',
          '  IdentityFile /keys/xz',
          'Host *.ex !bad.ex',
          '  User star',
          '  ProxyJump bob@jump1:2222,jump2',
          'Host alias',
          '  HostName %h.Example.COM',
          '  IdentityFile /keys/one',
          '  IdentityFile /keys/two',
          '  IdentityFile /keys/one',
          '  User bob',
          '  Port 2222',
          `  UserKnownHostsFile ${d}/kh_%h_%p_%r %d/kh2_%u_%n_%l_%L`,
          'Host *',
          '  User def',
          '  IdentityFile /keys/common',
          '  ProxyJump none',
          '',
        ].join('\n'),
      aliases: ['Upper', 'upper', 'xyz', 'xz', 'q.ex', 'bad.ex', 'alias', 'other'],
    },
    {
      title: 'Include with globs and Match host/originalhost/all/final',
      text: (d) =>
        [
          'Host nomatch',
          `  Include ${d}/conf.d/b.conf`,
          'Host inc',
          `  Include ${d}/conf.d/*.conf`,
          '  IdentityFile /main/after-include',
          'Host m1',
          '  HostName real.example.com',
          'Match host real.example.com',
          '  User matchedhost',
          'Match originalhost m1',
          '  Port 2000',
          'Match !host foo,real.*',
          '  IdentityFile /m/neg',
          'Match host "foo,real.*"',
          '  IdentityFile /m/list',
          'Match final',
          '  IdentityFile /m/final',
          'Match canonical',
          '  IdentityFile /m/canonical',
          'Host real.example.com',
          '  IdentityFile /m/hostreal-final',
          'Match all',
          '  IdentityFile /main/all',
          '',
        ].join('\n'),
      includes: {
        'conf.d/a.conf': 'User from_a\nHost inc\n  Port 3001\n',
        'conf.d/b.conf': 'IdentityFile /b/top\nHost *\n  IdentityFile /b/star\n',
      },
      aliases: ['inc', 'm1', 'other'],
    },
    {
      title: 'ProxyCommand and ProxyJump: the first obtained wins, none blocks both',
      text: () =>
        [
          'Host viacmd',
          "  ProxyCommand sh -c 'exec nc -X 5 -x 127.0.0.1:1080 \"$0\" 22' gw # not a comment",
          'Host viajump',
          '  ProxyJump gw1,gw2',
          'Host direct',
          '  ProxyCommand none',
          'Host *',
          '  ProxyCommand ssh -W target:22 gw',
          '  ProxyJump ignored',
          '',
        ].join('\n'),
      aliases: ['viacmd', 'viajump', 'direct', 'other'],
    },
    {
      title: 'command-line user, port and -o options',
      text: () => 'Host web\n  User file\n  Port 2222\n  IdentityFile /k/file\n  ProxyJump jump\nMatch user cli\n  IdentityFile /k/cli\n',
      aliases: ['web'],
      args: ['-l', 'cli', '-p', '2424', '-o', 'IdentityFile=/k/opt', '-o', 'ProxyJump=other-jump'],
      context: { userOverride: 'cli', portOverride: 2424, overrides: { IdentityFile: '/k/opt', ProxyJump: 'other-jump' } },
    },
  ];

  for (const { title, text, includes, aliases, args, context } of configs) {
    it(title, { skip: haveSsh ? false : 'ssh is not installed' }, async () => {
      const file = join(dir, `config-${configs.findIndex((c) => c.title === title)}`);
      await writeFile(file, text(dir));
      for (const [name, content] of Object.entries(includes ?? {})) {
        await mkdir(join(dir, name, '..'), { recursive: true });
        await writeFile(join(dir, name), content);
      }
      const config = await loadSshConfig({ file, homeDir: me.homedir });
      for (const alias of aliases) {
        const ours = resolveHost(config, alias, {
          localUser: me.username,
          homeDir: me.homedir,
          env: process.env,
          localHostName: hostname(),
          ...context,
        });
        const theirs = sshG(file, alias, args);
        const label = `${title}: ${alias}`;
        assert.deepEqual(theirs.get('hostname'), [ours.hostName], label);
        assert.deepEqual(theirs.get('user'), [ours.user ?? me.username], label);
        assert.deepEqual(theirs.get('port'), [String(ours.port ?? 22)], label);
        if (ours.identityFilesConfigured) assert.deepEqual(theirs.get('identityfile'), ours.identityFiles, label);
        assert.deepEqual(theirs.get('proxyjump'), ours.proxyJump === undefined ? undefined : [ours.proxyJump], label);
        // ssh -G prints ProxyCommand before %-expansion; these have no tokens.
        assert.deepEqual(theirs.get('proxycommand'), ours.proxyCommand === undefined ? undefined : [ours.proxyCommand], label);
        if (ours.userKnownHostsFiles !== undefined) assert.deepEqual(theirs.get('userknownhostsfile'), [ours.userKnownHostsFiles.join(' ')], label);
      }
    });
  }
});
