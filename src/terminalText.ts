/**
 * Text from peers is shown on the user's terminal: an SSH server's
 * keyboard-interactive names, instructions and prompts, and in the log the
 * file names of FTP commands and the text of replies. Control characters in
 * it could move the cursor, rewrite what was shown before or retitle the
 * window, so they are shown as visible escapes instead, as OpenSSH does with
 * strnvis.
 */
// C0 controls other than tab and newline, DEL, C1 controls, and the Unicode
// bidirectional overrides that can make a prompt read backwards.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/gu;

export function printableText(text: string): string {
  return text.replace(UNSAFE, (char) => {
    const code = char.codePointAt(0)!;
    return code < 0x100 ? `\\${code.toString(8).padStart(3, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** The same for a single line: newlines and tabs are escaped too. */
export function printableLine(text: string): string {
  return printableText(text).replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}
