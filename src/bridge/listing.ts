/**
 * Directory listings and file facts, from SFTP attributes: `LIST` lines in
 * the `ls -l` form every FTP client parses, `NLST` names, `MLSD`/`MLST`
 * facts (RFC 3659) and the times of `MDTM`/`MFMT`. Pure functions of the
 * attributes; the I/O layer fetches them.
 */

/** SFTP v3 attributes; any of them may be missing (the server chooses). */
export interface FileAttributes {
  mode?: number;
  size?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
}

export interface ListEntry {
  name: string;
  attrs: FileAttributes;
  /** From the server's `ls -l`-style longname, when it sent one. */
  owner?: string;
  group?: string;
  links?: number;
  /** The target of a symbolic link, when read. */
  linkTarget?: string;
}

export type FileKind = 'file' | 'dir' | 'symlink' | 'other';

const S_IFMT = 0o170000;
const TYPE_CHAR: Record<number, string> = {
  0o100000: '-',
  0o040000: 'd',
  0o120000: 'l',
  0o020000: 'c',
  0o060000: 'b',
  0o010000: 'p',
  0o140000: 's',
};

export function fileKind(mode: number | undefined): FileKind {
  switch ((mode ?? 0) & S_IFMT) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    default:
      // A server that sends no permissions leaves the type unknown: treat it as a file.
      return mode === undefined ? 'file' : 'other';
  }
}

/** `drwxr-xr-x`, with setuid, setgid and sticky bits as ls shows them. */
export function permissionString(mode: number | undefined): string {
  const bits = mode ?? 0o100644;
  const type = TYPE_CHAR[bits & S_IFMT] ?? '-';
  const triplet = (shift: number, special: number, specialChar: string): string => {
    const read = bits & (0o4 << shift) ? 'r' : '-';
    const write = bits & (0o2 << shift) ? 'w' : '-';
    const exec = (bits & (0o1 << shift)) !== 0;
    const execChar = bits & special ? (exec ? specialChar : specialChar.toUpperCase()) : exec ? 'x' : '-';
    return read + write + execChar;
  };
  return type + triplet(6, 0o4000, 's') + triplet(3, 0o2000, 's') + triplet(0, 0o1000, 't');
}

/** Owner, group and link count from an OpenSSH-style longname (`-rw-r--r--    1 alice  staff  ...`). */
export function parseLongname(longname: string | undefined): { owner: string; group: string; links: number } | null {
  if (longname === undefined) return null;
  const match = /^[-a-zA-Z?][-rwxsStTlL.+@?]{9}\S*\s+(\d+)\s+(\S+)\s+(\S+)\s+\d+\s/.exec(longname);
  if (!match) return null;
  return { links: Number(match[1]), owner: match[2]!, group: match[3]! };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** ls shows the time of day for files changed within about six months, else the year. */
const RECENT_SECONDS = 182 * 24 * 3600;

/** `Jan  5 14:03` or `Jan  5  2019`, in UTC (as MDTM and MLSD are). */
export function formatListDate(mtime: number | undefined, nowSeconds: number): string {
  const date = new Date((mtime ?? 0) * 1000);
  const day = String(date.getUTCDate()).padStart(2, ' ');
  const month = MONTHS[date.getUTCMonth()]!;
  const recent = mtime !== undefined && Math.abs(nowSeconds - mtime) < RECENT_SECONDS;
  const tail = recent
    ? `${String(date.getUTCHours()).padStart(2, '0')}:${String(date.getUTCMinutes()).padStart(2, '0')}`
    : ` ${date.getUTCFullYear()}`;
  return `${month} ${day} ${tail}`;
}

/** One `LIST` line, without its CRLF: `-rw-r--r--    1 alice    staff        1024 Jan  5 14:03 name`. */
export function formatListLine(entry: ListEntry, nowSeconds: number): string {
  const { attrs } = entry;
  const owner = entry.owner ?? String(attrs.uid ?? 0);
  const group = entry.group ?? String(attrs.gid ?? 0);
  const links = String(entry.links ?? 1);
  const size = String(attrs.size ?? 0);
  const target = fileKind(attrs.mode) === 'symlink' && entry.linkTarget !== undefined ? ` -> ${entry.linkTarget}` : '';
  return `${permissionString(attrs.mode)} ${links.padStart(4)} ${owner.padEnd(8)} ${group.padEnd(8)} ${size.padStart(12)} ${formatListDate(attrs.mtime, nowSeconds)} ${entry.name}${target}`;
}

/** RFC 3659 time-val: `YYYYMMDDHHMMSS`, UTC. */
export function formatTimeVal(seconds: number): string {
  const date = new Date(seconds * 1000);
  const pad = (value: number, width = 2): string => String(value).padStart(width, '0');
  return `${pad(date.getUTCFullYear(), 4)}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
}

/** Parses a time-val (fractions allowed and dropped: SFTP v3 keeps whole seconds); null if malformed or impossible. */
export function parseTimeVal(text: string): number | null {
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d{1,9})?$/.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  const millis = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59));
  const check = new Date(millis);
  // 20230231 would roll over into March: refuse it rather than set a different date.
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month - 1) return null;
  const value = millis / 1000;
  // SFTP v3 carries times as unsigned 32-bit seconds.
  return value >= 0 && value <= 0xffffffff ? value : null;
}

/** The MLST facts the bridge can give, in FEAT order. */
export const MLST_FACTS = ['type', 'size', 'modify', 'perm', 'unix.mode', 'unix.owner', 'unix.group', 'unix.ownername', 'unix.groupname'] as const;
export type MlstFact = (typeof MLST_FACTS)[number];

/** The facts of `OPTS MLST type;size;` that we know, in our order; unknown ones are dropped (RFC 3659 7.9). */
export function selectFacts(request: string): MlstFact[] {
  const wanted = new Set(
    request
      .split(';')
      .map((fact) => fact.trim().toLowerCase())
      .filter((fact) => fact !== ''),
  );
  return MLST_FACTS.filter((fact) => wanted.has(fact));
}

/** The FEAT line's fact list: `type*;size*;...`, a star on each fact currently selected. */
export function featFacts(selected: readonly MlstFact[]): string {
  return MLST_FACTS.map((fact) => `${fact}${selected.includes(fact) ? '*' : ''};`).join('');
}

/**
 * The `perm` fact from the owner's permission bits: the session's own uid
 * is not known over SFTP, and a user's files are usually their own. The
 * server decides in the end; this only tells clients what to expect.
 */
export function permFact(mode: number | undefined): string {
  const bits = mode ?? 0o100644;
  const read = (bits & 0o400) !== 0;
  const write = (bits & 0o200) !== 0;
  const exec = (bits & 0o100) !== 0;
  if (fileKind(mode) === 'dir') return `${write ? 'c' : ''}${write ? 'd' : ''}${exec ? 'e' : ''}${write ? 'f' : ''}${read ? 'l' : ''}${write ? 'mp' : ''}`;
  return `${write ? 'adf' : ''}${read ? 'r' : ''}${write ? 'w' : ''}`;
}

function typeFact(entry: ListEntry): string {
  switch (fileKind(entry.attrs.mode)) {
    case 'dir':
      return 'dir';
    case 'file':
      return 'file';
    case 'symlink':
      return 'OS.unix=symlink';
    case 'other':
      return 'OS.unix=special';
  }
}

/** A fact value may not hold `;`, `=` or spaces; names with them are left out rather than garbled. */
function factSafe(value: string): boolean {
  return /^[^;= \r\n]+$/.test(value);
}

/** `type=file;size=12;modify=...; ` facts for one entry, ending in `;` (the caller adds ` name`). */
export function formatFacts(entry: ListEntry, selected: readonly MlstFact[]): string {
  const { attrs } = entry;
  const facts: string[] = [];
  for (const fact of selected) {
    switch (fact) {
      case 'type':
        facts.push(`type=${typeFact(entry)}`);
        break;
      case 'size':
        if (attrs.size !== undefined) facts.push(`size=${attrs.size}`);
        break;
      case 'modify':
        if (attrs.mtime !== undefined) facts.push(`modify=${formatTimeVal(attrs.mtime)}`);
        break;
      case 'perm':
        if (attrs.mode !== undefined) facts.push(`perm=${permFact(attrs.mode)}`);
        break;
      case 'unix.mode':
        if (attrs.mode !== undefined) facts.push(`unix.mode=0${(attrs.mode & 0o7777).toString(8).padStart(3, '0')}`);
        break;
      case 'unix.owner':
        if (attrs.uid !== undefined) facts.push(`unix.owner=${attrs.uid}`);
        break;
      case 'unix.group':
        if (attrs.gid !== undefined) facts.push(`unix.group=${attrs.gid}`);
        break;
      case 'unix.ownername':
        if (entry.owner !== undefined && factSafe(entry.owner)) facts.push(`unix.ownername=${entry.owner}`);
        break;
      case 'unix.groupname':
        if (entry.group !== undefined && factSafe(entry.group)) facts.push(`unix.groupname=${entry.group}`);
        break;
    }
  }
  return facts.map((fact) => `${fact};`).join('');
}

/** One MLSD line (RFC 3659 7.2): facts, one space, the name. */
export function formatMlsdLine(entry: ListEntry, selected: readonly MlstFact[]): string {
  return `${formatFacts(entry, selected)} ${entry.name}`;
}

/** Sorts entries by name, as `ls` does in the C locale. */
export function sortEntries(entries: ListEntry[]): ListEntry[] {
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
