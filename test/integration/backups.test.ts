// takeBackup / checkStoredBackup / writeSidecar against the real PostgreSQL, a file store, the in-memory store and
// the fake S3: round trips restored with pg_restore, row counts from the dump's own snapshot under concurrent
// writes, failed dumps that leave nothing behind, and stored objects damaged after the fact.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createFileStore } from '../../src/adapters/backup-store/file-store.js';
import { MemoryStore } from '../../src/adapters/backup-store/memory.js';
import { backupFileName, parseBackupName, pendingFinalName } from '../../src/domain/backups/names.js';
import { createS3Store } from '../../src/adapters/backup-store/s3-store.js';
import type { BackupStore } from '../../src/adapters/backup-store/port.js';
import {
  checkStoredBackup,
  publishBackup,
  removeStalePending,
  sidecarName,
  takeBackup,
  writeSidecar,
} from '../../src/domain/backups/take.js';
import { PermanentError } from '../../src/shared/errors.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { S3StandIn } from '../../src/adapters/backup-store/stand-in.js';
import { waitUntil } from '../support/wait.js';
import { withClient } from '../support/recovery.js';

const ADMIN_URL = process.env.LIFELINE_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PREFIX = 'lltest_app';
const databases: TestDatabase[] = [];
const folders: string[] = [];

function folder(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `lltest-${label}-`));
  folders.push(dir);
  return dir;
}

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A backup name at a fixed, distinct time (so tests never collide). */
function nameAt(iso: string): string {
  return backupFileName(PREFIX, new Date(iso));
}

/** pg_restore of a file (or a stream on stdin) into `url`; throws with its stderr unless it exits 0. */
async function pgRestore(url: string, input: string | Readable): Promise<void> {
  const fromFile = typeof input === 'string';
  const child = spawn(
    'pg_restore',
    ['--no-owner', '--no-privileges', '--exit-on-error', '--dbname', url, ...(fromFile ? [input] : [])],
    {
      stdio: [fromFile ? 'ignore' : 'pipe', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  if (!fromFile && child.stdin) await pipeline(input, child.stdin);
  const code = await closed;
  if (code !== 0) throw new Error(`pg_restore exited ${code}: ${stderr}`);
}

/** Exact row count and a content hash per table, for comparing a source with its restore. */
async function fingerprint(url: string, tables: readonly string[]): Promise<Record<string, string>> {
  return withClient(url, async (c) => {
    const out: Record<string, string> = {};
    for (const table of tables) {
      const { rows } = await c.query<{ n: string; h: string }>(
        `SELECT count(*)::text AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM ${table} x`,
      );
      out[table] = `${rows[0]?.n}/${rows[0]?.h}`;
    }
    return out;
  });
}

async function counts(url: string, tables: readonly string[]): Promise<Record<string, number>> {
  return withClient(url, async (c) => {
    const out: Record<string, number> = {};
    for (const table of tables) {
      const { rows } = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
      out[table] = Number(rows[0]?.n);
    }
    return out;
  });
}

/** Sessions of one application on one database (lifeline-backup's transaction, pg_dump). */
async function sessions(db: TestDatabase, application: string): Promise<number> {
  return withClient(ADMIN_URL, async (c) => {
    const { rows } = await c.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
      [db.name, application],
    );
    return Number(rows[0]?.n);
  });
}

/** A stand-in pg_dump that writes FAKE_BYTES random bytes to stdout, complains and exits 1. */
function failingPgDump(): string {
  const bin = folder('bin');
  const script = join(bin, 'pg_dump');
  writeFileSync(
    script,
    '#!/bin/sh\nhead -c "$FAKE_BYTES" /dev/urandom\necho "pg_dump: error: Dumping the contents of table \\"users\\" failed: PQgetResult() failed." >&2\nexit 1\n',
  );
  chmodSync(script, 0o755);
  return bin;
}

/** Table-of-contents entries pg_restore --list shows for a dump file. */
function listEntries(path: string): number {
  return execFileSync('pg_restore', ['--list', path])
    .toString()
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith(';')).length;
}

/** Every entry in a folder, hidden ones (a partial write) included. */
const everything = (dir: string): string[] => readdirSync(dir).sort();

let source: TestDatabase;
const SOURCE_TABLES = [
  'audit."Event Log"',
  'public.cache',
  'public.empty_table',
  'public.measurements_2025',
  'public.measurements_2026',
  'public.users',
] as const;
const USERS = 20_000;

beforeAll(async () => {
  source = await database();
  await withClient(source.url, async (c) => {
    await c.query('CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL)');
    await c.query(
      `INSERT INTO users SELECT g, 'user' || g || '@example.com', timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, ${USERS}) g`,
    );
    await c.query('CREATE SCHEMA audit');
    await c.query(
      'CREATE TABLE audit."Event Log" (id bigserial PRIMARY KEY, user_id int REFERENCES public.users, what text)',
    );
    await c.query(
      `INSERT INTO audit."Event Log" (user_id, what) SELECT g, 'login ' || g FROM generate_series(1, 250) g`,
    );
    await c.query('CREATE TABLE empty_table (id int)');
    await c.query('CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v jsonb)');
    await c.query(`INSERT INTO cache SELECT 'k' || g, jsonb_build_object('n', g) FROM generate_series(1, 10) g`);
    await c.query('CREATE TABLE measurements (at date NOT NULL, v int) PARTITION BY RANGE (at)');
    await c.query(
      `CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
    );
    await c.query(
      `CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`,
    );
    await c.query(`INSERT INTO measurements SELECT date '2025-01-01' + g, g FROM generate_series(0, 364) g`);
    await c.query(`INSERT INTO measurements SELECT date '2026-01-01' + g, g FROM generate_series(0, 29) g`);
    await c.query('CREATE MATERIALIZED VIEW user_total AS SELECT count(*) AS n FROM users');
  });
});

afterAll(async () => {
  for (const db of databases) await db.drop().catch(() => undefined);
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

describe('takeBackup into a file store', () => {
  test('round trip: the stored dump is what was reported, restores with pg_restore, and table_rows are the real counts', async () => {
    const dir = folder('store');
    const store = createFileStore(pathToFileURL(dir).href);
    const name = nameAt('2026-02-01T00:00:00Z');
    const taken = await takeBackup(source.url, store, name);
    // Until its check, the dump waits under a pending name that is no backup name.
    expect(everything(dir)).toEqual([taken.pendingName]);
    expect(pendingFinalName(taken.pendingName)).toBe(name);
    expect(parseBackupName(PREFIX, taken.pendingName)).toBeUndefined();
    const published = await publishBackup(store, taken, source.url);
    expect(published).toMatchObject({ sha256: taken.sha256, size: taken.size, alreadyNamed: false });

    const bytes = readFileSync(join(dir, name));
    expect(taken.name).toBe(name);
    expect(taken.size).toBe(bytes.length);
    expect(taken.sha256).toBe(sha256(bytes));
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('PGDMP'); // custom format
    expect(taken.durationMs).toBeGreaterThanOrEqual(0);
    // Every plain table and partition, with names quoted as SQL needs; no partitioned parent, no materialized view.
    expect(taken.tableRows).toEqual({
      'audit."Event Log"': 250,
      'public.cache': 10,
      'public.empty_table': 0,
      'public.measurements_2025': 365,
      'public.measurements_2026': 30,
      'public.users': USERS,
    });
    expect(await counts(source.url, SOURCE_TABLES)).toEqual(taken.tableRows);
    expect(everything(dir)).toEqual([name, sidecarName(name)]);
    expect(await store.list()).toEqual(expect.arrayContaining([expect.objectContaining({ name, size: bytes.length })]));
    // The snapshot transaction is over.
    expect(await sessions(source, 'lifeline-backup')).toBe(0);

    const restored = await database();
    await pgRestore(restored.url, join(dir, name));
    expect(await counts(restored.url, SOURCE_TABLES)).toEqual(taken.tableRows);
    expect(await fingerprint(restored.url, SOURCE_TABLES)).toEqual(await fingerprint(source.url, SOURCE_TABLES));
    expect(await fingerprint(restored.url, ['user_total'])).toEqual(await fingerprint(source.url, ['user_total']));
  });

  test('table_rows equal what the dump holds while other sessions keep inserting during the dump', async () => {
    const busy = await database();
    await withClient(busy.url, async (c) => {
      // Enough data for pg_dump to take a while, so the writer commits many times while it runs.
      await c.query('CREATE TABLE big (id bigserial PRIMARY KEY, payload text NOT NULL)');
      await c.query(`INSERT INTO big (payload) SELECT repeat(md5(g::text), 4) FROM generate_series(1, 300000) g`);
      await c.query(
        'CREATE TABLE events (id bigserial PRIMARY KEY, n int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())',
      );
      await c.query('CREATE TABLE zz_last (id bigserial PRIMARY KEY)'); // dumped after everything else
    });
    const tables = ['public.big', 'public.events', 'public.zz_last'];
    const writer = new pg.Client({ connectionString: busy.url });
    await writer.connect();
    let stop = false;
    let rounds = 0;
    const writing = (async () => {
      while (!stop) {
        // One transaction per round, touching the first table dumped and the last.
        await writer.query(
          `BEGIN; INSERT INTO events (n) SELECT g FROM generate_series(1, 20) g; INSERT INTO big (payload) SELECT md5(random()::text) FROM generate_series(1, 5);
           INSERT INTO zz_last DEFAULT VALUES; COMMIT`,
        );
        rounds++;
      }
    })();
    try {
      await waitUntil('the writer to get going', () => rounds >= 5);
      const dir = folder('busy');
      const store = createFileStore(pathToFileURL(dir).href);
      const name = nameAt('2026-02-02T00:00:00Z');
      const roundsBefore = rounds;
      const taken = await takeBackup(busy.url, store, name);
      const roundsDuring = rounds - roundsBefore;
      stop = true;
      await writing;
      expect(roundsDuring).toBeGreaterThan(3);

      const now = await counts(busy.url, tables);
      // The source moved on after the snapshot...
      expect(now['public.events']).toBeGreaterThan(taken.tableRows['public.events'] ?? Infinity);
      expect(now['public.zz_last']).toBeGreaterThan(taken.tableRows['public.zz_last'] ?? Infinity);
      // ...and the counts describe exactly the rows in the dump.
      const restored = await database();
      await pgRestore(restored.url, join(dir, taken.pendingName));
      expect(await counts(restored.url, tables)).toEqual(taken.tableRows);
      expect(Object.keys(taken.tableRows).sort()).toEqual(tables);
      // 20 events and one zz_last row per committed round: every table was counted at the same moment.
      expect((taken.tableRows['public.events'] ?? -1) % 20).toBe(0);
      expect((taken.tableRows['public.events'] ?? 0) / 20).toBe(taken.tableRows['public.zz_last']);
      expect(((taken.tableRows['public.big'] ?? 0) - 300_000) / 5).toBe(taken.tableRows['public.zz_last']);
    } finally {
      stop = true;
      await writing.catch(() => undefined);
      await writer.end();
    }
  }, 120_000);

  test('a database that does not exist: the backup fails, no file under the name, nothing partial anywhere', async () => {
    const dir = folder('nodb');
    const store = createFileStore(pathToFileURL(dir).href);
    const name = nameAt('2026-02-03T00:00:00Z');
    const missing = source.url.replace(/\/[^/]*$/, `/${source.name}_does_not_exist`);
    const err = await takeBackup(missing, store, name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toMatch(/does not exist/);
    expect(await store.list()).toEqual([]);
    expect(readdirSync(dir, { withFileTypes: true }).map((e) => e.name)).toEqual([]);
  });

  test('a database that does not exist is a permanent failure (not "cannot reach", which the job queue retries)', async () => {
    const store = new MemoryStore();
    const missing = source.url.replace(/\/[^/]*$/, `/${source.name}_does_not_exist`);
    const err = await takeBackup(missing, store, nameAt('2026-02-03T00:00:01Z')).catch((e: unknown) => e);
    expect(store.objects.size).toBe(0);
    expect(err).toBeInstanceOf(PermanentError);
    expect(String((err as Error).message)).not.toMatch(/cannot reach/);
  });

  test('pg_dump failing after it wrote part of the dump: no file under the name, no partial file, the old backup untouched', async () => {
    const dir = folder('failed');
    const store = createFileStore(pathToFileURL(dir).href);
    const earlier = nameAt('2026-01-01T00:00:00Z');
    writeFileSync(join(dir, earlier), 'an earlier backup');
    const name = nameAt('2026-02-04T00:00:00Z');
    const err = await takeBackup(source.url, store, name, {
      tools: { binDir: failingPgDump(), env: { FAKE_BYTES: '300000' } },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(String((err as Error).message)).toMatch(/pg_dump .*failed.*Dumping the contents of table/s);
    expect(everything(dir)).toEqual([earlier]);
    expect((await store.list()).map((o) => o.name)).toEqual([earlier]);
    expect(readFileSync(join(dir, earlier), 'utf8')).toBe('an earlier backup');
    expect(await sessions(source, 'lifeline-backup')).toBe(0);
  });

  test('the dump landed but counting its rows failed: the dump is removed again', async () => {
    const locked = await database();
    await withClient(locked.url, async (c) => {
      await c.query('CREATE TABLE a (id int)');
      await c.query('INSERT INTO a SELECT generate_series(1, 100)');
    });
    // Another session holds an exclusive lock: the count gives up after lock_timeout, pg_dump (which sets its own
    // lock_timeout to 0 and waits up to --lock-wait-timeout) goes on once the lock is released.
    const holder = new pg.Client({ connectionString: locked.url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE a IN ACCESS EXCLUSIVE MODE');
    const dir = folder('uncounted');
    const store = createFileStore(pathToFileURL(dir).href);
    const name = nameAt('2026-02-05T00:00:00Z');
    const url = `${locked.url}?options=${encodeURIComponent('-c lock_timeout=300')}`;
    const running = takeBackup(url, store, name).catch((e: unknown) => e);
    try {
      await waitUntil('the count to give up', async () =>
        withClient(locked.url, async (c) => {
          const { rows } = await c.query<{ state: string }>(
            `SELECT state FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lifeline-backup'`,
            [locked.name],
          );
          return rows[0]?.state === 'idle in transaction (aborted)';
        }),
      );
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const err = await running;
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toMatch(/counting the rows .* failed/);
    expect(everything(dir)).toEqual([]);
    expect(await store.list()).toEqual([]);
  });

  test('a MemoryStore write failing mid-stream: no object, pg_dump stopped, the snapshot transaction ended', async () => {
    const store = new MemoryStore();
    store.put(nameAt('2026-01-01T00:00:00Z'), 'an earlier backup');
    store.failNextWrite({ afterBytes: 1000, error: new Error('disk quota exceeded') });
    const name = nameAt('2026-02-06T00:00:00Z');
    const err = await takeBackup(source.url, store, name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toMatch(/could not be written to memory:\/\/backups\/: disk quota exceeded/);
    expect([...store.objects.keys()]).toEqual([nameAt('2026-01-01T00:00:00Z')]);
    expect(store.text(nameAt('2026-01-01T00:00:00Z'))).toBe('an earlier backup');
    expect(store.calls.filter((c) => c.op === 'write').map((c) => pendingFinalName(c.name ?? ''))).toEqual([name]);
    await waitUntil(
      'pg_dump and the snapshot session to be gone',
      async () => (await sessions(source, 'pg_dump')) + (await sessions(source, 'lifeline-backup')) === 0,
    );
  });

  test('cancelled mid-dump: AbortError, nothing stored', async () => {
    const dir = folder('cancel');
    const store = createFileStore(pathToFileURL(dir).href);
    const controller = new AbortController();
    const running = takeBackup(source.url, store, nameAt('2026-02-07T00:00:00Z'), { signal: controller.signal }).catch(
      (e: unknown) => e,
    );
    setTimeout(() => controller.abort(), 20);
    const err = await running;
    expect((err as Error).name).toBe('AbortError');
    expect(everything(dir)).toEqual([]);
    // Aborted before the start: refused at once.
    const early = await takeBackup(source.url, store, nameAt('2026-02-07T00:00:01Z'), {
      signal: AbortSignal.abort(),
    }).catch((e: unknown) => e);
    expect((early as Error).name).toBe('AbortError');
    expect(everything(dir)).toEqual([]);
  });
});

describe('checkStoredBackup and the sidecar', () => {
  let dir: string;
  let store: BackupStore;
  let good: { name: string; sha256: string; size: number; bytes: Buffer };

  beforeAll(async () => {
    dir = folder('check');
    store = createFileStore(pathToFileURL(dir).href);
    const name = nameAt('2026-03-01T00:00:00Z');
    const taken = await takeBackup(source.url, store, name);
    await publishBackup(store, taken, source.url);
    good = { name, sha256: taken.sha256, size: taken.size, bytes: readFileSync(join(dir, name)) };
  });

  /** Stores `bytes` under a new name and returns the folder's listing before the check. */
  function plant(name: string, bytes: Buffer): string[] {
    writeFileSync(join(dir, name), bytes);
    return everything(dir);
  }

  test('an intact backup: sha256 matches, pg_restore --list reads its entries', async () => {
    const checked = await checkStoredBackup(store, good.name, good.sha256, source.url);
    expect(checked.sha256).toBe(good.sha256);
    expect(checked.size).toBe(good.size);
    expect(checked.entries).toBe(listEntries(join(dir, good.name)));
    expect(checked.entries).toBeGreaterThan(10);
  });

  test('bytes overwritten in the middle: sha256 mismatch, a PermanentError; the store is left as it was', async () => {
    const name = nameAt('2026-03-01T00:00:01Z');
    const bytes = Buffer.from(good.bytes);
    randomBytes(64).copy(bytes, Math.floor(bytes.length / 2));
    const before = plant(name, bytes);
    const err = await checkStoredBackup(store, name, good.sha256, source.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(String((err as Error).message)).toContain(`has sha256 ${sha256(bytes).slice(0, 12)}`);
    expect(String((err as Error).message)).toContain(good.sha256.slice(0, 12));
    expect(everything(dir)).toEqual(before);
    expect(readFileSync(join(dir, name)).equals(bytes)).toBe(true);
  });

  test('truncated: a PermanentError whether pg_restore still reads its table of contents or not', async () => {
    for (const [i, keep] of [0.7, 0.3, 0.01].entries()) {
      const name = nameAt(`2026-03-01T00:00:1${i}Z`);
      const bytes = good.bytes.subarray(0, Math.floor(good.bytes.length * keep));
      const before = plant(name, bytes);
      const err = await checkStoredBackup(store, name, good.sha256, source.url).catch((e: unknown) => e);
      expect(err, `kept ${keep}`).toBeInstanceOf(PermanentError);
      expect(String((err as Error).message)).toMatch(/has sha256|unreadable/);
      expect(everything(dir)).toEqual(before);
    }
    // Cut within the header: pg_restore itself refuses it.
    const name = nameAt('2026-03-01T00:00:20Z');
    plant(name, good.bytes.subarray(0, 20));
    await expect(checkStoredBackup(store, name, good.sha256, source.url)).rejects.toThrow(/unreadable/);
  });

  test('not a dump at all, an empty object, a missing one, or the wrong checksum: PermanentError', async () => {
    const garbage = nameAt('2026-03-01T00:00:30Z');
    plant(garbage, randomBytes(100_000));
    await expect(checkStoredBackup(store, garbage, good.sha256, source.url)).rejects.toBeInstanceOf(PermanentError);
    const empty = nameAt('2026-03-01T00:00:31Z');
    plant(empty, Buffer.alloc(0));
    await expect(checkStoredBackup(store, empty, good.sha256, source.url)).rejects.toBeInstanceOf(PermanentError);
    const missing = await checkStoredBackup(store, nameAt('2020-01-01T00:00:00Z'), good.sha256, source.url).catch(
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(PermanentError);
    expect(String((missing as Error).message)).toMatch(/is not in/);
    const wrong = await checkStoredBackup(store, good.name, sha256(Buffer.from('something else')), source.url).catch(
      (e: unknown) => e,
    );
    expect(wrong).toBeInstanceOf(PermanentError);
    expect(readFileSync(join(dir, good.name)).equals(good.bytes)).toBe(true);
  });

  test('writeSidecar writes <name>.sha256 in sha256sum format, which sha256sum -c accepts', async () => {
    expect(sidecarName(good.name)).toBe(`${good.name}.sha256`);
    await writeSidecar(store, good.name, good.sha256);
    expect(readFileSync(join(dir, sidecarName(good.name)), 'utf8')).toBe(`${good.sha256}  ${good.name}\n`);
    expect(execFileSync('sha256sum', ['-c', sidecarName(good.name)], { cwd: dir }).toString()).toBe(
      `${good.name}: OK\n`,
    );
    expect(everything(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});

describe('a backup gets its backup name only after its check (publishBackup)', () => {
  /** A file store whose read of a pending dump waits until release(); every call is recorded in order. */
  function heldStore(dir: string) {
    const inner = createFileStore(pathToFileURL(dir).href);
    const calls: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let reading: () => void = () => undefined;
    const readStarted = new Promise<void>((resolve) => (reading = resolve));
    const store: BackupStore = {
      location: inner.location,
      list: () => inner.list(),
      async read(name) {
        calls.push(`read ${name}`);
        if (pendingFinalName(name) !== undefined) {
          reading();
          await gate;
        }
        return inner.read(name);
      },
      async write(name, body) {
        calls.push(`write ${name}`);
        return inner.write(name, body);
      },
      async remove(name) {
        calls.push(`remove ${name}`);
        return inner.remove(name);
      },
      async rename(from, to) {
        calls.push(`rename ${from} ${to}`);
        return inner.rename(from, to);
      },
    };
    return { store, calls, release, readStarted };
  }

  test('while its check reads the dump, the store holds no backup name; then the rename, then the sidecar, in that order', async () => {
    const dir = folder('held');
    const { store, calls, release, readStarted } = heldStore(dir);
    const name = nameAt('2026-05-01T00:00:00Z');
    const taken = await takeBackup(source.url, store, name);
    const publishing = publishBackup(store, taken, source.url);
    await readStarted;
    // The check is running: whoever lists the store now sees no backup, only the pending dump.
    const during = (await store.list()).map((o) => o.name);
    expect(during).toEqual([taken.pendingName]);
    expect(during.filter((n) => parseBackupName(PREFIX, n) !== undefined)).toEqual([]);
    expect(everything(dir)).toEqual([taken.pendingName]);
    release();
    await publishing;
    expect(everything(dir)).toEqual([name, sidecarName(name)]);
    expect(calls).toEqual([
      `write ${taken.pendingName}`,
      `read ${taken.pendingName}`,
      `rename ${taken.pendingName} ${name}`,
      `write ${sidecarName(name)}`,
    ]);
  });

  test('a dump whose check fails never gets its backup name or a sidecar', async () => {
    const dir = folder('badcheck');
    const store = createFileStore(pathToFileURL(dir).href);
    const name = nameAt('2026-05-02T00:00:00Z');
    const taken = await takeBackup(source.url, store, name);
    const bytes = readFileSync(join(dir, taken.pendingName));
    randomBytes(64).copy(bytes, Math.floor(bytes.length / 2));
    writeFileSync(join(dir, taken.pendingName), bytes);
    const err = await publishBackup(store, taken, source.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(String((err as Error).message)).toContain(`${taken.pendingName} as stored in`);
    expect(everything(dir)).toEqual([taken.pendingName]);
  });

  test('resumed after the rename (the worker died before the sidecar): checked again under its name, then the sidecar', async () => {
    const dir = folder('resumed');
    const store = createFileStore(pathToFileURL(dir).href);
    const name = nameAt('2026-05-03T00:00:00Z');
    const taken = await takeBackup(source.url, store, name);
    await store.rename(taken.pendingName, name);
    const published = await publishBackup(store, taken, source.url);
    expect(published.alreadyNamed).toBe(true);
    expect(everything(dir)).toEqual([name, sidecarName(name)]);
    // Neither name there: nothing to check, and nothing is made up.
    const elsewhere = { ...taken, name: nameAt('2026-05-03T00:00:01Z') };
    const gone = await publishBackup(store, elsewhere, source.url).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(PermanentError);
    expect(everything(dir)).toEqual([name, sidecarName(name)]);
  });

  test('removeStalePending removes the env’s pending dumps older than a day, and nothing else', async () => {
    const dir = folder('stale');
    const store = createFileStore(pathToFileURL(dir).href);
    const old = new Date(Date.now() - 25 * 3_600_000);
    const files = {
      stale: `${nameAt('2026-05-04T00:00:00Z')}.pending-0a1b2c3d`,
      young: `${nameAt('2026-05-05T00:00:00Z')}.pending-0a1b2c3e`,
      otherEnv: `other_20260504_000000.dump.pending-0a1b2c3f`,
      backup: nameAt('2026-05-04T00:00:01Z'),
      notes: 'notes.pending-0a1b2c3d',
    };
    for (const file of Object.values(files)) writeFileSync(join(dir, file), 'x');
    for (const file of [files.stale, files.otherEnv, files.backup, files.notes]) utimesSync(join(dir, file), old, old);
    expect(await removeStalePending(store, PREFIX)).toEqual([files.stale]);
    expect(everything(dir)).toEqual([files.backup, files.notes, files.otherEnv, files.young].sort());
  });
});

describe('takeBackup into S3 (fake S3, real SDK client)', () => {
  const BUCKET = 'lltest-backups';
  const URL_ = `s3://${BUCKET}/production/`;
  let fake: S3StandIn;
  let client: S3Client;
  let blobs: TestDatabase;

  beforeAll(async () => {
    fake = await new S3StandIn({ bucket: BUCKET }).start();
    client = new S3Client({
      endpoint: fake.url,
      region: 'eu-west-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDLIFELINETEST', secretAccessKey: 'not-a-real-secret' },
      maxAttempts: 1,
    });
    blobs = await database();
    await withClient(blobs.url, async (c) => {
      await c.query('CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL)');
      // Random bytes do not compress: about 12 MB of dump.
      for (let i = 1; i <= 12; i++) await c.query('INSERT INTO blobs VALUES ($1, $2)', [i, randomBytes(1024 * 1024)]);
    });
  }, 120_000);

  afterAll(async () => {
    client?.destroy();
    await fake?.stop();
  });

  const blobPrint = (url: string): Promise<string> =>
    withClient(
      url,
      async (c) =>
        (await c.query<{ h: string }>(`SELECT string_agg(id || ':' || md5(data), ',' ORDER BY id) AS h FROM blobs`))
          .rows[0]?.h ?? '',
    );

  test('a 12 MB dump goes up multipart under its pending name, publishBackup checks it and copies it to its name, and it restores from S3', async () => {
    const store = createS3Store(URL_, client);
    const name = nameAt('2026-04-01T00:00:00Z');
    fake.calls.length = 0;
    const taken = await takeBackup(blobs.url, store, name);
    expect(taken.size).toBeGreaterThan(10 * 1024 * 1024);
    expect(taken.tableRows).toEqual({ 'public.blobs': 12 });

    const ops = fake.calls.map((c) => c.op);
    expect(ops.filter((op) => op === 'CreateMultipartUpload')).toHaveLength(1);
    expect(fake.callsOf('UploadPart').length).toBeGreaterThanOrEqual(2);
    expect(ops.filter((op) => op === 'CompleteMultipartUpload')).toHaveLength(1);
    expect(ops).not.toContain('AbortMultipartUpload');
    expect(fake.openUploads()).toEqual([]);
    // Uploaded under the pending name only.
    expect(new Set(fake.calls.map((c) => c.key))).toEqual(new Set([`production/${taken.pendingName}`]));
    const stored = fake.objects.get(`production/${taken.pendingName}`);
    expect(stored?.length).toBe(taken.size);
    expect(sha256(stored ?? Buffer.alloc(0))).toBe(taken.sha256);
    expect(fake.objects.has(`production/${name}`)).toBe(false);

    fake.calls.length = 0;
    const checked = await publishBackup(store, taken, blobs.url);
    expect(checked).toEqual({
      entries: expect.any(Number),
      sha256: taken.sha256,
      size: taken.size,
      alreadyNamed: false,
    });
    // Read back under the pending name, then copied server-side to the backup name, then the sidecar.
    expect(fake.calls.filter((c) => c.op !== 'ListObjectsV2').map((c) => [c.op, c.key])).toEqual([
      ['GetObject', `production/${taken.pendingName}`],
      ['HeadObject', `production/${taken.pendingName}`],
      ['CopyObject', `production/${name}`],
      ['DeleteObject', `production/${taken.pendingName}`],
      ['PutObject', `production/${sidecarName(name)}`],
    ]);
    expect(fake.objects.get(`production/${name}`)?.equals(stored ?? Buffer.alloc(0))).toBe(true);
    expect(fake.objects.has(`production/${taken.pendingName}`)).toBe(false);
    // The same entries pg_restore --list finds in the stored bytes (table, its data, its primary key).
    const copy = join(folder('s3copy'), name);
    writeFileSync(copy, stored ?? Buffer.alloc(0));
    expect(checked.entries).toBe(listEntries(copy));
    expect(checked.entries).toBeGreaterThanOrEqual(3);

    const restored = await database();
    await pgRestore(restored.url, await store.read(name));
    expect(await blobPrint(restored.url)).toBe(await blobPrint(blobs.url));
    expect(await counts(restored.url, ['public.blobs'])).toEqual(taken.tableRows);
  }, 120_000);

  test('a large object damaged in S3 after the upload: checkStoredBackup reads it all and reports the sha256 mismatch', async () => {
    const store = createS3Store(URL_, client);
    const name = nameAt('2026-04-01T00:00:00Z');
    const original = fake.objects.get(`production/${name}`);
    expect(original).toBeDefined();
    const damaged = Buffer.from(original ?? Buffer.alloc(0));
    randomBytes(256).copy(damaged, Math.floor(damaged.length / 2));
    fake.objects.set(`production/${name}`, damaged);
    const err = await checkStoredBackup(store, name, sha256(original ?? Buffer.alloc(0)), blobs.url).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PermanentError);
    expect(String((err as Error).message)).toContain(`has sha256 ${sha256(damaged).slice(0, 12)}`);
    expect(fake.objects.get(`production/${name}`)).toBe(damaged); // the check changes nothing
  }, 60_000);

  test('a small (single PutObject) backup rotting in place in S3: still a PermanentError', async () => {
    const store = createS3Store(URL_, client);
    const name = nameAt('2026-04-02T00:00:00Z');
    const taken = await takeBackup(source.url, store, name);
    expect(taken.size).toBeLessThan(5 * 1024 * 1024);
    const stored = fake.objects.get(`production/${taken.pendingName}`);
    expect(stored).toBeDefined();
    // Same buffer, same length: S3 still answers the CRC32 it computed on upload.
    stored?.writeUInt8((stored.readUInt8(Math.floor(stored.length / 2)) ^ 0xff) & 0xff, Math.floor(stored.length / 2));
    const err = await publishBackup(store, taken, source.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    // Never copied to the backup name.
    expect(fake.objects.has(`production/${name}`)).toBe(false);
    expect(fake.callsOf('CopyObject').filter((c) => c.key === `production/${name}`)).toEqual([]);
  }, 60_000);

  test('pg_dump failing after more than a part was uploaded: the upload is aborted, no object, no open upload', async () => {
    const store = createS3Store(URL_, client);
    const name = nameAt('2026-04-03T00:00:00Z');
    const before = [...fake.objects.keys()].sort();
    fake.calls.length = 0;
    const err = await takeBackup(source.url, store, name, {
      tools: { binDir: failingPgDump(), env: { FAKE_BYTES: String(12 * 1024 * 1024) } },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect([...fake.objects.keys()].sort()).toEqual(before);
    expect(fake.openUploads()).toEqual([]);
    const ops = fake.calls.map((c) => c.op);
    expect(ops).not.toContain('CompleteMultipartUpload');
    expect(ops).not.toContain('PutObject');
    if (ops.includes('CreateMultipartUpload')) expect(ops).toContain('AbortMultipartUpload');
    expect((await store.list()).map((o) => o.name)).not.toContain(name);
  }, 60_000);
});
