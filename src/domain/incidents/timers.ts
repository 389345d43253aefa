// What the incident domain needs from delivery to be woken later: a ladder step or a follow-up must survive a
// restart, so the timers are durable (src/delivery/jobs/escalation-queue.ts).
import type { FollowUpAction } from './store.js';

/** Durable timers for ladder steps and PagerDuty follow-ups (BullMQ in production). */
export interface EscalationTimers {
  schedule(steps: readonly { id: number; dueAt: Date }[]): Promise<void>;
  cancel(stepIds: readonly number[]): Promise<void>;
  followUp(incident: number, action: FollowUpAction): Promise<void>;
}
