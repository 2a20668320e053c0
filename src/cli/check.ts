import { checkExitCode, checkSetup, type CheckStep } from '../check/checkSetup.js';
import type { ForwarderOptions } from '../forwarder.js';
import { printableLine } from '../terminalText.js';

const PREFIX = 'ftpfwd: check:';

/**
 * One step as the user reads it: `ftpfwd: check: <what> ... <result> (<n> ms)`,
 * then what was seen, and on a line of its own what to change. Text from
 * the servers (a greeting, a reply) is made printable, never sent raw to a
 * terminal.
 */
export function formatCheckStep(step: CheckStep): string {
  const detail = step.detail === undefined ? '' : `: ${step.detail}`;
  const lines = [`${PREFIX} ${step.title} ... ${step.status} (${step.durationMs} ms)${detail}`];
  if (step.hint !== undefined) lines.push(`${PREFIX}   hint: ${step.hint}`);
  return lines.map((line) => `${printableLine(line)}\n`).join('');
}

/** The last line: how the check ended, with the count of each result and, after a failure, the exit code. */
export function formatCheckSummary(steps: readonly CheckStep[]): string {
  const counts = (['ok', 'skipped', 'warning', 'failed'] as const)
    .map((status) => ({ status, count: steps.filter((step) => step.status === status).length }))
    .filter(({ count }) => count > 0)
    .map(({ status, count }) => `${count} ${status}`)
    .join(', ');
  const exitCode = checkExitCode(steps);
  const outcome = exitCode !== 0 ? 'failed' : steps.some((step) => step.status === 'warning') ? 'passed with warnings' : 'passed';
  return `${PREFIX} ${outcome} (${counts})${exitCode !== 0 ? `; exit code ${exitCode}` : ''}\n`;
}

/** Runs the check, printing each step as it ends; resolves with the exit code. */
export async function runCheck(options: ForwarderOptions, out: NodeJS.WritableStream): Promise<number> {
  const steps: CheckStep[] = [];
  for await (const step of checkSetup(options)) {
    steps.push(step);
    out.write(formatCheckStep(step));
  }
  out.write(formatCheckSummary(steps));
  return checkExitCode(steps);
}
