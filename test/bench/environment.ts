/** What the figures were measured on. */
import { createRequire } from 'node:module';
import { readFileSync, statfsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { cpus, freemem, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../helpers/processes.js';
import type { Config } from './config.js';
import type { ContenderKey } from './contenders.js';
import { setClockTicks } from './proc.js';

export interface Environment {
  node: string;
  ssh2: string;
  ssh2NativeBinding: boolean | null;
  ssh2DefaultCiphers: string[];
  openssh: string;
  curl: string;
  lftp: string;
  cpu: string;
  cpuCount: number;
  aesNi: boolean;
  kernel: string;
  /** 1-minute load average when the run started and when it ended: other work on the machine skews the figures. */
  loadAtStart: number;
  loadAtEnd: number | null;
  workDir: string;
  ciphers: Partial<Record<ContenderKey, string>>;
}

export async function environment(workDir: string): Promise<Environment> {
  const require = createRequire(import.meta.url);
  const pkg = require('ssh2/package.json') as { version?: unknown };
  let binding: boolean | null = null;
  let defaults: string[] = [];
  try {
    binding = (require('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: unknown }).bindingAvailable === true;
    const constants = require('ssh2/lib/protocol/constants.js') as { DEFAULT_CIPHER?: unknown };
    if (Array.isArray(constants.DEFAULT_CIPHER)) defaults = constants.DEFAULT_CIPHER.filter((c): c is string => typeof c === 'string');
  } catch {
    binding = null;
  }
  const ssh = await run('ssh', ['-V'], { timeoutMs: 10_000 });
  const curlVersion = await run('curl', ['--version'], { timeoutMs: 10_000 });
  const lftpVersion = await run('lftp', ['--version'], { timeoutMs: 10_000 });
  const ticks = await run('getconf', ['CLK_TCK'], { timeoutMs: 10_000 });
  if (/^\d+$/.test(ticks.stdout.trim())) setClockTicks(Number(ticks.stdout.trim()));
  let cpuInfo = '';
  try {
    cpuInfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    cpuInfo = '';
  }
  return {
    node: process.version,
    ssh2: typeof pkg.version === 'string' ? pkg.version : 'unknown',
    ssh2NativeBinding: binding,
    ssh2DefaultCiphers: defaults,
    openssh: (ssh.stderr || ssh.stdout).trim(),
    curl: curlVersion.stdout.split('\n')[0]?.split(' ').slice(0, 2).join(' ') ?? 'unknown',
    lftp: /Version (\S+)/.exec(lftpVersion.stdout)?.[1] ?? 'unknown',
    cpu: cpus()[0]?.model ?? 'unknown',
    cpuCount: cpus().length,
    aesNi: /^flags\s*:.*\baes\b/m.test(cpuInfo),
    kernel: release(),
    loadAtStart: loadavg()[0] ?? 0,
    loadAtEnd: null,
    workDir,
    ciphers: {},
  };
}

/** /dev/shm keeps the test files off the disk when it has room for them. */
export async function makeWorkDir(config: Config, needBytes: number): Promise<string> {
  let base = config.tmpBase;
  if (base === undefined) {
    base = tmpdir();
    try {
      const fs = statfsSync('/dev/shm');
      if (fs.bavail * fs.bsize > needBytes * 1.5 && freemem() > needBytes * 2) base = '/dev/shm';
    } catch {
      // no /dev/shm: the OS temp dir it is
    }
  }
  return mkdtemp(join(base, 'ftpfwd-bench-'));
}
