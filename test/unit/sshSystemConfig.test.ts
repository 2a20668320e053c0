import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSshConfig, resolveHost, type ResolvedSshConfig, type ResolveHostContext } from '../../src/ssh/sshConfig.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

const HOME = '/home/ana';
const USER_FILE = `${HOME}/.ssh/config`;
const SYSTEM_FILE = '/etc/ssh/ssh_config';
const CONTEXT: ResolveHostContext = { localUser: 'ana', homeDir: HOME, env: {}, localHostName: 'laptop', localUid: 1000 };

/** Loads from an in-memory file system (path → text), the system file at its default path. */
async function resolveFrom(files: Record<string, string>, alias: string, file?: string): Promise<ResolvedSshConfig> {
  const config = await loadSshConfig({
    homeDir: HOME,
    ...(file === undefined ? {} : { file }),
    readFile: async (path) => files[path] ?? null,
    listDirectory: async (path) => {
      const prefix = path.endsWith('/') ? path : `${path}/`;
      const names = Object.keys(files).filter((name) => name.startsWith(prefix)).map((name) => name.slice(prefix.length).split('/')[0]!);
      return names.length === 0 ? null : names;
    },
  });
  return resolveHost(config, alias, CONTEXT);
}

describe('the system-wide ssh_config', () => {
  it('is read after the user file: the user file wins, the system file fills in', async () => {
    const resolved = await resolveFrom({ [USER_FILE]: 'Host web\n  User mine\n', [SYSTEM_FILE]: 'Host *\n  User theirs\n  Port 2200\n' }, 'web');
    assert.equal(resolved.user, 'mine');
    assert.equal(resolved.port, 2200);
  });

  it('starts outside the Host block the user file ended in', async () => {
    const resolved = await resolveFrom({ [USER_FILE]: 'Host other\n  User other\n', [SYSTEM_FILE]: 'Port 2201\n' }, 'web');
    assert.equal(resolved.port, 2201);
  });

  it('is read when there is no user file', async () => {
    assert.equal((await resolveFrom({ [SYSTEM_FILE]: 'Port 2202\n' }, 'web')).port, 2202);
  });

  it('is not read with -F, which replaces both files', async () => {
    assert.equal((await resolveFrom({ '/cfg': 'User f\n', [SYSTEM_FILE]: 'Port 2203\n' }, 'web', '/cfg')).port, undefined);
  });

  it('includes relative paths from /etc/ssh, as Debian\'s "Include /etc/ssh/ssh_config.d/*.conf" does absolutely', async () => {
    const resolved = await resolveFrom(
      {
        [SYSTEM_FILE]: 'Include ssh_config.d/*.conf\nHost *\n  User fallback\n',
        '/etc/ssh/ssh_config.d/10-bastion.conf': 'Host bastion\n  HostName 10.0.0.5\n  User ops\n  ProxyJump gate\n',
        '/etc/ssh/ssh_config.d/20-other.conf': 'Host bastion\n  Port 2204\n',
      },
      'bastion',
    );
    assert.deepEqual([resolved.hostName, resolved.user, resolved.port, resolved.proxyJump], ['10.0.0.5', 'ops', 2204, 'gate']);
  });

  it('takes part in the final pass (Match final) like the user file', async () => {
    const resolved = await resolveFrom({ [USER_FILE]: 'Host web\n  HostName web.example.com\n', [SYSTEM_FILE]: 'Match final host web.example.com\n  Port 2205\n' }, 'web');
    assert.equal(resolved.port, 2205);
  });

  it('errors in it name the system file and line', async () => {
    await assert.rejects(resolveFrom({ [SYSTEM_FILE]: 'Port 22\nNoSuchKeyword 1\n' }, 'web'), /\/etc\/ssh\/ssh_config line 2: Bad configuration option: nosuchkeyword/);
  });
});

/**
 * The real ssh reads /etc/ssh/ssh_config and the home directory of the
 * passwd entry; it runs here in a mount namespace of its own where a
 * temporary directory is mounted over each, so the machine's files are
 * neither read nor touched. ftpfwd reads the same temporary files through
 * loadSshConfig's systemFile option.
 */
describe('system file and Include agree with ssh -G', { skip: process.getuid?.() === 0 ? false : 'needs root (a mount namespace for ssh -G)' }, () => {
  const me = userInfo();
  let dir: string;
  const etcSsh = (): string => join(dir, 'etc-ssh');
  const home = (): string => join(dir, 'home');

  before(async () => {
    dir = await makeTempDir('ftpfwd-system-config-');
    await mkdir(join(etcSsh(), 'ssh_config.d'), { recursive: true });
    await mkdir(join(home(), '.ssh'), { recursive: true });
    await writeFile(join(home(), '.ssh', 'config'), ['Host bastion', '  Port 2222', 'Host other', '  User from-user-file', ''].join('\n'));
    await writeFile(join(etcSsh(), 'ssh_config'), ['Include ssh_config.d/*.conf', 'Host *', '  User everyone', '  Port 2022', ''].join('\n'));
    await writeFile(
      join(etcSsh(), 'ssh_config.d', '50-bastion.conf'),
      ['Host bastion', '  HostName bastion.corp.example', '  User ops', '  ProxyJump gate@jump.corp.example:2200', 'Host jump.corp.example', '  User gatekeeper', ''].join('\n'),
    );
  });
  after(async () => {
    if (dir) await removeDir(dir);
  });

  function sshG(alias: string): Map<string, string> {
    const script = 'mount --bind "$1" /etc/ssh && mount --bind "$2" "$3" && exec ssh -G "$4"';
    const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', etcSsh(), home(), me.homedir, alias], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 15_000,
    });
    assert.equal(result.status, 0, result.stderr);
    const values = new Map<string, string>();
    for (const line of result.stdout.split('\n')) {
      const space = line.indexOf(' ');
      if (space > 0 && !values.has(line.slice(0, space))) values.set(line.slice(0, space), line.slice(space + 1));
    }
    return values;
  }

  for (const alias of ['bastion', 'jump.corp.example', 'other', 'elsewhere']) {
    it(alias, async () => {
      const config = await loadSshConfig({ homeDir: home(), systemFile: join(etcSsh(), 'ssh_config') });
      const ours = resolveHost(config, alias, { localUser: me.username, homeDir: home(), env: process.env, localHostName: hostname() });
      const theirs = sshG(alias);
      assert.equal(ours.hostName, theirs.get('hostname'));
      assert.equal(ours.user ?? me.username, theirs.get('user'));
      assert.equal(String(ours.port ?? 22), theirs.get('port'));
      assert.equal(ours.proxyJump, theirs.get('proxyjump'));
    });
  }
});
