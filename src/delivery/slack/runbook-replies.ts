// Block Kit for runbooks: the one live message per run (every step with its state and time, and the buttons its state
// calls for), the dry run's alarm, `/dr runbook list|show`, and `/dr run report`.
import type { Block, ChatMessage } from '../../adapters/slack/port.js';
import type { Runbook } from '../../domain/runbooks/definitions.js';
import { currentStep, runId, type Run, type RunStep, type RunState } from '../../domain/runbooks/model.js';
import { formatStepTime, formatUtc, formatUtcSeconds } from '../../shared/format.js';
import {
  bold,
  code,
  codeBlock,
  HERE,
  italic,
  joinMd,
  line,
  md,
  mention,
  message,
  saidText,
  sections,
  type Mrkdwn,
} from './blocks.js';
import type { Reply } from './reply.js';

export const RUN_ACTIONS = {
  approve: 'run_approve',
  reject: 'run_reject',
  done: 'run_done',
  retry: 'run_retry',
  skip: 'run_skip',
  abort: 'run_abort',
} as const;
export type RunButton = keyof typeof RUN_ACTIONS;

const RUN_STATE: Record<RunState, string> = {
  awaiting_approval: ':raised_hand: waiting for approval',
  running: ':gear: running',
  stopped: ':octagonal_sign: stopped at a failed step',
  aborting: ':leftwards_arrow_with_hook: aborting: putting back what it changed',
  succeeded: ':white_check_mark: succeeded',
  failed: ':x: failed',
  aborted: ':no_entry_sign: aborted',
  rejected: ':no_entry: rejected',
  expired: ':hourglass_flowing_sand: approval expired',
};

const STEP_ICON: Record<RunStep['state'], string> = {
  pending: ':white_circle:',
  awaiting_approval: ':raised_hand:',
  awaiting_done: ':bust_in_silhouette:',
  running: ':gear:',
  succeeded: ':white_check_mark:',
  failed: ':x:',
  skipped: ':fast_forward:',
};

function stepLine(step: RunStep, describe: string, dryRun: boolean): Mrkdwn {
  const took =
    step.startedAt && step.finishedAt
      ? `, ${formatStepTime(step.finishedAt.getTime() - step.startedAt.getTime())}`
      : '';
  const when = step.startedAt ? ` (started ${formatUtcSeconds(step.startedAt)}${took})` : '';
  const attempts = step.attempts > 1 ? ` attempt ${step.attempts}` : '';
  const what = step.detail !== '' ? step.detail : describe;
  const by = step.actedBy && step.state !== 'failed' ? md` by ${mention(step.actedBy)}` : md``;
  const missing = step.missing.map((m) => md`\n      :warning: missing: ${m}`);
  const undone = step.undone ? md`\n      :leftwards_arrow_with_hook: ${step.undone}` : md``;
  const state = dryRun && step.state === 'succeeded' ? 'planned' : step.state.replace('_', ' ');
  return md`${STEP_ICON[step.state]} ${step.index + 1}. ${bold(step.id)} ${code(step.kind)} ${state}${attempts}${by}${when}: ${what}${joinMd(missing, '')}${undone}`;
}

function button(action: RunButton, label: string, run: number, style?: 'danger' | 'primary') {
  return {
    type: 'button' as const,
    action_id: RUN_ACTIONS[action],
    value: String(run),
    text: { type: 'plain_text' as const, text: label },
    ...(style ? { style } : {}),
  };
}

/** The buttons the run's state calls for: what the people who may act on it can do now. */
function buttonsFor(run: Run, steps: readonly RunStep[]): ReturnType<typeof button>[] {
  const step = currentStep(steps);
  if (run.state === 'awaiting_approval') {
    return [button('approve', 'Approve', run.number, 'danger'), button('reject', 'Reject', run.number)];
  }
  if (run.state === 'running' && step?.state === 'awaiting_done') {
    return [button('done', 'Done', run.number, 'primary'), button('abort', 'Abort', run.number)];
  }
  if (run.state === 'stopped') {
    return [
      button('retry', 'Retry', run.number, 'primary'),
      button('skip', 'Skip', run.number),
      button('abort', 'Abort', run.number, 'danger'),
    ];
  }
  return [];
}

export function runProgressMessage(
  run: Run,
  steps: readonly RunStep[],
  describe: (step: RunStep) => string,
  approvers: readonly string[],
  live: string | undefined,
): ChatMessage {
  const id = runId(run.number);
  const kind = run.dryRun ? 'dry run of ' : '';
  const head = md`${bold(md`${id}: ${kind}${run.runbook}`)} (${run.title}), requested by ${mention(run.requestedBy)}: ${RUN_STATE[run.state]}`;
  const approval =
    run.approval === 'each_step' ? 'an approval before each step but those done by hand' : 'one approval for the run';
  const lines: Mrkdwn[] = [
    head,
    italic(md`version ${run.version}, ${run.dryRun ? 'no approval (a dry run changes nothing)' : approval}`),
  ];
  lines.push(...steps.map((s) => stepLine(s, describe(s), run.dryRun)));
  if (live && run.state === 'running') lines.push(italic(md`now: ${live}`));
  if (run.approvals.length > 0) {
    const given = run.approvals.map(
      (a) => md`${mention(a.by)} (${a.step === null ? 'the run' : (steps[a.step]?.id ?? '')})`,
    );
    lines.push(md`Approved by ${joinMd(given, ', ')}`);
  }
  if (run.state === 'awaiting_approval') lines.push(approvalLine(approvers, run.expiresAt));
  if (run.outcome && !['running', 'awaiting_approval'].includes(run.state)) lines.push(md`${saidText(run.outcome)}`);
  const blocks: Block[] = [...sections(joinMd(lines, '\n'))];
  const buttons = buttonsFor(run, steps);
  if (buttons.length > 0) blocks.push({ type: 'actions', block_id: `run_${run.number}`, elements: buttons });
  return { text: md`${id} ${run.runbook}: ${run.state.replace('_', ' ')}`.text, blocks };
}

function approvalLine(approvers: readonly string[], expiresAt: Date | undefined): Mrkdwn {
  const until = expiresAt ? `, until ${formatUtc(expiresAt)}` : '';
  if (approvers.length === 0) {
    return md`Nobody can approve it: no other approver is configured (add one to ${code('approvals.approver_roles')}).`;
  }
  const who = approvers.length === 1 ? mention(approvers[0]!) : md`one of ${joinMd(approvers.map(mention), ', ')}`;
  return md`Needs approval by ${who}${until}.`;
}

/** A dry run that found gaps: loud, in the emergency channel. */
export function dryRunAlarm(run: Run, steps: readonly RunStep[]): ChatMessage {
  const gaps = steps.flatMap((s) => s.missing.map((m) => md`• step ${bold(s.id)} (${code(s.kind)}): ${m}`));
  const head = md`:rotating_light: ${HERE} ${bold(md`Dry run ${runId(run.number)} of runbook ${run.runbook} found ${gaps.length} gap(s)`)}: it would not work today.`;
  const report = md`${code(`/dr run report ${runId(run.number)}`)} gives the whole report.`;
  return message(
    joinMd([head, ...gaps, report], '\n'),
    md`Dry run ${runId(run.number)} of ${run.runbook}: ${gaps.length} gap(s)`,
  );
}

export function runbookList(runbooks: readonly Runbook[], latest: ReadonlyMap<string, Run>): Reply {
  if (runbooks.length === 0) return line(md`No runbook is configured (${code('runbooks:')} in the config file).`);
  const lines = runbooks.map((r) => {
    const last = latest.get(r.name);
    const lastRun = last
      ? md`; last run ${runId(last.number)}${last.dryRun ? ' (dry run)' : ''} ${last.state.replace('_', ' ')} ${formatUtc(last.createdAt)}`
      : md``;
    const schedule = r.dryRunSchedule ? md`, dry run ${code(r.dryRunSchedule)}` : md``;
    return md`• ${bold(r.name)}: ${r.title} (${r.steps.length} steps, approval ${r.approval}${schedule})${lastRun}`;
  });
  return message(joinMd([md`*Runbooks*`, ...lines, md`${code('/dr runbook show <name>')} shows one's steps.`], '\n'));
}

export function runbookShow(runbook: Runbook): Reply {
  const steps = runbook.steps.map(
    (s) => md`${s.index + 1}. ${bold(s.id)} ${code(s.kind.id)}: ${s.kind.describe(s.params)}`,
  );
  const approval =
    runbook.approval === 'each_step'
      ? 'an approval before each step but those done by hand'
      : 'one approval before the first step';
  const schedule = runbook.dryRunSchedule ? md` Dry run by itself: ${code(runbook.dryRunSchedule)} (UTC).` : md``;
  return message(
    joinMd(
      [
        md`${bold(runbook.name)}: ${runbook.title} (version ${runbook.version})`,
        md`Approval: ${approval}.${schedule}`,
        ...steps,
        md`${code(`/dr run ${runbook.name} --dry-run`)} checks it without changing anything.`,
      ],
      '\n',
    ),
  );
}

/** The report as Markdown in a code block, to copy into the drill's record. */
export function runReport(lines: readonly string[]): Reply {
  return message(codeBlock(lines), md`Run report`);
}
