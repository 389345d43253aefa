import type { Severity } from '../../shared/config.js';
import type { CardRef, Incident } from './model.js';
import type { FollowUpAction } from './store.js';

export type ThreadNote =
  | {
      readonly kind: 'paged';
      readonly role: string;
      readonly users: readonly string[];
      readonly stepNumber: number;
      readonly totalSteps: number;
      readonly afterMinutes: number;
    }
  | { readonly kind: 'update'; readonly actor: string; readonly text: string }
  | {
      readonly kind: 'severity';
      readonly actor: string;
      readonly from: Severity;
      readonly to: Severity;
      readonly ladder: 'started' | 'stopped' | 'unchanged';
    };

/** Where incidents are shown to people. The Slack implementation renders cards; the service never sees Block Kit. */
export interface IncidentNotifier {
  announce(incident: Incident): Promise<CardRef>;
  refresh(incident: Incident): Promise<void>;
  threadNote(incident: Incident, note: ThreadNote): Promise<void>;
}

/** Durable timers for ladder steps and PagerDuty follow-ups (BullMQ in production). */
export interface EscalationTimers {
  schedule(steps: readonly { id: number; dueAt: Date }[]): Promise<void>;
  cancel(stepIds: readonly number[]): Promise<void>;
  followUp(incident: number, action: FollowUpAction): Promise<void>;
}
