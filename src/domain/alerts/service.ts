// What an alert does to incidents: a firing alert declares one incident per source (an Alertmanager group, a
// CloudWatch alarm) through IncidentService.declare, so paging starts exactly as for `/incident sev1`; later firings
// go on its timeline; `resolved` / `OK` resolve it as Lifeline when auto_resolve is on, else say it cleared.
import type { FileConfig } from '../../shared/config.js';
import type { Db } from '../../shared/db/pool.js';
import { UserError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { SYSTEM_ACTOR } from '../access/permissions.js';
import { incidentId } from '../incidents/model.js';
import type { IncidentNotifier } from '../incidents/notifier.js';
import type { IncidentService } from '../incidents/service.js';
import * as store from '../incidents/store.js';
import { sourceName, type Alert, type AlertsConfig } from './alert.js';

export type AlertOutcome = 'declared' | 'repeat' | 'resolved' | 'cleared' | 'ignored';

export interface AlertResult {
  readonly outcome: AlertOutcome;
  /** The incident it declared, repeated on, resolved or cleared. */
  readonly incident?: number;
  /** Why nothing was done (`ignored`). */
  readonly reason?: string;
}

export interface AlertServiceDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly alerts: AlertsConfig;
  readonly incidents: Pick<IncidentService, 'declare' | 'resolve'>;
  readonly notifier: Pick<IncidentNotifier, 'threadNote'>;
  readonly log: Logger;
}

export class AlertService {
  /** Deliveries for one source run one after another in this process (the index still decides across replicas). */
  private readonly running = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: AlertServiceDeps) {}

  /** `at`: when the webhook arrived; an incident's ladder runs from then. */
  receive(alert: Alert, at: Date): Promise<AlertResult> {
    return this.oneAtATime(`${alert.source.kind} ${alert.source.key}`, () => this.act(alert, at));
  }

  private async act(alert: Alert, at: Date): Promise<AlertResult> {
    const { source } = alert;
    const about = { source: source.kind, key: source.key };
    if (alert.state === 'firing') {
      if (alert.severity === undefined) {
        const label = source.labels.severity;
        const reason =
          label === undefined
            ? 'the alerts carry no common severity label'
            : `severity "${label}" is not in alerts.severity_map`;
        this.deps.log.info({ ...about, reason }, 'alert ignored');
        return { outcome: 'ignored', reason };
      }
      const { incident, repeated } = await this.deps.incidents.declare({
        severity: alert.severity,
        title: alert.title,
        actor: SYSTEM_ACTOR,
        channel: this.deps.file.slack.emergency_channel,
        at,
        source,
        repeat: alert.summary,
      });
      this.deps.log.info({ ...about, incident: incidentId(incident.number), repeated }, 'alert firing');
      return { outcome: repeated ? 'repeat' : 'declared', incident: incident.number };
    }
    if (alert.state === 'insufficient_data') {
      const open = await store.noteOnOpenBySource(this.deps.db, source, {
        actor: SYSTEM_ACTOR,
        kind: 'alert_state',
        detail: alert.summary,
      });
      if (!open) return { outcome: 'ignored', reason: 'no incident is open for this alarm' };
      return { outcome: 'repeat', incident: open.number };
    }
    return this.cleared(alert);
  }

  private async cleared(alert: Alert): Promise<AlertResult> {
    const { source } = alert;
    const none: AlertResult = {
      outcome: 'ignored',
      reason: `no incident is open for this ${source.kind === 'alertmanager' ? 'group' : 'alarm'}`,
    };
    if (this.deps.alerts.auto_resolve) {
      const open = await store.openBySource(this.deps.db, source);
      if (!open) return none;
      try {
        await this.deps.incidents.resolve(
          { number: open.number },
          SYSTEM_ACTOR,
          `${sourceName(source)} cleared: ${alert.summary}`,
        );
      } catch (err) {
        // Resolved by someone else between the lookup and now: nothing left to do.
        if (err instanceof UserError && err.code === 'incident_resolved') return none;
        throw err;
      }
      return { outcome: 'resolved', incident: open.number };
    }
    const open = await store.noteOnOpenBySource(this.deps.db, source, {
      actor: SYSTEM_ACTOR,
      kind: 'alert_cleared',
      detail: alert.summary,
    });
    if (!open) return none;
    try {
      await this.deps.notifier.threadNote(open, { kind: 'alert_cleared', source, summary: alert.summary });
    } catch (err) {
      this.deps.log.warn(
        { err: (err as Error).message, incident: incidentId(open.number) },
        'alert cleared note not posted',
      );
    }
    return { outcome: 'cleared', incident: open.number };
  }

  private oneAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.running.get(key) ?? Promise.resolve();
    const result = before.then(work, work);
    const settled = result.catch(() => undefined);
    this.running.set(key, settled);
    void settled.then(() => {
      if (this.running.get(key) === settled) this.running.delete(key);
    });
    return result;
  }
}
