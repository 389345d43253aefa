// A session on the server's maintenance database, for what cannot be done from inside a database: listing,
// creating, renaming and dropping databases, and ending the sessions on one.
import type pg from 'pg';
import { withDatabase, type PgConnection } from '../shared/db/connection.js';
import { quoteIdent } from '../shared/db/sql.js';
import { connectClient, sqlState } from './client.js';

const MAINTENANCE_QUERY_TIMEOUT_MS = 10 * 60_000;

export interface Maintenance {
  readonly client: pg.Client;
  readonly serverVersionNum: number;
  /** The server process of `client`, so a statement of it can be cancelled from another session. */
  readonly pid: number;
}

/**
 * A connection to the `postgres` database (or template1 where there is none) of `target`'s server, never to `target`
 * itself: a database cannot be renamed by a session connected to it.
 */
async function openMaintenance(target: PgConnection): Promise<Maintenance> {
  const preferred = target.database === 'postgres' ? 'template1' : 'postgres';
  const connect = (database: string): Promise<pg.Client> =>
    connectClient(withDatabase(target, database), { queryTimeoutMs: MAINTENANCE_QUERY_TIMEOUT_MS });
  let client: pg.Client;
  try {
    client = await connect(preferred);
  } catch (err) {
    if (sqlState(err) !== '3D000' || preferred === 'template1') throw err;
    client = await connect('template1');
  }
  try {
    const { rows } = await client.query<{ num: string; pid: number }>(
      "SELECT current_setting('server_version_num') AS num, pg_backend_pid() AS pid",
    );
    return { client, serverVersionNum: Number(rows[0]?.num ?? 0), pid: rows[0]?.pid ?? 0 };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

export async function withMaintenance<T>(target: PgConnection, work: (m: Maintenance) => Promise<T>): Promise<T> {
  const m = await openMaintenance(target);
  try {
    return await work(m);
  } finally {
    await m.client.end().catch(() => undefined);
  }
}

/** Which of `names` exist as databases. */
export async function existing(client: pg.Client, names: readonly string[]): Promise<Set<string>> {
  const { rows } = await client.query<{ datname: string }>(
    'SELECT datname FROM pg_database WHERE datname = ANY($1::text[])',
    [names],
  );
  return new Set(rows.map((r) => r.datname));
}

/** Ends every other session on a database; sessions we may not end are left (a rename then reports them). */
export async function endSessions(m: Maintenance, database: string): Promise<number> {
  const { rows } = await m.client.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [database],
  );
  const sql =
    m.serverVersionNum >= 140000
      ? 'SELECT pg_terminate_backend($1, 5000) AS ok'
      : 'SELECT pg_terminate_backend($1) AS ok';
  let ended = 0;
  for (const { pid } of rows) {
    try {
      const result = await m.client.query<{ ok: boolean }>(sql, [pid]);
      if (result.rows[0]?.ok) ended += 1;
    } catch {
      // Not ours to end (another role's session without pg_signal_backend): the rename will say the db is busy.
    }
  }
  return ended;
}

/** Drops a database if it exists, ending its sessions first. The caller decides that it may. */
export async function dropDatabase(m: Maintenance, name: string): Promise<void> {
  if (m.serverVersionNum >= 130000) {
    await m.client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } else {
    await endSessions(m, name);
    await m.client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
  }
}

/** Re-opens a database that an interrupted swap of an older Lifeline (which closed it first) may have left closed. */
export async function allowConnections(m: Maintenance, database: string): Promise<void> {
  await m.client.query(`ALTER DATABASE ${quoteIdent(database)} WITH ALLOW_CONNECTIONS true`);
}
