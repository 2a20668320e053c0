import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OUTPUT_LOG_DIR, STACK_FRAME } from '../helpers/cli.js';

/**
 * Runs last (the file name sorts last): every output of ftpfwd that the
 * end-to-end tests saw in this run, whatever they checked themselves, has
 * no stack trace. A user only ever sees `ftpfwd:` lines.
 */
describe('every output of ftpfwd in this run', () => {
  const files = existsSync(OUTPUT_LOG_DIR) ? readdirSync(OUTPUT_LOG_DIR).filter((name) => name.endsWith('.log')) : [];

  it('has no stack trace', { skip: files.length === 0 ? 'no ftpfwd output was recorded in this run' : false }, (t) => {
    let outputs = 0;
    for (const name of files) {
      const text = readFileSync(join(OUTPUT_LOG_DIR, name), 'utf8');
      for (const output of text.split(/^# (?=ftpfwd)/m).filter((part) => part.trim() !== '')) {
        outputs += 1;
        const frame = STACK_FRAME.exec(output);
        assert.equal(frame, null, `a stack trace in the output of ${output.split('\n', 1)[0]}:\n${output.slice(0, 4000)}`);
      }
    }
    t.diagnostic(`${outputs} outputs of ftpfwd checked`);
  });
});
