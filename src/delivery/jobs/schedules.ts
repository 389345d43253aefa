// Timed work: each env's backup `schedule` and `drill_schedule`, its health check, and the RPO watch. BullMQ job
// schedulers make one job per slot however many processes upsert them (BullMQ's job schedulers); the job itself only
// files a request, and the one-active-job-per-target rule in PostgreSQL keeps a slot from overlapping a backup that is
// still running.
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { healthCheckSeconds } from '../../domain/alerts/health.js';
import type { FileConfig } from '../../shared/config.js';
import { UserError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';

export const SCHEDULES_QUEUE = 'schedules';

export type ScheduledWork =
  | { kind: 'backup'; env: string }
  | { kind: 'drill'; env: string }
  | { kind: 'health'; env: string }
  | { kind: 'runbook-dry-run'; runbook: string }
  | { kind: 'rpo-watch' };

export interface ScheduleHandlers {
  /** Files the scheduled job; a UserError (another backup of the env still running, say) is reported, not retried. */
  start(kind: 'backup' | 'drill', env: string): Promise<void>;
  watchRpo(): Promise<void>;
  /** Probes the env's health_url for the scheduler slot `slot` (epoch ms: each slot counts once). */
  checkHealth(env: string, slot: number): Promise<void>;
  /** Starts a dry run of the runbook (its `dry_run_schedule`); a UserError (a run still open) is reported. */
  dryRun(runbook: string): Promise<void>;
}

export function createSchedulesQueue(connection: ConnectionOptions, prefix: string): Queue<ScheduledWork> {
  return new Queue<ScheduledWork>(SCHEDULES_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: 100 },
  });
}

type Repeat = { pattern: string; tz: string } | { every: number };
interface WantedScheduler {
  readonly repeat: Repeat;
  readonly work: ScheduledWork;
}

/** Every scheduler the config asks for, by id. Ids carry no `:` (BullMQ reserves it). */
export function wantedSchedulers(file: FileConfig, rpoWatchSeconds: number): Map<string, WantedScheduler> {
  const wanted = new Map<string, WantedScheduler>();
  for (const [env, config] of Object.entries(file.environments)) {
    if (config.backups.schedule)
      wanted.set(`backup-${env}`, {
        repeat: { pattern: config.backups.schedule, tz: 'UTC' },
        work: { kind: 'backup', env },
      });
    if (config.backups.drill_schedule !== 'off')
      wanted.set(`drill-${env}`, {
        repeat: { pattern: config.backups.drill_schedule, tz: 'UTC' },
        work: { kind: 'drill', env },
      });
    if (config.health_url)
      wanted.set(`health-${env}`, {
        repeat: { every: Math.round(healthCheckSeconds(file) * 1000) },
        work: { kind: 'health', env },
      });
  }
  for (const [runbook, config] of Object.entries(file.runbooks)) {
    if (config.dry_run_schedule) {
      wanted.set(`dryrun-${runbook}`, {
        repeat: { pattern: config.dry_run_schedule, tz: 'UTC' },
        work: { kind: 'runbook-dry-run', runbook },
      });
    }
  }
  wanted.set('rpo-watch', { repeat: { every: Math.round(rpoWatchSeconds * 1000) }, work: { kind: 'rpo-watch' } });
  return wanted;
}

/**
 * Makes the queue's schedulers what the config asks for, idempotently: at startup and on every reconcile pass, so
 * that a Redis flush, failover or eviction costs at most one pass. Creates a scheduler that is missing (or whose
 * next job is gone), updates one whose timing changed, removes those no longer wanted, and leaves a healthy one
 * alone. Returns the ids it created or updated.
 *
 * Why not simply upsert every scheduler on every pass: upserting an unchanged cron scheduler is not idempotent in
 * BullMQ 6.7. Its script removes the slot's job when that is still delayed or waiting and re-plans from "now", so an
 * upsert that lands after a slot fell due but before a worker took its job drops that slot. Measured here with the
 * real Redis 7 (a 2 s cron and a 1.5 s `every` scheduler): upserting both every 100 ms ran the cron one 3-4 times in
 * 20 s instead of 10 (so the window is some 60-70 ms per slot); with a busy worker (1.2 s jobs, upserts every
 * 300 ms) 3 times instead of 7; once a second with an idle worker it lost nothing in 30 s, yet a minutely upsert
 * on several replicas would hit that window now and then. `every` schedulers never lost or doubled a slot. This
 * check-then-upsert ran exactly the slots of no upserts at all in each of those runs, and re-created both
 * schedulers after a FLUSHALL.
 */
export async function syncSchedulers(
  queue: Queue<ScheduledWork>,
  file: FileConfig,
  rpoWatchSeconds: number,
): Promise<string[]> {
  const wanted = wantedSchedulers(file, rpoWatchSeconds);
  const changed: string[] = [];
  for (const [id, { repeat, work }] of wanted) {
    if (await isHealthy(queue, id, repeat)) continue;
    await queue.upsertJobScheduler(id, repeat, { name: work.kind, data: work });
    changed.push(id);
  }
  for (const existing of await queue.getJobSchedulers(0, -1)) {
    if (existing.key && !wanted.has(existing.key)) await queue.removeJobScheduler(existing.key);
  }
  return changed;
}

/** The scheduler exists with this timing and the job of its next slot exists (delayed, waiting, running or failed). */
async function isHealthy(queue: Queue<ScheduledWork>, id: string, repeat: Repeat): Promise<boolean> {
  const scheduler = await queue.getJobScheduler(id);
  if (!scheduler || scheduler.next === undefined) return false;
  const sameTiming =
    'every' in repeat
      ? scheduler.every === repeat.every && scheduler.pattern === undefined
      : scheduler.pattern === repeat.pattern && scheduler.tz === repeat.tz;
  if (!sameTiming) return false;
  // BullMQ names a scheduler's job after its slot; a worker creates the next one before it runs the current one.
  return (await queue.getJob(`repeat:${id}:${scheduler.next}`)) !== undefined;
}

export function startSchedulesWorker(
  connection: ConnectionOptions,
  prefix: string,
  handlers: ScheduleHandlers,
  log: Logger,
): Worker<ScheduledWork> {
  const worker = new Worker<ScheduledWork>(
    SCHEDULES_QUEUE,
    async (job: Job<ScheduledWork>) => {
      const work = job.data;
      if (work.kind === 'rpo-watch') return handlers.watchRpo();
      if (work.kind === 'health') return handlers.checkHealth(work.env, slotOf(job));
      try {
        if (work.kind === 'runbook-dry-run') await handlers.dryRun(work.runbook);
        else await handlers.start(work.kind, work.env);
      } catch (err) {
        if (err instanceof UserError) {
          log.warn({ work, reason: err.message }, 'scheduled job not started');
          return;
        }
        throw err;
      }
    },
    // A probe may take its whole timeout (up to 10 s): more room, so one hanging target never delays the others.
    { connection, prefix, concurrency: 4 },
  );
  worker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'scheduled work failed'));
  worker.on('error', (err) => log.warn({ err: err.message }, 'schedules worker error'));
  return worker;
}

/**
 * A scheduler job's slot: BullMQ names it `repeat:<scheduler>:<slot ms>`; any other job counts as its creation time.
 */
export function slotOf(job: Pick<Job, 'id' | 'timestamp'>): number {
  const slot = Number(/^repeat:[^:]+:(\d+)$/.exec(job.id ?? '')?.[1]);
  return Number.isFinite(slot) && slot > 0 ? slot : job.timestamp;
}
