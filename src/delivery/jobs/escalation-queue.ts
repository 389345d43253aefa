// Ladder steps and PagerDuty follow-ups as BullMQ jobs. PostgreSQL holds the truth (see incidents/store.ts); these
// jobs are only the alarm clock, so losing one costs at most a reconcile interval, never a page.
import { Worker, type Queue, type ConnectionOptions, type Job } from 'bullmq';
import type { EscalationService } from '../../domain/incidents/escalation.js';
import type { EscalationTimers } from '../../domain/incidents/timers.js';
import type { FollowUpAction } from '../../domain/incidents/store.js';
import type { Logger } from '../../shared/log.js';
import { notRetryingRefusals } from './refusals.js';
import { addTimers, createTimerQueue, TIMER_JOB_OPTIONS } from './timer-jobs.js';

export const ESCALATION_QUEUE = 'escalation';

export type EscalationJob =
  { kind: 'step'; stepId: number } | { kind: 'follow-up'; incident: number; action: FollowUpAction };

const JOB_OPTIONS = TIMER_JOB_OPTIONS;

export function stepJobId(stepId: number): string {
  return `step-${stepId}`;
}

export function createEscalationQueue(connection: ConnectionOptions, prefix: string): Queue<EscalationJob> {
  return createTimerQueue<EscalationJob>(ESCALATION_QUEUE, connection, prefix);
}

export function createEscalationTimers(queue: Queue<EscalationJob>): EscalationTimers {
  return {
    async schedule(steps) {
      const timers = steps.map((s) => ({
        jobId: stepJobId(s.id),
        data: { kind: 'step' as const, stepId: s.id },
        dueAt: s.dueAt,
      }));
      await addTimers(queue, 'step', timers);
    },
    async cancel(stepIds) {
      // remove() answers 0 for a job already running; that run will find its step cancelled and stop.
      await Promise.all(stepIds.map((id) => queue.remove(stepJobId(id))));
    },
    async followUp(incident, action) {
      // No fixed job id: a follow-up added while another for the same incident is running must not be dropped
      // (BullMQ ignores an id it already holds). Follow-ups only send what PostgreSQL says is still owed.
      await queue.add('follow-up', { kind: 'follow-up', incident, action }, JOB_OPTIONS);
    },
  };
}

export function startEscalationWorker(
  connection: ConnectionOptions,
  prefix: string,
  escalation: EscalationService,
  log: Logger,
): Worker<EscalationJob> {
  const worker = new Worker<EscalationJob>(
    ESCALATION_QUEUE,
    (job: Job<EscalationJob>) =>
      notRetryingRefusals(async (): Promise<unknown> => {
        if (job.data.kind === 'step') return escalation.fireStep(job.data.stepId);
        return escalation.sendFollowUps(job.data.incident, job.data.action);
      }),
    { connection, prefix, concurrency: 25 },
  );
  worker.on('failed', (job, err) => {
    log.warn(
      { job: job?.id, attempt: job?.attemptsMade, err: err.message },
      'escalation job failed; it will be retried',
    );
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'escalation worker error'));
  return worker;
}
