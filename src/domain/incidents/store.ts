// Data access for the incident aggregate: incidents, their timeline and their escalation steps.
import type pg from 'pg';
import type { Severity } from '../../shared/config.js';
import type {
  AlertSource,
  AlertSourceKind,
  Incident,
  PageRecord,
  StatusPageRecord,
  TimelineEvent,
  TimelineKind,
} from './model.js';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

interface IncidentRow {
  number: number;
  severity: Severity;
  title: string;
  declared_by: string;
  declared_at: Date;
  declared_in: string;
  card_channel: string | null;
  card_ts: string | null;
  acknowledged_by: string | null;
  acknowledged_at: Date | null;
  resolved_by: string | null;
  resolved_at: Date | null;
  resolution_note: string | null;
  ladder_generation: number;
  statuspage_id: string | null;
  statuspage_link: string | null;
  statuspage_status: StatusPageRecord['status'] | null;
  source_kind: AlertSourceKind | null;
  source_key: string | null;
  source: Omit<AlertSource, 'kind' | 'key'> | null;
  channel_id: string | null;
}

function toIncident(row: IncidentRow): Incident {
  return {
    number: row.number,
    severity: row.severity,
    title: row.title,
    declaredBy: row.declared_by,
    declaredAt: row.declared_at,
    declaredIn: row.declared_in,
    card: row.card_channel && row.card_ts ? { channel: row.card_channel, ts: row.card_ts } : undefined,
    acknowledgedBy: row.acknowledged_by ?? undefined,
    acknowledgedAt: row.acknowledged_at ?? undefined,
    resolvedBy: row.resolved_by ?? undefined,
    resolvedAt: row.resolved_at ?? undefined,
    resolutionNote: row.resolution_note ?? undefined,
    ladderGeneration: row.ladder_generation,
    statusPage:
      row.statuspage_id && row.statuspage_status
        ? { id: row.statuspage_id, link: row.statuspage_link ?? undefined, status: row.statuspage_status }
        : undefined,
    source:
      row.source_kind && row.source_key && row.source
        ? { ...row.source, kind: row.source_kind, key: row.source_key }
        : undefined,
    channel: row.channel_id ?? undefined,
  };
}

/**
 * Records a declaration in one statement: the incident, its `declared` event, its ladder steps (due from `declaredAt`)
 * and the `ladder_started` event. One round trip rather than a six-statement transaction, because under a burst of
 * declarations each round trip is paid on the one event loop that must also fire the pages that are already due.
 * With a `source`, the unique index on open incidents per source decides: when one is open already nothing is
 * inserted (ON CONFLICT DO NOTHING) and the answer is undefined.
 */
export async function declareIncident(
  db: Queryable,
  input: {
    severity: Severity;
    title: string;
    declaredBy: string;
    declaredIn: string;
    /** When the declaration reached Lifeline; the database clock when absent. */
    declaredAt: Date | undefined;
    steps: readonly { stepIndex: number; role: string; afterMs: number }[];
    /** Timeline events in order, each by the declarer. */
    events: readonly { kind: TimelineKind; detail: string }[];
    source?: AlertSource | undefined;
  },
): Promise<{ incident: Incident; steps: { id: number; dueAt: Date }[] } | undefined> {
  const { source } = input;
  const { rows } = await db.query<IncidentRow & { steps: { id: number; due_ms: number }[] | null }>(
    `WITH created AS (
       INSERT INTO incidents (severity, title, declared_by, declared_in, declared_at, source_kind, source_key, source)
       VALUES ($1, $2, $3, $4, coalesce($5::timestamptz, clock_timestamp()), $11, $12, $13::jsonb)
       ON CONFLICT (source_kind, source_key) WHERE resolved_at IS NULL AND source_key IS NOT NULL DO NOTHING
       RETURNING *
     ), steps AS (
       INSERT INTO escalation_steps (incident, generation, step_index, role, due_at)
       SELECT c.number, c.ladder_generation, s.step_index, s.role, c.declared_at + s.after_ms * interval '1 millisecond'
         FROM created c, unnest($6::int[], $7::text[], $8::float8[]) AS s(step_index, role, after_ms)
       RETURNING id, step_index, due_at
     ), events AS (
       INSERT INTO incident_events (incident, actor, kind, detail)
       SELECT c.number, $3, e.kind, e.detail
         FROM created c, unnest($9::text[], $10::text[]) WITH ORDINALITY AS e(kind, detail, ord)
        ORDER BY e.ord
     )
     SELECT created.*,
            (SELECT json_agg(json_build_object('id', id, 'due_ms', floor(extract(epoch FROM due_at) * 1000))
                             ORDER BY step_index) FROM steps) AS steps
       FROM created`,
    [
      input.severity,
      input.title,
      input.declaredBy,
      input.declaredIn,
      input.declaredAt ?? null,
      input.steps.map((s) => s.stepIndex),
      input.steps.map((s) => s.role),
      input.steps.map((s) => s.afterMs),
      input.events.map((e) => e.kind),
      input.events.map((e) => e.detail),
      source?.kind ?? null,
      source?.key ?? null,
      source
        ? JSON.stringify({
            name: source.name,
            labels: source.labels,
            annotations: source.annotations,
            link: source.link,
          })
        : null,
    ],
  );
  const row = rows[0];
  if (!row) return undefined;
  const steps = (row.steps ?? []).map((s) => ({ id: Number(s.id), dueAt: new Date(s.due_ms) }));
  return { incident: toIncident(row), steps };
}

/**
 * Puts an event on the open incident of this alert source, in one statement, and returns that incident; undefined
 * when none is open.
 */
export async function noteOnOpenBySource(
  db: Queryable,
  source: Pick<AlertSource, 'kind' | 'key'>,
  event: { actor: string; kind: TimelineKind; detail: string },
): Promise<Incident | undefined> {
  const { rows } = await db.query<IncidentRow>(
    `WITH open AS (
       SELECT * FROM incidents WHERE source_kind = $1 AND source_key = $2 AND resolved_at IS NULL
     ), noted AS (
       INSERT INTO incident_events (incident, actor, kind, detail) SELECT number, $3, $4, $5 FROM open
     )
     SELECT * FROM open`,
    [source.kind, source.key, event.actor, event.kind, event.detail],
  );
  return rows[0] ? toIncident(rows[0]) : undefined;
}

export async function openBySource(
  db: Queryable,
  source: Pick<AlertSource, 'kind' | 'key'>,
): Promise<Incident | undefined> {
  const { rows } = await db.query<IncidentRow>(
    'SELECT * FROM incidents WHERE source_kind = $1 AND source_key = $2 AND resolved_at IS NULL',
    [source.kind, source.key],
  );
  return rows[0] ? toIncident(rows[0]) : undefined;
}

export async function getIncident(db: Queryable, number: number, forUpdate = false): Promise<Incident | undefined> {
  const { rows } = await db.query<IncidentRow>(
    `SELECT * FROM incidents WHERE number = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [number],
  );
  return rows[0] ? toIncident(rows[0]) : undefined;
}

export async function findByCard(db: Queryable, channel: string, ts: string): Promise<Incident | undefined> {
  const { rows } = await db.query<IncidentRow>('SELECT * FROM incidents WHERE card_channel = $1 AND card_ts = $2', [
    channel,
    ts,
  ]);
  return rows[0] ? toIncident(rows[0]) : undefined;
}

/** The newest open incidents, up to `limit`, and how many are open in all. */
export async function listOpenIncidents(db: Queryable, limit = 50): Promise<{ incidents: Incident[]; total: number }> {
  const { rows } = await db.query<IncidentRow & { total: string }>(
    'SELECT *, count(*) OVER () AS total FROM incidents WHERE resolved_at IS NULL ORDER BY number DESC LIMIT $1',
    [limit],
  );
  return { incidents: rows.map(toIncident), total: rows[0] ? Number(rows[0].total) : 0 };
}

/** The open incident when there is exactly one (where an unattributed note belongs), else undefined. */
export async function soleOpenIncident(db: Queryable): Promise<number | undefined> {
  const { incidents, total } = await listOpenIncidents(db, 1);
  return total === 1 ? incidents[0]?.number : undefined;
}

export async function setCard(db: Queryable, number: number, channel: string, ts: string): Promise<void> {
  await db.query('UPDATE incidents SET card_channel = $2, card_ts = $3 WHERE number = $1', [number, channel, ts]);
}

export async function markAcknowledged(db: Queryable, number: number, by: string): Promise<Incident> {
  const { rows } = await db.query<IncidentRow>(
    `UPDATE incidents SET acknowledged_by = $2, acknowledged_at = clock_timestamp() WHERE number = $1 RETURNING *`,
    [number, by],
  );
  return toIncident(rows[0]!);
}

export async function markResolved(
  db: Queryable,
  number: number,
  by: string,
  note: string | undefined,
): Promise<Incident> {
  const { rows } = await db.query<IncidentRow>(
    `UPDATE incidents SET resolved_by = $2, resolved_at = clock_timestamp(), resolution_note = $3 WHERE number = $1 RETURNING *`,
    [number, by, note ?? null],
  );
  return toIncident(rows[0]!);
}

export async function setSeverity(
  db: Queryable,
  number: number,
  severity: Severity,
  newGeneration: boolean,
): Promise<Incident> {
  const { rows } = await db.query<IncidentRow>(
    `UPDATE incidents SET severity = $2, ladder_generation = ladder_generation + $3 WHERE number = $1 RETURNING *`,
    [number, severity, newGeneration ? 1 : 0],
  );
  return toIncident(rows[0]!);
}

export async function appendEvent(
  db: Queryable,
  number: number,
  actor: string,
  kind: TimelineKind,
  detail = '',
): Promise<void> {
  await db.query('INSERT INTO incident_events (incident, actor, kind, detail) VALUES ($1, $2, $3, $4)', [
    number,
    actor,
    kind,
    detail,
  ]);
}

export async function timeline(db: Queryable, number: number): Promise<TimelineEvent[]> {
  const { rows } = await db.query<TimelineEvent>(
    'SELECT at, actor, kind, detail FROM incident_events WHERE incident = $1 ORDER BY id',
    [number],
  );
  return rows;
}

// ---- escalation steps -------------------------------------------------------------------------------------------

export interface StepRow {
  readonly id: number;
  readonly incident: number;
  readonly generation: number;
  readonly stepIndex: number;
  readonly role: string;
  readonly dueAt: Date;
  readonly state: 'pending' | 'fired' | 'cancelled';
  readonly pagedAt: Date | undefined;
  readonly mentionedAt: Date | undefined;
}

interface DbStepRow {
  id: string;
  incident: number;
  generation: number;
  step_index: number;
  role: string;
  due_at: Date;
  state: StepRow['state'];
  paged_at: Date | null;
  mentioned_at: Date | null;
}

function toStep(row: DbStepRow): StepRow {
  return {
    id: Number(row.id),
    incident: row.incident,
    generation: row.generation,
    stepIndex: row.step_index,
    role: row.role,
    dueAt: row.due_at,
    state: row.state,
    pagedAt: row.paged_at ?? undefined,
    mentionedAt: row.mentioned_at ?? undefined,
  };
}

/** Inserts the ladder's steps, due relative to the database clock so every replica agrees on "now". */
export async function insertSteps(
  db: Queryable,
  incident: number,
  generation: number,
  steps: readonly { stepIndex: number; role: string; afterMs: number }[],
): Promise<StepRow[]> {
  if (steps.length === 0) return [];
  const { rows } = await db.query<DbStepRow>(
    `INSERT INTO escalation_steps (incident, generation, step_index, role, due_at)
     SELECT $1, $2, s.step_index, s.role, clock_timestamp() + s.after_ms * interval '1 millisecond'
       FROM unnest($3::int[], $4::text[], $5::float8[]) AS s(step_index, role, after_ms)
     RETURNING *`,
    [incident, generation, steps.map((s) => s.stepIndex), steps.map((s) => s.role), steps.map((s) => s.afterMs)],
  );
  return rows.map(toStep).sort((a, b) => a.stepIndex - b.stepIndex);
}

/** Cancels every step not yet fired (or being fired) and returns their ids, so their timers can be removed. */
export async function cancelPendingSteps(db: Queryable, incident: number): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE escalation_steps SET state = 'cancelled', finished_at = clock_timestamp()
      WHERE incident = $1 AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
      RETURNING id`,
    [incident],
  );
  return rows.map((r) => Number(r.id));
}

export type ClaimResult =
  | { kind: 'claimed'; step: StepRow; incident: Incident | undefined; latenessMs: number }
  | { kind: 'finished' }
  | { kind: 'busy' };

/**
 * Takes a time-limited lease on a pending step and reads its incident in the same round trip. Only the holder of the
 * lease may fire the step, so however many workers receive the timer (BullMQ is at-least-once), it pages once.
 * A crashed holder's lease simply runs out.
 */
export async function claimStep(db: Queryable, stepId: number, leaseMs: number): Promise<ClaimResult> {
  const { rows } = await db.query<{
    step: DbStepRow & { lateness_ms: number };
    incident: IncidentRow | null;
    state: string | null;
  }>(
    `WITH claimed AS (
       UPDATE escalation_steps
          SET claimed_until = clock_timestamp() + $2 * interval '1 millisecond'
        WHERE id = $1 AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
        RETURNING *, extract(epoch FROM clock_timestamp() - due_at) * 1000 AS lateness_ms)
     SELECT row_to_json(c) AS step, row_to_json(i) AS incident, NULL AS state
       FROM claimed c LEFT JOIN incidents i ON i.number = c.incident
     UNION ALL
     SELECT NULL, NULL, state FROM escalation_steps WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM claimed)`,
    [stepId, leaseMs],
  );
  const row = rows[0];
  if (row?.step) {
    return {
      kind: 'claimed',
      step: toStep(reviveDates(row.step, ['due_at', 'paged_at', 'mentioned_at'])),
      incident: row.incident ? toIncident(reviveDates(row.incident, INCIDENT_DATES)) : undefined,
      latenessMs: Number(row.step.lateness_ms),
    };
  }
  return row?.state === 'pending' ? { kind: 'busy' } : { kind: 'finished' };
}

const INCIDENT_DATES = ['declared_at', 'acknowledged_at', 'resolved_at'] as const;

/** row_to_json gives timestamps as strings; turn the named ones back into Dates. */
function reviveDates<T extends object>(row: T, keys: readonly string[]): T {
  const out = { ...row } as Record<string, unknown>;
  for (const key of keys) if (typeof out[key] === 'string') out[key] = new Date(out[key] as string);
  return out as T;
}

export async function releaseStep(db: Queryable, stepId: number): Promise<void> {
  await db.query('UPDATE escalation_steps SET claimed_until = NULL WHERE id = $1', [stepId]);
}

/** Records a page that PagerDuty accepted: the step, the alert's key and the timeline entry, in one statement. */
export async function recordPage(db: Queryable, step: StepRow, dedupKey: string, detail: string): Promise<void> {
  await db.query(
    `WITH paged AS (UPDATE escalation_steps SET paged_at = clock_timestamp() WHERE id = $1),
          alert AS (INSERT INTO page_keys (incident, role, dedup_key) VALUES ($2, $3, $4) ON CONFLICT (incident, role) DO NOTHING)
     INSERT INTO incident_events (incident, actor, kind, detail) VALUES ($2, 'lifeline', 'paged', $5)`,
    [step.id, step.incident, step.role, dedupKey, detail],
  );
}

/** Marks a step fired (mention done) and tells whether its incident was acknowledged or resolved meanwhile. */
export async function finishFiredStep(db: Queryable, stepId: number): Promise<'open' | 'acknowledged' | 'resolved'> {
  const { rows } = await db.query<{ state: 'open' | 'acknowledged' | 'resolved' }>(
    `UPDATE escalation_steps s
        SET state = 'fired', mentioned_at = coalesce(mentioned_at, clock_timestamp()), finished_at = clock_timestamp(), claimed_until = NULL
       FROM incidents i
      WHERE s.id = $1 AND i.number = s.incident
      RETURNING CASE WHEN i.resolved_at IS NOT NULL THEN 'resolved' WHEN i.acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE 'open' END AS state`,
    [stepId],
  );
  return rows[0]?.state ?? 'open';
}

export async function finishStep(db: Queryable, stepId: number, state: 'fired' | 'cancelled'): Promise<void> {
  await db.query(
    `UPDATE escalation_steps SET state = $2, finished_at = clock_timestamp(), claimed_until = NULL WHERE id = $1`,
    [stepId, state],
  );
}

/** Pages sent for an incident, one row per role (the earliest page), in the order they went out. */
export async function pagesSent(db: Queryable, incident: number): Promise<PageRecord[]> {
  const { rows } = await db.query<{ role: string; step_index: number; due_at: Date; paged_at: Date }>(
    `SELECT DISTINCT ON (role) role, step_index, due_at, paged_at FROM escalation_steps
      WHERE incident = $1 AND paged_at IS NOT NULL ORDER BY role, paged_at`,
    [incident],
  );
  return rows
    .map((r) => ({ role: r.role, stepIndex: r.step_index, dueAt: r.due_at, pagedAt: r.paged_at }))
    .sort((a, b) => a.pagedAt.getTime() - b.pagedAt.getTime());
}

/** Every pending step: the reconciler re-adds their timers (an id already in the queue is ignored). */
export async function stepsToReconcile(db: Queryable): Promise<{ id: number; dueAt: Date }[]> {
  const { rows } = await db.query<{ id: string; due_at: Date }>(
    `SELECT id, due_at FROM escalation_steps WHERE state = 'pending'`,
  );
  return rows.map((r) => ({ id: Number(r.id), dueAt: r.due_at }));
}

// ---- PagerDuty alerts opened ------------------------------------------------------------------------------------

export type FollowUpAction = 'acknowledge' | 'resolve';

/** Alerts still waiting for this follow-up. An alert already resolved needs no acknowledge. */
export async function keysAwaiting(
  db: Queryable,
  incident: number,
  action: FollowUpAction,
): Promise<{ role: string; dedupKey: string }[]> {
  const { rows } = await db.query<{ role: string; dedup_key: string }>(
    `SELECT role, dedup_key FROM page_keys WHERE incident = $1 AND resolve_sent_at IS NULL
        AND ($2 = 'resolve' OR acknowledge_sent_at IS NULL) ORDER BY triggered_at`,
    [incident, action],
  );
  return rows.map((r) => ({ role: r.role, dedupKey: r.dedup_key }));
}

export async function markFollowUpSent(
  db: Queryable,
  incident: number,
  role: string,
  action: FollowUpAction,
): Promise<void> {
  const column = action === 'acknowledge' ? 'acknowledge_sent_at' : 'resolve_sent_at';
  await db.query(`UPDATE page_keys SET ${column} = clock_timestamp() WHERE incident = $1 AND role = $2`, [
    incident,
    role,
  ]);
}

/** Acknowledged or resolved incidents with alerts that have not heard so yet (for example after a Redis loss). */
export async function followUpsToReconcile(db: Queryable): Promise<{ incident: number; action: FollowUpAction }[]> {
  const { rows } = await db.query<{ incident: number; action: FollowUpAction }>(
    `SELECT DISTINCT k.incident, CASE WHEN i.resolved_at IS NOT NULL THEN 'resolve' ELSE 'acknowledge' END AS action
       FROM page_keys k JOIN incidents i ON i.number = k.incident
      WHERE k.resolve_sent_at IS NULL
        AND (i.resolved_at IS NOT NULL OR (i.acknowledged_at IS NOT NULL AND k.acknowledge_sent_at IS NULL))`,
  );
  return rows;
}

/** The text of the incident's latest `/incident update`, if any. */
export async function latestUpdate(db: Queryable, incident: number): Promise<string | undefined> {
  const { rows } = await db.query<{ detail: string }>(
    `SELECT detail FROM incident_events WHERE incident = $1 AND kind = 'update' ORDER BY id DESC LIMIT 1`,
    [incident],
  );
  return rows[0]?.detail;
}
