// Status page calls on BullMQ. PostgreSQL holds what is owed (statuspage_calls); a job asks a worker to make an
// incident's owed calls, and is retried with backoff while Statuspage fails. Its id names the incident and the call
// (`statuspage-7-declare`), so a repeated add, a second replica or the reconciler never makes a second job for it.
import type { ConnectionOptions, Queue, Worker } from 'bullmq';
import type { StatusPageService, StatusPageTriggers } from '../../domain/incidents/statuspage.js';
import type { Logger } from '../../shared/log.js';
import { createRetriedQueue, startRetriedWorker, type RetryPolicy } from './retried-queue.js';

export const STATUSPAGE_QUEUE = 'statuspage';

export interface StatusPageJob {
  readonly incident: number;
}

export type StatusPageRetry = RetryPolicy;

/** 12 tries over about two hours and a quarter: 5 s, 10 s, 20 s... */
export const STATUSPAGE_RETRY: StatusPageRetry = { attempts: 12, delayMs: 5_000 };

export function createStatusPageQueue(
  connection: ConnectionOptions,
  prefix: string,
  retry: StatusPageRetry = STATUSPAGE_RETRY,
): Queue<StatusPageJob> {
  return createRetriedQueue<StatusPageJob>(STATUSPAGE_QUEUE, connection, prefix, retry);
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
  const work = (job: StatusPageJob, finalAttempt: boolean) => statusPage.drain(job.incident, { finalAttempt });
  return startRetriedWorker(STATUSPAGE_QUEUE, connection, prefix, work, 'status page', log);
}
