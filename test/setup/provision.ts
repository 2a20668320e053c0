/**
 * Brings in the Debian packages the tests need, once, before any test runs
 * (`npm test` starts with this). Quiet when everything is there; one line
 * per package it has to bring in.
 *
 * - As root: missing packages are installed with apt-get (the package
 *   lists are refreshed first only when apt cannot find a package). Their
 *   services are not started: the tests run daemons of their own.
 * - Otherwise: missing packages are unpacked into the test cache under
 *   node_modules/.cache/, where the helpers find them; if even that is
 *   impossible, it stops with one message naming what is missing and the
 *   command that installs it.
 *
 * Packages that may not be installed beside vsftpd are always unpacked.
 */
import { existsSync } from 'node:fs';
import { OUTPUT_LOG_DIR } from '../helpers/cli.js';
import { rm, writeFile } from 'node:fs/promises';
import { installedAmong, unpackDebianPackage, CACHE_DIR } from '../helpers/debPackages.js';
import { run, type RunResult } from '../helpers/processes.js';
import { writeWrappers } from './unpackedTools.js';
import { REQUIREMENTS, type Requirement } from './requirements.js';

const APT_INSTALL_TIMEOUT_MS = 15 * 60_000;
const APT_UPDATE_TIMEOUT_MS = 5 * 60_000;
/** Debian's hook for "may this package start its service now"; exit 101 means no. */
const POLICY_RC_D = '/usr/sbin/policy-rc.d';

function say(line: string): void {
  process.stdout.write(`ftpfwd tests: ${line}\n`);
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function tail(result: RunResult, lines = 8): string {
  return `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-lines).join('\n');
}

/** apt cannot see the package at all: its lists are missing or stale. */
function needsListUpdate(result: RunResult): boolean {
  return /Unable to locate package|has no installation candidate|Failed to fetch|404\s+Not Found/i.test(`${result.stdout}\n${result.stderr}`);
}

async function aptGet(args: readonly string[], timeoutMs: number): Promise<RunResult> {
  return run('apt-get', args, { timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** Runs `action` with services barred from starting, unless the machine already has its own policy. */
async function withoutStartingServices<T>(action: () => Promise<T>): Promise<T> {
  if (existsSync(POLICY_RC_D)) return action();
  await writeFile(POLICY_RC_D, '#!/bin/sh\n# Written by the ftpfwd test set-up while it installs packages.\nexit 101\n', { mode: 0o755 });
  try {
    return await action();
  } finally {
    await rm(POLICY_RC_D, { force: true });
  }
}

async function install(missing: readonly Requirement[]): Promise<void> {
  for (const requirement of missing) say(`installing ${requirement.name} (${requirement.purpose})`);
  const names = missing.map((requirement) => requirement.name);
  const args = ['install', '-y', '-qq', '--no-install-recommends', '-o', 'Dpkg::Use-Pty=0', ...names];
  await withoutStartingServices(async () => {
    let result = await aptGet(args, APT_INSTALL_TIMEOUT_MS);
    if (result.code !== 0 && needsListUpdate(result)) {
      const update = await aptGet(['update', '-qq'], APT_UPDATE_TIMEOUT_MS);
      if (update.code !== 0) throw new Error(`apt-get update failed:\n${tail(update)}`);
      result = await aptGet(args, APT_INSTALL_TIMEOUT_MS);
    }
    if (result.code !== 0) throw new Error(`apt-get install ${names.join(' ')} failed:\n${tail(result)}`);
  });
}

async function unpack(requirements: readonly Requirement[], announce: boolean): Promise<void> {
  for (const requirement of requirements) {
    const cached = existsSync(`${CACHE_DIR}/${requirement.name}/.ftpfwd-complete`);
    if (!cached && announce) say(`unpacking ${requirement.name} into ${CACHE_DIR} (${requirement.purpose})`);
    const unpacked = await unpackDebianPackage(requirement.name);
    if (requirement.via === 'install') await writeWrappers(unpacked);
  }
}

async function main(): Promise<number> {
  // The outputs of the previous run are not this run's to check.
  await rm(OUTPUT_LOG_DIR, { recursive: true, force: true });
  const installed = await installedAmong(REQUIREMENTS.map((requirement) => requirement.name));
  const missing = REQUIREMENTS.filter((requirement) => requirement.via === 'install' && !installed.has(requirement.name));
  const unpackOnly = REQUIREMENTS.filter((requirement) => requirement.via === 'unpack');
  try {
    if (missing.length > 0) {
      if (isRoot()) await install(missing);
      else await unpack(missing, true);
    }
    await unpack(unpackOnly, true);
    return 0;
  } catch (error) {
    const names = missing.map((requirement) => requirement.name).join(' ');
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(
      missing.length > 0
        ? `ftpfwd tests: cannot bring in the Debian packages the tests need (${names}): ${message}\n` +
            `ftpfwd tests: install them with: sudo apt-get install --no-install-recommends ${names}\n`
        : `ftpfwd tests: cannot unpack ${unpackOnly.map((requirement) => requirement.name).join(' ')}: ${message}\n`,
    );
    return 1;
  }
}

process.exitCode = await main();
