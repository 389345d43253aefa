// Firing ladder steps and PagerDuty follow-ups. Called by the queue workers; every operation is idempotent because
// the queue delivers at least once.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FileConfig } from '../../shared/config.js';
import type { Db } from '../../shared/db/pool.js';
import { TransientError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Metrics } from '../../shared/metrics.js';
import type { PagerAction, PagerEvent, PagerPort } from '../../adapters/pagerduty/port.js';
import { dedupKey } from './ladder.js';
import { incidentId, incidentState, type Incident } from './model.js';
import type { IncidentNotifier } from './notifier.js';
import type { EscalationTimers } from './timers.js';
import * as store from './store.js';

/** Longer than one step can take (PagerDuty ~20 s worst case + Slack ~25 s), so a live holder never loses it. */
const STEP_LEASE_MS = 90_000;
/** How long a step's thread mention waits for the incident card before posting to the channel instead. */
const CARD_WAIT_MS = 20_000;
/** Within one attempt, poll for the card this long (from declaration) before handing back to the job's retry. */
const CARD_POLL_LIMIT_MS = 5_000;
const CARD_POLL_MS = 50;
/** Advisory lock namespace for per-incident follow-ups (any constant; the same in every replica). */
const FOLLOW_UP_LOCK = 4_711_002;

export interface EscalationDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly pager: PagerPort;
  readonly notifier: IncidentNotifier;
  readonly timers: EscalationTimers;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Told once a step's page and mention are out, best-effort: the incident channel invites the role's users. */
  readonly paged?: (incident: number, users: readonly string[]) => Promise<void>;
}

export type StepOutcome = 'fired' | 'cancelled' | 'already-finished';

export class EscalationService {
  constructor(private readonly deps: EscalationDeps) {}

  /**
   * Fires one step: pages the role, then mentions its people in the incident's thread. The page is recorded as soon
   * as PagerDuty accepts it, so a retry after a failure (or a crash) never pages twice. Throws TransientError when
   * the step should be retried.
   */
  async fireStep(stepId: number): Promise<StepOutcome> {
    const { db, log } = this.deps;
    const claim = await store.claimStep(db, stepId, STEP_LEASE_MS);
    if (claim.kind === 'finished') return 'already-finished';
    if (claim.kind === 'busy') throw new TransientError(`step ${stepId} is being fired by another worker`);
    const { step } = claim;
    let incident = claim.incident;
    try {
      // Once paged, the step finishes (its mention records who was paged) even if someone acknowledged meanwhile.
      const stale = !incident || incidentState(incident) !== 'open' || incident.ladderGeneration !== step.generation;
      if (!incident || (stale && !step.pagedAt)) {
        await store.finishStep(db, step.id, 'cancelled');
        return 'cancelled';
      }
      const role = this.deps.file.roles[step.role];
      if (!role) {
        // The config changed since the incident was declared; say so on the timeline rather than fail forever.
        await store.appendEvent(
          db,
          step.incident,
          'lifeline',
          'page_failed',
          `role ${step.role} is no longer configured`,
        );
        await store.finishStep(db, step.id, 'cancelled');
        return 'cancelled';
      }
      if (!step.pagedAt) {
        this.deps.metrics.ladderLateness.observe(Math.max(0, claim.latenessMs) / 1000);
        const key = dedupKey(incident.number, step.role);
        await this.send({
          routingKey: role.pagerduty_routing_key,
          action: 'trigger',
          dedupKey: key,
          payload: {
            summary: `[${incident.severity.toUpperCase()}] ${incident.title} (${incidentId(incident.number)})`,
            source: 'lifeline',
            severity: incident.severity === 'sev1' ? 'critical' : 'error',
            customDetails: { incident: incidentId(incident.number), role: step.role, declared_by: incident.declaredBy },
          },
        });
        await store.recordPage(db, step, key, `${step.role} (${role.slack_users.join(', ') || 'no Slack users'})`);
      }
      if (!incident.card) incident = await this.waitForCard(incident);
      await this.deps.notifier.threadNote(incident, {
        kind: 'paged',
        role: step.role,
        users: role.slack_users,
        stepNumber: step.stepIndex + 1,
        totalSteps: this.deps.file.escalation.length,
        afterMinutes: this.deps.file.escalation[step.stepIndex]?.after_minutes ?? 0,
      });
      const stateNow = await store.finishFiredStep(db, step.id);
      await this.tellPaged(incident.number, role.slack_users);
      // An acknowledge that landed while this step was paging could not know about the new alert: catch up.
      if (stateNow !== 'open')
        await this.deps.timers.followUp(incident.number, stateNow === 'resolved' ? 'resolve' : 'acknowledge');
      log.info(
        {
          incident: incidentId(incident.number),
          role: step.role,
          step: step.stepIndex,
          latenessMs: Math.round(claim.latenessMs),
        },
        'escalation step fired',
      );
      return 'fired';
    } catch (err) {
      await store.releaseStep(db, step.id).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The page is out; its mention belongs in the card's thread, and the card is normally being posted this very moment.
   * Wait briefly; past CARD_WAIT_MS after declaration (the card post failed) the mention goes to the channel instead.
   */
  private async waitForCard(incident: Incident): Promise<Incident> {
    const age = () => Date.now() - incident.declaredAt.getTime();
    let current = incident;
    while (!current.card && age() < CARD_POLL_LIMIT_MS) {
      await sleep(CARD_POLL_MS);
      current = (await store.getIncident(this.deps.db, incident.number)) ?? current;
    }
    if (current.card || age() >= CARD_WAIT_MS) return current;
    throw new TransientError(`incident ${incidentId(incident.number)} has no card yet`);
  }

  /**
   * Sends acknowledge/resolve for every alert of the incident that has not had it yet. Follow-ups for one incident
   * run one at a time (a session advisory lock), so two jobs never send the same event; each send is recorded as
   * soon as PagerDuty accepts it.
   */
  async sendFollowUps(incidentNumber: number, action: store.FollowUpAction): Promise<number> {
    const client = await this.deps.db.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [FOLLOW_UP_LOCK, incidentNumber]);
      const keys = await store.keysAwaiting(client, incidentNumber, action);
      for (const { role, dedupKey: key } of keys) {
        const routing = this.deps.file.roles[role];
        if (!routing) continue;
        await this.send({ routingKey: routing.pagerduty_routing_key, action, dedupKey: key });
        await store.markFollowUpSent(client, incidentNumber, role, action);
      }
      return keys.length;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [FOLLOW_UP_LOCK, incidentNumber]).catch(() => undefined);
      client.release();
    }
  }

  /** Re-creates timers that Redis lost or that fell due while no worker ran. Safe to run anywhere, any time. */
  async reconcile(): Promise<{ steps: number; followUps: number }> {
    const steps = await store.stepsToReconcile(this.deps.db);
    await this.deps.timers.schedule(steps);
    const followUps = await store.followUpsToReconcile(this.deps.db);
    for (const f of followUps) await this.deps.timers.followUp(f.incident, f.action);
    return { steps: steps.length, followUps: followUps.length };
  }

  private async tellPaged(incident: number, users: readonly string[]): Promise<void> {
    try {
      await this.deps.paged?.(incident, users);
    } catch (err) {
      this.deps.log.warn({ incident: incidentId(incident), err: (err as Error).message }, 'after-page hook failed');
    }
  }

  private async send(event: PagerEvent): Promise<void> {
    const action: PagerAction = event.action;
    try {
      await this.deps.pager.send(event);
      this.deps.metrics.pagesSent.inc({ action });
    } catch (err) {
      this.deps.metrics.pagesFailed.inc({ action });
      this.deps.log.error({ action, dedupKey: event.dedupKey, err: (err as Error).message }, 'PagerDuty event failed');
      throw err;
    }
  }
}
