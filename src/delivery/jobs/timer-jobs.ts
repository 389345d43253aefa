// What the durable timers (ladder steps, reminders) share on BullMQ: PostgreSQL holds the truth, a delayed job is only
// the alarm clock. Jobs are removed however they end, so the reconciler may add the same id again while PostgreSQL
// says the timer runs, and an id that already exists is ignored, which makes adding a timer twice idempotent.
import { Queue, type ConnectionOptions } from 'bullmq';

export const TIMER_JOB_OPTIONS = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: true,
  removeOnFail: true,
} as const;

export function createTimerQueue<T>(name: string, connection: ConnectionOptions, prefix: string): Queue<T> {
  return new Queue<T>(name, { connection, prefix, defaultJobOptions: TIMER_JOB_OPTIONS });
}

/** Adds one delayed job per timer, each due at `dueAt` (at once when that has passed), under its own id. */
export async function addTimers<T>(
  queue: Queue<T>,
  name: string,
  timers: readonly { readonly jobId: string; readonly data: T; readonly dueAt: Date }[],
): Promise<void> {
  if (timers.length === 0) return;
  const now = Date.now();
  const jobs = timers.map((t) => ({
    name,
    data: t.data,
    opts: { ...TIMER_JOB_OPTIONS, jobId: t.jobId, delay: Math.max(0, t.dueAt.getTime() - now) },
  }));
  // BullMQ's name type cannot be worked out for a generic T; every queue here names its jobs with plain strings.
  await queue.addBulk(jobs as Parameters<Queue<T>['addBulk']>[0]);
}
