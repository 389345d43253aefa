// Recovery work on BullMQ: plan, run and approval expiry on one queue, read-only lookups on their own. PostgreSQL
// holds each job's state; these are the triggers.
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from '../../shared/log.js';
import { notRetryingRefusals } from './refusals.js';
import type { RecoveryQueue } from '../../domain/recovery/notifier.js';
import type { QueryRequest } from '../../domain/recovery/queries.js';
import type { RecoveryRunner } from '../../domain/recovery/runner.js';
import type { RecoveryService } from '../../domain/recovery/service.js';

export const RECOVERY_QUEUE = 'recovery';

export type RecoveryJobData =
  { kind: 'plan'; job: number } | { kind: 'run'; job: number } | { kind: 'expire'; job: number };

const OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: true,
  removeOnFail: 100,
} as const;

export function createRecoveryQueue(connection: ConnectionOptions, prefix: string): Queue<RecoveryJobData> {
  return new Queue<RecoveryJobData>(RECOVERY_QUEUE, { connection, prefix, defaultJobOptions: OPTIONS });
}

export function recoveryTriggers(queue: Queue<RecoveryJobData>): RecoveryQueue {
  return {
    async plan(job) {
      // One plan trigger per job at a time (a repeated add is ignored while one waits or runs), and planning only
      // stores a plan for a job still in 'planning'. Removed however it ends, so a failed attempt never blocks the
      // reconciler's re-add of a job still waiting for its plan.
      await queue.add('plan', { kind: 'plan', job }, { ...OPTIONS, jobId: `plan-${job}`, removeOnFail: true });
    },
    async run(job, once) {
      // Without `once` no fixed id, so the reconciler can always re-add a lost trigger; the runner's lease on the
      // job's row makes sure a job runs on one worker at a time however many triggers arrive. With it, one trigger
      // per occasion (a lease that ran out, seen by every worker at once), removed however it ends.
      const id = once === undefined ? {} : { jobId: `run-${job}-${once}`, removeOnFail: true };
      await queue.add('run', { kind: 'run', job }, { ...OPTIONS, attempts: 1, ...id });
    },
    async expireAt(job, at) {
      // A fixed id, so the reconciler re-adding it every minute never piles up delayed jobs; removed however it
      // ends, so that a failed expiry (PostgreSQL away for its attempts) never blocks the reconciler's next re-add.
      const delay = Math.max(0, at.getTime() - Date.now());
      const options = { ...OPTIONS, jobId: `expire-${job}`, delay, removeOnFail: true };
      await queue.add('expire', { kind: 'expire', job }, options);
    },
  };
}

export function startRecoveryWorker(
  connection: ConnectionOptions,
  prefix: string,
  handlers: { runner: RecoveryRunner; service: RecoveryService },
  log: Logger,
): Worker<RecoveryJobData> {
  const worker = new Worker<RecoveryJobData>(
    RECOVERY_QUEUE,
    (job: Job<RecoveryJobData>) =>
      notRetryingRefusals(async () => {
        switch (job.data.kind) {
          case 'plan':
            return handlers.runner.plan(job.data.job);
          case 'run':
            return handlers.runner.run(job.data.job);
          case 'expire':
            return handlers.service.expire(job.data.job);
        }
      }),
    // Restores are heavy (pg_restore -j N each); a few at once per worker process is plenty.
    { connection, prefix, concurrency: 4, lockDuration: 60_000 },
  );
  worker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'recovery job attempt failed'));
  worker.on('error', (err) => log.warn({ err: err.message }, 'recovery worker error'));
  return worker;
}

// ---- lookups -----------------------------------------------------------------------------------------------------

export const LOOKUPS_QUEUE = 'lookups';

/**
 * /dr status, backups, restore list and logs. Their own queue and worker, so that slow lookups (a long log read)
 * never take a slot a plan or a restore needs, and a restore never holds a lookup back. Not retried: the asker
 * gets an answer or a failure, and may ask again.
 */
export function createLookupsQueue(connection: ConnectionOptions, prefix: string): Queue<QueryRequest> {
  const defaultJobOptions = { attempts: 1, removeOnComplete: true, removeOnFail: 100 };
  return new Queue<QueryRequest>(LOOKUPS_QUEUE, { connection, prefix, defaultJobOptions });
}

export function lookupTrigger(queue: Queue<QueryRequest>): (request: QueryRequest) => Promise<void> {
  return async (request) => {
    await queue.add('lookup', request);
  };
}

/** Lookups answered at once per worker process; each ends within the answerer's own timeout. */
export const LOOKUP_CONCURRENCY = 4;

export function startLookupsWorker(
  connection: ConnectionOptions,
  prefix: string,
  answer: (request: QueryRequest) => Promise<void>,
  log: Logger,
): Worker<QueryRequest> {
  const worker = new Worker<QueryRequest>(LOOKUPS_QUEUE, async (job: Job<QueryRequest>) => answer(job.data), {
    connection,
    prefix,
    concurrency: LOOKUP_CONCURRENCY,
  });
  worker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'lookup failed'));
  worker.on('error', (err) => log.warn({ err: err.message }, 'lookups worker error'));
  return worker;
}
