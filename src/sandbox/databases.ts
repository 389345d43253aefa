// The sandbox's PostgreSQL side: Lifeline's state database and the sample application's database, both made fresh at
// each start on the server of SANDBOX_DATABASE_URL, and the folder the sample database's backups go to.
//
// Each database the sandbox makes holds a table `about_this_database` saying so; the sandbox drops only databases
// that hold it (a restored copy of the sample database does too), so a mistyped name never costs anyone their data.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { parseBackupName, sortNewestFirst } from '../domain/backups/names.js';
import { createFileStore } from '../adapters/backup-store/file-store.js';
import { maskedUrl, urlWithDatabase } from '../shared/db/connection.js';
import { quoteIdent } from '../shared/db/sql.js';
import { SetupError } from './errors.js';

const MARKER_TABLE = 'about_this_database';
const MARKER_NOTE =
  'Made by the Lifeline sandbox (npm run sandbox), which drops and re-creates this database at each start.';
/** A file in the backups folder that says the sandbox owns it (names starting with a dot are never backups). */
const FOLDER_MARKER = '.lifeline-sandbox';

export const SAMPLE_ROWS = { users: 2_000, orders: 5_000 } as const;

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  // Lifeline ends other sessions on the sample database when it swaps a restore in; that must not crash us.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Fails with a message naming the server when PostgreSQL does not answer. */
export async function checkServer(adminUrl: string): Promise<void> {
  try {
    await withClient(adminUrl, (c) => c.query('SELECT 1'));
  } catch (err) {
    throw new SetupError(
      `PostgreSQL did not answer at ${maskedUrl(adminUrl)}: ${(err as Error).message} (set SANDBOX_DATABASE_URL)`,
    );
  }
}

async function holdsMarker(adminUrl: string, name: string): Promise<boolean> {
  return withClient(urlWithDatabase(adminUrl, name), async (c) => {
    const { rows } = await c.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
      `public.${MARKER_TABLE}`,
    ]);
    return rows[0]?.found === true;
  }).catch(() => false);
}

/**
 * The database and what a restore or drill of it may have left beside it (`<name>_restore_…`, `_old_…`,
 * `_failed_…`), of those that exist.
 */
async function existingFamily(adminUrl: string, name: string): Promise<string[]> {
  return withClient(adminUrl, async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname = $1 OR datname ~ ('^' || $1 || '_(restore|old|failed)_')`,
      [name],
    );
    return rows.map((r) => r.datname);
  });
}

/** Drops the database and its leftovers when they carry the sandbox's marker; returns what it left alone. */
export async function dropSandboxDatabase(adminUrl: string, name: string): Promise<string[]> {
  const kept: string[] = [];
  for (const found of await existingFamily(adminUrl, name)) {
    if (!(await holdsMarker(adminUrl, found))) {
      kept.push(found);
      continue;
    }
    await withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(found)} WITH (FORCE)`));
  }
  return kept;
}

/** (Re-)creates an empty database with the marker. Refuses to replace a database the sandbox did not make. */
export async function createSandboxDatabase(adminUrl: string, name: string): Promise<void> {
  const kept = await dropSandboxDatabase(adminUrl, name);
  if (kept.includes(name)) {
    throw new SetupError(
      `database ${name} already exists and was not made by the sandbox; choose another name (SANDBOX_STATE_DB, SANDBOX_APP_DB)`,
    );
  }
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${quoteIdent(name)}`));
  await withClient(urlWithDatabase(adminUrl, name), async (c) => {
    await c.query(`CREATE TABLE ${MARKER_TABLE} (note text NOT NULL)`);
    await c.query(`INSERT INTO ${MARKER_TABLE} VALUES ($1)`, [MARKER_NOTE]);
  });
}

/** The sample shop: users and their orders, the same rows at every start. */
export async function fillSampleDatabase(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`
      CREATE TABLE users (
        id integer PRIMARY KEY,
        email text NOT NULL UNIQUE,
        name text NOT NULL,
        created_at timestamptz NOT NULL
      );
      CREATE TABLE orders (
        id integer PRIMARY KEY,
        user_id integer NOT NULL REFERENCES users (id),
        total_cents integer NOT NULL CHECK (total_cents > 0),
        status text NOT NULL CHECK (status IN ('paid', 'shipped', 'refunded')),
        created_at timestamptz NOT NULL
      );
      CREATE INDEX orders_user_id ON orders (user_id);`);
    await c.query(
      `INSERT INTO users
       SELECT g, 'customer' || g || '@shop.example', 'Customer ' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '3 hours'
         FROM generate_series(1, $1) g`,
      [SAMPLE_ROWS.users],
    );
    await c.query(
      `INSERT INTO orders
       SELECT g, 1 + (g * 7919) % $2, 500 + (g * 104729) % 20000, (ARRAY['paid', 'shipped', 'refunded'])[1 + g % 3],
              timestamptz '2024-01-02 00:00:00+00' + g * interval '70 minutes'
         FROM generate_series(1, $1) g`,
      [SAMPLE_ROWS.orders, SAMPLE_ROWS.users],
    );
  });
}

export interface SampleStats {
  readonly users: number;
  readonly orders: number;
}

/** Row counts of the sample database, or undefined while it does not answer (a restore swapping it, say). */
export async function sampleStats(url: string): Promise<SampleStats | undefined> {
  try {
    return await withClient(url, async (c) => {
      const { rows } = await c.query<{ users: string; orders: string }>(
        'SELECT (SELECT count(*) FROM users)::text AS users, (SELECT count(*) FROM orders)::text AS orders',
      );
      return { users: Number(rows[0]?.users ?? 0), orders: Number(rows[0]?.orders ?? 0) };
    });
  } catch {
    return undefined;
  }
}

/**
 * Empties the backups folder, but only one the sandbox made (it holds the marker file), and marks it as the sandbox's.
 * The sample database's first backup is then taken by Lifeline's own backup job (first-backup.ts).
 */
export async function prepareBackupsFolder(folder: string): Promise<void> {
  await mkdir(folder, { recursive: true });
  const present = await readdir(folder);
  if (present.length > 0 && !present.includes(FOLDER_MARKER)) {
    throw new SetupError(`${folder} holds files the sandbox did not make; choose another folder (SANDBOX_BACKUPS_DIR)`);
  }
  await Promise.all(
    present.filter((n) => n !== FOLDER_MARKER).map((n) => rm(join(folder, n), { recursive: true, force: true })),
  );
  await writeFile(join(folder, FOLDER_MARKER), `${MARKER_NOTE}\n`);
}

/** Removes the backups folder if the sandbox made it. */
export async function removeBackups(folder: string): Promise<boolean> {
  const present = await readdir(folder).catch(() => undefined);
  if (!present?.includes(FOLDER_MARKER)) return false;
  await rm(folder, { recursive: true, force: true });
  return true;
}

export interface StoredBackup {
  readonly name: string;
  readonly size: number;
  readonly takenAt: Date;
  /** A copy Lifeline took just before a restore replaced the database. */
  readonly safetyCopy: boolean;
}

/** The backups in the folder, newest first, for the page. */
export async function listBackups(folder: string, prefix: string): Promise<StoredBackup[]> {
  const objects = await createFileStore(`file://${folder}`)
    .list()
    .catch(() => []);
  return sortNewestFirst(
    objects.flatMap((o) => {
      const parsed = parseBackupName(prefix, o.name);
      return parsed ? [{ ...parsed, size: o.size }] : [];
    }),
  ).map(({ name, size, takenAt, safetyCopy }) => ({ name, size, takenAt, safetyCopy }));
}
