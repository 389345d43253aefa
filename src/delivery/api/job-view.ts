// A recovery job as GET /api/v1/jobs/JOB-n shows it: its state, its steps and, once it ended, its result. Text fields
// (plan, outcome, step details) are Lifeline's texts with people as Slack mentions, as Slack shows them.
import { createHash } from 'node:crypto';
import { describeJob, jobId, type JobState, type RecoveryJob, type StepRecord } from '../../domain/recovery/model.js';
import type { Said } from '../../shared/text.js';

/** A sentence as the API gives it: its text as it is, each person as `<@U…>`. */
export function apiText(sentence: Said): string {
  return sentence.map((part) => (typeof part === 'string' ? part : `<@${part.person}>`)).join('');
}

export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'rejected', 'expired'];

export interface StepView {
  readonly index: number;
  readonly name: string;
  readonly state: StepRecord['state'];
  readonly started_at: string;
  readonly finished_at: string | null;
  readonly detail: string;
}

export interface JobView {
  readonly job: string;
  readonly kind: RecoveryJob['kind'];
  readonly env: string;
  readonly description: string;
  readonly state: JobState;
  readonly requested_by: string;
  readonly needs_approval: boolean;
  readonly plan: string | null;
  readonly decided_by: string | null;
  readonly decided_at: string | null;
  readonly expires_at: string | null;
  readonly cancel_requested_by: string | null;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly finished_at: string | null;
  readonly steps: readonly StepView[];
  /** Set once the job has ended. */
  readonly result: {
    readonly succeeded: boolean;
    readonly outcome: string;
    readonly duration_ms: number | null;
  } | null;
  /** Changes whenever anything above does: a client that sends it back waits for the next change. */
  readonly version: string;
}

export function jobView(job: RecoveryJob, steps: readonly StepRecord[]): JobView {
  const iso = (date: Date | undefined): string | null => date?.toISOString() ?? null;
  const ended = FINAL_STATES.includes(job.state);
  const view: Omit<JobView, 'version'> = {
    job: jobId(job.number),
    kind: job.kind,
    env: job.env,
    description: describeJob(job.env, job.params),
    state: job.state,
    requested_by: job.requestedBy,
    needs_approval: job.needsApproval,
    plan: job.plan ?? null,
    decided_by: job.decidedBy ?? null,
    decided_at: iso(job.decidedAt),
    expires_at: iso(job.expiresAt),
    cancel_requested_by: job.cancelRequestedBy ?? null,
    created_at: job.createdAt.toISOString(),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    steps: steps.map((s) => ({
      index: s.index,
      name: s.name,
      state: s.state,
      started_at: s.startedAt.toISOString(),
      finished_at: iso(s.finishedAt),
      detail: apiText(s.detail),
    })),
    result: ended
      ? {
          succeeded: job.state === 'succeeded',
          outcome: job.outcome ? apiText(job.outcome) : job.state,
          duration_ms: job.startedAt && job.finishedAt ? job.finishedAt.getTime() - job.startedAt.getTime() : null,
        }
      : null,
  };
  return { ...view, version: createHash('sha256').update(JSON.stringify(view)).digest('base64url').slice(0, 16) };
}
