/** The shapes of a parsed and a resolved ssh_config (see ../sshConfig.ts for the rules). */

export type StrictHostKeyCheckingValue = 'yes' | 'accept-new' | 'no';

export interface UnsupportedSshOption {
  key: string;
  value: string;
  file: string;
  line?: number;
  securityRelevant: boolean;
}

export interface ResolvedSshConfig {
  /** HostName with `%h` expanded, else the alias; lower-cased as ssh does. */
  hostName: string;
  user?: string;
  port?: number;
  /** All IdentityFile values in order, `~`, `%` tokens and `${ENV}` expanded; `none` dropped. */
  identityFiles: string[];
  /** True when any IdentityFile (even `none`) applied: OpenSSH then adds none of its default files. */
  identityFilesConfigured: boolean;
  /** All CertificateFile values in order, expanded like IdentityFile; `none` dropped. */
  certificateFiles: string[];
  identitiesOnly?: boolean;
  /** 'none', 'SSH_AUTH_SOCK', or a socket path with `~`, `%` tokens and `${ENV}` expanded. */
  identityAgent?: string;
  /** The raw ProxyJump value; absent for `none`. */
  proxyJump?: string;
  /**
   * ProxyCommand with `%h %k %n %p %r %%` expanded, as sshconnect.c does,
   * for the user's shell to run (`$SHELL -c "exec …"`); absent for `none`.
   * Only one of proxyJump and proxyCommand is ever set: the first obtained.
   */
  proxyCommand?: string;
  /** Expanded like IdentityFile; `none` gives an empty list. */
  userKnownHostsFiles?: string[];
  globalKnownHostsFiles?: string[];
  strictHostKeyChecking?: StrictHostKeyCheckingValue;
  /** Seconds. */
  serverAliveInterval?: number;
  serverAliveCountMax?: number;
  /** Seconds. */
  connectTimeout?: number;
  batchMode?: boolean;
  passwordAuthentication?: boolean;
  kbdInteractiveAuthentication?: boolean;
  pubkeyAuthentication?: boolean;
  hashKnownHosts?: boolean;
  /** Keys present for this host that ftpfwd does not implement. */
  unsupported: UnsupportedSshOption[];
}

/** Where a line came from; `option` is set for `-o` overrides. */
export interface SshConfigSource {
  file: string;
  line?: number;
  option?: string;
}

export type SshMatchCriterion =
  | { attribute: 'all' | 'canonical' | 'final'; negate: boolean }
  | { attribute: 'host' | 'originalhost' | 'user' | 'localuser'; negate: boolean; patterns: string }
  /** Known to OpenSSH but not evaluated here (exec, tagged, localnetwork, ...). */
  | { attribute: 'unsupported'; name: string; negate: boolean; argument: string };

export type FlagKey = 'identitiesOnly' | 'batchMode' | 'passwordAuthentication' | 'kbdInteractiveAuthentication' | 'pubkeyAuthentication' | 'hashKnownHosts';
export type TimeKey = 'serverAliveInterval' | 'connectTimeout';
export type ListKey = 'userKnownHostsFiles' | 'globalKnownHostsFiles';
export type StringKey = 'hostName' | 'user' | 'identityAgent' | 'ignoreUnknown' | 'hostKeyAlias';

/** A line's value, checked when the file is loaded. */
export type SshOptionValue =
  | { kind: 'string'; key: StringKey; value: string }
  | { kind: 'port'; value: number }
  | { kind: 'flag'; key: FlagKey; value: boolean }
  /** undefined: `none`, which leaves the option unset. */
  | { kind: 'time'; key: TimeKey; value: number | undefined }
  | { kind: 'count'; value: number }
  | { kind: 'list'; key: ListKey; value: string[] }
  | { kind: 'strictHostKeyChecking'; value: StrictHostKeyCheckingValue }
  | { kind: 'identityFile'; value: string }
  | { kind: 'certificateFile'; value: string }
  | { kind: 'proxy'; command: boolean; value: string }
  | { kind: 'unsupported'; slot: string; name: string; securityRelevant: boolean; accumulates: boolean; inert: boolean }
  | { kind: 'ignored' }
  | { kind: 'unknown' };

export type SshConfigEntry =
  | { kind: 'host'; patterns: string[]; source: SshConfigSource }
  | { kind: 'match'; criteria: SshMatchCriterion[]; source: SshConfigSource }
  | { kind: 'include'; files: SshConfigFile[]; source: SshConfigSource }
  | { kind: 'option'; keyword: string; args: string[]; value: SshOptionValue; source: SshConfigSource };

export interface SshConfigFile {
  path: string;
  entries: SshConfigEntry[];
}

export interface ParsedSshConfig {
  /** The file read first (-F, or ~/.ssh/config). */
  path: string;
  /** False when the default file does not exist (or -F none). */
  found: boolean;
  entries: SshConfigEntry[];
  /** The system-wide file, read after the user's and walked on its own (absent with -F, or when it does not exist). */
  system?: SshConfigFile;
  /** Every file read, included ones too, in reading order. */
  files: string[];
}

/** Returns the file's text, or null when it does not exist. */
export type ReadConfigFile = (path: string) => Promise<string | null>;
/** Returns the names in a directory, or null when it cannot be listed. */
export type ListConfigDirectory = (path: string) => Promise<string[] | null>;

export interface LoadSshConfigOptions {
  /** `-F`: must exist; `none` reads nothing; replaces the system file too. Default ~/.ssh/config, which may be missing. */
  file?: string;
  /**
   * The system-wide file read after the user's, default /etc/ssh/ssh_config;
   * relative Include paths in it are under its directory. Tests point it
   * elsewhere, so that they never depend on the machine's own file.
   */
  systemFile?: string;
  homeDir: string;
  readFile?: ReadConfigFile;
  /** For globbing Include paths. */
  listDirectory?: ListConfigDirectory;
}

export interface ResolveHostContext {
  localUser: string;
  homeDir: string;
  env: Record<string, string | undefined>;
  /** `-o Key=Value` options, applied before the file; an array for a key given several times. */
  overrides?: Record<string, string | string[]>;
  /** `-l user` or user@ in the destination; wins over everything. */
  userOverride?: string;
  /** `-p port`; wins over everything. */
  portOverride?: number;
  /** For `%l`/`%L`/`%C`; default os.hostname(). */
  localHostName?: string;
  /** For `%i`; default process.getuid(). */
  localUid?: number;
}
