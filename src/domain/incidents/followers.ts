// The one hook for what follows an incident: the status page now; incident channels, reminders and stakeholder
// summaries plug in the same way. IncidentService calls each follower after its change is committed and after the
// ladder is scheduled, so a follower never delays a page; a follower that fails is logged and never fails the command.
// A follower that talks to another system should only record what it owes and hand it to a durable job.
import type { Incident } from './model.js';

export interface IncidentFollower {
  /** Named in the log when it fails. */
  readonly name: string;
  declared(incident: Incident): Promise<void>;
  updated(incident: Incident, text: string): Promise<void>;
  /** Optional: told after an acknowledgement. */
  acknowledged?(incident: Incident): Promise<void>;
  /** Optional: told after a change of severity. */
  severityChanged?(incident: Incident): Promise<void>;
  resolved(incident: Incident): Promise<void>;
}
