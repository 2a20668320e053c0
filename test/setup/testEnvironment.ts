/**
 * Loaded into every test process (`node --import`): programs and Python
 * modules that test/setup/provision.ts unpacked, because it could not
 * install them, come first on PATH and PYTHONPATH.
 */
import { existsSync } from 'node:fs';
import { delimiter } from 'node:path';
import { unpackedPythonPaths, WRAPPER_DIR } from './unpackedTools.js';

function prepend(name: string, entries: readonly string[]): void {
  if (entries.length === 0) return;
  const current = process.env[name];
  process.env[name] = [...entries, ...(current ? [current] : [])].join(delimiter);
}

if (existsSync(WRAPPER_DIR)) prepend('PATH', [WRAPPER_DIR]);
prepend('PYTHONPATH', unpackedPythonPaths());
