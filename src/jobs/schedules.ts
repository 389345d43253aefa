// Timed work: each env's backup `schedule` and `drill_schedule`, and the RPO watch. BullMQ job schedulers make one
// job per slot however many processes upsert them (FIELD-NOTES); the job itself only files a request, and the
// one-active-job-per-target rule in PostgreSQL keeps a slot from overlapping a backup that is still running.
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { FileConfig } from '../config.js';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';

export const SCHEDULES_QUEUE = 'schedules';

export type ScheduledWork = { kind: 'backup'; env: string } | { kind: 'drill'; env: string } | { kind: 'rpo-watch' };

export interface ScheduleHandlers {
  /** Files the scheduled job; a UserError (another backup of the env still running, say) is reported, not retried. */
  start(kind: 'backup' | 'drill', env: string): Promise<void>;
  watchRpo(): Promise<void>;
}

export function createSchedulesQueue(connection: ConnectionOptions, prefix: string): Queue<ScheduledWork> {
  return new Queue<ScheduledWork>(SCHEDULES_QUEUE, { connection, prefix, defaultJobOptions: { removeOnComplete: true, removeOnFail: 100 } });
}

/** Every scheduler the config asks for, by id. Ids carry no `:` (BullMQ reserves it). */
export function wantedSchedulers(file: FileConfig, rpoWatchSeconds: number): Map<string, { repeat: { pattern: string; tz: string } | { every: number }; work: ScheduledWork }> {
  const wanted = new Map<string, { repeat: { pattern: string; tz: string } | { every: number }; work: ScheduledWork }>();
  for (const [env, config] of Object.entries(file.environments)) {
    if (config.backups.schedule) wanted.set(`backup-${env}`, { repeat: { pattern: config.backups.schedule, tz: 'UTC' }, work: { kind: 'backup', env } });
    if (config.backups.drill_schedule !== 'off') wanted.set(`drill-${env}`, { repeat: { pattern: config.backups.drill_schedule, tz: 'UTC' }, work: { kind: 'drill', env } });
  }
  wanted.set('rpo-watch', { repeat: { every: rpoWatchSeconds * 1000 }, work: { kind: 'rpo-watch' } });
  return wanted;
}

/** Makes the queue's schedulers exactly what the config asks for: upserts each, removes those no longer wanted. */
export async function syncSchedulers(queue: Queue<ScheduledWork>, file: FileConfig, rpoWatchSeconds: number): Promise<string[]> {
  const wanted = wantedSchedulers(file, rpoWatchSeconds);
  for (const [id, { repeat, work }] of wanted) {
    await queue.upsertJobScheduler(id, repeat, { name: work.kind, data: work });
  }
  for (const existing of await queue.getJobSchedulers(0, -1)) {
    if (existing.key && !wanted.has(existing.key)) await queue.removeJobScheduler(existing.key);
  }
  return [...wanted.keys()];
}

export function startSchedulesWorker(connection: ConnectionOptions, prefix: string, handlers: ScheduleHandlers, log: Logger): Worker<ScheduledWork> {
  const worker = new Worker<ScheduledWork>(
    SCHEDULES_QUEUE,
    async (job: Job<ScheduledWork>) => {
      const work = job.data;
      if (work.kind === 'rpo-watch') return handlers.watchRpo();
      try {
        await handlers.start(work.kind, work.env);
      } catch (err) {
        if (err instanceof UserError) {
          log.warn({ env: work.env, kind: work.kind, reason: err.message }, 'scheduled job not started');
          return;
        }
        throw err;
      }
    },
    { connection, prefix, concurrency: 2 },
  );
  worker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'scheduled work failed'));
  worker.on('error', (err) => log.warn({ err: err.message }, 'schedules worker error'));
  return worker;
}
