// What the recovery domain needs from delivery: the job's messages (Slack) and its durable triggers (BullMQ).
import type { Said } from '../../shared/text.js';
import type { RecoveryJob, StepRecord } from './model.js';

/** A job's messages as people see them. The Slack implementation renders Block Kit; the runner never sees it. */
export interface RecoveryNotifier {
  /**
   * The plan, with Approve/Reject when the job needs approval; `approvers` are those who may approve this job (not
   * its requester unless self-approval is allowed). Returns where it was posted, or undefined when Slack is
   * unreachable and the plan waits to be posted (whoever posts it then records it as the job's approval message).
   */
  postPlan(job: RecoveryJob, approvers: readonly string[]): Promise<{ channel: string; ts: string } | undefined>;
  /** Re-renders the plan message after a decision (approved, rejected, expired, cancelled). */
  updatePlan(job: RecoveryJob, approvers: readonly string[]): Promise<void>;
  /** The single live progress message of a job, created on first call and updated in place afterwards. */
  progress(
    job: RecoveryJob,
    steps: readonly StepRecord[],
    running: string | undefined,
  ): Promise<{ channel: string; ts: string }>;
  /** The final result, as a new reply in the progress message's thread. */
  result(job: RecoveryJob, steps: readonly StepRecord[], summary: JobSummary): Promise<void>;
  /** A reply to the requester alone (response_url while it is valid, else an ephemeral message). */
  tellRequester(job: RecoveryJob, sentence: Said): Promise<void>;
}

export interface JobSummary {
  readonly succeeded: boolean;
  readonly headline: Said;
  /** What was verified, one line each (restore: each query and its value; scale: running/desired; ...). */
  readonly verified: readonly string[];
  readonly totalMs: number;
  /** It succeeded, but a check it promised was skipped (the headline says which): not a full success. */
  readonly incomplete?: boolean;
}

/** Durable triggers for recovery work (BullMQ in production). */
export interface RecoveryQueue {
  plan(job: number): Promise<void>;
  /** `once`: a key that makes repeated triggers for the same occasion (a lease that ran out) one trigger. */
  run(job: number, once?: string): Promise<void>;
  expireAt(job: number, at: Date): Promise<void>;
}
