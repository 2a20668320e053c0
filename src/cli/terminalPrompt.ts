import { openSync, closeSync } from 'node:fs';
import { ReadStream, WriteStream } from 'node:tty';
import type { Prompter, PromptRequest } from '../ssh/authentication.js';
import { printableLine, printableText } from '../terminalText.js';

/** A person gets this long to answer one question. */
const ANSWER_TIMEOUT_MS = 120_000;
const MAX_ANSWER_LENGTH = 1024;

/**
 * Asks on the controlling terminal (/dev/tty), as ssh does, so that prompts
 * work even when stdin and stdout are redirected; hidden answers are not
 * echoed. Resolves null when there is no terminal.
 */
export function createTerminalPrompter(): Prompter {
  return async (request: PromptRequest) => {
    let fd: number;
    try {
      fd = openSync('/dev/tty', 'r+');
    } catch {
      return null;
    }
    const input = new ReadStream(fd);
    const output = new WriteStream(fd);
    try {
      // The name, instructions and prompts may come from the server.
      const header = [request.name, request.instructions].filter((text) => text.trim() !== '').map(printableText).join('\n');
      if (header !== '') output.write(`${header}\n`);
      const answers: string[] = [];
      for (const prompt of request.prompts) {
        const answer = await askOne(input, output, printableLine(prompt.prompt), prompt.echo);
        if (answer === null) return null;
        answers.push(answer);
      }
      return answers;
    } finally {
      input.setRawMode(false);
      input.destroy();
      output.destroy();
      try {
        closeSync(fd);
      } catch {
        // The streams may have closed it already.
      }
    }
  };
}

function askOne(input: ReadStream, output: WriteStream, question: string, echo: boolean): Promise<string | null> {
  return new Promise((resolve) => {
    output.write(question);
    input.setRawMode(true);
    let answer = '';
    const finish = (value: string | null): void => {
      clearTimeout(timer);
      input.removeListener('data', onData);
      input.pause();
      output.write('\n');
      resolve(value);
    };
    const timer = setTimeout(() => finish(null), ANSWER_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return finish(answer);
        // Ctrl-C and Ctrl-D give up, as in ssh.
        if (char === '\u0003' || char === '\u0004') return finish(null);
        if (char === '\u007f' || char === '\b') {
          answer = answer.slice(0, -1);
          if (echo) output.write('\b \b');
          continue;
        }
        if (answer.length >= MAX_ANSWER_LENGTH) continue;
        answer += char;
        if (echo) output.write(char);
      }
    };
    input.on('data', onData);
    input.resume();
  });
}
