/**
 * Every Debian package the tests use, in one place: `npm test` brings in
 * what is missing before any test runs (test/setup/provision.ts), and the
 * README and `.ci/run` point here rather than keeping lists of their own.
 */
export interface Requirement {
  /** The Debian package. */
  name: string;
  /** What the tests use it for, printed when it has to be brought in. */
  purpose: string;
  /**
   * `install`: installed with apt-get (as root). `unpack`: never installed,
   * only unpacked into the test cache and run from there, because it
   * conflicts with an installed one (Debian's FTP servers all declare
   * `Conflicts: ftp-server`, and vsftpd is the installed one).
   */
  via: 'install' | 'unpack';
}

export const REQUIREMENTS: readonly Requirement[] = [
  { name: 'openssh-server', purpose: 'the real sshd the tunnel goes through', via: 'install' },
  { name: 'openssh-client', purpose: 'ssh, ssh-keygen and ssh-agent (keys, agent tests, the benchmark)', via: 'install' },
  { name: 'netcat-openbsd', purpose: 'nc -X 5 -x, a ProxyCommand through a SOCKS5 proxy', via: 'install' },
  { name: 'dropbear-bin', purpose: 'a second SSH server for the compatibility matrix', via: 'install' },
  { name: 'vsftpd', purpose: 'the main FTP server of the end-to-end tests', via: 'install' },
  { name: 'python3', purpose: "Debian's Python, for ftplib and pyftpdlib", via: 'install' },
  { name: 'python3-pyftpdlib', purpose: 'an FTP server for the compatibility matrix', via: 'install' },
  { name: 'lftp', purpose: 'an FTP client', via: 'install' },
  { name: 'curl', purpose: 'an FTP client', via: 'install' },
  { name: 'proxychains4', purpose: 'lftp through ssh -D (SOCKS5) in the benchmark: lftp has no SOCKS support of its own', via: 'install' },
  { name: 'tnftp', purpose: 'the BSD ftp client', via: 'install' },
  { name: 'inetutils-ftp', purpose: 'the GNU inetutils ftp client', via: 'install' },
  { name: 'ncftp', purpose: 'an FTP client', via: 'install' },
  { name: 'wget', purpose: 'an FTP client', via: 'install' },
  { name: 'openssl', purpose: 'certificates for the FTPS tests', via: 'install' },
  { name: 'iproute2', purpose: 'network namespaces for the bastion topology', via: 'install' },
  { name: 'procps', purpose: 'process listing in the lifecycle tests', via: 'install' },
  { name: 'mount', purpose: 'mount namespaces for the FTP servers', via: 'install' },
  { name: 'ca-certificates', purpose: 'the system CA store', via: 'install' },
  { name: 'proftpd-core', purpose: 'an FTP server for the compatibility matrix', via: 'unpack' },
  { name: 'pure-ftpd', purpose: 'an FTP server for the compatibility matrix', via: 'unpack' },
  { name: 'proftpd-mod-crypto', purpose: "proftpd's mod_tls, for the FTPS tests", via: 'unpack' },
];
