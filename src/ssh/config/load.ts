/** Reading the files: the user's and the system's (or -F), and every file they include. */
import { readdir, readFile as readFileFromFs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FtpfwdError } from '../../errors.js';
import { expandTildeForInclude } from './expand.js';
import { expandGlob } from './glob.js';
import { parseConfigText } from './parse.js';
import { lineError } from './source.js';
import type { LoadSshConfigOptions, ParsedSshConfig, SshConfigEntry, SshConfigFile } from './types.js';

/** readconf.c READCONF_MAX_DEPTH */
const MAX_INCLUDE_DEPTH = 16;
/** _PATH_HOST_CONFIG_FILE */
const SYSTEM_CONFIG_FILE = '/etc/ssh/ssh_config';

async function readConfigFileFromDisk(path: string): Promise<string | null> {
  try {
    return await readFileFromFs(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new FtpfwdError('ERR_FTPFWD_CONFIG', `cannot read ssh config file ${path}: ${(error as Error).message}`, { cause: error, details: { file: path } });
  }
}

async function listDirectoryFromDisk(path: string): Promise<string[] | null> {
  try {
    return await readdir(path);
  } catch {
    return null;
  }
}



/**
 * Reads the user's ssh_config and then the system-wide one (or only
 * `-F file`), with every file they include, and checks each line's value.
 * Host-independent: resolve with resolveHost().
 */
export async function loadSshConfig(options: LoadSshConfigOptions): Promise<ParsedSshConfig> {
  const readFile = options.readFile ?? readConfigFileFromDisk;
  const listDirectory = options.listDirectory ?? listDirectoryFromDisk;
  const explicit = options.file !== undefined;
  const path = options.file ?? join(options.homeDir, '.ssh', 'config');
  const files: string[] = [];
  if (explicit && path === 'none') return { path, found: false, entries: [], files };

  /** `includeDir`: where relative Include paths lead (`~/.ssh` for a user file, /etc/ssh for the system one). */
  const load = async (text: string, file: string, includeDir: string, depth: number): Promise<SshConfigEntry[]> => {
    files.push(file);
    const entries: SshConfigEntry[] = [];
    for (const entry of parseConfigText(text, file)) {
      if (entry.kind !== 'pending-include') {
        entries.push(entry);
        continue;
      }
      const included: SshConfigFile[] = [];
      for (const pattern of entry.patterns) {
        const anchored = pattern.startsWith('/') || pattern.startsWith('~') ? pattern : `${includeDir}/${pattern}`;
        const expanded = anchored.startsWith('~') ? expandTildeForInclude(anchored, options.homeDir, entry.source) : anchored;
        for (const match of await expandGlob(expanded, listDirectory)) {
          if (depth + 1 > MAX_INCLUDE_DEPTH) throw lineError(entry.source, 'Too many recursive configuration includes');
          const includedText = await readFile(match);
          if (includedText === null) continue;
          included.push({ path: match, entries: await load(includedText, match, includeDir, depth + 1) });
        }
      }
      entries.push({ kind: 'include', files: included, source: entry.source });
    }
    return entries;
  };

  const text = await readFile(path);
  if (text === null && explicit) {
    throw new FtpfwdError('ERR_FTPFWD_CONFIG', `Can't open user config file ${path}: No such file or directory`, { details: { file: path } });
  }
  const config: ParsedSshConfig = { path, found: text !== null, entries: text === null ? [] : await load(text, path, '~/.ssh', 0), files };
  // ssh.c: -F replaces both files; otherwise the system file follows the user's.
  if (explicit) return config;
  const systemPath = options.systemFile ?? SYSTEM_CONFIG_FILE;
  const systemText = await readFile(systemPath);
  if (systemText !== null) config.system = { path: systemPath, entries: await load(systemText, systemPath, dirname(systemPath), 0) };
  return config;
}
