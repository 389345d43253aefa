// Data access for incident channels: what Lifeline owes Slack for each incident's channel (incident_channels), and
// the channel recorded on the incident (incidents.channel_id).
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export interface ChannelRow {
  readonly incident: number;
  readonly name: string | undefined;
  readonly channelId: string | undefined;
  readonly cardTs: string | undefined;
  readonly setUp: boolean;
  readonly attempts: number;
  readonly failed: boolean;
  readonly archiveDueAt: Date | undefined;
  readonly archived: boolean;
}

interface Row {
  incident: number;
  name: string | null;
  channel_id: string | null;
  card_ts: string | null;
  set_up_at: Date | null;
  attempts: number;
  failed_at: Date | null;
  archive_due_at: Date | null;
  archived_at: Date | null;
}

const COLUMNS = `c.incident, c.name, i.channel_id, c.card_ts, c.set_up_at, c.attempts, c.failed_at, c.archive_due_at,
  c.archived_at`;

function toChannel(row: Row): ChannelRow {
  return {
    incident: row.incident,
    name: row.name ?? undefined,
    channelId: row.channel_id ?? undefined,
    cardTs: row.card_ts ?? undefined,
    setUp: row.set_up_at !== null,
    attempts: row.attempts,
    failed: row.failed_at !== null,
    archiveDueAt: row.archive_due_at ?? undefined,
    archived: row.archived_at !== null,
  };
}

/** Owes the incident a channel; false when it already was (a second declaration run, a retried follower). */
export async function addChannel(db: Queryable, incident: number): Promise<boolean> {
  const { rowCount } = await db.query(
    'INSERT INTO incident_channels (incident) VALUES ($1) ON CONFLICT (incident) DO NOTHING',
    [incident],
  );
  return rowCount === 1;
}

export async function getChannel(db: Queryable, incident: number): Promise<ChannelRow | undefined> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM incident_channels c JOIN incidents i ON i.number = c.incident WHERE c.incident = $1`,
    [incident],
  );
  return rows[0] ? toChannel(rows[0]) : undefined;
}

/** The channel Slack created: on the incident (unique) and on its row, in one transaction. */
export async function saveCreated(db: Queryable, incident: number, name: string, channelId: string): Promise<void> {
  await db.query(
    `WITH owed AS (UPDATE incident_channels SET name = $2, created_at = clock_timestamp() WHERE incident = $1)
     UPDATE incidents SET channel_id = $3 WHERE number = $1`,
    [incident, name, channelId],
  );
}

export async function saveCardTs(db: Queryable, incident: number, ts: string): Promise<void> {
  await db.query('UPDATE incident_channels SET card_ts = $2 WHERE incident = $1', [incident, ts]);
}

export async function markSetUp(db: Queryable, incident: number): Promise<void> {
  await db.query('UPDATE incident_channels SET set_up_at = clock_timestamp() WHERE incident = $1', [incident]);
}

/** A failed try; `giveUp` when Slack refused or the last try failed. */
export async function markFailed(db: Queryable, incident: number, error: string, giveUp: boolean): Promise<void> {
  await db.query(
    `UPDATE incident_channels SET attempts = attempts + 1, last_error = $2,
            failed_at = CASE WHEN $3 THEN clock_timestamp() ELSE failed_at END
      WHERE incident = $1`,
    [incident, error, giveUp],
  );
}

/** When the channel is to be archived: `hours` after the incident's resolve; undefined when it has no row. */
export async function scheduleArchive(db: Queryable, incident: number, hours: number): Promise<Date | undefined> {
  const { rows } = await db.query<{ archive_due_at: Date }>(
    `UPDATE incident_channels c
        SET archive_due_at = coalesce(c.archive_due_at, i.resolved_at + $2 * interval '1 hour')
       FROM incidents i
      WHERE c.incident = $1 AND i.number = c.incident AND i.resolved_at IS NOT NULL
      RETURNING c.archive_due_at`,
    [incident, hours],
  );
  return rows[0]?.archive_due_at;
}

export async function markArchived(db: Queryable, incident: number): Promise<void> {
  await db.query('UPDATE incident_channels SET archived_at = clock_timestamp() WHERE incident = $1', [incident]);
}

/** Channels still owed a set-up or an archive (not given up on): the reconciler gives them their jobs again. */
export async function channelsOwed(db: Queryable): Promise<ChannelRow[]> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM incident_channels c JOIN incidents i ON i.number = c.incident
      WHERE c.failed_at IS NULL AND (c.set_up_at IS NULL OR (c.archive_due_at IS NOT NULL AND c.archived_at IS NULL))`,
  );
  return rows.map(toChannel);
}
