// Reminder timers on BullMQ. PostgreSQL holds the truth (incident_reminders); a delayed job is only the alarm clock.
// Its id names the incident, the generation and the due time, so a repeated add, a second replica or the reconciler
// never makes a second job for one timer, and a reset (a new generation) gets a new job.
import { Worker, type ConnectionOptions, type Job, type Queue } from 'bullmq';
import type { ReminderService, ReminderTimers } from '../../domain/incidents/reminders.js';
import type { Logger } from '../../shared/log.js';
import { addTimers, createTimerQueue } from './timer-jobs.js';

export const REMINDERS_QUEUE = 'reminders';

export interface ReminderJob {
  readonly incident: number;
  readonly generation: number;
}

export function reminderJobId(timer: { incident: number; generation: number; dueAt: Date }): string {
  return `reminder-${timer.incident}-${timer.generation}-${timer.dueAt.getTime()}`;
}

export function createRemindersQueue(connection: ConnectionOptions, prefix: string): Queue<ReminderJob> {
  return createTimerQueue<ReminderJob>(REMINDERS_QUEUE, connection, prefix);
}

export function createReminderTimers(queue: Queue<ReminderJob>): ReminderTimers {
  return {
    async schedule(timers) {
      const jobs = timers.map((t) => ({
        jobId: reminderJobId(t),
        data: { incident: t.incident, generation: t.generation },
        dueAt: t.dueAt,
      }));
      await addTimers(queue, 'reminder', jobs);
    },
  };
}

export function startRemindersWorker(
  connection: ConnectionOptions,
  prefix: string,
  reminders: ReminderService,
  log: Logger,
): Worker<ReminderJob> {
  const worker = new Worker<ReminderJob>(
    REMINDERS_QUEUE,
    async (job: Job<ReminderJob>) => reminders.fire(job.data.incident, job.data.generation),
    { connection, prefix, concurrency: 10 },
  );
  worker.on('failed', (job, err) => {
    log.warn({ job: job?.id, attempt: job?.attemptsMade, err: err.message }, 'reminder job failed');
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'reminders worker error'));
  return worker;
}
