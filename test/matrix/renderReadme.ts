/**
 * Replaces the block between `<!-- matrix:start -->` and `<!-- matrix:end -->`
 * in README.md with the table and lists generated from a matrix run (the
 * forwarder's matrix, then the SFTP bridge's):
 *
 *   FTPFWD_MATRIX_JSON=/tmp/matrix.json FTPFWD_BRIDGE_MATRIX_JSON=/tmp/bridge-matrix.json \
 *     node --import tsx --test test/e2e/matrix.test.ts test/e2e/sftpBridgeClients.test.ts
 *   node --import tsx test/matrix/renderReadme.ts /tmp/matrix.json /tmp/bridge-matrix.json
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseRecords, renderReadmeSection, replaceMarkedBlock } from './matrix.js';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

async function main(argv: readonly string[]): Promise<number> {
  if (argv.length === 0) {
    process.stderr.write('usage: node --import tsx test/matrix/renderReadme.ts <matrix.json> [<bridge-matrix.json> ...]\n');
    return 2;
  }
  const records = [];
  for (const jsonFile of argv) {
    const parsed = parseRecords(await readFile(jsonFile, 'utf8'));
    if (parsed.length === 0) throw new Error(`${jsonFile} holds no records`);
    records.push(...parsed);
  }
  const readme = await readFile(README, 'utf8');
  const updated = replaceMarkedBlock(readme, renderReadmeSection(records));
  if (updated !== readme) await writeFile(README, updated);
  process.stdout.write(`README.md: ${records.length} combinations rendered${updated === readme ? ' (unchanged)' : ''}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`renderReadme: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
