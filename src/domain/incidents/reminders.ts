// Reminders, an incident follower: when no `/incident update` came in for the severity's
// `incidents.update_every_minutes` (from the declaration, then from the latest update), one reminder goes into the
// incident's thread, mentioning whoever acknowledged it, else its declarer, else the on-call role's users; again each
// period until it is resolved. Durable like the ladder: the row in incident_reminders is the truth, a delayed job is
// its alarm clock, the reconciler re-adds a lost one, and a lease in PostgreSQL lets one worker of any number post.
import type { FileConfig, Severity } from '../../shared/config.js';
import type { Db } from '../../shared/db/pool.js';
import { TransientError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { SYSTEM_ACTOR } from '../access/permissions.js';
import type { IncidentFollower } from './followers.js';
import { incidentId, incidentState, type Incident } from './model.js';
import type { IncidentNotifier } from './notifier.js';
import * as reminders from './reminder-store.js';
import * as store from './store.js';

/** Longer than a Slack post can take (the client's retries included), so a live holder never loses it. */
const REMINDER_LEASE_MS = 60_000;
/** A timer this early still counts as due: Redis's, Node's and PostgreSQL's clocks differ by a few milliseconds. */
const EARLY_TOLERANCE_MS = 50;
/** A timer that goes off less than this before its due time is retried (after 1 s, the job's first backoff). */
const NEARLY_DUE_MS = 5_000;

/** What wakes a reminder: the real one is a BullMQ delayed job (src/delivery/jobs/reminders-queue.ts). */
export interface ReminderTimers {
  /** Idempotent: the same timer (incident, generation, due time) asked for twice is one job. */
  schedule(timers: readonly reminders.ReminderTimer[]): Promise<void>;
}

export interface ReminderDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly notifier: IncidentNotifier;
  readonly timers: ReminderTimers;
  readonly log: Logger;
  /** How long a claim holds before another worker may take over (tests shorten it). */
  readonly leaseMs?: number;
}

export type ReminderOutcome = 'reminded' | 'stale' | 'early' | 'resolved';

/** The severity's reminder period in milliseconds, or undefined when it has none. */
export function reminderPeriodMs(file: FileConfig, severity: Severity): number | undefined {
  const minutes = file.incidents?.update_every_minutes?.[severity];
  return minutes === undefined ? undefined : minutes * 60_000;
}

/** Who a reminder mentions: the acknowledger, else the declarer (unless Lifeline declared it), else on-call. */
export function reminderRecipients(file: FileConfig, incident: Incident): string[] {
  if (incident.acknowledgedBy) return [incident.acknowledgedBy];
  if (incident.declaredBy !== SYSTEM_ACTOR) return [incident.declaredBy];
  const onCall = file.roles.oncall ? 'oncall' : file.escalation[0]?.notify;
  return [...((onCall && file.roles[onCall]?.slack_users) || [])];
}

export class ReminderService implements IncidentFollower {
  readonly name = 'reminders';

  private readonly leaseMs: number;

  constructor(private readonly deps: ReminderDeps) {
    this.leaseMs = deps.leaseMs ?? REMINDER_LEASE_MS;
  }

  async declared(incident: Incident): Promise<void> {
    const periodMs = reminderPeriodMs(this.deps.file, incident.severity);
    if (periodMs === undefined) return;
    const timer = await reminders.armReminders(this.deps.db, incident.number, periodMs, 'declaration');
    if (timer) await this.deps.timers.schedule([timer]);
  }

  async updated(incident: Incident): Promise<void> {
    // The severity may have changed since the declaration: the period is the one it has now.
    const periodMs = reminderPeriodMs(this.deps.file, incident.severity);
    if (periodMs === undefined) {
      await reminders.stopReminders(this.deps.db, incident.number, true);
      return;
    }
    const timer = await reminders.armReminders(this.deps.db, incident.number, periodMs, 'update');
    if (timer) await this.deps.timers.schedule([timer]);
  }

  async resolved(incident: Incident): Promise<void> {
    await reminders.stopReminders(this.deps.db, incident.number, false);
  }

  /**
   * Posts the reminder this timer stands for, when it is still due: once per period however many workers receive
   * it. Throws TransientError when another worker holds it or Slack failed (the job retries).
   */
  async fire(incidentNumber: number, generation: number): Promise<ReminderOutcome> {
    const { db, log } = this.deps;
    const claim = await reminders.claimReminder(db, incidentNumber, generation, this.leaseMs, EARLY_TOLERANCE_MS);
    if (claim.kind === 'stale') return 'stale';
    if (claim.kind === 'busy') throw new TransientError(`the reminder of ${incidentId(incidentNumber)} is being sent`);
    if (claim.kind === 'early') {
      // Nearly due: this very job went off early (clocks apart), and re-adding it under its own id would be ignored
      // while it runs; its retry comes after the due time. Further off: a stray timer; make sure the right one exists.
      if (claim.timer.dueAt.getTime() - Date.now() <= NEARLY_DUE_MS) {
        throw new TransientError(`the reminder of ${incidentId(incidentNumber)} is not due yet`);
      }
      await this.deps.timers.schedule([claim.timer]);
      return 'early';
    }
    try {
      const incident = await store.getIncident(db, incidentNumber);
      if (!incident || incidentState(incident) === 'resolved') {
        await reminders.stopReminders(db, incidentNumber, false);
        return 'resolved';
      }
      const users = reminderRecipients(this.deps.file, incident);
      await this.deps.notifier.threadNote(incident, {
        kind: 'reminder',
        users,
        sinceUpdateMs: claim.sinceUpdateMs,
        sinceDeclaration: claim.lastUpdateAt.getTime() === incident.declaredAt.getTime(),
      });
      const next = await reminders.finishReminder(db, incidentNumber, generation);
      const minutes = Math.round(claim.sinceUpdateMs / 60_000);
      await store.appendEvent(db, incidentNumber, SYSTEM_ACTOR, 'reminder', `no update for ${minutes} min`);
      if (next) await this.deps.timers.schedule([next]);
      log.info({ incident: incidentId(incidentNumber), sent: claim.sent + 1 }, 'update reminder sent');
      return 'reminded';
    } catch (err) {
      await reminders.releaseReminder(db, incidentNumber, generation).catch(() => undefined);
      throw err instanceof TransientError ? err : new TransientError((err as Error).message);
    }
  }

  /** Re-adds every running reminder's timer (after Redis lost it); answers how many run. */
  async reconcile(): Promise<number> {
    const running = await reminders.remindersToReconcile(this.deps.db);
    await this.deps.timers.schedule(running);
    return running.length;
  }
}
