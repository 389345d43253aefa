import pg from 'pg';
import type { Logger } from '../log.js';

export type Db = pg.Pool;
export type DbClient = pg.PoolClient;

export function createPool(connectionString: string, log: Logger): Db {
  const pool = new pg.Pool({
    connectionString,
    max: 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A query stuck on a dead connection must not hold an escalation step forever.
    query_timeout: 30_000,
  });
  // An idle client losing its connection is reported here; without a listener it would crash the process.
  pool.on('error', (err) => log.warn({ err: err.message }, 'PostgreSQL connection lost; the pool will reconnect'));
  return pool;
}

export async function inTransaction<T>(db: Db, work: (client: DbClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
