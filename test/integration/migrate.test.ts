// migrate() against the real PostgreSQL: applies each migration once, and several replicas starting at once queue
// on the advisory lock instead of racing.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { createLogger } from '../../src/shared/log.js';
import { createTestDatabase, dropQueuePrefix, uniqueQueuePrefix, type TestDatabase } from '../support/db.js';

const log = createLogger('silent', []);
const MIGRATIONS = fileURLToPath(new URL('../../migrations/', import.meta.url));
// The migrations shipped today, read at run time so a migration added later keeps this test honest.
const shipped = readdirSync(MIGRATIONS)
  .filter((f) => f.endsWith('.sql'))
  .sort();
const TABLES = [
  'incidents',
  'incident_events',
  'escalation_steps',
  'handled_requests',
  'page_keys',
  'schema_migrations',
];

const databases: TestDatabase[] = [];
const pools: Db[] = [];
// This file touches no queue, but keeps the convention so cleanup is uniform.
const prefix = uniqueQueuePrefix();

async function freshPool(): Promise<Db> {
  const database = await createTestDatabase();
  databases.push(database);
  const pool = createPool(database.url, log);
  pools.push(pool);
  return pool;
}

function extraPool(database: TestDatabase): Db {
  const pool = createPool(database.url, log);
  pools.push(pool);
  return pool;
}

async function appliedNames(db: Db): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
  return rows.map((r) => r.name);
}

async function tableCounts(db: Db): Promise<Record<string, number>> {
  const { rows } = await db.query<{ table_name: string; n: string }>(
    `SELECT table_name, count(*) AS n FROM information_schema.tables
      WHERE table_schema = 'public' AND table_name = ANY($1) GROUP BY table_name`,
    [TABLES],
  );
  return Object.fromEntries(rows.map((r) => [r.table_name, Number(r.n)]));
}

beforeAll(() => {
  expect(shipped.length).toBeGreaterThanOrEqual(1);
  expect(shipped[0]).toBe('001_incidents.sql');
});

afterAll(async () => {
  await Promise.allSettled(pools.map((p) => p.end()));
  for (const database of databases) await database.drop();
  await dropQueuePrefix(prefix);
});

describe('migrate', () => {
  test('applies every migration once, in name order; a second call applies nothing', async () => {
    const db = await freshPool();
    const first = await migrate(db);
    expect(first).toEqual(shipped);
    expect(await appliedNames(db)).toEqual(shipped);
    expect(await tableCounts(db)).toEqual(Object.fromEntries(TABLES.map((t) => [t, 1])));

    const second = await migrate(db);
    expect(second).toEqual([]);
    expect(await appliedNames(db)).toEqual(shipped);
  });

  test('three replicas migrating one fresh database at once all succeed; the schema is created once', async () => {
    const first = await freshPool();
    const database = databases[databases.length - 1]!;
    // Three replicas = three separate pools (separate sessions), started together.
    const replicas = [first, extraPool(database), extraPool(database)];
    const results = await Promise.allSettled(replicas.map((db) => migrate(db)));
    const failures = results
      .filter((r) => r.status === 'rejected')
      .map((r) => String((r as PromiseRejectedResult).reason));
    expect(failures).toEqual([]);
    const applied = results.map((r) => (r as PromiseFulfilledResult<string[]>).value);
    // Exactly one replica did the work; the others waited on the lock and found nothing left to do.
    expect(applied.filter((a) => a.length > 0)).toEqual([shipped]);
    expect(applied.filter((a) => a.length === 0)).toHaveLength(2);
    expect(await appliedNames(first)).toEqual(shipped);
    expect(await tableCounts(first)).toEqual(Object.fromEntries(TABLES.map((t) => [t, 1])));
    // The append-only trigger was installed once, not three times.
    const { rows } = await first.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_trigger WHERE tgname = 'incident_events_append_only'`,
    );
    expect(Number(rows[0]!.n)).toBe(1);
    // Every session released the advisory lock.
    const locks = await first.query<{ n: string }>(`SELECT count(*) AS n FROM pg_locks
        WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
    expect(Number(locks.rows[0]!.n)).toBe(0);
  });

  test('a failing migration rolls back, is named in the error, releases the lock, and is applied once fixed', async () => {
    const db = await freshPool();
    const dir = `${mkdtempSync(join(tmpdir(), 'lifeline-mig-'))}/`;
    writeFileSync(join(dir, '001_ok.sql'), 'CREATE TABLE probe_ok (id int);');
    writeFileSync(join(dir, '002_bad.sql'), 'CREATE TABLE probe_bad (id int); SELECT no_such_function();');
    await expect(migrate(db, dir)).rejects.toThrow(/migration 002_bad\.sql failed/);
    expect(await appliedNames(db)).toEqual(['001_ok.sql']);
    const bad = await db.query<{ r: string | null }>(`SELECT to_regclass('public.probe_bad')::text AS r`);
    expect(bad.rows[0]!.r).toBeNull();

    writeFileSync(join(dir, '002_bad.sql'), 'CREATE TABLE probe_bad (id int);');
    // Would hang on pg_advisory_lock if the failed run had kept it.
    expect(await migrate(db, dir)).toEqual(['002_bad.sql']);
    expect(await appliedNames(db)).toEqual(['001_ok.sql', '002_bad.sql']);
  });
});
