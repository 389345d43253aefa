// What the incident domain needs from delivery to show incidents to people: it hands over data (who, what, when)
// and delivery decides how it looks (src/delivery/slack/incident-notifier.ts).
import type { Severity } from '../../shared/config.js';
import type { AlertSource, CardRef, Incident, StatusPageRecord } from './model.js';

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
    }
  | {
      /** A status page call went through; `failures`: how many attempts failed before it. */
      readonly kind: 'statuspage';
      readonly status: StatusPageRecord['status'];
      readonly link: string | undefined;
      readonly created: boolean;
      readonly failures: number;
    }
  | {
      /** A status page call failed: said once per call, and again when Lifeline gives up on it. */
      readonly kind: 'statuspage_failed';
      readonly status: StatusPageRecord['status'];
      readonly error: string;
      readonly retrying: boolean;
    }
  /** Slack refused the incident's channel (or Lifeline gave up on it): paging goes on without it. */
  | { readonly kind: 'channel_failed'; readonly error: string }
  /** No /incident update for the severity's update_every_minutes: `users` are asked for one. */
  | {
      readonly kind: 'reminder';
      readonly users: readonly string[];
      readonly sinceUpdateMs: number;
      /** No update came at all: counted from the declaration. */
      readonly sinceDeclaration: boolean;
    }
  /** The alert that declared it cleared while `auto_resolve` is off: the incident stays open for people to resolve. */
  | { readonly kind: 'alert_cleared'; readonly source: AlertSource; readonly summary: string };

/** Where incidents are shown to people. The Slack implementation renders cards; the service never sees Block Kit. */
export interface IncidentNotifier {
  announce(incident: Incident): Promise<CardRef>;
  refresh(incident: Incident): Promise<void>;
  threadNote(incident: Incident, note: ThreadNote): Promise<void>;
}
