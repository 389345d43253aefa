// A queue whose jobs call another system and are retried with backoff while it fails (the status page, incident
// channels). PostgreSQL holds what is owed; a job's id names the work, so asking twice is one job, and a finished or
// failed job is removed so the reconciler may add the same id again while PostgreSQL says work is still owed.
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from '../../shared/log.js';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  /** The first retry's delay; each later one doubles it. */
  readonly delayMs: number;
}

export function createRetriedQueue<T>(
  name: string,
  connection: ConnectionOptions,
  prefix: string,
  retry: RetryPolicy,
): Queue<T> {
  const defaultJobOptions = {
    attempts: retry.attempts,
    backoff: { type: 'exponential', delay: retry.delayMs },
    removeOnComplete: true,
    removeOnFail: true,
  } as const;
  return new Queue<T>(name, { connection, prefix, defaultJobOptions });
}

/**
 * Runs `work` for each job, telling it whether this is the last try (when it should give up and say so); what it
 * throws then is not retried. `what` names the jobs in the log.
 */
export function startRetriedWorker<T>(
  name: string,
  connection: ConnectionOptions,
  prefix: string,
  work: (data: T, finalAttempt: boolean) => Promise<unknown>,
  what: string,
  log: Logger,
): Worker<T> {
  const worker = new Worker<T>(
    name,
    async (job: Job<T>) => {
      const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      try {
        return await work(job.data, finalAttempt);
      } catch (err) {
        // Given up on already (the last try): nothing left for BullMQ to retry.
        if (finalAttempt) throw new UnrecoverableError((err as Error).message);
        throw err;
      }
    },
    { connection, prefix, concurrency: 5 },
  );
  worker.on('failed', (job, err) => {
    log.warn({ job: job?.id, attempt: job?.attemptsMade, err: err.message }, `${what} job failed`);
  });
  worker.on('error', (err) => log.warn({ err: err.message }, `${what} worker error`));
  return worker;
}
