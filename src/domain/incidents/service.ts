// Incident lifecycle: declare, acknowledge, update, change severity, resolve. Knows nothing of Slack.
import type { FileConfig, Severity } from '../../shared/config.js';
import { inTransaction, type Db } from '../../shared/db/pool.js';
import { UserError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Metrics } from '../../shared/metrics.js';
import { person, said } from '../../shared/text.js';
import { requireResponder } from '../access/permissions.js';
import type { IncidentFollower } from './followers.js';
import { planLadder } from './ladder.js';
import {
  incidentId,
  incidentOrigin,
  incidentState,
  type AlertSource,
  type Incident,
  type PageRecord,
  type TimelineEvent,
} from './model.js';
import type { IncidentNotifier } from './notifier.js';
import type { EscalationTimers } from './timers.js';
import * as store from './store.js';

export const TITLE_MAX = 150;

export interface IncidentServiceDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly notifier: IncidentNotifier;
  readonly timers: EscalationTimers;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** What follows incidents (the status page...), told after each declaration, update and resolve. */
  readonly followers?: readonly IncidentFollower[];
}

export interface IncidentDetails {
  readonly incident: Incident;
  readonly timeline: readonly TimelineEvent[];
  readonly pages: readonly PageRecord[];
}

/** How a command names its incident: explicitly, by the thread it was sent from, or by there being only one open. */
export interface IncidentReference {
  readonly number?: number | undefined;
  readonly threadTs?: string | undefined;
  readonly channel?: string | undefined;
}

export class IncidentService {
  constructor(private readonly deps: IncidentServiceDeps) {}

  /**
   * `at`: when the declaration reached Lifeline, so that the ladder runs from then however busy the server is.
   * With a `source` (an alert), an incident already open for that source is not declared again: `repeat` goes on its
   * timeline instead and the answer says `repeated`. The unique index on open incidents per source decides, so
   * concurrent declarations for one source (on any number of replicas) give one incident.
   */
  async declare(input: {
    severity: Severity;
    title: string;
    actor: string;
    channel: string;
    at?: Date | undefined;
    source?: AlertSource | undefined;
    /** The timeline entry on the open incident of `source` when there is one. */
    repeat?: string | undefined;
  }): Promise<{ incident: Incident; cardError?: string; repeated?: true }> {
    const title = input.title.trim();
    const length = characterCount(title);
    if (length === 0 || length > TITLE_MAX) {
      throw new UserError('bad_command', `The title must be 1-${TITLE_MAX} characters (it has ${length}).`);
    }
    const plan = planLadder(this.deps.file, input.severity);
    const declared = `${input.severity.toUpperCase()}: ${title}`;
    const { source } = input;
    let created: Awaited<ReturnType<typeof store.declareIncident>>;
    // Each turn: a repeat when one is open (no incident number is spent), else the declaration, which the index
    // refuses when a concurrent one won meanwhile; the next turn then finds that one. A third turn is only needed
    // when that winner was resolved in between.
    for (let turn = 0; ; turn++) {
      if (source) {
        const detail = input.repeat ?? `still firing: ${title}`;
        const open = await store.noteOnOpenBySource(this.deps.db, source, {
          actor: input.actor,
          kind: 'alert_repeat',
          detail,
        });
        if (open) return { incident: open, repeated: true };
      }
      created = await store.declareIncident(this.deps.db, {
        severity: input.severity,
        title,
        declaredBy: input.actor,
        declaredIn: input.channel,
        declaredAt: input.at,
        steps: plan,
        events: [
          { kind: 'declared', detail: declared },
          ...(plan.length > 0 ? [{ kind: 'ladder_started' as const, detail: describeLadder(plan) }] : []),
        ],
        source,
      });
      if (created) break;
      if (turn >= 4) throw new Error(`could not declare or find the open incident of ${source?.kind} ${source?.key}`);
    }
    const { incident, steps } = created;
    this.deps.metrics.incidentsDeclared.inc({ severity: input.severity });
    this.deps.log.info(
      { incident: incidentId(incident.number), severity: incident.severity, actor: input.actor },
      'incident declared',
    );

    // Timers first: a page must not wait for Slack. A step that fires before the card exists pages at once and puts
    // its mention in the card's thread as soon as the card is there.
    await this.bestEffort('schedule ladder', () => this.deps.timers.schedule(steps));
    let cardError: string | undefined;
    let announced = incident;
    try {
      const card = await this.deps.notifier.announce(incident);
      await store.setCard(this.deps.db, incident.number, card.channel, card.ts);
      announced = { ...incident, card };
    } catch (err) {
      cardError = (err as Error).message;
      this.deps.metrics.slackFailures.inc({ call: 'Slack incident card' });
      this.deps.log.error(
        { incident: incidentId(incident.number), err: cardError },
        'incident card could not be posted',
      );
    }
    await this.follow('declared', (f) => f.declared(announced));
    return cardError === undefined ? { incident: announced } : { incident: announced, cardError };
  }

  async find(ref: IncidentReference): Promise<Incident> {
    if (ref.number !== undefined) {
      const incident = await store.getIncident(this.deps.db, ref.number);
      if (!incident) throw new UserError('unknown_incident', `There is no incident ${incidentId(ref.number)}.`);
      return incident;
    }
    if (ref.threadTs && ref.channel) {
      const inThread = await store.findByCard(this.deps.db, ref.channel, ref.threadTs);
      if (inThread) return inThread;
    }
    const { incidents: open, total } = await store.listOpenIncidents(this.deps.db, 5);
    if (total === 1) return open[0]!;
    if (total === 0) {
      throw new UserError('unknown_incident', 'No incident is open. Name one by its ID, for example INC-7.');
    }
    const ids = open.map((i) => incidentId(i.number)).join(', ');
    throw new UserError(
      'incident_ambiguous',
      `${total} incidents are open (${ids}${total > open.length ? ', …' : ''}): name one by its ID.`,
    );
  }

  async acknowledge(ref: IncidentReference, actor: string): Promise<Incident> {
    const target = await this.find(ref);
    requireResponder(this.deps.file, actor, `acknowledge ${incidentId(target.number)}`);
    const { incident, cancelled } = await inTransaction(this.deps.db, async (tx) => {
      const current = await this.lockedForChange(tx, target.number);
      if (current.acknowledgedAt) {
        const by = person(current.acknowledgedBy ?? '');
        throw new UserError('already_done', said`${incidentId(current.number)} was already acknowledged by ${by}.`);
      }
      const acknowledged = await store.markAcknowledged(tx, current.number, actor);
      await store.appendEvent(tx, current.number, actor, 'acknowledged');
      const stopped = await store.cancelPendingSteps(tx, current.number);
      if (stopped.length > 0) await store.appendEvent(tx, current.number, actor, 'ladder_stopped', 'acknowledged');
      return { incident: acknowledged, cancelled: stopped };
    });
    this.observe('timeToAcknowledge', incident, incident.acknowledgedAt);
    await this.afterLadderStops(incident, cancelled, 'acknowledge');
    await this.follow('acknowledged', async (f) => f.acknowledged?.(incident));
    return incident;
  }

  async resolve(ref: IncidentReference, actor: string, note: string | undefined): Promise<Incident> {
    const target = await this.find(ref);
    requireResponder(this.deps.file, actor, `resolve ${incidentId(target.number)}`);
    const { incident, cancelled } = await inTransaction(this.deps.db, async (tx) => {
      const current = await this.lockedForChange(tx, target.number);
      const resolved = await store.markResolved(tx, current.number, actor, note);
      await store.appendEvent(tx, current.number, actor, 'resolved', note ?? '');
      const stopped = await store.cancelPendingSteps(tx, current.number);
      if (stopped.length > 0) await store.appendEvent(tx, current.number, actor, 'ladder_stopped', 'resolved');
      return { incident: resolved, cancelled: stopped };
    });
    this.observe('timeToResolve', incident, incident.resolvedAt);
    await this.afterLadderStops(incident, cancelled, 'resolve');
    await this.follow('resolved', (f) => f.resolved(incident));
    return incident;
  }

  async update(ref: IncidentReference, actor: string, text: string): Promise<Incident> {
    const target = await this.find(ref);
    const incident = await inTransaction(this.deps.db, async (tx) => {
      const current = await this.lockedForChange(tx, target.number);
      await store.appendEvent(tx, current.number, actor, 'update', text);
      return current;
    });
    await this.bestEffort('Slack thread note', () =>
      this.deps.notifier.threadNote(incident, { kind: 'update', actor, text }),
    );
    await this.follow('updated', (f) => f.updated(incident, text));
    return incident;
  }

  async changeSeverity(
    ref: IncidentReference,
    actor: string,
    severity: Severity,
  ): Promise<{ incident: Incident; ladder: 'started' | 'stopped' | 'unchanged' }> {
    const target = await this.find(ref);
    requireResponder(this.deps.file, actor, `change the severity of ${incidentId(target.number)}`);
    const outcome = await inTransaction(this.deps.db, async (tx) => {
      const current = await this.lockedForChange(tx, target.number);
      if (current.severity === severity) {
        throw new UserError('already_done', `${incidentId(current.number)} is already ${severity.toUpperCase()}.`);
      }
      const wasPaging = this.deps.file.severities[current.severity].page;
      const nowPaging = this.deps.file.severities[severity].page;
      // An acknowledged incident has a responder; raising it is recorded but does not page anyone again.
      const startLadder = nowPaging && !wasPaging && !current.acknowledgedAt;
      const stopLadder = wasPaging && !nowPaging;
      // A new generation also strands any step being fired right now, so it cannot page after the lowering.
      const changed = await store.setSeverity(tx, current.number, severity, startLadder || stopLadder);
      await store.appendEvent(
        tx,
        current.number,
        actor,
        'severity_changed',
        `${current.severity.toUpperCase()} → ${severity.toUpperCase()}`,
      );
      let steps: store.StepRow[] = [];
      let cancelled: number[] = [];
      if (startLadder) {
        const plan = planLadder(this.deps.file, severity);
        steps = await store.insertSteps(tx, changed.number, changed.ladderGeneration, plan);
        await store.appendEvent(tx, changed.number, actor, 'ladder_started', describeLadder(plan));
      } else if (stopLadder) {
        cancelled = await store.cancelPendingSteps(tx, changed.number);
        if (cancelled.length > 0)
          await store.appendEvent(tx, changed.number, actor, 'ladder_stopped', `lowered to ${severity.toUpperCase()}`);
      }
      const ladder: 'started' | 'stopped' | 'unchanged' = startLadder
        ? 'started'
        : cancelled.length > 0
          ? 'stopped'
          : 'unchanged';
      return { incident: changed, steps, cancelled, ladder, from: current.severity };
    });
    await this.bestEffort('schedule ladder', () =>
      this.deps.timers.schedule(outcome.steps.map((s) => ({ id: s.id, dueAt: s.dueAt }))),
    );
    await this.bestEffort('cancel steps', () => this.deps.timers.cancel(outcome.cancelled));
    await this.bestEffort('Slack card refresh', () => this.deps.notifier.refresh(outcome.incident));
    await this.bestEffort('Slack thread note', () =>
      this.deps.notifier.threadNote(outcome.incident, {
        kind: 'severity',
        actor,
        from: outcome.from,
        to: severity,
        ladder: outcome.ladder,
      }),
    );
    await this.follow('severity changed', async (f) => f.severityChanged?.(outcome.incident));
    return { incident: outcome.incident, ladder: outcome.ladder };
  }

  async listOpen(limit = 50): Promise<{ incidents: Incident[]; total: number }> {
    return store.listOpenIncidents(this.deps.db, limit);
  }

  async details(ref: IncidentReference): Promise<IncidentDetails> {
    const incident = await this.find(ref);
    const [timeline, pages] = await Promise.all([
      store.timeline(this.deps.db, incident.number),
      store.pagesSent(this.deps.db, incident.number),
    ]);
    return { incident, timeline, pages };
  }

  /** Row-locks the incident so concurrent acknowledge/resolve/severity changes serialise; resolved ones are final. */
  private async lockedForChange(tx: Parameters<typeof store.getIncident>[0], number: number): Promise<Incident> {
    const current = await store.getIncident(tx, number, true);
    if (!current) throw new UserError('unknown_incident', `There is no incident ${incidentId(number)}.`);
    if (incidentState(current) === 'resolved') {
      const by = person(current.resolvedBy ?? '');
      throw new UserError('incident_resolved', said`${incidentId(number)} is already resolved (by ${by}).`);
    }
    return current;
  }

  private async afterLadderStops(
    incident: Incident,
    cancelledSteps: number[],
    action: store.FollowUpAction,
  ): Promise<void> {
    await this.bestEffort('cancel steps', () => this.deps.timers.cancel(cancelledSteps));
    await this.bestEffort('PagerDuty follow-up', () => this.deps.timers.followUp(incident.number, action));
    await this.bestEffort('Slack card refresh', () => this.deps.notifier.refresh(incident));
  }

  /** MTTA / MTTR: seconds since the declaration, by the severity it has now and where it came from. */
  private observe(metric: 'timeToAcknowledge' | 'timeToResolve', incident: Incident, at: Date | undefined): void {
    if (!at) return;
    const seconds = Math.max(0, at.getTime() - incident.declaredAt.getTime()) / 1000;
    this.deps.metrics[metric].observe({ severity: incident.severity, source: incidentOrigin(incident) }, seconds);
  }

  /** Tells every follower, one after the other, each best-effort. */
  private async follow(what: string, tell: (follower: IncidentFollower) => Promise<void>): Promise<void> {
    for (const follower of this.deps.followers ?? []) {
      await this.bestEffort(`${follower.name} (${what})`, () => tell(follower));
    }
  }

  /**
   * Runs a side effect after the state change is committed. A Slack hiccup must not turn a done acknowledgement into
   * an error for the user, and a timer Redis cannot take now is set by the reconciler (which reads PostgreSQL)
   * within a minute.
   */
  private async bestEffort(what: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      if (what.startsWith('Slack')) this.deps.metrics.slackFailures.inc({ call: what });
      this.deps.log.warn({ err: (err as Error).message }, `${what} failed after the change was committed`);
    }
  }
}

/** Characters as people count them (code points), the same measure as PostgreSQL's char_length. */
export function characterCount(text: string): number {
  return [...text].length;
}

function describeLadder(plan: readonly { role: string; afterMs: number }[]): string {
  return plan.map((s) => `${s.role} at +${+(s.afterMs / 60_000).toFixed(2)} min`).join(', ');
}
