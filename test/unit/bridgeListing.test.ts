import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  featFacts,
  fileKind,
  formatFacts,
  formatListDate,
  formatListLine,
  formatMlsdLine,
  formatTimeVal,
  MLST_FACTS,
  parseLongname,
  parseTimeVal,
  permFact,
  permissionString,
  selectFacts,
  sortEntries,
  type ListEntry,
} from '../../src/bridge/listing.js';

const FILE = 0o100000;
const DIR = 0o040000;
const LINK = 0o120000;
/** 2024-03-05 14:07:09 UTC */
const MTIME = Date.UTC(2024, 2, 5, 14, 7, 9) / 1000;
const NOW = MTIME + 3600;

describe('permissionString', () => {
  const cases: Array<{ mode: number | undefined; expected: string }> = [
    { mode: FILE | 0o644, expected: '-rw-r--r--' },
    { mode: DIR | 0o755, expected: 'drwxr-xr-x' },
    { mode: LINK | 0o777, expected: 'lrwxrwxrwx' },
    { mode: FILE | 0o4755, expected: '-rwsr-xr-x' },
    { mode: FILE | 0o4644, expected: '-rwSr--r--' },
    { mode: FILE | 0o2755, expected: '-rwxr-sr-x' },
    { mode: DIR | 0o1777, expected: 'drwxrwxrwt' },
    { mode: DIR | 0o1776, expected: 'drwxrwxrwT' },
    { mode: 0o010644, expected: 'prw-r--r--' },
    { mode: 0o140755, expected: 'srwxr-xr-x' },
    { mode: 0o020600, expected: 'crw-------' },
    { mode: 0o060660, expected: 'brw-rw----' },
    { mode: undefined, expected: '-rw-r--r--' },
  ];
  for (const { mode, expected } of cases) {
    it(`${mode === undefined ? 'no mode' : mode.toString(8)} is ${expected}`, () => assert.equal(permissionString(mode), expected));
  }

  it('file kinds', () => {
    assert.equal(fileKind(FILE | 0o644), 'file');
    assert.equal(fileKind(DIR | 0o755), 'dir');
    assert.equal(fileKind(LINK | 0o777), 'symlink');
    assert.equal(fileKind(0o010644), 'other');
    assert.equal(fileKind(undefined), 'file');
  });
});

describe('LIST lines', () => {
  it('a file of the last six months shows the time of day, in UTC', () => {
    assert.equal(formatListDate(MTIME, NOW), 'Mar  5 14:07');
  });

  it('an older file shows the year', () => {
    assert.equal(formatListDate(MTIME, MTIME + 400 * 24 * 3600), 'Mar  5  2024');
  });

  it('a file from the future beyond six months shows the year too', () => {
    assert.equal(formatListDate(MTIME, MTIME - 300 * 24 * 3600), 'Mar  5  2024');
  });

  const entry = (patch: Partial<ListEntry> & { mode?: number; size?: number }): ListEntry => ({
    name: patch.name ?? 'report.csv',
    attrs: { mode: patch.mode ?? FILE | 0o644, size: patch.size ?? 1024, uid: 1000, gid: 100, mtime: MTIME },
    ...(patch.owner === undefined ? {} : { owner: patch.owner }),
    ...(patch.group === undefined ? {} : { group: patch.group }),
    ...(patch.links === undefined ? {} : { links: patch.links }),
    ...(patch.linkTarget === undefined ? {} : { linkTarget: patch.linkTarget }),
  });

  const cases: Array<{ title: string; entry: ListEntry; expected: string }> = [
    { title: 'numeric owner and group', entry: entry({}), expected: '-rw-r--r--    1 1000     100              1024 Mar  5 14:07 report.csv' },
    { title: 'names from the longname', entry: entry({ owner: 'alice', group: 'staff', links: 3 }), expected: '-rw-r--r--    3 alice    staff            1024 Mar  5 14:07 report.csv' },
    { title: 'a name with spaces', entry: entry({ name: 'my report.csv' }), expected: '-rw-r--r--    1 1000     100              1024 Mar  5 14:07 my report.csv' },
    { title: 'a directory', entry: entry({ name: 'in', mode: DIR | 0o755, size: 4096 }), expected: 'drwxr-xr-x    1 1000     100              4096 Mar  5 14:07 in' },
    { title: 'a symbolic link with its target', entry: entry({ name: 'latest', mode: LINK | 0o777, size: 10, linkTarget: 'report.csv' }), expected: 'lrwxrwxrwx    1 1000     100                10 Mar  5 14:07 latest -> report.csv' },
    { title: 'a large file', entry: entry({ size: 68719476736 }), expected: '-rw-r--r--    1 1000     100       68719476736 Mar  5 14:07 report.csv' },
  ];
  for (const { title, entry: listed, expected } of cases) {
    it(title, () => assert.equal(formatListLine(listed, NOW), expected));
  }

  it('lines parse as ls -l: nine fields, the name last', () => {
    const line = formatListLine(entry({ name: 'a b' }), NOW);
    const match = /^([-dlcbps][-rwxsStT]{9})\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\w{3})\s+(\d{1,2})\s+(\d{2}:\d{2}|\d{4}) (.+)$/.exec(line);
    assert.ok(match, line);
    assert.equal(match[9], 'a b');
  });

  it('sorts by name', () => {
    assert.deepEqual(sortEntries([entry({ name: 'b' }), entry({ name: 'B' }), entry({ name: 'a' })]).map((listed) => listed.name), ['B', 'a', 'b']);
  });
});

describe('parseLongname', () => {
  const cases: Array<{ longname: string; expected: ReturnType<typeof parseLongname> }> = [
    { longname: '-rw-r--r--    1 alice    staff        1024 Mar  5 14:07 report.csv', expected: { links: 1, owner: 'alice', group: 'staff' } },
    { longname: 'drwxr-xr-x    2 1001     1001         4096 Jan  1  2020 dir', expected: { links: 2, owner: '1001', group: '1001' } },
    { longname: '-rw-r--r--+   1 root     root            0 Mar  5 14:07 acl', expected: { links: 1, owner: 'root', group: 'root' } },
    { longname: 'report.csv', expected: null },
    { longname: '', expected: null },
  ];
  for (const { longname, expected } of cases) {
    it(JSON.stringify(longname), () => assert.deepEqual(parseLongname(longname), expected));
  }
});

describe('time values (MDTM, MFMT, modify=)', () => {
  it('formats in UTC', () => assert.equal(formatTimeVal(MTIME), '20240305140709'));

  const cases: Array<{ text: string; expected: number | null }> = [
    { text: '20240305140709', expected: MTIME },
    { text: '20240305140709.123', expected: MTIME },
    { text: '19700101000000', expected: 0 },
    { text: '20240230120000', expected: null },
    { text: '20241305120000', expected: null },
    { text: '20240305250000', expected: null },
    { text: '2024030514070', expected: null },
    { text: '2024-03-05 14:07:09', expected: null },
    { text: '19600101000000', expected: null },
    { text: '99991231235959', expected: null },
    { text: '', expected: null },
  ];
  for (const { text, expected } of cases) {
    it(`parses ${JSON.stringify(text)}`, () => assert.equal(parseTimeVal(text), expected));
  }
});

describe('MLSx facts (RFC 3659)', () => {
  const file: ListEntry = { name: 'a.txt', attrs: { mode: FILE | 0o640, size: 12, uid: 1000, gid: 100, mtime: MTIME }, owner: 'alice', group: 'staff' };
  const dir: ListEntry = { name: 'sub', attrs: { mode: DIR | 0o750, size: 4096, uid: 0, gid: 0, mtime: MTIME } };

  it('every fact of a file', () => {
    assert.equal(
      formatMlsdLine(file, MLST_FACTS),
      'type=file;size=12;modify=20240305140709;perm=adfrw;unix.mode=0640;unix.owner=1000;unix.group=100;unix.ownername=alice;unix.groupname=staff; a.txt',
    );
  });

  it('a directory, without names it does not know', () => {
    assert.equal(formatFacts(dir, MLST_FACTS), 'type=dir;size=4096;modify=20240305140709;perm=cdeflmp;unix.mode=0750;unix.owner=0;unix.group=0;');
  });

  it('a symbolic link and a special file', () => {
    assert.match(formatFacts({ name: 'l', attrs: { mode: LINK | 0o777 } }, ['type']), /^type=OS\.unix=symlink;$/);
    assert.match(formatFacts({ name: 'p', attrs: { mode: 0o010600 } }, ['type']), /^type=OS\.unix=special;$/);
  });

  it('missing attributes leave their facts out', () => {
    assert.equal(formatFacts({ name: 'x', attrs: {} }, MLST_FACTS), 'type=file;');
  });

  it('an owner name that cannot be a fact value is left out', () => {
    assert.equal(formatFacts({ ...file, owner: 'a;b' }, ['unix.ownername']), '');
  });

  const perms: Array<{ mode: number; expected: string }> = [
    { mode: FILE | 0o600, expected: 'adfrw' },
    { mode: FILE | 0o400, expected: 'r' },
    { mode: FILE | 0o200, expected: 'adfw' },
    { mode: DIR | 0o700, expected: 'cdeflmp' },
    { mode: DIR | 0o500, expected: 'el' },
    { mode: DIR | 0o100, expected: 'e' },
  ];
  for (const { mode, expected } of perms) {
    it(`perm of ${mode.toString(8)} is ${expected}`, () => assert.equal(permFact(mode), expected));
  }

  it('OPTS MLST selects known facts, in our order, case-insensitively', () => {
    assert.deepEqual(selectFacts('Size;TYPE;bogus;modify;'), ['type', 'size', 'modify']);
    assert.deepEqual(selectFacts(''), []);
  });

  it('FEAT marks the selected facts', () => {
    assert.equal(featFacts(['type', 'size']), 'type*;size*;modify;perm;unix.mode;unix.owner;unix.group;unix.ownername;unix.groupname;');
  });
});
