// A run's report: each step's start, end and result, the approvals, and the recovery achieved: the RTO from the first
// approval to the last step that proves recovery (http_check) passing, the RPO from the age of the data restored. As
// Markdown, with headings for what went wrong and for lessons learned: the monthly drill's record.
import type { AuditEntry } from '../audit/store.js';
import { formatDuration, formatStepTime, formatUtcSeconds } from '../../shared/format.js';
import { plainSaid } from '../../shared/text.js';
import { runId, type Run, type RunStep } from './model.js';

export interface RecoveryTimes {
  /** First approval to the last recovery-proving step passing; undefined until one passed. */
  readonly rtoMs: number | undefined;
  /** The oldest data a step restored (its age when restored); undefined when no step restored data. */
  readonly rpoMs: number | undefined;
  /** The step whose data that was. */
  readonly rpoStep: string | undefined;
}

export function recoveryTimes(run: Run, steps: readonly RunStep[]): RecoveryTimes {
  const rtoMs =
    run.startedAt && run.recoveredAt && !run.dryRun ? run.recoveredAt.getTime() - run.startedAt.getTime() : undefined;
  const restored = steps.filter((s) => s.state === 'succeeded' && s.dataAgeMs !== undefined);
  const oldest = restored.reduce<RunStep | undefined>((a, s) => (!a || s.dataAgeMs! > a.dataAgeMs! ? s : a), undefined);
  return { rtoMs, rpoMs: oldest?.dataAgeMs, rpoStep: oldest?.id };
}

const WENT_WRONG = new Set([
  'step_failed',
  'step_retried',
  'step_skipped',
  'abort_requested',
  'undone',
  'rejected',
  'expired',
]);

export function reportMarkdown(run: Run, steps: readonly RunStep[], entries: readonly AuditEntry[]): string[] {
  const times = recoveryTimes(run, steps);
  const at = (date: Date | undefined) => (date ? formatUtcSeconds(date) : '-');
  const lines = [
    `# ${runId(run.number)}: ${run.runbook}${run.dryRun ? ' (dry run)' : ''}`,
    '',
    run.title,
    '',
    `- Runbook version: ${run.version}`,
    `- Requested by ${run.requestedBy} at ${at(run.createdAt)}`,
    `- State: ${run.state.replace('_', ' ')}${run.outcome ? ` (${plainSaid(run.outcome)})` : ''}`,
    `- Finished: ${at(run.finishedAt)}`,
    times.rtoMs !== undefined
      ? `- RTO achieved: ${formatDuration(times.rtoMs)} (first approval ${at(run.startedAt)} to the last http_check passing ${at(run.recoveredAt)})`
      : '- RTO achieved: not measured (no step that proves recovery passed)',
    times.rpoMs !== undefined
      ? `- RPO achieved: the restored data was ${formatDuration(times.rpoMs)} old (step ${times.rpoStep})`
      : '- RPO achieved: not measured (no step restored data)',
    '',
    '## Approvals',
    '',
    ...(run.approvals.length === 0
      ? [run.dryRun ? '- none needed (dry run)' : '- none']
      : run.approvals.map((a) => {
          const what = a.step === null ? 'the run' : `step ${steps[a.step]?.id ?? a.step + 1}`;
          return `- ${a.by} approved ${what} at ${formatUtcSeconds(new Date(a.at))}`;
        })),
    '',
    '## Steps',
    '',
    '| # | Step | Kind | Started | Ended | Took | Attempts | Result |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...steps.map((s) => {
      const took = s.startedAt && s.finishedAt ? formatStepTime(s.finishedAt.getTime() - s.startedAt.getTime()) : '-';
      const result = [s.state, s.detail, ...s.missing.map((m) => `missing: ${m}`), s.undone ? `undo: ${s.undone}` : '']
        .filter((part) => part !== '')
        .join('; ');
      return `| ${s.index + 1} | ${s.id} | ${s.kind} | ${at(s.startedAt)} | ${at(s.finishedAt)} | ${took} | ${s.attempts} | ${cell(result)} |`;
    }),
    '',
    '## What went wrong',
    '',
  ];
  const wrong = entries.filter((e) => WENT_WRONG.has(e.action));
  const gaps = steps.flatMap((s) => s.missing.map((m) => `- step ${s.id} is missing: ${m}`));
  if (wrong.length === 0 && gaps.length === 0) lines.push('- Nothing: every step passed at its first attempt.');
  lines.push(...gaps);
  for (const e of wrong)
    lines.push(
      `- ${formatUtcSeconds(e.at)} ${e.actor} ${e.action.replace('_', ' ')}${e.detail ? `: ${e.detail}` : ''}`,
    );
  lines.push('', '## Lessons learned', '', '- (the team writes these after the review)');
  return lines;
}

/** A table cell: a | would start a new cell, a line break would end the row. */
function cell(text: string): string {
  return text.replace(/\|/g, '/').replace(/\s*\n\s*/g, ' ');
}
