/**
 * Packages unpacked rather than installed (no root) are used through small
 * wrapper scripts in one directory, which the test processes put first on
 * PATH (test/setup/testEnvironment.ts): `lftp` then runs the unpacked lftp
 * with its unpacked libraries, and test code needs no special case.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CACHE_DIR, type UnpackedPackage } from '../helpers/debPackages.js';

export const WRAPPER_DIR = join(CACHE_DIR, 'bin');

/** Where Debian's Python modules land inside unpacked packages. */
export function unpackedPythonPaths(): string[] {
  if (!existsSync(CACHE_DIR)) return [];
  return readdirSync(CACHE_DIR)
    .map((name) => join(CACHE_DIR, name, 'root', 'usr', 'lib', 'python3', 'dist-packages'))
    .filter((dir) => existsSync(dir));
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function executablesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((path) => {
      const stat = statSync(path);
      return stat.isFile() && (stat.mode & 0o111) !== 0;
    });
}

/** One wrapper per program of the package, with LD_LIBRARY_PATH pointing at its unpacked libraries. */
export async function writeWrappers(unpacked: UnpackedPackage): Promise<void> {
  await mkdir(WRAPPER_DIR, { recursive: true });
  const libraryPath = unpacked.libraryDirs.join(':');
  for (const sub of ['usr/bin', 'usr/sbin', 'bin', 'sbin']) {
    for (const program of executablesIn(join(unpacked.root, sub))) {
      const name = program.slice(program.lastIndexOf('/') + 1);
      const environment = libraryPath === '' ? '' : `LD_LIBRARY_PATH=${shellQuote(libraryPath)}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} `;
      const wrapper = join(WRAPPER_DIR, name);
      await writeFile(wrapper, `#!/bin/sh\n# ${unpacked.name} ${unpacked.version}, unpacked for the tests\n${environment}exec ${shellQuote(program)} "$@"\n`);
      await chmod(wrapper, 0o755);
    }
  }
}
