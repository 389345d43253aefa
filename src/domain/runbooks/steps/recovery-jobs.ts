// What the restore and backup step kinds need from the recovery jobs' engine (implemented on top of it in
// ../recovery-jobs.ts): which backup a restore would use, a job started under the run's approval, and its end. The
// kinds only start a job and wait for it; the job does the work with all its own checks, as `/dr restore` does.
import { setTimeout as sleep } from 'node:timers/promises';
import type { StepContext } from '../step-kind.js';

export type JobIntent =
  | { readonly kind: 'restore'; readonly env: string; readonly backup: string }
  | { readonly kind: 'backup'; readonly env: string };

/** Who asks: the run's requester, in the run's channel, under the run's approval. */
export interface JobRequester {
  readonly requestedBy: string;
  readonly channel: string;
  /** What approved it, for the audit trail: "RUN-4's approval". */
  readonly approvedAs: string;
}

export interface JobView {
  readonly number: number;
  /** JOB-<n>. */
  readonly id: string;
  readonly ended: 'no' | 'succeeded' | 'failed';
  /** How it ended, or its state while it runs. */
  readonly outcome: string;
  /** The backup it restored from or wrote, once known. */
  readonly backup: { readonly name: string; readonly takenAt: Date | undefined } | undefined;
  readonly startedAt: Date | undefined;
}

export interface RecoveryJobsPort {
  /** Read only: the backup a restore would use, or what is missing (an unknown env, no such backup). */
  planRestore(env: string, backup: string): Promise<{ backup?: { name: string; takenAt: Date }; missing: string[] }>;
  /** Read only: what is missing for a backup of `env` (an unknown env). */
  planBackup(env: string): Promise<{ missing: string[] }>;
  /** The newest job's number: a job started after reading it has a larger one. */
  lastJobNumber(): Promise<number>;
  /** Starts the job, needing no approval of its own; throws when the env's database or backups are busy. */
  start(intent: JobIntent, by: JobRequester): Promise<number>;
  /** The job of this intent `by` asked for after job `after`: what a resumed step re-attaches to. */
  startedAfter(intent: JobIntent, by: JobRequester, after: number): Promise<number | undefined>;
  job(number: number): Promise<JobView>;
}

export interface RecoveryJobsStepDeps {
  readonly recoveryJobs: RecoveryJobsPort;
  readonly pollMs: number;
}

export interface JobStepState {
  /** The newest job's number just before the job was asked for, stored first: a resumed step finds the job by it. */
  after?: number | undefined;
  job?: number | undefined;
}

function requesterOf(ctx: StepContext<unknown, JobStepState>): JobRequester {
  return { requestedBy: ctx.run.requestedBy, channel: ctx.run.channel, approvedAs: `RUN-${ctx.run.number}'s approval` };
}

/**
 * Starts the job once: a resumed step re-attaches to the job it started (or had asked for when it stopped), and a
 * Retry after the job failed starts a new one.
 */
export async function startJobOnce(
  ctx: StepContext<unknown, JobStepState>,
  deps: RecoveryJobsStepDeps,
  intent: JobIntent,
  what: string,
): Promise<void> {
  const jobs = deps.recoveryJobs;
  const { state } = ctx;
  const by = requesterOf(ctx);
  if (state.job !== undefined) {
    if ((await jobs.job(state.job)).ended !== 'failed') return;
    state.job = state.after = undefined;
  }
  if (state.after !== undefined) {
    const found = await jobs.startedAfter(intent, by, state.after);
    if (found !== undefined) {
      state.job = found;
      await ctx.recordChange(`re-attached to JOB-${found} (${what})`);
      return;
    }
  } else {
    state.after = await jobs.lastJobNumber();
    await ctx.recordChange(`asking for a job: ${what}`);
  }
  state.job = await jobs.start(intent, by);
  await ctx.recordChange(`JOB-${state.job} started: ${what}`);
}

/** Waits for the step's job to end; returns it when it succeeded, throws its outcome when not. */
export async function jobEnd(ctx: StepContext<unknown, JobStepState>, deps: RecoveryJobsStepDeps): Promise<JobView> {
  const number = ctx.state.job;
  if (number === undefined) throw new Error('no job was recorded');
  for (;;) {
    ctx.signal.throwIfAborted();
    const job = await deps.recoveryJobs.job(number);
    if (job.ended === 'succeeded') return job;
    if (job.ended === 'failed') throw new Error(`${job.id} did not succeed: ${job.outcome}`);
    ctx.note(`${job.id} ${job.outcome}`);
    await sleep(deps.pollMs, undefined, { signal: ctx.signal });
  }
}
