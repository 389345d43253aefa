// Data access for reminders (migrations/013_reminders.sql): one row per reminded incident, its timer's generation and
// due time, and the lease that lets exactly one worker post each reminder.
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

/** A reminder timer: the incident, the generation it belongs to and when it is due. */
export interface ReminderTimer {
  readonly incident: number;
  readonly generation: number;
  readonly dueAt: Date;
}

interface TimerRow {
  incident: number;
  generation: number;
  due_at: Date;
}

/** Runs a statement that returns at most one timer row (`RETURNING incident, generation, due_at`). */
async function oneTimer(db: Queryable, sql: string, params: unknown[]): Promise<ReminderTimer | undefined> {
  const { rows } = await db.query<TimerRow>(sql, params);
  return rows[0] ? toTimer(rows[0]) : undefined;
}

function toTimer(row: TimerRow): ReminderTimer {
  return { incident: row.incident, generation: row.generation, dueAt: row.due_at };
}

/**
 * Starts an incident's reminders or starts their period again. `declaration`: a new incident, counted from its
 * declaration (nothing happens when it has its row already). `update`: an update came in, so the period starts again
 * from now in a new generation (the old timer finds itself stale), with the period its severity has now. Undefined
 * when nothing was armed, or the incident is resolved.
 */
export async function armReminders(
  db: Queryable,
  incident: number,
  periodMs: number,
  from: 'declaration' | 'update',
): Promise<ReminderTimer | undefined> {
  return oneTimer(
    db,
    `INSERT INTO incident_reminders (incident, period_ms, last_update_at, due_at)
     SELECT number, $2, s.since, s.since + $2 * interval '1 millisecond'
       FROM incidents, LATERAL (SELECT CASE WHEN $3::boolean THEN declared_at ELSE clock_timestamp() END AS since) s
      WHERE number = $1 AND resolved_at IS NULL
     ON CONFLICT (incident) DO UPDATE
        SET generation = incident_reminders.generation + 1, period_ms = excluded.period_ms,
            last_update_at = excluded.last_update_at, due_at = excluded.due_at, claimed_until = NULL
      WHERE NOT $3::boolean
     RETURNING incident, generation, due_at`,
    [incident, periodMs, from === 'declaration'],
  );
}

/** No more reminders (resolved, or its severity has none now); the last update time is kept. */
export async function stopReminders(db: Queryable, incident: number, lastUpdate: boolean): Promise<void> {
  await db.query(
    `UPDATE incident_reminders
        SET generation = generation + 1, due_at = NULL, claimed_until = NULL,
            last_update_at = CASE WHEN $2 THEN clock_timestamp() ELSE last_update_at END
      WHERE incident = $1`,
    [incident, lastUpdate],
  );
}

export type ReminderClaim =
  | { kind: 'claimed'; lastUpdateAt: Date; periodMs: number; sent: number; sinceUpdateMs: number }
  /** Its generation is over (an update or the resolve came), or the incident has no reminders. */
  | { kind: 'stale' }
  /** The timer went off before the row's due time (a clock apart, or an old job for a moved time). */
  | { kind: 'early'; timer: ReminderTimer }
  /** Another worker holds the lease right now. */
  | { kind: 'busy' };

/**
 * Takes a time-limited lease on a due reminder of this generation. Only the holder posts, so however many workers
 * receive the timer (BullMQ is at-least-once, the reconciler re-adds), one reminder goes out per period.
 * `toleranceMs`: a timer this early still counts as due (Redis's and PostgreSQL's clocks differ a little).
 */
export async function claimReminder(
  db: Queryable,
  incident: number,
  generation: number,
  leaseMs: number,
  toleranceMs: number,
): Promise<ReminderClaim> {
  const { rows } = await db.query<{
    claimed: boolean;
    generation: number;
    due_at: Date | null;
    last_update_at: Date;
    period_ms: number;
    reminders_sent: number;
    since_ms: number;
    busy: boolean;
  }>(
    `WITH claimed AS (
       UPDATE incident_reminders
          SET claimed_until = clock_timestamp() + $3 * interval '1 millisecond'
        WHERE incident = $1 AND generation = $2 AND due_at IS NOT NULL
          AND due_at <= clock_timestamp() + $4 * interval '1 millisecond'
          AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
        RETURNING *)
     SELECT true AS claimed, generation, due_at, last_update_at, period_ms, reminders_sent,
            extract(epoch FROM clock_timestamp() - last_update_at) * 1000 AS since_ms, false AS busy
       FROM claimed
     UNION ALL
     SELECT false, generation, due_at, last_update_at, period_ms, reminders_sent, 0,
            coalesce(claimed_until >= clock_timestamp(), false)
       FROM incident_reminders WHERE incident = $1 AND NOT EXISTS (SELECT 1 FROM claimed)`,
    [incident, generation, leaseMs, toleranceMs],
  );
  const row = rows[0];
  if (!row || row.generation !== generation || row.due_at === null) return { kind: 'stale' };
  if (row.claimed) {
    return {
      kind: 'claimed',
      lastUpdateAt: row.last_update_at,
      periodMs: Number(row.period_ms),
      sent: row.reminders_sent,
      sinceUpdateMs: Number(row.since_ms),
    };
  }
  if (row.busy) return { kind: 'busy' };
  return { kind: 'early', timer: { incident, generation, dueAt: row.due_at } };
}

/**
 * The reminder of this generation went out: the next one is due a period from now. Undefined when an update or the
 * resolve came meanwhile (they moved the generation on and set their own timer).
 */
export async function finishReminder(
  db: Queryable,
  incident: number,
  generation: number,
): Promise<ReminderTimer | undefined> {
  return oneTimer(
    db,
    `UPDATE incident_reminders
        SET due_at = clock_timestamp() + period_ms * interval '1 millisecond', claimed_until = NULL,
            reminders_sent = reminders_sent + 1
      WHERE incident = $1 AND generation = $2 AND due_at IS NOT NULL
      RETURNING incident, generation, due_at`,
    [incident, generation],
  );
}

export async function releaseReminder(db: Queryable, incident: number, generation: number): Promise<void> {
  await db.query('UPDATE incident_reminders SET claimed_until = NULL WHERE incident = $1 AND generation = $2', [
    incident,
    generation,
  ]);
}

/** Every running reminder timer: the reconciler re-adds them (a job id already in the queue is ignored). */
export async function remindersToReconcile(db: Queryable): Promise<ReminderTimer[]> {
  const { rows } = await db.query<TimerRow>(
    'SELECT incident, generation, due_at FROM incident_reminders WHERE due_at IS NOT NULL',
  );
  return rows.map(toTimer);
}
