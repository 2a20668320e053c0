/**
 * Replaces the block between `<!-- matrix:start -->` and `<!-- matrix:end -->`
 * in README.md with the table and lists generated from a matrix run:
 *
 *   FTPFWD_MATRIX_JSON=/tmp/matrix.json node --import tsx --test test/e2e/matrix.test.ts
 *   node --import tsx test/matrix/renderReadme.ts /tmp/matrix.json
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseRecords, renderReadmeSection, replaceMarkedBlock } from './matrix.js';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

async function main(argv: readonly string[]): Promise<number> {
  const jsonFile = argv[0];
  if (jsonFile === undefined || argv.length !== 1) {
    process.stderr.write('usage: node --import tsx test/matrix/renderReadme.ts <matrix.json>\n');
    return 2;
  }
  const records = parseRecords(await readFile(jsonFile, 'utf8'));
  if (records.length === 0) throw new Error(`${jsonFile} holds no records`);
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
