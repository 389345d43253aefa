// Crash tests of the destructive path, through the real process (node dist/main.js) and the real PostgreSQL: the
// worker is killed (kill -9) or stopped (SIGTERM, the hand-back path) inside each step of a restore — restore into a
// fresh database, swap, verify, safety copy — and restarted. The job then either finishes (the target is the
// restored data) or puts everything back (the target is the old data), never runs a step again once it succeeded,
// and leaves no scratch database nor download behind. Then `/dr cancel` during a restore's and a drill's restore, and
// the lease (point 11): a worker whose PostgreSQL connection is cut mid-restore stops its pg_restore before another
// worker takes the job over.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { ADMIN_URL } from '../support/db.js';
import { linesWithSecrets, type Sent, type World } from '../support/e2e.js';
import { USERS, type LifelineProcess } from '../support/lifeline-process.js';
import {
  approvablePlan,
  auditOf,
  AwsTripwire,
  backupName,
  clickButton,
  closeAll,
  createAppDatabase,
  dumpCustom,
  fileStoreWorld,
  finished,
  jobNumberIn,
  jobRow,
  replyJob,
  withClient,
  type AppDatabase,
} from '../support/recovery.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const ENV = 'prod';
const PREFIX = 'shop';
const ROWS = 300;
/** Rows of the slow backup's `events` table, each checked by a function that sleeps 20 ms: a restore of ~3 s. */
const SLOW_ROWS = 150;
/** A take-over waits for the lease to run out: 2 s here (a heartbeat every 0.67 s), 30 s in production. */
const LEASE_SECONDS = 2;
const REQUESTER = USERS.oncall;
const APPROVER = USERS.lead;

const RESTORE_FRESH = 'restore into a fresh database';
const SWAP = 'swap the restored database in';
const VERIFY = 'verify';
const SAFETY = 'safety backup of the previous database';

let w: World;
let app: AppDatabase;
let aws: AwsTripwire;
let store: string;
let scratch: string;
let original: string; // the users every backup holds
let damaged: string; // the users before each restore
const now = Date.now();
const fastBackup = backupName(PREFIX, new Date(now - 2 * 3_600_000), 'dump');
const slowBackup = backupName(PREFIX, new Date(now - 3_600_000), 'dump');

beforeAll(async () => {
  app = await createAppDatabase(ROWS);
  original = await app.fingerprint();
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-crash-store-'));
  scratch = mkdtempSync(join(tmpdir(), 'lifeline-e2e-crash-tmp-'));
  await dumpCustom(app.url, join(store, fastBackup));
  // The slow backup: the same users, and events whose CHECK sleeps 20 ms a row while pg_restore loads them.
  await app.query('CREATE FUNCTION slow_ok(x int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RETURN true; END $$');
  await app.query('CREATE TABLE events (id int PRIMARY KEY CHECK (slow_ok(id)), what text NOT NULL)');
  await app.query(`INSERT INTO events SELECT g, 'event ' || g FROM generate_series(1, ${SLOW_ROWS}) g`);
  await app.query(
    'CREATE OR REPLACE FUNCTION slow_ok(x int) RETURNS boolean LANGUAGE plpgsql AS ' +
      '$$ BEGIN PERFORM pg_sleep(0.02); RETURN true; END $$',
  );
  await dumpCustom(app.url, join(store, slowBackup));
  await app.query('DROP TABLE events; DROP FUNCTION slow_ok(int)');
  aws = await new AwsTripwire().start();
  // Verify takes 2 s: time to stop the worker inside it, and to lock the set-aside database before its copy.
  w = await fileStoreWorld({
    env: ENV,
    app,
    store,
    prefix: PREFIX,
    verify: '"SELECT count(*) FROM users, pg_sleep(2)"',
    drillsOff: true,
    aws,
    extraEnv: { TMPDIR: scratch, LIFELINE_JOB_LEASE_SECONDS: String(LEASE_SECONDS) },
  });
  await w.process().start();
});

beforeEach(async () => {
  await app.query(`DELETE FROM users WHERE id > 50`);
  damaged = await app.fingerprint();
});

afterAll(async () => {
  await closeAll({ w, aws, app, folders: [store, scratch] });
});

// ---- helpers -------------------------------------------------------------------------------------------------------

function dr(text: string, user: string, via?: LifelineProcess): Promise<Sent> {
  return w.command(text, { user, ...(via ? { via } : {}) }, '/dr');
}

/** Requests a restore of `backup`, approves it, and returns the job number. */
async function approvedRestore(backup: string, via?: LifelineProcess): Promise<number> {
  const sent = await dr(`restore ${ENV} file ${backup}`, REQUESTER, via);
  const { job } = await replyJob(w, sent);
  const click = await clickButton(w, await approvablePlan(w, job), 'Approve', APPROVER);
  expect(click.status).toBe(200);
  return job;
}

async function stepState(job: number, name: string): Promise<string | undefined> {
  const { rows } = await w.sql.query<{ state: string }>(
    'SELECT state FROM recovery_steps WHERE job = $1 AND name = $2',
    [job, name],
  );
  return rows[0]?.state;
}

async function waitForStep(job: number, name: string, state: string): Promise<void> {
  await waitUntil(`JOB-${job} "${name}" ${state}`, async () => (await stepState(job, name)) === state, 20_000, 25);
}

/** Some session runs a statement like `like` (waiting on a lock, if `locked`). */
async function waitForQuery(like: string, locked = false): Promise<void> {
  await waitUntil(
    `a statement like ${like}${locked ? ' to wait on a lock' : ''}`,
    () =>
      withClient(ADMIN_URL, async (c) => {
        const { rows } = await c.query(
          `SELECT 1 FROM pg_stat_activity
            WHERE state = 'active' AND query LIKE $1 AND ($2::boolean IS FALSE OR wait_event_type = 'Lock')`,
          [like, locked],
        );
        return rows.length > 0;
      }),
    15_000,
    50,
  );
}

/** A new Lifeline process on the world, started. */
async function start(): Promise<LifelineProcess> {
  return w.process().start();
}

/** pg_restore processes a Lifeline process started (the leader, its child, and the leader's -j workers). */
function pgRestoresOf(lifelinePid: number): number[] {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid=,pgid=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length === 4)
    .map(([pid, ppid, pgid, comm]) => ({ pid: Number(pid), ppid: Number(ppid), pgid: Number(pgid), comm }));
  const leaders = new Set(table.filter((p) => p.ppid === lifelinePid && p.comm === 'pg_restore').map((p) => p.pid));
  return table.filter((p) => p.comm === 'pg_restore' && (leaders.has(p.pid) || leaders.has(p.pgid))).map((p) => p.pid);
}

/** A session that holds a lock until released: the moment a test stops a step that waits for it. */
async function holdLock(database: string, sql: string): Promise<{ release(): Promise<void> }> {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  await client.query('BEGIN');
  await client.query(sql);
  return {
    async release() {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}

/** Kills (or stops) the running Lifeline; a SIGTERM must exit 0 within the 10 s the README promises. */
async function crash(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const worker = w.lifeline;
  const stoppedAt = Date.now();
  const code = await worker.stop(signal);
  if (signal === 'SIGTERM') {
    expect(code).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
  } else {
    expect(code).not.toBe(0);
  }
}

/**
 * No step ran again after it had succeeded (the audit trail of every attempt), no step succeeded twice, no
 * scratch database and no download is left, and the target takes connections.
 */
async function expectCleanEnd(job: number): Promise<void> {
  const { rows } = await w.sql.query<{ name: string }>('SELECT name FROM recovery_steps WHERE job = $1', [job]);
  const names = rows.map((r) => r.name);
  const succeeded = new Set<string>();
  for (const entry of await auditOf(w, job)) {
    if (entry.action === 'step_started')
      expect(succeeded.has(entry.detail), `"${entry.detail}" started again after it succeeded`).toBe(false);
    if (entry.action === 'step_succeeded') {
      const name = names.find((n) => entry.detail.startsWith(`${n}: `))!;
      expect(succeeded.has(name), `"${name}" succeeded twice`).toBe(false);
      succeeded.add(name);
    }
  }
  expect(await app.leftovers()).toEqual([]);
  expect(readdirSync(scratch)).toEqual([]);
  const allowed = await withClient(
    ADMIN_URL,
    async (c) =>
      (await c.query<{ ok: boolean }>('SELECT datallowconn AS ok FROM pg_database WHERE datname = $1', [app.name]))
        .rows[0]?.ok,
  );
  expect(allowed).toBe(true);
}

async function expectSucceeded(job: number): Promise<void> {
  const end = await finished(w, job);
  expect(end.state, end.outcome ?? '').toBe('succeeded');
  expect(await app.fingerprint()).toBe(original);
  await expectCleanEnd(job);
}

function count(entries: { action: string; detail: string }[], action: string, step: string): number {
  return entries.filter((e) => e.action === action && (e.detail === step || e.detail.startsWith(`${step}: `))).length;
}

// ---- kill -9 and SIGTERM in each step ------------------------------------------------------------------------------

describe.each(['SIGKILL', 'SIGTERM'] as const)(
  '%s inside the steps of a restore, each time followed by a restart',
  (signal) => {
    test('inside restore, then verify, then the safety copy: each new worker resumes; the job ends', async () => {
      const job = await approvedRestore(slowBackup);

      // 1. pg_restore is loading the slow rows into the fresh database.
      await waitForStep(job, RESTORE_FRESH, 'running');
      await waitForQuery('COPY public.events%');
      await crash(signal);
      expect(await stepState(job, RESTORE_FRESH)).toBe('running');
      expect(await app.fingerprint()).toBe(damaged);
      await start();

      // 2. verify's 2 s query runs on the swapped-in database. Meanwhile the test locks the set-aside database's
      // table, so the safety copy's pg_dump will wait on it.
      await waitForStep(job, VERIFY, 'running');
      const { rows } = await w.sql.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE starts_with(datname, $1)',
        [`${app.name}_old_`],
      );
      expect(rows).toHaveLength(1);
      const lock = await holdLock(rows[0]!.datname, 'LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      let released = false;
      try {
        await waitForQuery('SELECT count(*) FROM users, pg_sleep(2)%');
        await crash(signal);
        expect(await stepState(job, VERIFY)).toBe('running');
        expect(await stepState(job, SWAP)).toBe('succeeded');
        await start();

        // 3. the safety copy's pg_dump waits for the lock.
        await waitForStep(job, SAFETY, 'running');
        await waitForQuery('LOCK TABLE%users%', true);
        await crash(signal);
        expect(await stepState(job, SAFETY)).toBe('running');
        await lock.release();
        released = true;
        await start();
        await expectSucceeded(job);
      } finally {
        if (!released) await lock.release();
      }

      expect(
        Number(
          (await withClient(app.url, (c) => c.query<{ n: string }>('SELECT count(*) AS n FROM events'))).rows[0]!.n,
        ),
      ).toBe(SLOW_ROWS);
      const entries = await auditOf(w, job);
      for (const interrupted of [RESTORE_FRESH, VERIFY, SAFETY])
        expect(count(entries, 'step_started', interrupted), interrupted).toBe(2);
      expect(count(entries, 'step_started', SWAP)).toBe(1);
      // The copy the report names is in the store, once.
      const named = (
        await w.sql.query<{ name: string }>(
          `SELECT step_state->>'safetyCopyName' AS name FROM recovery_jobs WHERE number = $1`,
          [job],
        )
      ).rows[0]!.name;
      expect(readdirSync(store).filter((n) => n === named)).toHaveLength(1);
      expect((await jobRow(w, job))?.outcome).toMatch(/^Restored prod from /);
    });

    const swapOutcome =
      signal === 'SIGKILL' ? 'the old database is put back, and the job says so' : 'handed back, then swapped';
    test(`inside the swap (its rename waiting on a lock): ${swapOutcome}`, async () => {
      // A lock on the target database (COMMENT's, rolled back) that the swap's rename waits for: the moment to stop it.
      const lock = await holdLock('postgres', `COMMENT ON DATABASE "${app.name}" IS 'held by the crash test'`);
      let released = false;
      try {
        const job = await approvedRestore(fastBackup);
        await waitForStep(job, SWAP, 'running');
        await waitForQuery(`ALTER DATABASE "${app.name}" RENAME TO%`, true);
        await crash(signal);
        await lock.release();
        released = true;
        await start();
        const end = await finished(w, job);
        const entries = await auditOf(w, job);
        if (signal === 'SIGKILL') {
          // The worker died inside the one step that is never run twice: the next one puts back and reports it.
          expect(end.state).toBe('failed');
          expect(end.outcome).toContain(`"${SWAP}" failed: the worker running it stopped inside it`);
          expect(end.outcome).toMatch(/Put back: .* was never replaced; the restored copy was dropped/);
          expect(await app.fingerprint()).toBe(damaged);
          expect(count(entries, 'step_started', SWAP)).toBe(1);
          expect(count(entries, 'step_started', VERIFY)).toBe(0);
          await expectCleanEnd(job);
        } else {
          // SIGTERM cancelled the waiting rename before COMMIT: nothing changed, so the swap runs again.
          expect(end.state, end.outcome ?? '').toBe('succeeded');
          expect(entries.filter((e) => e.action === 'step_interrupted').map((e) => e.detail)).toEqual([
            `${SWAP}: handed back; the next worker runs it again`,
          ]);
          expect(count(entries, 'step_started', SWAP)).toBe(2);
          expect(await app.fingerprint()).toBe(original);
          await expectCleanEnd(job);
        }
      } finally {
        if (!released) await lock.release();
      }
    });
  },
);

// ---- cancel --------------------------------------------------------------------------------------------------------

describe('/dr cancel stops a step that has changed nothing yet, and cleans up', () => {
  test(`during "${RESTORE_FRESH}": cancelled in seconds; no fresh database nor download; target kept`, async () => {
    const job = await approvedRestore(slowBackup);
    await waitForStep(job, RESTORE_FRESH, 'running');
    await waitForQuery('COPY public.events%');
    const sent = await dr(`cancel JOB-${job}`, REQUESTER);
    const cancelledAt = Date.now();
    expect(await w.reply(sent)).toBe(
      `JOB-${job} is being stopped: "${RESTORE_FRESH}" is interrupted now (it has changed nothing yet), ` +
        'then what the job left behind is cleaned up.',
    );
    const end = await finished(w, job);
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);
    expect(end.state).toBe('cancelled');
    expect(end.outcome).toBe(`cancelled by <@${REQUESTER}> during "${RESTORE_FRESH}", which was interrupted`);
    expect(await app.fingerprint()).toBe(damaged);
    expect(await stepState(job, SWAP)).toBeUndefined();
    await expectCleanEnd(job);
    const result = await waitUntil('the result', () =>
      w.slack.posts().find((c) => String(c.body.text ?? '').startsWith(`JOB-${job} failed`)),
    );
    expect(String(result.body.text)).toMatch(/The target database was not changed/);
  });

  test('during a drill’s restore: cancelled in seconds; no scratch database nor download; no drill', async () => {
    const before = await app.fingerprint();
    const sent = await dr(`drill ${ENV}`, APPROVER);
    const job = jobNumberIn(await w.reply(sent))!;
    expect(job).toBeDefined();
    await waitForStep(job, 'restore into a scratch database', 'running');
    await waitForQuery('COPY public.events%');
    const cancel = await dr(`cancel JOB-${job}`, APPROVER);
    const cancelledAt = Date.now();
    expect(await w.reply(cancel)).toMatch(
      new RegExp(`^JOB-${job} is being stopped: "restore into a scratch database" is interrupted now`),
    );
    const end = await finished(w, job);
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);
    expect(end.state).toBe('cancelled');
    expect(await app.fingerprint()).toBe(before);
    await expectCleanEnd(job);
    const drills = await w.sql.query('SELECT 1 FROM drills WHERE job = $1', [job]);
    expect(drills.rows).toEqual([]);
  });
});

// ---- the lease ---------------------------------------------------------------------------------------------------

describe('one worker per job, also when PostgreSQL goes away under it', () => {
  test('a worker cut off from PostgreSQL mid-restore stops pg_restore before another takes over', async () => {
    for (const p of w.processes.filter((x) => x.running)) await p.stop('SIGTERM');
    const url = new URL(w.db.url);
    const proxies = [
      new TcpProxy({ host: url.hostname, port: Number(url.port || 5432) }),
      new TcpProxy({ host: url.hostname, port: Number(url.port || 5432) }),
    ];
    await Promise.all(proxies.map((p) => p.start()));
    try {
      // Two workers, each reaching Lifeline's own database through its own proxy (the target database directly).
      const workers = [
        await w.process({ extraEnv: { DATABASE_URL: proxies[0]!.rewrite(w.db.url) } }).start(),
        await w.process({ role: 'worker', extraEnv: { DATABASE_URL: proxies[1]!.rewrite(w.db.url) } }).start(),
      ];
      const job = await approvedRestore(slowBackup, workers[0]);
      await waitForStep(job, RESTORE_FRESH, 'running');
      await waitForQuery('COPY public.events%');
      // Whichever took the job ("A") loses PostgreSQL now; the other ("B") must take over.
      const owner = (
        await w.sql.query<{ owner: string }>('SELECT lease_owner AS owner FROM recovery_jobs WHERE number = $1', [job])
      ).rows[0]!.owner;
      const index = workers.findIndex((p) => owner.split(':')[1] === String(p.pid));
      expect(index, `the lease owner ${owner} is one of the workers`).toBeGreaterThanOrEqual(0);
      const a = workers[index]!;
      expect(pgRestoresOf(a.pid!).length).toBeGreaterThan(0);

      proxies[index]!.cut();
      const cutAt = Date.now();
      let aStoppedAt: number | undefined;
      const takenAt = await waitUntil(
        'worker B to take the job over',
        async () => {
          if (aStoppedAt === undefined && pgRestoresOf(a.pid!).length === 0) aStoppedAt = Date.now();
          const { rows } = await w.sql.query<{ epoch: string }>(
            'SELECT lease_epoch AS epoch FROM recovery_jobs WHERE number = $1',
            [job],
          );
          return Number(rows[0]!.epoch) >= 2 ? Date.now() : undefined;
        },
        20_000,
        20,
      );
      expect(aStoppedAt, "A's pg_restore gone before B took the job over").toBeDefined();
      expect(aStoppedAt!).toBeLessThanOrEqual(takenAt);
      expect(aStoppedAt! - cutAt).toBeLessThan(LEASE_SECONDS * 1000 + 3_000);
      expect(a.running).toBe(true); // cut off, not dead

      const end = await finished(w, job);
      expect(end.state, end.outcome ?? '').toBe('succeeded');
      expect(await app.fingerprint()).toBe(original);
      expect(
        Number(
          (await withClient(app.url, (c) => c.query<{ n: string }>('SELECT count(*) AS n FROM events'))).rows[0]!.n,
        ),
      ).toBe(SLOW_ROWS);
      await expectCleanEnd(job);
      const entries = await auditOf(w, job);
      expect(count(entries, 'step_started', RESTORE_FRESH)).toBe(2);
      expect(count(entries, 'step_succeeded', RESTORE_FRESH)).toBe(1);
      for (const p of workers) await p.stop('SIGKILL');
    } finally {
      await Promise.all(proxies.map((p) => p.stop()));
    }
  });

  test('no log line of any process carries a secret; no AWS call was made', () => {
    if (app.password) expect(w.output().filter((l) => l.includes(app.password))).toEqual([]);
    expect(linesWithSecrets(w.output())).toEqual([]);
    expect(aws.calls).toEqual([]);
  });
});
