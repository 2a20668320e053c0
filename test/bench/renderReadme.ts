/**
 * Replaces the block between `<!-- bench:start -->` and `<!-- bench:end -->`
 * in README.md with the Performance section of a benchmark run:
 *
 *   npm run bench -- --json /tmp/bench.json
 *   node --import tsx test/bench/renderReadme.ts /tmp/bench.json
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

/** `readme` with the text between the markers replaced by `section`. */
export function replaceBenchBlock(readme: string, section: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start === -1 || end === -1 || end < start) throw new Error(`README.md has no ${START} ... ${END} block`);
  return `${readme.slice(0, start + START.length)}\n${section.trim()}\n${readme.slice(end)}`;
}

async function main(argv: readonly string[]): Promise<number> {
  const jsonFile = argv[0];
  if (jsonFile === undefined || argv.length !== 1) {
    process.stderr.write('usage: node --import tsx test/bench/renderReadme.ts <bench.json>\n');
    return 2;
  }
  const results: unknown = JSON.parse(await readFile(jsonFile, 'utf8'));
  const section = typeof results === 'object' && results !== null ? (results as { readme?: unknown }).readme : undefined;
  if (typeof section !== 'string' || section.trim() === '') throw new Error(`${jsonFile} has no "readme" text: not the JSON of npm run bench -- --json`);
  if ((results as { ok?: unknown }).ok !== true) process.stderr.write(`renderReadme: warning: the run in ${jsonFile} had failures; they are in the section\n`);
  const readme = await readFile(README, 'utf8');
  const updated = replaceBenchBlock(readme, section);
  if (updated !== readme) await writeFile(README, updated);
  process.stdout.write(`README.md: Performance section rendered${updated === readme ? ' (unchanged)' : ''}\n`);
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`renderReadme: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
