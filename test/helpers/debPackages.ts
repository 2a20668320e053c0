import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunResult } from './processes.js';
import { removeDir } from './tmp.js';

/**
 * Debian's FTP servers all declare `Conflicts: ftp-server`, so only one of
 * vsftpd, proftpd-core and pure-ftpd can be installed at a time. The tests
 * keep vsftpd installed and run the others from their .deb files, unpacked
 * once into a cache directory with `apt-get download` and `dpkg-deb -x`,
 * together with any library package they need that is not installed.
 */

/** Under node_modules, so that `npm ci` starts it afresh and nothing else has to clean it. */
export const CACHE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', '.cache', 'ftpfwd-debs');
const APT_TIMEOUT_MS = 180_000;
const QUERY_TIMEOUT_MS = 20_000;
/** How far the library dependency closure is followed, and how big it may grow. */
const MAX_DEPENDENCY_DEPTH = 4;
const MAX_PACKAGES = 40;
const READY_MARKER = '.ftpfwd-complete';

export interface UnpackedPackage {
  /** The Debian package the binary comes from. */
  name: string;
  version: string;
  /** The directory the .deb files were unpacked into (holds `usr/`, `lib/`, ...). */
  root: string;
  /** Directories to put on LD_LIBRARY_PATH (empty when everything is installed). */
  libraryDirs: string[];
  /** Every package unpacked, the main one first. */
  packages: string[];
}

export interface ServerBinary {
  /** Absolute path of the executable. */
  path: string;
  /** Environment for running it: LD_LIBRARY_PATH set when it was unpacked rather than installed. */
  env: NodeJS.ProcessEnv;
  /** `installed` when found at its system path, else the unpacked package. */
  source: 'installed' | UnpackedPackage;
}

function fail(result: RunResult, what: string): never {
  const why = result.timedOut ? 'timed out' : `exit ${String(result.code)}`;
  throw new Error(`${what} failed (${why}): ${result.stderr.trim() || result.stdout.trim()}`);
}

/** Which of `pkgs` are installed, in one dpkg-query call. */
export async function installedAmong(pkgs: readonly string[]): Promise<Set<string>> {
  if (pkgs.length === 0) return new Set();
  const result = await run('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\\n', ...pkgs], { timeoutMs: QUERY_TIMEOUT_MS });
  const installed = new Set<string>();
  for (const line of result.stdout.split('\n')) {
    const [name, status] = line.trim().split(' ');
    if (name !== undefined && status === 'installed') installed.add(name.replace(/:\S+$/, ''));
  }
  return installed;
}

async function isInstalled(pkg: string): Promise<boolean> {
  return (await installedAmong([pkg])).has(pkg);
}

/**
 * The `Depends` graph below `pkg`, from one recursive `apt-cache depends`
 * (first of each alternative; virtual packages skipped).
 */
async function dependencyGraph(pkg: string): Promise<Map<string, string[]>> {
  const result = await run(
    'apt-cache',
    ['depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', pkg],
    { timeoutMs: APT_TIMEOUT_MS },
  );
  if (result.code !== 0) fail(result, `apt-cache depends ${pkg}`);
  const graph = new Map<string, string[]>();
  let current: string[] | undefined;
  let inAlternative = false;
  for (const line of result.stdout.split('\n')) {
    if (/^\S/.test(line)) {
      current = [];
      graph.set(line.trim().replace(/:\S+$/, ''), current);
      inAlternative = false;
      continue;
    }
    const match = /^ {1,2}(\|)?(?:Pre)?Depends:\s*(\S+)/.exec(line);
    if (match === null || current === undefined) continue;
    const name = match[2]!;
    if (!inAlternative && !name.startsWith('<')) current.push(name.replace(/:\S+$/, ''));
    inAlternative = match[1] === '|';
  }
  return graph;
}

/**
 * The main package plus every shared-library package (`lib*`) it needs,
 * directly or indirectly, that is not installed. Other dependencies (init
 * scripts, adduser, inetd) are not needed to run the binary by hand.
 */
async function packagesToUnpack(pkg: string): Promise<string[]> {
  const graph = await dependencyGraph(pkg);
  const libraries = new Set<string>();
  let frontier = [pkg];
  for (let depth = 0; depth < MAX_DEPENDENCY_DEPTH && frontier.length > 0; depth++) {
    const next: string[] = [];
    for (const current of frontier) {
      for (const dep of graph.get(current) ?? []) {
        if (!dep.startsWith('lib') || libraries.has(dep) || dep === pkg) continue;
        libraries.add(dep);
        next.push(dep);
      }
    }
    frontier = next;
  }
  const installed = await installedAmong([...libraries]);
  const wanted = [pkg, ...[...libraries].filter((lib) => !installed.has(lib))];
  if (wanted.length > MAX_PACKAGES) throw new Error(`${pkg} needs more than ${MAX_PACKAGES} packages: ${wanted.join(' ')}`);
  return wanted;
}

/** `<root>/usr/lib/<triplet>`, `<root>/lib/<triplet>` and the like, where .so files were unpacked. */
function libraryDirsUnder(root: string): string[] {
  const dirs: string[] = [];
  for (const base of [join(root, 'usr', 'lib'), join(root, 'lib')]) {
    if (!existsSync(base)) continue;
    const candidates = [base, ...readdirSync(base, { withFileTypes: true }).filter((e) => e.isDirectory() && /-linux-/.test(e.name)).map((e) => join(base, e.name))];
    for (const dir of candidates) {
      if (readdirSync(dir).some((name) => /\.so(\.|$)/.test(name))) dirs.push(dir);
    }
  }
  return dirs;
}

/** `name_version_arch.deb` as written by apt-get download (the version is URL-encoded). */
function debVersion(file: string, pkg: string): string | undefined {
  const match = /^([^_]+)_([^_]+)_[^_]+\.deb$/.exec(file);
  return match !== null && match[1] === pkg ? decodeURIComponent(match[2]!) : undefined;
}

interface Marker {
  version: string;
  packages: string[];
}

async function unpackInto(target: string, pkg: string): Promise<Marker> {
  await mkdir(CACHE_DIR, { recursive: true, mode: 0o755 });
  const work = await mkdtemp(join(CACHE_DIR, `.${pkg}-`));
  try {
    const downloads = join(work, 'debs');
    const root = join(work, 'root');
    await mkdir(downloads);
    await mkdir(root);
    // apt drops privileges to _apt for downloads when it can write the directory.
    await chmod(work, 0o755);
    await chmod(downloads, 0o777);
    const packages = await packagesToUnpack(pkg);
    const download = await run('apt-get', ['download', '-q', ...packages], { cwd: downloads, timeoutMs: APT_TIMEOUT_MS });
    if (download.code !== 0) fail(download, `apt-get download ${packages.join(' ')}`);
    const debs = (await readdir(downloads)).filter((name) => name.endsWith('.deb'));
    if (debs.length !== packages.length) throw new Error(`expected ${packages.length} .deb files, got: ${debs.join(', ')}`);
    const version = debs.map((deb) => debVersion(deb, pkg)).find((v) => v !== undefined);
    if (version === undefined) throw new Error(`apt-get download fetched no ${pkg} package: ${debs.join(', ')}`);
    for (const deb of debs) {
      const extract = await run('dpkg-deb', ['-x', join(downloads, deb), root], { timeoutMs: QUERY_TIMEOUT_MS });
      if (extract.code !== 0) fail(extract, `dpkg-deb -x ${deb}`);
    }
    await removeDir(downloads);
    const marker: Marker = { version, packages };
    await writeFile(join(work, READY_MARKER), JSON.stringify(marker));
    try {
      await rename(work, target);
    } catch (err) {
      // Another test process unpacked it first: use theirs.
      if (!existsSync(join(target, READY_MARKER))) throw err;
      await removeDir(work);
    }
    return marker;
  } catch (err) {
    await removeDir(work);
    throw err;
  }
}

const unpacking = new Map<string, Promise<UnpackedPackage>>();

async function unpack(pkg: string): Promise<UnpackedPackage> {
  if (!/^[a-z0-9][a-z0-9.+-]+$/.test(pkg)) throw new Error(`bad package name: ${pkg}`);
  // Keyed by name only: asking apt for the candidate version costs more than a server start.
  const target = join(CACHE_DIR, pkg);
  const markerFile = join(target, READY_MARKER);
  const marker = existsSync(markerFile) ? (JSON.parse(await readFile(markerFile, 'utf8')) as Marker) : await unpackInto(target, pkg);
  const root = join(target, 'root');
  return { name: pkg, version: marker.version, root, libraryDirs: libraryDirsUnder(root), packages: marker.packages };
}

/**
 * Unpacks a Debian package and the libraries it needs into the cache, once
 * (delete the cache directory to refresh it). Needs the apt lists
 * (`apt-get update`) and, the first time, access to the Debian mirror.
 */
export function unpackDebianPackage(pkg: string): Promise<UnpackedPackage> {
  let pending = unpacking.get(pkg);
  if (pending === undefined) {
    pending = unpack(pkg);
    unpacking.set(pkg, pending);
    pending.catch(() => unpacking.delete(pkg));
  }
  return pending;
}

/** Throws, naming the missing libraries, when the dynamic linker cannot resolve `binary`. */
async function checkLinks(binary: string, env: NodeJS.ProcessEnv): Promise<void> {
  const result = await run('ldd', [binary], { env, timeoutMs: QUERY_TIMEOUT_MS });
  const missing = result.stdout
    .split('\n')
    .filter((line) => line.includes('not found'))
    .map((line) => line.trim().split(/\s+/)[0]);
  if (missing.length > 0) throw new Error(`${binary} cannot find the libraries ${missing.join(', ')}`);
}

/**
 * The server binary at `systemPath` when its package is installed, otherwise
 * the same file from the unpacked package with LD_LIBRARY_PATH pointing at
 * the unpacked libraries.
 */
export async function findServerBinary(pkg: string, systemPath: string): Promise<ServerBinary> {
  if (existsSync(systemPath) && (await isInstalled(pkg))) return { path: systemPath, env: { ...process.env }, source: 'installed' };
  const unpacked = await unpackDebianPackage(pkg);
  const path = join(unpacked.root, systemPath);
  if (!existsSync(path)) throw new Error(`${pkg} ${unpacked.version} has no ${systemPath}`);
  const inherited = process.env['LD_LIBRARY_PATH'];
  const libraryPath = [...unpacked.libraryDirs, ...(inherited ? [inherited] : [])].join(':');
  const env: NodeJS.ProcessEnv = { ...process.env, ...(libraryPath === '' ? {} : { LD_LIBRARY_PATH: libraryPath }) };
  await checkLinks(path, env);
  return { path, env, source: unpacked };
}
