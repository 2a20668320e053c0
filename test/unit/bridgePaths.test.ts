import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { baseName, decodePathArgument, hasGlob, isInsideRoot, matchGlob, parentPath, quoteForReply, resolvePath, toRemotePath, toVirtualPath } from '../../src/bridge/paths.js';

describe('resolvePath: virtual paths never climb above /', () => {
  const cases: Array<{ title: string; cwd: string; argument: string; expected: string }> = [
    { title: 'a relative name', cwd: '/a', argument: 'b', expected: '/a/b' },
    { title: 'an absolute name', cwd: '/a', argument: '/c/d', expected: '/c/d' },
    { title: 'dot segments', cwd: '/a', argument: './b/./c', expected: '/a/b/c' },
    { title: 'one level up', cwd: '/a/b', argument: '..', expected: '/a' },
    { title: 'up from the top stays at the top', cwd: '/', argument: '..', expected: '/' },
    { title: 'many levels up', cwd: '/a', argument: '../../../../etc/passwd', expected: '/etc/passwd' },
    { title: 'up inside an absolute path', cwd: '/x', argument: '/../../etc', expected: '/etc' },
    { title: 'doubled slashes', cwd: '/', argument: '//a///b//', expected: '/a/b' },
    { title: 'a trailing slash', cwd: '/', argument: 'dir/', expected: '/dir' },
    { title: 'up then down', cwd: '/a/b', argument: '../c/../d', expected: '/a/d' },
    { title: 'three dots is a name', cwd: '/', argument: '...', expected: '/...' },
    { title: 'dot-dot inside a name is a name', cwd: '/', argument: 'a..b', expected: '/a..b' },
    { title: 'spaces are kept', cwd: '/', argument: ' my file ', expected: '/ my file ' },
    { title: 'a backslash is an ordinary character', cwd: '/', argument: '..\\..\\etc', expected: '/..\\..\\etc' },
    { title: 'the empty argument is the working directory', cwd: '/a', argument: '', expected: '/a' },
    { title: 'UTF-8 names', cwd: '/', argument: 'grüße/日本', expected: '/grüße/日本' },
  ];
  for (const { title, cwd, argument, expected } of cases) {
    it(`${title}: ${JSON.stringify(argument)} in ${cwd}`, () => assert.equal(resolvePath(cwd, argument), expected));
  }

  it('for any segments, the result is normalised and stays at or under /', () => {
    const segment = fc.oneof(fc.constantFrom('..', '.', '', 'a', 'b', '...'), fc.string({ maxLength: 4 }).filter((text) => !text.includes('/')));
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 12 }), fc.array(segment, { maxLength: 6 }), fc.boolean(), (cwdParts, parts, absolute) => {
        const cwd = resolvePath('/', cwdParts.join('/'));
        const result = resolvePath(cwd, `${absolute ? '/' : ''}${parts.join('/')}`);
        assert.ok(result.startsWith('/'));
        assert.ok(!result.split('/').slice(1).some((part) => part === '..' || part === '.' || (part === '' && result !== '/')), result);
        // Under any root, the remote path stays under the root.
        assert.ok(isInsideRoot('/srv/root', toRemotePath('/srv/root', result)));
      }),
    );
  });
});

describe('root mapping', () => {
  const cases: Array<{ root: string; virtual: string; remote: string }> = [
    { root: '/', virtual: '/', remote: '/' },
    { root: '/', virtual: '/etc/x', remote: '/etc/x' },
    { root: '/srv/data', virtual: '/', remote: '/srv/data' },
    { root: '/srv/data', virtual: '/a/b', remote: '/srv/data/a/b' },
    { root: '/srv/data/', virtual: '/a', remote: '/srv/data/a' },
  ];
  for (const { root, virtual, remote } of cases) {
    it(`${virtual} under ${root} is ${remote}, and back`, () => {
      assert.equal(toRemotePath(root, virtual), remote);
      assert.equal(toVirtualPath(root, remote), virtual);
    });
  }

  const outside: Array<{ root: string; remote: string; inside: boolean }> = [
    { root: '/srv/data', remote: '/srv/data', inside: true },
    { root: '/srv/data', remote: '/srv/data/x/y', inside: true },
    { root: '/srv/data', remote: '/srv/database', inside: false },
    { root: '/srv/data', remote: '/srv', inside: false },
    { root: '/srv/data', remote: '/etc/passwd', inside: false },
    { root: '/srv/data', remote: 'relative', inside: false },
    { root: '/', remote: '/anything', inside: true },
  ];
  for (const { root, remote, inside } of outside) {
    it(`${remote} is ${inside ? 'inside' : 'outside'} ${root}`, () => assert.equal(isInsideRoot(root, remote), inside));
  }

  it('parent and base names', () => {
    assert.equal(parentPath('/a/b'), '/a');
    assert.equal(parentPath('/a'), '/');
    assert.equal(parentPath('/'), '/');
    assert.equal(baseName('/a/b'), 'b');
    assert.equal(baseName('/'), '');
  });
});

describe('path arguments and replies', () => {
  const latin1 = (bytes: number[]): string => Buffer.from(bytes).toString('latin1');
  const cases: Array<{ title: string; input: string; expected: string | null }> = [
    { title: 'ASCII', input: 'file.txt', expected: 'file.txt' },
    { title: 'UTF-8 bytes', input: latin1([...Buffer.from('café ü.txt', 'utf8')]), expected: 'café ü.txt' },
    { title: 'a four-byte character', input: latin1([...Buffer.from('😀', 'utf8')]), expected: '😀' },
    { title: 'invalid UTF-8 (latin1 é)', input: latin1([0x63, 0x61, 0x66, 0xe9]), expected: null },
    { title: 'a truncated sequence', input: latin1([0xe6, 0x97]), expected: null },
    { title: 'an overlong encoding of /', input: latin1([0xc0, 0xaf]), expected: null },
    { title: 'a doubled IAC is one 0xff byte, which is not UTF-8', input: latin1([0x61, 0xff, 0xff]), expected: null },
  ];
  for (const { title, input, expected } of cases) {
    it(`decodePathArgument: ${title}`, () => assert.equal(decodePathArgument(input), expected));
  }

  it('quotes double quotes by doubling them (RFC 959)', () => {
    assert.equal(quoteForReply('/a "b" c'), '"/a ""b"" c"');
  });
});

describe('matchGlob', () => {
  const cases: Array<{ pattern: string; name: string; expected: boolean }> = [
    { pattern: '*', name: 'file', expected: true },
    { pattern: '*', name: '.hidden', expected: false },
    { pattern: '.*', name: '.hidden', expected: true },
    { pattern: '*.txt', name: 'a.txt', expected: true },
    { pattern: '*.txt', name: 'a.txt.gz', expected: false },
    { pattern: 'a?c', name: 'abc', expected: true },
    { pattern: 'a?c', name: 'ac', expected: false },
    { pattern: '[ab]*', name: 'beta', expected: true },
    { pattern: '[!ab]*', name: 'beta', expected: false },
    { pattern: '[a-c]x', name: 'bx', expected: true },
    { pattern: '[a-c]x', name: 'dx', expected: false },
    { pattern: '[', name: '[', expected: true },
    { pattern: 'ü*', name: 'über', expected: true },
    { pattern: '?', name: '😀', expected: true },
    { pattern: '*a*a*a*a*a*a*a*a*b', name: 'a'.repeat(200), expected: false },
  ];
  for (const { pattern, name, expected } of cases) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${name.length > 20 ? `${name.slice(0, 8)}…` : name}`, () => assert.equal(matchGlob(pattern, name), expected));
  }

  it('knows which arguments are patterns', () => {
    assert.equal(hasGlob('*.txt'), true);
    assert.equal(hasGlob('file[1]'), true);
    assert.equal(hasGlob('plain-name'), false);
  });
});
