/**
 * The report as a list of blocks (headings, notes, tables), written once by
 * the sections and rendered twice: as aligned text for the terminal and as
 * Markdown for `--markdown` and the README.
 */
import { table } from './summary.js';

export type Block =
  | { kind: 'heading'; text: string }
  | { kind: 'note'; text: string }
  | { kind: 'table'; header: string[]; rows: string[][]; keyValue?: boolean };

export class Document {
  readonly blocks: Block[] = [];

  heading(text: string): void {
    this.blocks.push({ kind: 'heading', text });
  }

  note(text: string): void {
    this.blocks.push({ kind: 'note', text });
  }

  /** `keyValue`: a two-column list with no header of its own (the environment). */
  table(header: string[], rows: string[][], keyValue = false): void {
    this.blocks.push({ kind: 'table', header, rows, ...(keyValue ? { keyValue } : {}) });
  }
}

export function renderText(blocks: readonly Block[]): string {
  const out: string[] = [];
  let previous: Block['kind'] | null = null;
  for (const block of blocks) {
    if (block.kind === 'heading') {
      out.push('', block.text);
    } else if (block.kind === 'note') {
      out.push(previous === 'heading' || previous === 'note' ? `   ${block.text}` : `  ${block.text}`);
    } else {
      if (previous === 'table') out.push('');
      const text = table(block.header, block.rows, block.keyValue === true);
      out.push(block.keyValue === true ? text.split('\n').slice(2).join('\n') : text);
    }
    previous = block.kind;
  }
  return `${out.join('\n')}\n`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** `headingLevel`: the Markdown level of the blocks' headings (4 is `####`). */
export function renderMarkdown(blocks: readonly Block[], headingLevel = 4): string {
  const out: string[] = [];
  let previous: Block['kind'] | null = null;
  for (const block of blocks) {
    if (block.kind === 'heading') {
      out.push('', `${'#'.repeat(headingLevel)} ${block.text}`, '');
    } else if (block.kind === 'note') {
      if (previous === 'table') out.push('');
      out.push(block.text);
    } else {
      if (previous === 'note') out.push('');
      if (previous === 'table') out.push('');
      const header = block.keyValue === true ? ['', ''] : block.header;
      out.push(`| ${header.map(cell).join(' | ')} |`);
      out.push(`|${header.map((_, i) => (i === 0 || block.keyValue === true ? ' --- ' : ' ---: ')).join('|')}|`);
      for (const row of block.rows) out.push(`| ${row.map(cell).join(' | ')} |`);
    }
    previous = block.kind;
  }
  return `${out.join('\n').trim()}\n`;
}
