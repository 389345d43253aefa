// The logical restore engine against the real PostgreSQL: backups taken with dumpToStore and with pg_dump | gzip,
// restored step by step (preflight → restoreIntoFresh → swap → verify → safetyBackup → cleanup), damaged backups,
// a failed verification put back, cancellation, and the database password never showing in any text.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { gzipSync, createGzip } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createFileStore } from '../../src/adapters/backup-store/file-store.js';
import { MemoryStore } from '../../src/adapters/backup-store/memory.js';
import {
  latestBackup,
  parseBackupName,
  pendingFinalName,
  safetyCopyFileName,
  type BackupName,
} from '../../src/domain/backups/names.js';
import type { BackupStore } from '../../src/adapters/backup-store/port.js';
import { TransientError } from '../../src/shared/errors.js';
import {
  analyzeTarget,
  cleanup,
  namesOf,
  preflight,
  putBack,
  restoreIntoFresh,
  safetyBackup,
  swap,
  verify,
  verifyDatabase,
  type LogicalRestorePlan,
  type RestoreState,
  type StepOutcome,
} from '../../src/domain/recovery/logical-restore/index.js';
import { parsePostgresUrl } from '../../src/shared/db/connection.js';
import { dumpToStore } from '../../src/pgtools/dump.js';
import { AbortError, RestoreFailedError } from '../../src/pgtools/errors.js';
import { toolConnectionArgs, toolEnv } from '../../src/pgtools/process.js';
import { VerifyFailedError } from '../../src/pgtools/verify.js';
import { withClient } from '../support/recovery.js';

const ADMIN_URL = process.env.LIFELINE_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const admin = new URL(ADMIN_URL);
const SFX = randomBytes(4).toString('hex');
const ROLE = `lltest_restorer_${SFX}`;
// Characters a URL must escape, and a few it need not: every spelling must stay out of every text.
const PASSWORD = `S3cr:et@${SFX}/%#?é`;
// Capitals and a dash: every statement must quote it.
const TARGET = `LLtest-Restore_${SFX}`;
const SLOW_SOURCE = `lltest_slow_${SFX}`;
const PREFIX = 'lltest_app';
const ROWS = 5000;

function urlFor(database: string, password = PASSWORD): string {
  return `postgres://${encodeURIComponent(ROLE)}:${encodeURIComponent(password)}@${admin.hostname}:${admin.port || '5432'}/${encodeURIComponent(database)}`;
}
function adminUrlFor(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

const asAdmin = <T>(work: (c: pg.Client) => Promise<T>): Promise<T> => withClient(ADMIN_URL, work);
// pg-connection-string does not decode %2F and friends in a path; the target's name has none, so this is safe here.
const asRole = <T>(database: string, work: (c: pg.Client) => Promise<T>): Promise<T> =>
  withClient(`postgres://${ROLE}@${admin.hostname}:${admin.port || '5432'}/${database}`, work);

async function snapshot(database = TARGET): Promise<string> {
  return asRole(database, async (c) => {
    const { rows } = await c.query<{ n: string; s: string; e: string }>(
      "SELECT count(*) AS n, coalesce(sum(id), 0) AS s, md5(string_agg(email, ',' ORDER BY id)) AS e FROM users",
    );
    const row = rows[0];
    return `${row?.n}/${row?.s}/${row?.e}`;
  });
}

/** Databases whose name starts with the target's: the target alone when nothing is left behind. */
async function runDatabases(): Promise<string[]> {
  return asAdmin(async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname',
      [TARGET],
    );
    return rows.map((r) => r.datname);
  });
}

let storeDir: string;
let workDir: string;
let store: BackupStore;
let original: string;
const texts: string[] = [];

async function step(
  run: (plan: LogicalRestorePlan, state: RestoreState) => Promise<StepOutcome>,
  plan: LogicalRestorePlan,
  state: RestoreState,
): Promise<RestoreState> {
  try {
    const outcome = await run(plan, state);
    texts.push(outcome.detail);
    return outcome.state;
  } catch (err) {
    texts.push(String((err as Error).message), String((err as Error).stack));
    throw err;
  }
}

function planFor(backupName: string, overrides: Partial<LogicalRestorePlan> = {}): LogicalRestorePlan {
  return {
    targetUrl: urlFor(TARGET),
    store,
    backupName,
    format: backupName.endsWith('.sql.gz') ? 'sql.gz' : 'custom',
    safetyCopyName: safetyCopyFileName(PREFIX, new Date()),
    verify: ['SELECT COUNT(*) FROM users', 'SELECT MAX(created_at) FROM users'],
    workDir,
    parallelJobs: 2,
    ...overrides,
  };
}

async function damage(): Promise<void> {
  await asRole(TARGET, async (c) => {
    await c.query('DELETE FROM users WHERE id % 3 = 0');
    await c.query("UPDATE users SET email = 'overwritten' WHERE id < 100");
  });
}

async function fullRun(plan: LogicalRestorePlan): Promise<{ state: RestoreState; verified: string[] }> {
  let state: RestoreState = {};
  state = await step(preflight, plan, state);
  state = await step(restoreIntoFresh, plan, state);
  state = await step(swap, plan, state);
  const checked = await verify(plan, state);
  texts.push(checked.detail);
  state = await step(analyzeTarget, plan, checked.state);
  expect(texts.at(-1)).toMatch(/1 table of .* analyzed in/);
  state = await step(safetyBackup, plan, state);
  state = await step(cleanup, plan, state);
  return { state, verified: checked.results.map((r) => r.value) };
}

/** pg_dump (plain SQL) | gzip, the way the old shell script made its backups. */
async function plainDumpToStore(name: string): Promise<void> {
  const child = spawn('pg_dump', ['--no-owner', '--no-privileges', '--dbname', adminUrlFor(TARGET)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const gzip = createGzip();
  const written = store.write(name, gzip);
  await pipeline(child.stdout, gzip);
  await written;
  expect(await exited).toBe(0);
}

beforeAll(async () => {
  storeDir = mkdtempSync(join(tmpdir(), 'lltest-store-'));
  workDir = mkdtempSync(join(tmpdir(), 'lltest-work-'));
  store = createFileStore(pathToFileURL(storeDir).href);
  await asAdmin(async (c) => {
    await c.query(`CREATE ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD.replace(/'/g, "''")}'`);
    await c.query(`CREATE DATABASE "${TARGET}" OWNER ${ROLE}`);
    await c.query(`CREATE DATABASE ${SLOW_SOURCE} OWNER ${ROLE}`);
    // Database-level properties that pg_dump without --create leaves out; the restore must carry them over.
    await c.query(`ALTER DATABASE "${TARGET}" SET search_path = "$user", public`);
    await c.query(`COMMENT ON DATABASE "${TARGET}" IS 'lifeline restore test'`);
  });
  await asRole(TARGET, async (c) => {
    await c.query('CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL)');
    await c.query(
      `INSERT INTO users SELECT g, 'user' || g || '@example.com', timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, ${ROWS}) g`,
    );
    await c.query('CREATE INDEX users_created_at ON users (created_at)');
  });
  // A source whose rows each take 20 ms to load (a CHECK calling a sleeping function): a restore long enough to cancel.
  await asRole(SLOW_SOURCE, async (c) => {
    await c.query('CREATE FUNCTION slow_ok(x int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RETURN true; END $$');
    await c.query(
      'CREATE TABLE users (id int PRIMARY KEY CHECK (slow_ok(id)), email text NOT NULL, created_at timestamptz NOT NULL)',
    );
    await c.query(`INSERT INTO users SELECT g, 'x', now() FROM generate_series(1, 500) g`);
    await c.query(
      'CREATE OR REPLACE FUNCTION slow_ok(x int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN true; END $$',
    );
  });
  original = await snapshot();
});

afterAll(async () => {
  await asAdmin(async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1) OR datname = $2',
      [TARGET, SLOW_SOURCE],
    );
    for (const { datname } of rows)
      await c.query(`DROP DATABASE IF EXISTS "${datname.replace(/"/g, '""')}" WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${ROLE}`);
  }).catch(() => undefined);
  rmSync(storeDir, { recursive: true, force: true });
  rmSync(workDir, { recursive: true, force: true });
});

describe('logical restore', () => {
  test('custom format: dumpToStore, damage, full run brings every row back; safety copy in the store, never latest', async () => {
    const name = `${PREFIX}_20260101_000000.dump`;
    const dumped = await dumpToStore(urlFor(TARGET), store, name);
    const bytes = readFileSync(join(storeDir, name));
    expect(dumped.size).toBe(bytes.length);
    expect(dumped.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));

    await damage();
    const damaged = await snapshot();
    expect(damaged).not.toBe(original);

    const plan = planFor(name);
    let state: RestoreState = {};
    state = await step(preflight, plan, state);
    // Called again with its own state: the download is reused, not fetched twice.
    const again = await preflight(plan, state);
    expect(state.localFile).toBe(join(state.localDir ?? '', name)); // hard-linked, not copied
    expect(statSync(state.localFile ?? '').ino).toBe(statSync(join(storeDir, name)).ino);
    expect(again.detail).toContain('already here');
    expect(again.state.runId).toBe(state.runId);
    // No safety copy before the target was replaced by a verified restore: it would copy nothing worth keeping.
    await expect(safetyBackup(plan, again.state)).rejects.toThrow(/not been replaced/);
    state = await step(restoreIntoFresh, plan, again.state);
    expect((await restoreIntoFresh(plan, state)).detail).toContain('already restored');
    expect(await snapshot()).toBe(damaged); // the target is untouched until the swap
    // What a drill does: verify the fresh database in place.
    const fresh = await verifyDatabase(urlFor(TARGET), state.freshDb ?? '', [
      'SELECT COUNT(*) FROM users',
      'SELECT nope',
    ]);
    expect(fresh.failures).toBe(1);
    expect(fresh.results[0]?.value).toBe(String(ROWS));
    // An application session still open on the target is ended by the swap.
    const app = new pg.Client({
      connectionString: `postgres://${ROLE}@${admin.hostname}:${admin.port || '5432'}/${TARGET}`,
    });
    app.on('error', () => undefined);
    await app.connect();
    state = await step(swap, plan, state);
    await expect(app.query('SELECT 1')).rejects.toThrow();
    await app.end().catch(() => undefined);
    expect((await swap(plan, state)).detail).toContain('already');
    const checked = await verify(plan, state);
    texts.push(checked.detail);
    expect(checked.results).toEqual([
      { query: 'SELECT COUNT(*) FROM users', value: String(ROWS) },
      {
        query: 'SELECT MAX(created_at) FROM users',
        value: new Date(Date.UTC(2026, 0, 1) + ROWS * 60_000).toISOString(),
      },
    ]);
    // Without its safety copy, cleanup keeps the previous database.
    const early = await cleanup(plan, checked.state);
    expect(early.detail).toMatch(/kept the previous database .* no safety copy/);
    expect(await runDatabases()).toEqual(expect.arrayContaining([checked.state.oldDb]));
    state = await step(safetyBackup, plan, checked.state);
    // The safety copy is a backup like the backup job's: checked, under its name, with its sidecar and the row
    // counts of the database it copied (the damaged one), counted in the dump's own snapshot.
    const copyBytes = readFileSync(join(storeDir, plan.safetyCopyName));
    const copySha = createHash('sha256').update(copyBytes).digest('hex');
    expect(state.safetyCopy).toEqual({
      name: plan.safetyCopyName,
      size: copyBytes.length,
      sha256: copySha,
      tableRows: { 'public.users': ROWS - Math.floor(ROWS / 3) },
      durationMs: expect.any(Number),
    });
    const sidecar = readFileSync(join(storeDir, `${plan.safetyCopyName}.sha256`), 'utf8');
    expect(sidecar).toBe(`${copySha}  ${plan.safetyCopyName}\n`);
    expect(readdirSync(storeDir).filter((f) => pendingFinalName(f) !== undefined)).toEqual([]);
    expect(texts.at(-1)).toMatch(/read back .* 1 table, 3,334 rows counted; pg_restore --list reads \d+ entries/);
    expect((await safetyBackup(plan, state)).detail).toContain('already taken');
    state = await step(cleanup, plan, state);
    await step(cleanup, plan, state);

    expect(await snapshot()).toBe(original);
    expect(await runDatabases()).toEqual([TARGET]);
    expect(readdirSync(workDir)).toEqual([]);
    // Owner, settings and comment of the database itself came along.
    const props = await asAdmin(
      async (c) =>
        (
          await c.query<{ owner: string; comment: string; settings: string[] }>(
            `SELECT pg_get_userbyid(d.datdba) AS owner, shobj_description(d.oid, 'pg_database') AS comment,
                  (SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = d.oid AND setrole = 0) AS settings
             FROM pg_database d WHERE datname = $1`,
            [TARGET],
          )
        ).rows[0],
    );
    expect(props).toEqual({ owner: ROLE, comment: 'lifeline restore test', settings: ['search_path="$user", public'] });

    const listed = await store.list();
    const backups = listed.map((o) => parseBackupName(PREFIX, o.name)).filter((b): b is BackupName => b !== undefined);
    const safety = backups.filter((b) => b.safetyCopy);
    expect(safety.map((b) => b.name)).toEqual([plan.safetyCopyName]);
    expect(latestBackup(backups)?.name).toBe(name);
    expect(readdirSync(storeDir).filter((f) => f.startsWith('.'))).toEqual([]);
    // The safety copy holds the data as it was just before the restore: the damaged rows.
    const copied = execFileSync(
      'pg_restore',
      ['--data-only', '--table=users', '--file=-', join(storeDir, plan.safetyCopyName)],
      { maxBuffer: 64 << 20 },
    ).toString();
    expect(copied).toContain('overwritten');
    expect(copied.split('\n').filter((l) => /^\d+\t/.test(l))).toHaveLength(ROWS - Math.floor(ROWS / 3));
  });

  test('.sql.gz made with pg_dump | gzip restores the same way', async () => {
    const name = `${PREFIX}_20260102_000000.sql.gz`;
    await plainDumpToStore(name);
    await asRole(TARGET, (c) => c.query('TRUNCATE users'));
    const { verified } = await fullRun(
      planFor(name, { safetyCopyName: safetyCopyFileName(PREFIX, new Date(Date.now() + 1000)) }),
    );
    expect(verified[0]).toBe(String(ROWS));
    expect(await snapshot()).toBe(original);
    expect(await runDatabases()).toEqual([TARGET]);
    expect(readdirSync(workDir)).toEqual([]);
  });

  test('a store on another file system is read in place; a store without local files is downloaded and hashed', async () => {
    const name = `${PREFIX}_20260101_000000.dump`;
    const bytes = readFileSync(join(storeDir, name));
    // /dev/shm is a tmpfs, another file system than the work folder's: no hard link is possible there.
    const shm =
      existsSync('/dev/shm') && statSync('/dev/shm').dev !== statSync(workDir).dev
        ? mkdtempSync('/dev/shm/lltest-store-')
        : undefined;
    try {
      if (shm) {
        writeFileSync(join(shm, name), bytes);
        const inPlace = planFor(name, { store: createFileStore(pathToFileURL(shm).href) });
        const state = await step(preflight, inPlace, {});
        expect(state.localFile).toBe(join(shm, name));
        expect(texts.at(-1)).toContain('read in place');
        await step(cleanup, inPlace, state);
        expect(readdirSync(shm)).toEqual([name]); // cleanup never touches the store's own file
      }
      const remote = new MemoryStore('memory://remote');
      remote.put(name, bytes);
      const downloaded = planFor(name, { store: remote });
      const state = await step(preflight, downloaded, {});
      expect(state.localSha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(texts.at(-1)).toMatch(new RegExp(`downloaded \\(.*sha256 ${state.localSha256?.slice(0, 12)}`));
      await step(cleanup, downloaded, state);
      expect(readdirSync(workDir)).toEqual([]);
    } finally {
      if (shm) rmSync(shm, { recursive: true, force: true });
    }
  });

  test('a safety copy the store refuses: the verified restore stands, the previous database is kept, nothing half-written', async () => {
    const name = `${PREFIX}_20260101_000000.dump`;
    const remote = new MemoryStore('memory://remote');
    remote.put(name, readFileSync(join(storeDir, name)));
    await damage();
    const plan = planFor(name, {
      store: remote,
      safetyCopyName: safetyCopyFileName(PREFIX, new Date(Date.now() + 4000)),
    });
    let state: RestoreState = {};
    state = await step(preflight, plan, state);
    state = await step(restoreIntoFresh, plan, state);
    state = await step(swap, plan, state);
    state = (await verify(plan, state)).state;
    remote.failNextWrite({ afterBytes: 1000 });
    await expect(safetyBackup(plan, state)).rejects.toThrow();
    expect(remote.objects.has(plan.safetyCopyName)).toBe(false);
    const kept = await step(cleanup, plan, state);
    expect(texts.at(-1)).toMatch(/kept the previous database .* no safety copy/);
    expect(await snapshot()).toBe(original);
    expect(await runDatabases()).toEqual([TARGET, state.oldDb].sort());
    // A copy that fails its read-back is removed again, under every name: the previous database stays.
    const rotting: BackupStore = {
      location: remote.location,
      list: () => remote.list(),
      write: (name, body) => remote.write(name, body),
      remove: (name) => remote.remove(name),
      rename: (from, to) => remote.rename(from, to),
      async read(name) {
        if (pendingFinalName(name) === undefined) return remote.read(name);
        const bytes = Buffer.from(remote.objects.get(name)!.body);
        bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
        return Readable.from([bytes]);
      },
    };
    const unchecked = await safetyBackup({ ...plan, store: rotting }, kept).catch((e: unknown) => e);
    expect(unchecked).toBeInstanceOf(RestoreFailedError);
    expect(String((unchecked as Error).message)).toMatch(
      /as stored in memory:\/\/remote has sha256 .* not the .* pg_dump wrote/,
    );
    expect([...remote.objects.keys()]).toEqual([name]);
    // Once the store answers again, the copy is taken and cleanup drops the previous database.
    state = await step(safetyBackup, plan, kept);
    expect(remote.objects.has(plan.safetyCopyName)).toBe(true);
    expect(remote.objects.has(`${plan.safetyCopyName}.sha256`)).toBe(true);
    await step(cleanup, plan, state);
    expect(await runDatabases()).toEqual([TARGET]);
  });

  test('expectedSha256: a linked .dump, a linked .sql.gz and a downloaded backup that do not match fail preflight naming the file and both checksums', async () => {
    const wrong = 'f'.repeat(64);
    const dump = `${PREFIX}_20260101_000000.dump`;
    const plain = `${PREFIX}_20260102_000000.sql.gz`;
    const remote = new MemoryStore('memory://remote');
    remote.put(dump, readFileSync(join(storeDir, dump)));
    const cases = [
      { name: dump, store },
      { name: plain, store },
      { name: dump, store: remote as BackupStore },
    ];
    for (const { name, store: where } of cases) {
      const bytes = where === store ? readFileSync(join(storeDir, name)) : remote.objects.get(name)!.body;
      const actual = createHash('sha256').update(bytes).digest('hex');
      const err = await preflight(planFor(name, { store: where, expectedSha256: wrong }), {}).catch((e: unknown) => e);
      expect(err, `${name} in ${where.location}`).toBeInstanceOf(RestoreFailedError);
      expect((err as Error).message).toBe(
        `backup ${name} is not the file Lifeline made: its sha256 is ${actual.slice(0, 12)}…, the catalogue's is ${wrong.slice(0, 12)}…`,
      );
      texts.push((err as Error).message);
      expect(readdirSync(workDir)).toEqual([]);
      // The right checksum passes, and preflight says it was compared.
      const plan = planFor(name, { store: where, expectedSha256: actual });
      const ok = await step(preflight, plan, {});
      expect(texts.at(-1)).toContain("its sha256 matches Lifeline's catalogue");
      expect(ok.localSha256).toBe(actual);
      await step(cleanup, plan, ok);
    }
    expect(await runDatabases()).toEqual([TARGET]);
    expect(await snapshot()).toBe(original);
    expect(readdirSync(workDir)).toEqual([]);
  });

  test('damaged backups fail before the target is touched and leave nothing behind', async () => {
    const good = readFileSync(join(storeDir, `${PREFIX}_20260101_000000.dump`));
    const goodSql = readFileSync(join(storeDir, `${PREFIX}_20260102_000000.sql.gz`));
    const marker = join(workDir, `pwned-${SFX}`);
    const cases: { name: string; body: Buffer }[] = [
      { name: `${PREFIX}_20250101_000001.dump`, body: randomBytes(50_000) },
      { name: `${PREFIX}_20250101_000002.dump`, body: good.subarray(0, Math.floor(good.length * 0.6)) },
      { name: `${PREFIX}_20250101_000003.dump`, body: Buffer.alloc(0) },
      { name: `${PREFIX}_20250101_000004.sql.gz`, body: randomBytes(50_000) },
      { name: `${PREFIX}_20250101_000005.sql.gz`, body: goodSql.subarray(0, Math.floor(goodSql.length * 0.6)) },
      // Intact gzip, broken SQL: only the restore itself can tell.
      { name: `${PREFIX}_20250101_000006.sql.gz`, body: gzipSync('CREATE TABLE ok (id int);\nTHIS IS NOT SQL;\n') },
      // A psql meta-command in a backup must not run (here: a shell command).
      { name: `${PREFIX}_20250101_000007.sql.gz`, body: gzipSync(`CREATE TABLE ok (id int);\n\\! touch ${marker}\n`) },
    ];
    const failedIn: string[] = [];
    for (const { name, body } of cases) {
      await store.write(name, Readable.from([body]));
      const plan = planFor(name);
      let state: RestoreState = {};
      let error: unknown;
      let where = 'nowhere';
      try {
        where = 'preflight';
        state = await step(preflight, plan, state);
        where = 'restoreIntoFresh';
        state = await step(restoreIntoFresh, plan, state);
      } catch (err) {
        error = err;
      }
      expect(error, name).toBeInstanceOf(RestoreFailedError);
      failedIn.push(`${name.slice(name.lastIndexOf('_') + 1)}:${where}`);
      await step(cleanup, plan, state.runId ? state : {});
      expect(await runDatabases(), name).toEqual([TARGET]);
    }
    expect(failedIn).toEqual([
      '000001.dump:preflight',
      // --list reads the header and table of contents only; the cut-off data shows in the restore.
      '000002.dump:restoreIntoFresh',
      '000003.dump:preflight',
      '000004.sql.gz:preflight',
      '000005.sql.gz:preflight',
      '000006.sql.gz:restoreIntoFresh',
      // A psql meta-command is refused by the preflight's pass over the SQL (plain-sql-restore.test.ts has the rest).
      '000007.sql.gz:preflight',
    ]);
    expect(existsSync(marker)).toBe(false);
    expect(readdirSync(workDir)).toEqual([]);
    expect(await snapshot()).toBe(original);
  });

  test('a missing backup and an unreachable server: permanent and retryable failures', async () => {
    await expect(preflight(planFor(`${PREFIX}_20200101_000000.dump`), {})).rejects.toBeInstanceOf(RestoreFailedError);
    const refused = await preflight(
      planFor(`${PREFIX}_20260101_000000.dump`, { targetUrl: urlFor(TARGET).replace(/:\d+\//, ':1/') }),
      {},
    ).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TransientError);
    expect(refused).not.toBeInstanceOf(RestoreFailedError);
    texts.push(String((refused as Error).message));
    const noDb = await preflight(
      planFor(`${PREFIX}_20260101_000000.dump`, { targetUrl: urlFor(`${TARGET}_nope`) }),
      {},
    ).catch((e: unknown) => e);
    expect(noDb).toBeInstanceOf(RestoreFailedError);
    texts.push(String((noDb as Error).message));
    // A dump that fails or is cancelled never appears under its name.
    const failedDump = await dumpToStore(urlFor(`${TARGET}_nope`), store, `${PREFIX}_20200101_000001.dump`).catch(
      (e: unknown) => e,
    );
    expect(failedDump).toBeInstanceOf(Error);
    texts.push(String((failedDump as Error).message));
    const controller = new AbortController();
    const cancelled = dumpToStore(urlFor(TARGET), store, `${PREFIX}_20200101_000002.dump`, controller.signal).catch(
      (e: unknown) => e,
    );
    controller.abort();
    expect(await cancelled).toBeInstanceOf(AbortError);
    expect(readdirSync(storeDir).filter((f) => f.includes('20200101'))).toEqual([]);
    const wrongFormat = await preflight(planFor(`${PREFIX}_20260101_000000.dump`, { format: 'sql.gz' }), {}).catch(
      (e: unknown) => e,
    );
    expect(wrongFormat).toBeInstanceOf(RestoreFailedError);
    expect(readdirSync(workDir)).toEqual([]);
  });

  test('verify failing after the swap, then putBack: the pre-restore data is back', async () => {
    await damage();
    const before = await snapshot();
    const plan = planFor(`${PREFIX}_20260101_000000.dump`, {
      verify: ['SELECT COUNT(*) FROM users', 'SELECT * FROM no_such_table'],
      safetyCopyName: safetyCopyFileName(PREFIX, new Date(Date.now() + 2000)),
    });
    let state: RestoreState = {};
    state = await step(preflight, plan, state);
    state = await step(restoreIntoFresh, plan, state);
    state = await step(swap, plan, state);
    expect(await snapshot()).toBe(original);
    const failed = await verify(plan, state).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(VerifyFailedError);
    texts.push(String((failed as Error).message));
    expect((failed as VerifyFailedError).results.map((r) => r.value)).toEqual([
      String(ROWS),
      expect.stringContaining('no_such_table'),
    ]);
    // A cleanup now must not drop the previous database: the restore was not verified.
    const early = await cleanup(plan, state);
    expect(early.detail).toContain('kept');
    state = await step(putBack, plan, state);
    expect(await snapshot()).toBe(before);
    expect((await putBack(plan, state)).detail).toContain('already');
    await step(cleanup, plan, state);
    expect(await runDatabases()).toEqual([TARGET]);
    expect(readdirSync(workDir)).toEqual([]);
    // Put back the original rows for the tests after this one.
    await fullRun(
      planFor(`${PREFIX}_20260101_000000.dump`, {
        safetyCopyName: safetyCopyFileName(PREFIX, new Date(Date.now() + 3000)),
      }),
    );
    expect(await snapshot()).toBe(original);
  });

  test('aborting kills pg_restore (and its workers), drops the fresh database, leaves the target alone', async () => {
    const name = `${PREFIX}_20260103_000000.dump`;
    await dumpToStore(urlFor(SLOW_SOURCE), store, name);
    const controller = new AbortController();
    const plan = planFor(name, { signal: controller.signal, parallelJobs: 2 });
    const state = await step(preflight, plan, {});
    const fresh = namesOf(TARGET, state.runId ?? '').fresh;
    const started = Date.now();
    const running = restoreIntoFresh(plan, state).catch((e: unknown) => e);

    const ours = (): { pid: number; cmdline: string; environ: string }[] =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .flatMap((pid) => {
          try {
            const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
            if (!cmdline.includes('pg_restore') || !cmdline.includes(fresh)) return [];
            return [{ pid: Number(pid), cmdline, environ: readFileSync(`/proc/${pid}/environ`, 'utf8') }];
          } catch {
            return [];
          }
        });
    let seen: ReturnType<typeof ours> = [];
    let loading = false;
    while (Date.now() - started < 15_000 && !loading) {
      seen = ours();
      loading = await asAdmin(async (c) => {
        const { rows } = await c.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'COPY%'", [
          fresh,
        ]);
        return rows.length > 0;
      });
      if (!loading) await new Promise((r) => setTimeout(r, 50));
    }
    expect(loading).toBe(true);
    expect(seen.length).toBeGreaterThan(0);
    // The password travels in the child's environment, never on its command line.
    for (const p of seen) {
      expect(p.cmdline).not.toContain(PASSWORD);
      expect(p.cmdline).not.toContain(encodeURIComponent(PASSWORD));
      expect(p.environ).toContain(`PGPASSWORD=${PASSWORD}`);
    }

    const abortedAt = Date.now();
    controller.abort();
    const outcome = await running;
    expect(outcome).toBeInstanceOf(AbortError);
    expect(Date.now() - abortedAt).toBeLessThan(5_000);
    expect(ours()).toEqual([]);
    expect(await runDatabases()).toEqual([TARGET]);
    expect(await snapshot()).toBe(original);
    await step(cleanup, { ...plan, signal: undefined }, state);
    expect(readdirSync(workDir)).toEqual([]);
  });

  test('derived names fit in 63 bytes and the tools never get the password as an argument', () => {
    const long = 'é'.repeat(40);
    const names = namesOf(long, '20260101000000_abcd');
    for (const n of Object.values(names)) expect(Buffer.byteLength(n)).toBeLessThanOrEqual(63);
    expect(names.fresh.endsWith('_restore_20260101000000_abcd')).toBe(true);
    const conn = parsePostgresUrl(`${urlFor(TARGET)}?sslmode=disable`);
    expect(conn.database).toBe(TARGET);
    expect(conn.password).toBe(PASSWORD);
    const args = toolConnectionArgs(conn).join(' ');
    expect(args).not.toContain(PASSWORD);
    expect(args).toContain(`--dbname ${TARGET}`);
    expect(toolEnv(conn).PGPASSWORD).toBe(PASSWORD);
    expect(toolEnv(conn).PGSSLMODE).toBe('disable');
    expect(toolConnectionArgs({ database: 'a=b' })).toContain("dbname='a=b'");
  });

  test('no detail or error text ever carried the password', () => {
    expect(texts.length).toBeGreaterThan(20);
    const spellings = [PASSWORD, encodeURIComponent(PASSWORD), `S3cr:et@${SFX}`];
    for (const text of texts) for (const s of spellings) expect(text).not.toContain(s);
  });
});
