import type { EnvironmentConfig } from '../../shared/config.js';
import type { RecoveryJob } from './model.js';

/** What a step and the plan can use; `state` is persisted after every step so a resumed job picks up from it. */
export interface StepContext {
  readonly job: RecoveryJob;
  readonly env: EnvironmentConfig;
  readonly state: Record<string, unknown>;
  /**
   * Fires when the step must stop: its deadline passed, the worker is shutting down or lost the job's lease, or (for
   * an interruptible step) somebody cancelled the job. The step stops its programs and throws.
   */
  readonly signal: AbortSignal;
  /** A live detail for the running step ("snapshot 40 %"), throttled into the progress message. */
  note(detail: string): void;
}

export interface StepDefinition {
  readonly name: string;
  /**
   * A destructive step is never run twice: if a worker died inside it, the resumed job runs the kind's failure
   * handling (put back, clean up) and fails. One that stops on its signal throws the recovery AbortError only when it
   * provably changed nothing (the swap: its transaction rolled back); the runner may then hand it back to be run anew.
   */
  readonly destructive: boolean;
  /**
   * `/dr cancel` may stop it while it runs: until it returns it has made no change the kind's failure handling cannot
   * undo (a preflight, a restore into a fresh database, verify queries, a wait). Otherwise a cancel takes effect at
   * the next step boundary.
   */
  readonly interruptible: boolean;
  /** How long the step may run, given the runner's default (LIFELINE_STEP_DEADLINE_MINUTES); unset = the default. */
  deadline?(defaultMs: number): number;
  /** Returns the step's one-line result. */
  run(ctx: StepContext): Promise<string>;
}

/** Planning found nothing to change (a scale to the count the service already has): the job ends there. */
export interface NothingToChange {
  readonly nothingToChange: string;
}

/** Why the kind's failure handling runs: a step failed (or its worker died inside it), or the job was cancelled. */
export type StopReason = 'failed' | 'cancelled';

export interface KindDefinition {
  /** Resolves what the job will do (which backup, its age...) and says it in words; throws UserError if it cannot. */
  plan(ctx: StepContext): Promise<string | NothingToChange>;
  steps(job: RecoveryJob, env: EnvironmentConfig): readonly StepDefinition[];
  /**
   * After a failed, interrupted or cancelled step (or before the step a cancel stopped the job at): put things back
   * if possible and remove what the job left behind; returns what was done, for the report.
   */
  onFailure?(ctx: StepContext, failedStep: string, reason: StopReason): Promise<string | undefined>;
  /** The headline and the verification lines of a finished job, from its state. */
  summarise(ctx: StepContext, succeeded: boolean): { headline: string; verified: string[]; incomplete?: boolean };
}

const GIGABYTE = 1024 ** 3;
/** Restore-sized work (download, pg_restore, ANALYZE, pg_dump of the set-aside database) per GB of backup file. A
 * custom-format dump of text-heavy data may hold 50 times its size (FIELD-NOTES: pgbench rows ~55x), restored at
 * ~20 s per GB of data here: an hour per GB of backup file leaves room for a slow, busy server. */
const MS_PER_BACKUP_GIGABYTE = 60 * 60_000;

/** A deadline for work that grows with a backup's size: the default plus an hour per GB of the backup file. */
export function sizedDeadline(backupBytes: number | undefined): (defaultMs: number) => number {
  return (defaultMs) => defaultMs + Math.ceil(((backupBytes ?? 0) / GIGABYTE) * MS_PER_BACKUP_GIGABYTE);
}
