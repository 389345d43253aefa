// What the runbook domain needs from delivery: the run's messages (Slack) and its durable triggers (BullMQ).
import type { Said } from '../../shared/text.js';
import type { Run, RunStep } from './model.js';

export interface RunbookNotifier {
  /**
   * The run's one message, listing every step with its state and time, with the buttons its state calls for
   * (Approve/Reject, Done, Retry/Skip/Abort): posted on the first call, updated in place after. `approvers` may
   * approve this run; `live` is what the running step says right now.
   */
  progress(
    run: Run,
    steps: readonly RunStep[],
    approvers: readonly string[],
    live: string | undefined,
  ): Promise<{ channel: string; ts: string }>;
  /** A reply in the run message's thread: what the run waits for, why it stopped, how it ended. */
  tell(run: Run, sentence: Said): Promise<void>;
  /** A dry run that found gaps: loudly, in the emergency channel, so a broken runbook is seen before the disaster. */
  alarm(run: Run, steps: readonly RunStep[]): Promise<void>;
}

/** Durable triggers for runs (BullMQ in production). */
export interface RunbookQueue {
  run(number: number): Promise<void>;
  expireAt(number: number, at: Date): Promise<void>;
}
