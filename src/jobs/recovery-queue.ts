// Recovery work on BullMQ: plan, run, approval expiry and read-only lookups. PostgreSQL holds each job's state;
// these are the triggers.
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { PermanentError, UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RecoveryQueue } from '../recovery/ports.js';
import type { QueryRequest } from '../recovery/queries.js';
import type { RecoveryRunner } from '../recovery/runner.js';
import type { RecoveryService } from '../recovery/service.js';

export const RECOVERY_QUEUE = 'recovery';

export type RecoveryJobData =
  | { kind: 'plan'; job: number }
  | { kind: 'run'; job: number }
  | { kind: 'expire'; job: number }
  | { kind: 'query'; request: QueryRequest };

const OPTIONS = { attempts: 3, backoff: { type: 'exponential', delay: 2_000 }, removeOnComplete: true, removeOnFail: 100 } as const;

export function createRecoveryQueue(connection: ConnectionOptions, prefix: string): Queue<RecoveryJobData> {
  return new Queue<RecoveryJobData>(RECOVERY_QUEUE, { connection, prefix, defaultJobOptions: OPTIONS });
}

export function recoveryTriggers(queue: Queue<RecoveryJobData>): RecoveryQueue & { query(request: QueryRequest): Promise<void> } {
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
      await queue.add('expire', { kind: 'expire', job }, { ...OPTIONS, jobId: `expire-${job}`, delay: Math.max(0, at.getTime() - Date.now()) });
      // (A fixed id: the reconciler re-adding it every minute must not pile up delayed jobs.)
    },
    async query(request) {
      await queue.add('query', { kind: 'query', request }, { ...OPTIONS, attempts: 1 });
    },
  };
}

export function startRecoveryWorker(
  connection: ConnectionOptions,
  prefix: string,
  handlers: { runner: RecoveryRunner; service: RecoveryService; answer: (request: QueryRequest) => Promise<void> },
  log: Logger,
): Worker<RecoveryJobData> {
  const worker = new Worker<RecoveryJobData>(
    RECOVERY_QUEUE,
    async (job: Job<RecoveryJobData>) => {
      try {
        switch (job.data.kind) {
          case 'plan':
            return await handlers.runner.plan(job.data.job);
          case 'run':
            return await handlers.runner.run(job.data.job);
          case 'expire':
            return await handlers.service.expire(job.data.job);
          case 'query':
            return await handlers.answer(job.data.request);
        }
      } catch (err) {
        if (err instanceof PermanentError || err instanceof UserError) throw new UnrecoverableError(err.message);
        throw err;
      }
    },
    // Restores are heavy (pg_restore -j N each); a few at once per worker process is plenty.
    { connection, prefix, concurrency: 4, lockDuration: 60_000 },
  );
  worker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'recovery job attempt failed'));
  worker.on('error', (err) => log.warn({ err: err.message }, 'recovery worker error'));
  return worker;
}
