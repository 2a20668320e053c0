import { it } from 'node:test';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCli } from '../helpers/cli.js';
import { knownHostsLine, startSshd } from '../helpers/sshd.js';
import { startDelayLineProcess } from '../helpers/delayLine.js';
import { makeTempDir } from '../helpers/tmp.js';
import { startVsftpd } from '../helpers/vsftpd.js';
import { FtpClient } from '../bench/ftpClient.js';
const N = Number(process.env['N'] ?? 200);
it('small files', async (t) => {
  const dir = await makeTempDir('scratch-');
  await mkdir(join(dir, 'root'));
  for (let i = 0; i < 200; i++) await writeFile(join(dir, 'root', `f${i}`), Buffer.alloc(1024, i));
  const sshd = await startSshd({ extraConfig: ['Subsystem sftp internal-sftp'] });
  const line = await startDelayLineProcess({ targetHost: sshd.host, targetPort: sshd.port, rttMs: Number(process.env['RTT'] ?? 0) });
  const kh = join(dir, 'kh');
  await writeFile(kh, knownHostsLine(line.host, line.port, sshd.hostPublicKey));
  const vsftpd = await startVsftpd({ root: join(dir, 'root') });
  for (const extra of [[], ['--sshd-nodelay']]) {
    const cli = await startCli([...extra, '--log-format', 'json', '-F', 'none', '-p', String(line.port), '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${kh}`, '-L', `127.0.0.1:0:127.0.0.1:${vsftpd.port}`, `${sshd.user}@127.0.0.1`]);
    const client = await FtpClient.login(null, '127.0.0.1', cli.ports[0]!);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await client.get(`f${i}`);
    const down = (performance.now() - t0) / N;
    const t1 = performance.now();
    for (let i = 0; i < N; i++) await client.put(`incoming/u${extra.length}-${i}`, Buffer.alloc(1024, 1));
    const up = (performance.now() - t1) / N;
    t.diagnostic(`${extra.join(' ') || 'default'}: down ${down.toFixed(2)} ms/file (${(1000 / down).toFixed(0)}/s), up ${up.toFixed(2)} ms/file (${(1000 / up).toFixed(0)}/s); ${cli.handle.stderr().split('\n').filter((l) => l.includes('small packets')).join(' ')}`);
    await client.quit(); client.close();
    await cli.stop();
  }
  await vsftpd.stop(); await sshd.stop();
});
