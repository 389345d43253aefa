// Status page calls on BullMQ. PostgreSQL holds what is owed (statuspage_calls); a job asks a worker to make an
// incident's owed calls, and is retried with backoff while Statuspage fails. Its id names the incident and the call
// (`statuspage-7-declare`), so a repeated add, a second replica or the reconciler never makes a second job for it.
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { StatusPageService, StatusPageTriggers } from '../../domain/incidents/statuspage.js';
import type { Logger } from '../../shared/log.js';

export const STATUSPAGE_QUEUE = 'statuspage';

export interface StatusPageJob {
  readonly incident: number;
}

export interface StatusPageRetry {
  /** Tries in all, the first included. */
  readonly attempts: number;
  /** The first retry's delay; each later one doubles it. */
  readonly delayMs: number;
}

/** 12 tries over about two hours and a quarter: 5 s, 10 s, 20 s... */
export const STATUSPAGE_RETRY: StatusPageRetry = { attempts: 12, delayMs: 5_000 };

export function createStatusPageQueue(
  connection: ConnectionOptions,
  prefix: string,
  retry: StatusPageRetry = STATUSPAGE_RETRY,
): Queue<StatusPageJob> {
  const defaultJobOptions = {
    attempts: retry.attempts,
    backoff: { type: 'exponential', delay: retry.delayMs },
    // Removed however it ends, so the reconciler may add the same id again while PostgreSQL says a call is owed.
    removeOnComplete: true,
    removeOnFail: true,
  } as const;
  return new Queue<StatusPageJob>(STATUSPAGE_QUEUE, { connection, prefix, defaultJobOptions });
}

export function statusPageJobId(incident: number, key: string): string {
  return `statuspage-${incident}-${key}`;
}

export function createStatusPageTriggers(queue: Queue<StatusPageJob>): StatusPageTriggers {
  return {
    async trigger(incident, key) {
      await queue.add('statuspage', { incident }, { jobId: statusPageJobId(incident, key) });
    },
  };
}

export function startStatusPageWorker(
  connection: ConnectionOptions,
  prefix: string,
  statusPage: StatusPageService,
  log: Logger,
): Worker<StatusPageJob> {
  const worker = new Worker<StatusPageJob>(
    STATUSPAGE_QUEUE,
    async (job: Job<StatusPageJob>) => {
      const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      try {
        return await statusPage.drain(job.data.incident, { finalAttempt });
      } catch (err) {
        // Given up on already (the last try): nothing left for BullMQ to retry.
        if (finalAttempt) throw new UnrecoverableError((err as Error).message);
        throw err;
      }
    },
    { connection, prefix, concurrency: 5 },
  );
  worker.on('failed', (job, err) => {
    log.warn({ job: job?.id, attempt: job?.attemptsMade, err: err.message }, 'status page job failed');
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'status page worker error'));
  return worker;
}
