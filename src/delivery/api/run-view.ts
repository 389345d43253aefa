// A runbook run as GET /api/v1/runs/RUN-n shows it: its state, its approvals, each step, and once it ended its RTO and
// RPO. Text fields are Lifeline's texts with people as Slack mentions, as for jobs (job-view.ts).
import { createHash } from 'node:crypto';
import { FINAL_RUN_STATES, runId, type Run, type RunState, type RunStep } from '../../domain/runbooks/model.js';
import { recoveryTimes } from '../../domain/runbooks/report.js';
import { apiText } from './job-view.js';

export interface RunStepView {
  readonly index: number;
  readonly id: string;
  readonly kind: string;
  readonly state: RunStep['state'];
  readonly attempts: number;
  readonly started_at: string | null;
  readonly finished_at: string | null;
  readonly detail: string;
  readonly missing: readonly string[];
  readonly undone: string | null;
}

export interface RunView {
  readonly run: string;
  readonly runbook: string;
  readonly title: string;
  readonly version: string;
  readonly dry_run: boolean;
  readonly approval: Run['approval'];
  readonly state: RunState;
  readonly requested_by: string;
  readonly approvals: Run['approvals'];
  readonly expires_at: string | null;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly finished_at: string | null;
  readonly steps: readonly RunStepView[];
  readonly result: { readonly outcome: string; readonly rto_ms: number | null; readonly rpo_ms: number | null } | null;
  /** Changes whenever anything above does: a client that sends it back waits for the next change. */
  readonly version_tag: string;
}

export function runView(run: Run, steps: readonly RunStep[]): RunView {
  const iso = (date: Date | undefined): string | null => date?.toISOString() ?? null;
  const times = recoveryTimes(run, steps);
  const view: Omit<RunView, 'version_tag'> = {
    run: runId(run.number),
    runbook: run.runbook,
    title: run.title,
    version: run.version,
    dry_run: run.dryRun,
    approval: run.approval,
    state: run.state,
    requested_by: run.requestedBy,
    approvals: run.approvals,
    expires_at: iso(run.expiresAt),
    created_at: run.createdAt.toISOString(),
    started_at: iso(run.startedAt),
    finished_at: iso(run.finishedAt),
    steps: steps.map((s) => ({
      index: s.index,
      id: s.id,
      kind: s.kind,
      state: s.state,
      attempts: s.attempts,
      started_at: iso(s.startedAt),
      finished_at: iso(s.finishedAt),
      detail: s.detail,
      missing: s.missing,
      undone: s.undone ?? null,
    })),
    result: FINAL_RUN_STATES.includes(run.state)
      ? {
          outcome: run.outcome ? apiText(run.outcome) : run.state,
          rto_ms: times.rtoMs ?? null,
          rpo_ms: times.rpoMs ?? null,
        }
      : null,
  };
  return { ...view, version_tag: createHash('sha256').update(JSON.stringify(view)).digest('base64url').slice(0, 16) };
}
