// Firing ladder steps and PagerDuty follow-ups. Called by the queue workers; every operation is idempotent because
// the queue delivers at least once.
import type { FileConfig } from '../config.js';
import type { Db } from '../db/pool.js';
import { TransientError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { PagerAction, PagerEvent, PagerPort } from '../adapters/pager.js';
import { dedupKey } from './ladder.js';
import { incidentId, incidentState, type Incident } from './model.js';
import type { EscalationTimers, IncidentNotifier } from './ports.js';
import * as store from './store.js';

/** Longer than one step can take (PagerDuty ~20 s worst case + Slack ~25 s), so a live holder never loses it. */
const STEP_LEASE_MS = 90_000;
/** A fresh incident's declarer schedules its own steps; the reconciler leaves it alone this long. */
const RECONCILE_GRACE_MS = 30_000;

export interface EscalationDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly pager: PagerPort;
  readonly notifier: IncidentNotifier;
  readonly timers: EscalationTimers;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export type StepOutcome = 'fired' | 'cancelled' | 'already-finished';

export class EscalationService {
  constructor(private readonly deps: EscalationDeps) {}

  /**
   * Fires one step: pages the role, then mentions its people in the thread. Each half is recorded as it succeeds,
   * so a retry after a failure (or a crash) repeats neither. Throws TransientError when it should be retried.
   */
  async fireStep(stepId: number): Promise<StepOutcome> {
    const { db, log } = this.deps;
    const claim = await store.claimStep(db, stepId, STEP_LEASE_MS);
    if (claim.kind === 'finished') return 'already-finished';
    if (claim.kind === 'busy') throw new TransientError(`step ${stepId} is being fired by another worker`);
    const { step } = claim;
    try {
      const incident = await store.getIncident(db, step.incident);
      if (!incident || incidentState(incident) !== 'open' || incident.ladderGeneration !== step.generation) {
        await store.finishStep(db, step.id, 'cancelled');
        return 'cancelled';
      }
      if (!step.pagedAt) this.deps.metrics.ladderLateness.observe(Math.max(0, claim.latenessMs) / 1000);
      const role = this.deps.file.roles[step.role];
      if (!role) {
        // The config changed since the incident was declared; say so on the timeline rather than fail forever.
        await store.appendEvent(db, step.incident, 'lifeline', 'page_failed', `role ${step.role} is no longer configured`);
        await store.finishStep(db, step.id, 'cancelled');
        return 'cancelled';
      }
      const key = dedupKey(incident.number, step.role);
      if (!step.pagedAt) {
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
        await store.recordPageKey(db, incident.number, step.role, key);
        await store.markStepPaged(db, step.id);
        await store.appendEvent(db, incident.number, 'lifeline', 'paged', `${step.role} (${role.slack_users.map((u) => `<@${u}>`).join(' ') || 'no Slack users'})`);
      }
      if (!step.mentionedAt) {
        await this.deps.notifier.threadNote(incident, {
          kind: 'paged',
          role: step.role,
          users: role.slack_users,
          stepNumber: step.stepIndex + 1,
          totalSteps: this.deps.file.escalation.length,
          afterMinutes: this.deps.file.escalation[step.stepIndex]?.after_minutes ?? 0,
        });
        await store.markStepMentioned(db, step.id);
      }
      await store.finishStep(db, step.id, 'fired');
      await this.followUpIfStoppedMeanwhile(incident.number);
      log.info({ incident: incidentId(incident.number), role: step.role, step: step.stepIndex, latenessMs: Math.round(claim.latenessMs) }, 'escalation step fired');
      return 'fired';
    } catch (err) {
      await store.releaseStep(db, step.id).catch(() => undefined);
      throw err;
    }
  }

  /** Sends acknowledge/resolve for every alert of the incident that has not had it yet. */
  async sendFollowUps(incidentNumber: number, action: store.FollowUpAction): Promise<number> {
    const keys = await store.keysAwaiting(this.deps.db, incidentNumber, action);
    for (const { role, dedupKey: key } of keys) {
      const routing = this.deps.file.roles[role];
      if (!routing) continue;
      await this.send({ routingKey: routing.pagerduty_routing_key, action, dedupKey: key });
      await store.markFollowUpSent(this.deps.db, incidentNumber, role, action);
    }
    return keys.length;
  }

  /** Re-creates timers that Redis lost or that fell due while no worker ran. Safe to run anywhere, any time. */
  async reconcile(): Promise<{ steps: number; followUps: number }> {
    const steps = await store.stepsToReconcile(this.deps.db, RECONCILE_GRACE_MS);
    await this.deps.timers.schedule(steps);
    const followUps = await store.followUpsToReconcile(this.deps.db);
    for (const f of followUps) await this.deps.timers.followUp(f.incident, f.action);
    return { steps: steps.length, followUps: followUps.length };
  }

  /** An acknowledge that landed while this step was paging could not know about the new alert: catch up. */
  private async followUpIfStoppedMeanwhile(incidentNumber: number): Promise<void> {
    const now = await store.getIncident(this.deps.db, incidentNumber);
    if (!now) return;
    const state = incidentState(now as Incident);
    if (state === 'acknowledged') await this.deps.timers.followUp(incidentNumber, 'acknowledge');
    if (state === 'resolved') await this.deps.timers.followUp(incidentNumber, 'resolve');
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
