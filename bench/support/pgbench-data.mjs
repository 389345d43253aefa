// The generated application database the restore and backup benchmarks work on, and the small PostgreSQL helpers
// around it (admin statements, sizes, row counts, CHECKPOINT, dropping a database with what a restore left beside it).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { onCleanup } from './cleanup.mjs';
import { ADMIN_URL } from './infra.mjs';
import { megabytes, seconds } from './stats.mjs';

/** Two tables, so that pg_restore -j 2 has two to share. */
export const APP_TABLES = ['orders', 'events'];
/** Heap, the two indexes and page overhead per generated row (480 base64 chars + id + timestamp), measured. */
export const BYTES_PER_ROW = 590;

export function urlOf(database) {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function withClient(url, work) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export const admin = (sql, params) => withClient(ADMIN_URL, (c) => c.query(sql, params));

export function quoteIdent(name) {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `name` and what a restore creates beside it (<name>_restore_<run>, _old_, _failed_): dropped at cleanup. */
export async function dropWithLeftovers(dbName) {
  const like = `${dbName.replace(/[\\_%]/g, (ch) => `\\${ch}`)}\\_%`;
  const { rows } = await admin('SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2', [dbName, like]);
  for (const { datname } of rows) await admin(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`);
  return rows.map((r) => r.datname);
}

export async function databaseSize(dbName) {
  const { rows } = await admin('SELECT pg_database_size($1)::bigint AS size', [dbName]);
  return Number(rows[0].size);
}

export async function checkpoint() {
  await admin('CHECKPOINT');
}

/** Rows in all the generated tables of `dbName`. */
export async function rowCount(dbName) {
  return withClient(urlOf(dbName), async (c) => {
    let total = 0;
    for (const table of APP_TABLES) total += Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    return total;
  });
}

/**
 * An application database of about `sizeMb` MB, named lifeline_bench_<label>_<pid>_<random>: two tables of id,
 * created_at and 480 characters of base64 from random bytes (pgcrypto; md5 of random() where pgcrypto is missing),
 * a primary key and a created_at index each. Filled by INSERT ... generate_series on the server, both tables at once.
 * Dropped (with restore leftovers) at cleanup or through the returned `drop`.
 */
export async function createAppDatabase(sizeMb, print, { label, alive = () => undefined }) {
  alive();
  const dbName = `lifeline_bench_${label}_${process.pid}_${randomBytes(3).toString('hex')}`;
  await admin(`CREATE DATABASE ${dbName}`);
  const drop = onCleanup(`drop database ${dbName} and its restore leftovers`, () => dropWithLeftovers(dbName));
  const url = urlOf(dbName);
  const rows = Math.max(1000, Math.round((sizeMb * 1024 * 1024) / BYTES_PER_ROW));
  const started = Date.now();
  const source = await withClient(url, async (c) => {
    try {
      await c.query('CREATE EXTENSION pgcrypto');
      return 'pgcrypto';
    } catch {
      return 'md5';
    }
  });
  const payload =
    source === 'pgcrypto'
      ? "encode(gen_random_bytes(360), 'base64')"
      : `encode(decode(${Array.from({ length: 23 }, () => 'md5(random()::text)').join(' || ')}, 'hex'), 'base64')`;
  await Promise.all(
    APP_TABLES.map((table, i) =>
      withClient(url, async (c) => {
        const from = 1 + Math.floor((rows * i) / APP_TABLES.length);
        const to = Math.floor((rows * (i + 1)) / APP_TABLES.length);
        await c.query(
          `CREATE TABLE ${table} (id bigint NOT NULL, created_at timestamptz NOT NULL, payload text NOT NULL)`,
        );
        await c.query(
          `INSERT INTO ${table} SELECT g, timestamptz '2026-01-01 00:00:00+00' - random() * interval '365 days', ${payload}
             FROM generate_series(${from}, ${to}) g`,
        );
        await c.query(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
        await c.query(`CREATE INDEX ${table}_created_at ON ${table} (created_at)`);
        await c.query(`VACUUM (ANALYZE) ${table}`);
      }),
    ),
  );
  if (source === 'pgcrypto') await withClient(url, (c) => c.query('DROP EXTENSION pgcrypto'));
  const size = await databaseSize(dbName);
  print(
    `generated ${dbName}: ${rows} rows in ${APP_TABLES.length} tables, ${megabytes(size)} (random bytes from ${source}) in ${seconds(Date.now() - started)}`,
  );
  return { dbName, url, rows, size, drop };
}

/** `<prefix>_<YYYYMMDD>_<HHMMSS>.dump` for a UTC time. */
export function backupName(prefix, at) {
  const iso = at.toISOString();
  return `${prefix}_${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}.dump`;
}

/** Matches the names `backupName(prefix, …)` gives. */
export function backupNamePattern(prefix) {
  return new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_\\d{8}_\\d{6}\\.dump$`);
}
