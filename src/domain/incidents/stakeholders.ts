// Stakeholder summaries, an incident follower: a short summary in
// `incidents.stakeholders.channel` on declare, on each update and on resolve, for the listed severities. Best-effort:
// IncidentService tells followers after the ladder is scheduled, so it never delays a page; a Slack failure is logged
// and counted, and not retried beyond the Slack client's own bounded tries (a summary that comes an hour late informs
// nobody).
import type { FileConfig } from '../../shared/config.js';
import type { Db } from '../../shared/db/pool.js';
import type { Logger } from '../../shared/log.js';
import type { Metrics } from '../../shared/metrics.js';
import type { IncidentFollower } from './followers.js';
import { incidentId, incidentState, type Incident, type IncidentState } from './model.js';
import * as store from './store.js';

export type StakeholderEvent = 'declared' | 'updated' | 'resolved';

export interface StakeholderSummary {
  readonly event: StakeholderEvent;
  readonly incident: Incident;
  readonly status: IncidentState;
  readonly sinceDeclaredMs: number;
  /** The latest `/incident update`, if any. */
  readonly latestUpdate: string | undefined;
  /** The status page incident's public link, when there is one. */
  readonly statusPageLink: string | undefined;
}

/** Where summaries are shown (src/delivery/slack/stakeholder-notifier.ts). */
export interface StakeholderNotifier {
  summary(channel: string, summary: StakeholderSummary): Promise<void>;
}

export interface StakeholderDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly notifier: StakeholderNotifier;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export class StakeholderService implements IncidentFollower {
  readonly name = 'stakeholders';

  constructor(private readonly deps: StakeholderDeps) {}

  async declared(incident: Incident): Promise<void> {
    await this.tell('declared', incident, undefined);
  }

  async updated(incident: Incident, text: string): Promise<void> {
    await this.tell('updated', incident, text);
  }

  async resolved(incident: Incident): Promise<void> {
    await this.tell('resolved', incident, undefined);
  }

  private async tell(event: StakeholderEvent, incident: Incident, text: string | undefined): Promise<void> {
    const stakeholders = this.deps.file.incidents?.stakeholders;
    if (!stakeholders || !stakeholders.severities.includes(incident.severity)) return;
    try {
      // The incident as it is now: the status page link may have come since the follower was told.
      const current = (await store.getIncident(this.deps.db, incident.number)) ?? incident;
      const latestUpdate = text ?? (await store.latestUpdate(this.deps.db, incident.number));
      await this.deps.notifier.summary(stakeholders.channel, {
        event,
        incident: current,
        status: incidentState(current),
        sinceDeclaredMs: (current.resolvedAt?.getTime() ?? Date.now()) - current.declaredAt.getTime(),
        latestUpdate,
        statusPageLink: current.statusPage?.link,
      });
    } catch (err) {
      this.deps.metrics.slackFailures.inc({ call: 'Slack stakeholder summary' });
      this.deps.log.warn(
        { incident: incidentId(incident.number), event, err: (err as Error).message },
        'stakeholder summary not posted',
      );
    }
  }
}
