import { it } from 'node:test';
import { startCli } from '../helpers/cli.js';
import { startSshd } from '../helpers/sshd.js';
it('nodelay log', async (t) => {
  const sshd = await startSshd({ extraConfig: ['Subsystem sftp internal-sftp'] });
  const cli = await startCli(['--sshd-nodelay', '--log-format', 'json', '-F', 'none', '-p', String(sshd.port), '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-L', `127.0.0.1:0:127.0.0.1:21`, `${sshd.user}@127.0.0.1`]);
  t.diagnostic(cli.handle.stderr());
  t.diagnostic(sshd.log().split('\n').slice(-6).join('\n'));
  await cli.stop(); await sshd.stop();
});
