// Data access for the status page: the calls Lifeline owes Statuspage, and the incident's status page record.
import type pg from 'pg';
import type { StatuspageIncident, StatuspageStatus } from '../../adapters/statuspage/port.js';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export type StatusPageAction = 'declare' | 'post' | 'resolve';

export interface StatusPageCall {
  readonly id: number;
  readonly incident: number;
  readonly action: StatusPageAction;
  readonly status: StatuspageStatus;
  readonly body: string;
  readonly requestedBy: string;
  readonly attempts: number;
  readonly reported: boolean;
}

interface CallRow {
  id: string;
  incident: number;
  action: StatusPageAction;
  status: StatuspageStatus;
  body: string;
  requested_by: string;
  attempts: number;
  reported_at: Date | null;
}

function toCall(row: CallRow): StatusPageCall {
  return {
    id: Number(row.id),
    incident: row.incident,
    action: row.action,
    status: row.status,
    body: row.body,
    requestedBy: row.requested_by,
    attempts: row.attempts,
    reported: row.reported_at !== null,
  };
}

/** The job id part of a call: one per incident for declare and resolve, one per call for a post. */
export function callKey(call: Pick<StatusPageCall, 'id' | 'action'>): string {
  return call.action === 'post' ? `post-${call.id}` : call.action;
}

/** Records a call owed; undefined when this incident's declare or resolve call already exists. */
export async function addCall(
  db: Queryable,
  call: { incident: number; action: StatusPageAction; status: StatuspageStatus; body: string; requestedBy: string },
): Promise<StatusPageCall | undefined> {
  const { rows } = await db.query<CallRow>(
    `INSERT INTO statuspage_calls (incident, action, status, body, requested_by) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT DO NOTHING RETURNING *`,
    [call.incident, call.action, call.status, call.body, call.requestedBy],
  );
  return rows[0] ? toCall(rows[0]) : undefined;
}

/** Whether the incident has any call at all (made or owed): without one, a resolve owes the status page nothing. */
export async function hasCalls(db: Queryable, incident: number): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM statuspage_calls WHERE incident = $1 LIMIT 1', [incident]);
  return rows.length > 0;
}

/** The incident's oldest call still owed, row-locked. Call it holding the incident's lock (`lockIncident`). */
export async function nextCall(db: Queryable, incident: number): Promise<StatusPageCall | undefined> {
  const { rows } = await db.query<CallRow>(
    `SELECT * FROM statuspage_calls WHERE incident = $1 AND done_at IS NULL AND gave_up_at IS NULL
      ORDER BY id LIMIT 1 FOR UPDATE`,
    [incident],
  );
  return rows[0] ? toCall(rows[0]) : undefined;
}

// Any fixed number, apart from the migration lock's; with the incident number it names one incident's status page.
const LOCK_CLASS = 4_711_010;

/** One worker at a time makes an incident's status page calls, in order, until its transaction ends. */
export async function lockIncident(db: Queryable, incident: number): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, incident]);
}

export async function finishCall(db: Queryable, id: number, attempted: boolean): Promise<void> {
  await db.query('UPDATE statuspage_calls SET done_at = clock_timestamp(), attempts = attempts + $2 WHERE id = $1', [
    id,
    attempted ? 1 : 0,
  ]);
}

export async function failCall(db: Queryable, id: number, error: string, giveUp: boolean): Promise<void> {
  await db.query(
    `UPDATE statuspage_calls SET attempts = attempts + 1, last_error = $2,
            gave_up_at = CASE WHEN $3 THEN clock_timestamp() END WHERE id = $1`,
    [id, error, giveUp],
  );
}

export async function markReported(db: Queryable, id: number): Promise<void> {
  await db.query('UPDATE statuspage_calls SET reported_at = clock_timestamp() WHERE id = $1', [id]);
}

export async function saveRecord(db: Queryable, incident: number, record: StatuspageIncident): Promise<void> {
  await db.query(
    `UPDATE incidents SET statuspage_id = $2, statuspage_link = coalesce($3, statuspage_link), statuspage_status = $4
      WHERE number = $1`,
    [incident, record.id, record.shortlink ?? null, record.status],
  );
}

/** Calls still owed: the reconciler gives each its job again (an id BullMQ still holds is ignored). */
export async function callsOwed(db: Queryable): Promise<StatusPageCall[]> {
  const { rows } = await db.query<CallRow>(
    'SELECT * FROM statuspage_calls WHERE done_at IS NULL AND gave_up_at IS NULL ORDER BY id',
  );
  return rows.map(toCall);
}
