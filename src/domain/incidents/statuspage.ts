// The status page, the first incident follower. auto_for severities get an Atlassian
// Statuspage incident at declaration, `/incident statuspage` creates or updates one, and resolving the incident
// resolves it and sets its components back to operational. Every call is a row first (statuspage_calls) and then a
// durable job; the job makes the incident's calls in order under a per-incident lock, so a retried job or a second
// replica never creates a second status page incident. A failure is said in the incident's thread and retried.
import type {
  ComponentStatus,
  StatuspageIncident,
  StatuspagePort,
  StatuspageStatus,
} from '../../adapters/statuspage/port.js';
import type { FileConfig } from '../../shared/config.js';
import { inTransaction, type Db } from '../../shared/db/pool.js';
import { PermanentError, TransientError, UserError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { requireResponder, SYSTEM_ACTOR } from '../access/permissions.js';
import type { IncidentFollower } from './followers.js';
import { incidentId, incidentState, type Incident } from './model.js';
import type { IncidentNotifier } from './notifier.js';
import type { IncidentReference } from './service.js';
import * as store from './store.js';
import * as calls from './statuspage-store.js';

export const STATUS_BODY_MAX = 2_900;

/** What sends a call's job: the real one is a BullMQ queue (src/delivery/jobs/statuspage-queue.ts). */
export interface StatusPageTriggers {
  /** Asks for the incident's owed calls to be made; `key` names the job, so asking twice is one job. */
  trigger(incident: number, key: string): Promise<void>;
}

export interface StatusPageDeps {
  readonly db: Db;
  readonly file: FileConfig;
  /** Undefined when the config has no `statuspage:`. */
  readonly port: StatuspagePort | undefined;
  readonly triggers: StatusPageTriggers;
  readonly notifier: IncidentNotifier;
  readonly incidents: { find(ref: IncidentReference): Promise<Incident> };
  readonly log: Logger;
}

/** How one pass over an incident's owed calls ended. */
export type DrainOutcome = { readonly made: number; readonly failed: number };

export class StatusPageService implements IncidentFollower {
  readonly name = 'status page';

  constructor(private readonly deps: StatusPageDeps) {}

  // ---- the follower ---------------------------------------------------------------------------------------------

  async declared(incident: Incident): Promise<void> {
    const page = this.deps.file.statuspage;
    if (!page || !this.deps.port || !page.auto_for.includes(incident.severity)) return;
    await this.owe(incident.number, 'declare', 'investigating', 'We are investigating this issue.', SYSTEM_ACTOR);
  }

  async updated(): Promise<void> {
    // An /incident update is for responders; what the public reads is said with /incident statuspage.
  }

  async resolved(incident: Incident): Promise<void> {
    if (!this.deps.file.statuspage || !this.deps.port) return;
    // Nothing was created or asked for: the status page never heard of this incident.
    if (!incident.statusPage && !(await calls.hasCalls(this.deps.db, incident.number))) return;
    await this.owe(incident.number, 'resolve', 'resolved', 'This incident has been resolved.', SYSTEM_ACTOR);
  }

  // ---- /incident statuspage -------------------------------------------------------------------------------------

  /** Creates or updates the incident's status page incident, with `body` as the public message. */
  async post(ref: IncidentReference, actor: string, status: StatuspageStatus, body: string): Promise<Incident> {
    if (!this.deps.file.statuspage || !this.deps.port) {
      throw new UserError('not_available', 'No status page is configured (`statuspage:` in lifeline.yml).');
    }
    const incident = await this.deps.incidents.find(ref);
    const id = incidentId(incident.number);
    requireResponder(this.deps.file, actor, `post to the status page about ${id}`);
    if (incidentState(incident) === 'resolved' && status !== 'resolved') {
      throw new UserError(
        'incident_resolved',
        `${id} is resolved, and so is its status page incident: only \`resolved\` may still be posted.`,
      );
    }
    await this.owe(incident.number, 'post', status, body, actor);
    return incident;
  }

  // ---- the job --------------------------------------------------------------------------------------------------

  /**
   * Makes the incident's owed calls, oldest first. A call that may succeed later (network, 429, 5xx) stops the pass
   * and is thrown for the job to retry, unless `finalAttempt`, when Lifeline gives up on it and says so; a refusal
   * (4xx) is given up on at once, and the pass goes on to the next call.
   */
  async drain(incident: number, options: { finalAttempt: boolean }): Promise<DrainOutcome> {
    // A replica started without `statuspage:` leaves the calls to one that has it.
    if (!this.deps.port) return { made: 0, failed: 0 };
    let made = 0;
    let failed = 0;
    for (;;) {
      const step = await inTransaction(this.deps.db, async (tx) => {
        await calls.lockIncident(tx, incident);
        const call = await calls.nextCall(tx, incident);
        if (!call) return undefined;
        const current = await store.getIncident(tx, incident);
        if (!current) throw new Error(`statuspage call ${call.id} names no incident`);
        try {
          const result = await this.make(current, call);
          if (result.record) await calls.saveRecord(tx, incident, result.record);
          await calls.finishCall(tx, call.id, result.record !== undefined);
          if (result.said) await store.appendEvent(tx, incident, call.requestedBy, 'statuspage', result.said);
          const updated = (await store.getIncident(tx, incident)) ?? current;
          return { call, outcome: 'made' as const, result, incident: updated };
        } catch (err) {
          if (!(err instanceof TransientError || err instanceof PermanentError)) throw err;
          const giveUp = err instanceof PermanentError || options.finalAttempt;
          await calls.failCall(tx, call.id, err.message, giveUp);
          const detail = `${describeCall(call)} failed: ${err.message}${giveUp ? ' (given up)' : ' (will retry)'}`;
          await store.appendEvent(tx, incident, call.requestedBy, 'statuspage_failed', detail);
          return { call, outcome: 'failed' as const, error: err, giveUp, incident: current };
        }
      });
      if (!step) return { made, failed };
      if (step.outcome === 'made') {
        made++;
        const { record, created = false } = step.result;
        if (record) await this.tellMade(step.incident, step.call, record, created);
        continue;
      }
      failed++;
      await this.tellFailed(step.incident, step.call, step.error.message, step.giveUp);
      if (!step.giveUp) throw step.error;
      if (step.error instanceof TransientError) return { made, failed };
    }
  }

  /** Gives every owed call its job again (after Redis lost them); answers how many were owed. */
  async reconcile(): Promise<number> {
    if (!this.deps.port) return 0;
    const owed = await calls.callsOwed(this.deps.db);
    for (const call of owed) await this.deps.triggers.trigger(call.incident, calls.callKey(call));
    return owed.length;
  }

  /** The call to Statuspage this row asks for, or none when there is nothing left to do. */
  private async make(
    incident: Incident,
    call: calls.StatusPageCall,
  ): Promise<{ record?: StatuspageIncident; said?: string; created?: boolean }> {
    const port = this.deps.port;
    if (!port) throw new PermanentError('no status page is configured any more');
    const existing = incident.statusPage;
    switch (call.action) {
      case 'declare': {
        // Someone was quicker (/incident statuspage), or it is over before the status page could hear of it.
        if (existing || incidentState(incident) === 'resolved') return {};
        const record = await port.createIncident(this.newIncident(incident, call));
        return { record, created: true, said: `created (${record.status})${linkPart(record)}` };
      }
      case 'resolve': {
        if (!existing || existing.status === 'resolved') return {};
        const components = this.componentsAt('operational');
        const record = await port.updateIncident(existing.id, { status: 'resolved', body: call.body, components });
        return { record, said: `resolved; components operational${linkPart(record)}` };
      }
      case 'post': {
        if (!existing) {
          const record = await port.createIncident(this.newIncident(incident, call));
          return { record, created: true, said: `created (${record.status}): ${call.body}${linkPart(record)}` };
        }
        const components = call.status === 'resolved' ? { components: this.componentsAt('operational') } : {};
        const record = await port.updateIncident(existing.id, { status: call.status, body: call.body, ...components });
        return { record, said: `${record.status}: ${call.body}` };
      }
    }
  }

  private newIncident(incident: Incident, call: calls.StatusPageCall) {
    const outage: ComponentStatus = incident.severity === 'sev1' ? 'major_outage' : 'partial_outage';
    const components = this.componentsAt(call.status === 'resolved' ? 'operational' : outage);
    return { name: incident.title, status: call.status, body: call.body, components };
  }

  /** Every configured component (one per env) at one status. */
  private componentsAt(status: ComponentStatus): Record<string, ComponentStatus> {
    const ids = Object.values(this.deps.file.statuspage?.components ?? {});
    return Object.fromEntries(ids.map((id) => [id, status]));
  }

  private async owe(
    incident: number,
    action: calls.StatusPageAction,
    status: StatuspageStatus,
    body: string,
    actor: string,
  ): Promise<void> {
    const call = await calls.addCall(this.deps.db, { incident, action, status, body, requestedBy: actor });
    // Already owed (a declare or resolve told twice): its job exists, or the reconciler gives it one.
    if (!call) return;
    await this.deps.triggers.trigger(incident, calls.callKey(call));
  }

  private async tellMade(
    incident: Incident,
    call: calls.StatusPageCall,
    record: StatuspageIncident,
    created: boolean,
  ): Promise<void> {
    await this.quietly('Slack card refresh', () => this.deps.notifier.refresh(incident));
    await this.quietly('Slack thread note', () =>
      this.deps.notifier.threadNote(incident, {
        kind: 'statuspage',
        status: record.status,
        link: record.shortlink ?? incident.statusPage?.link,
        created,
        failures: call.attempts,
      }),
    );
  }

  private async tellFailed(
    incident: Incident,
    call: calls.StatusPageCall,
    error: string,
    gaveUp: boolean,
  ): Promise<void> {
    // Said once when it first fails, and once more if Lifeline gives up; retries in between stay on the timeline.
    if (call.reported && !gaveUp) return;
    await this.quietly('Slack thread note', async () => {
      await this.deps.notifier.threadNote(incident, {
        kind: 'statuspage_failed',
        status: call.status,
        error,
        retrying: !gaveUp,
      });
      await calls.markReported(this.deps.db, call.id);
    });
  }

  private async quietly(what: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, `${what} about the status page failed`);
    }
  }
}

function describeCall(call: calls.StatusPageCall): string {
  return call.action === 'resolve' ? 'resolve' : `${call.action} (${call.status})`;
}

function linkPart(record: StatuspageIncident): string {
  return record.shortlink ? ` ${record.shortlink}` : '';
}
