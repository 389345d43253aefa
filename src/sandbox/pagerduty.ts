// The sandbox's PagerDuty: the PagerDuty stand-in with the sandbox's routing keys, and its events as the page lists
// them (who was paged, by role).
import { PagerDutyStandIn } from '../adapters/pagerduty/stand-in.js';

export interface PageEvent {
  readonly at: number;
  readonly action: 'trigger' | 'acknowledge' | 'resolve';
  /** The role whose routing key it was sent with. */
  readonly role: string;
  readonly dedupKey: string;
  readonly summary: string | undefined;
  readonly severity: string | undefined;
  readonly source: string | undefined;
}

export class SandboxPagerDuty extends PagerDutyStandIn {
  /** routingKeys: routing key → role. */
  constructor(routingKeys: ReadonlyMap<string, string>, onChange: () => void) {
    super({ routingKeys, onChange });
  }

  pages(): PageEvent[] {
    return this.events.map((e) => ({
      at: e.at,
      action: e.event_action,
      role: e.role ?? '',
      dedupKey: e.dedup_key,
      summary: e.payload?.summary,
      severity: e.payload?.severity,
      source: e.payload?.source,
    }));
  }
}
