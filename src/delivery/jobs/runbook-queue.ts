// Runbook runs on BullMQ: "carry the run on" and "expire its approval" triggers. PostgreSQL holds each run's state;
// the engine's lease makes a run go on one worker at a time however many triggers arrive.
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { RunbookEngine } from '../../domain/runbooks/engine.js';
import type { RunbookQueue } from '../../domain/runbooks/notifier.js';
import type { RunbookService } from '../../domain/runbooks/service.js';
import type { Logger } from '../../shared/log.js';
import { notRetryingRefusals } from './refusals.js';

export const RUNBOOKS_QUEUE = 'runbooks';

export type RunbookJobData = { kind: 'run'; run: number } | { kind: 'expire'; run: number };

const OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: true,
  removeOnFail: 100,
} as const;

export function createRunbookQueue(connection: ConnectionOptions, prefix: string): Queue<RunbookJobData> {
  return new Queue<RunbookJobData>(RUNBOOKS_QUEUE, { connection, prefix, defaultJobOptions: OPTIONS });
}

export function runbookTriggers(queue: Queue<RunbookJobData>): RunbookQueue {
  return {
    async run(run) {
      // No fixed id, so the reconciler can always re-add a lost trigger; a trigger for a run another worker holds
      // finds its lease taken and returns.
      await queue.add('run', { kind: 'run', run }, { ...OPTIONS, attempts: 1 });
    },
    async expireAt(run, at) {
      // One per approval asked for (each_step asks several times), so an earlier wait's delayed job never hides a
      // later one; the expiry itself checks the run's own expires_at.
      const delay = Math.max(0, at.getTime() - Date.now());
      const options = { ...OPTIONS, jobId: `expire-${run}-${at.getTime()}`, delay, removeOnFail: true };
      await queue.add('expire', { kind: 'expire', run }, options);
    },
  };
}

export function startRunbookWorker(
  connection: ConnectionOptions,
  prefix: string,
  handlers: { engine: RunbookEngine; service: RunbookService },
  log: Logger,
): Worker<RunbookJobData> {
  const worker = new Worker<RunbookJobData>(
    RUNBOOKS_QUEUE,
    (job: Job<RunbookJobData>) =>
      notRetryingRefusals(() =>
        job.data.kind === 'run' ? handlers.engine.run(job.data.run) : handlers.service.expire(job.data.run),
      ),
    // A run mostly waits on outside systems; a few at once per worker process is plenty.
    { connection, prefix, concurrency: 4, lockDuration: 60_000 },
  );
  worker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'runbook trigger failed'));
  worker.on('error', (err) => log.warn({ err: err.message }, 'runbook worker error'));
  return worker;
}
