// The backup job's steps against the real PostgreSQL and an in-memory RDS: the daily RDS snapshot (once per UTC day,
// scheduled backups only, recorded and tagged), the retention of Lifeline's own snapshots (older than
// retention_days, never its newest, each deletion audited), and the dump's way to its backup name: a pending name
// until its check passed, nothing left when the check fails, and pending dumps of a job that died cleaned up later.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import pg from 'pg';
import { MemoryRds } from '../../src/adapters/aws/memory.js';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { MemoryPager } from '../../src/adapters/pagerduty/memory.js';
import { AlertDesk } from '../../src/domain/backups/alerts.js';
import { createSlackAlertNotifier } from '../../src/delivery/slack/alert-notifier.js';
import { MemoryStore } from '../../src/adapters/backup-store/memory.js';
import { latestBackup, parseBackupName, pendingFinalName } from '../../src/domain/backups/names.js';
import { sidecarName } from '../../src/domain/backups/take.js';
import { RpoWatch } from '../../src/domain/backups/rpo-watch.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { createLogger } from '../../src/shared/log.js';
import type { StepContext } from '../../src/domain/recovery/kind.js';
import { backupKind, type BackupState } from '../../src/domain/recovery/kinds/backup/index.js';
import type { RecoveryJob, Trigger } from '../../src/domain/recovery/model.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testConfigYaml } from '../support/test-config.js';

const INSTANCE = 'prod-db';
const STORE = 's3://lltest-kind-bucket/backups/'; // storeFor hands out the in-memory store

let state: TestDatabase;
let app: TestDatabase;
let db: Db;
let file: FileConfig;
let rds: MemoryRds;
let store: MemoryStore;
let nextJob = 1;

beforeAll(async () => {
  state = await createTestDatabase();
  app = await createTestDatabase();
  const client = new pg.Client({ connectionString: app.url });
  await client.connect();
  await client.query('CREATE TABLE users (id int PRIMARY KEY); INSERT INTO users SELECT generate_series(1, 100)');
  await client.end();
  db = createPool(state.url, createLogger('silent', []));
  await migrate(db);
  file = parseConfigText(
    testConfigYaml({
      environmentsYaml: `  prod:
    database: { url: "${app.url}", rds_instance: ${INSTANCE} }
    backups: { store: "${STORE}", prefix: shop, retention_days: 7, rpo_minutes: 60, drill_schedule: "off" }`,
    }),
    { PD_KEY_ONCALL: 'rk-o', PD_KEY_LEAD: 'rk-l', PD_KEY_CTO: 'rk-c', PD_KEY_CEO: 'rk-e' },
  );
  rds = new MemoryRds();
  rds.setInstance({ id: INSTANCE, status: 'available' });
  store = new MemoryStore(STORE);
});

afterAll(async () => {
  await db?.end();
  await state?.drop();
  await app?.drop();
});

function kind() {
  const log = createLogger('silent', []);
  const notifier = createSlackAlertNotifier(new MemoryChat(), file);
  const alerts = new AlertDesk({ db, pager: new MemoryPager(), notifier, file, log });
  const rpo = new RpoWatch({ file, storeFor: () => store, alerts, observe: () => undefined, log });
  return backupKind({ db, storeFor: () => store, rds, alerts, rpo, observe: () => undefined, log });
}

/** A backup job's row and the context its steps share (state persists from step to step, as the runner's does). */
async function newJob(trigger: Trigger): Promise<StepContext<BackupState>> {
  const { rows } = await db.query<{ number: number }>(
    `INSERT INTO recovery_jobs (kind, env, target, params, requested_by, requested_in, state, needs_approval)
     VALUES ('backup', 'prod', $1, $2, 'lifeline', 'C0EMERGENCY', 'running', false) RETURNING number`,
    [`prod/backup-${nextJob++}`, JSON.stringify({ kind: 'backup', trigger })],
  );
  const job = {
    number: rows[0]!.number,
    kind: 'backup',
    env: 'prod',
    params: { kind: 'backup', trigger },
    createdAt: new Date(),
  } as unknown as RecoveryJob;
  const env = file.environments.prod!;
  const ctx: StepContext<BackupState> = {
    job,
    env,
    state: {},
    signal: new AbortController().signal,
    note: () => undefined,
  };
  await kind().plan(ctx);
  return ctx;
}

function step(ctx: StepContext<BackupState>, name: string) {
  const found = kind()
    .steps(ctx.job, ctx.env)
    .find((s) => kind().stepNames[s.id] === name);
  if (!found) throw new Error(`no step ${name}`);
  return found;
}

/** Runs every step of one backup job the way the runner does; returns each step's name and result line. */
async function runBackup(trigger: Trigger): Promise<[string, string][]> {
  const ctx = await newJob(trigger);
  const results: [string, string][] = [];
  for (const s of kind().steps(ctx.job, ctx.env)) results.push([kind().stepNames[s.id], await s.run(ctx)]);
  return results;
}

const backupNames = () => [...store.objects.keys()].filter((n) => parseBackupName('shop', n) !== undefined);
const pendingNames = () => [...store.objects.keys()].filter((n) => pendingFinalName(n) !== undefined);

describe('the backup job and RDS snapshots', () => {
  test("a scheduled backup takes the day's RDS snapshot once; a second slot that day and a /dr backup do not", async () => {
    const first = await runBackup('schedule');
    expect(first.map(([name]) => name)).toEqual([
      'pg_dump into the store',
      'check the stored backup',
      'daily RDS snapshot',
      'retention',
    ]);
    const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    const id = `${INSTANCE}-lifeline-${today}`;
    expect(first[2]![1]).toContain(`CreateDBSnapshot ${id}`);
    const created = rds.calls.filter((c) => c.method === 'createSnapshot');
    expect(created).toHaveLength(1);
    expect(created[0]!.args).toEqual([INSTANCE, id, { 'created-by': 'lifeline', 'lifeline-env': 'prod' }]);
    expect((await db.query('SELECT id, env, instance FROM rds_snapshots')).rows).toEqual([
      { id, env: 'prod', instance: INSTANCE },
    ]);

    const second = await runBackup('schedule');
    expect(second[2]![1]).toBe(`already taken today: ${id}`);
    const manual = await runBackup('command');
    expect(manual.map(([name]) => name)).toEqual(['pg_dump into the store', 'check the stored backup', 'retention']);
    expect(rds.calls.filter((c) => c.method === 'createSnapshot')).toHaveLength(1);
  });

  test('retention deletes Lifeline snapshots older than retention_days (audited), never its newest, never anyone else’s', async () => {
    const old = `${INSTANCE}-lifeline-20200101`;
    const older = `${INSTANCE}-lifeline-20191231`;
    for (const [snapshot, at] of [
      [old, '2020-01-01T00:00:00Z'],
      [older, '2019-12-31T00:00:00Z'],
    ] as const) {
      rds.setSnapshot({ id: snapshot, instanceId: INSTANCE, status: 'available' });
      await db.query("INSERT INTO rds_snapshots (id, env, instance, created_at) VALUES ($1, 'prod', $2, $3)", [
        snapshot,
        INSTANCE,
        at,
      ]);
    }
    rds.setSnapshot({ id: 'manual-by-a-human', instanceId: INSTANCE, status: 'available' });
    const results = await runBackup('command');
    expect(results.at(-1)![1]).toMatch(/2 RDS snapshots deleted/);
    const deleted = rds.calls.filter((c) => c.method === 'deleteSnapshot').map((c) => c.args[0]);
    expect(deleted.sort()).toEqual([older, old].sort());
    expect(rds.peekSnapshot('manual-by-a-human')).toBeDefined();
    const { rows } = await db.query<{ id: string; deleted: boolean }>(
      'SELECT id, deleted_at IS NOT NULL AS deleted FROM rds_snapshots ORDER BY id',
    );
    expect(
      rows
        .filter((r) => r.deleted)
        .map((r) => r.id)
        .sort(),
    ).toEqual([older, old].sort());
    expect(rows.filter((r) => !r.deleted)).toHaveLength(1); // today's, the newest
    const audit = await db.query<{ detail: string }>(
      "SELECT detail FROM audit_log WHERE action = 'snapshot_deleted' ORDER BY id",
    );
    expect(audit.rows.map((r) => r.detail.split(':')[0]).sort()).toEqual([older, old].sort());

    // Only old ones left: the newest of them stays.
    await db.query("UPDATE rds_snapshots SET created_at = '2020-06-01' WHERE deleted_at IS NULL");
    await runBackup('command');
    expect(rds.calls.filter((c) => c.method === 'deleteSnapshot')).toHaveLength(2);
  });
});

describe('a dump gets its backup name only after its check', () => {
  test('a dump whose check fails leaves nothing under any name: no backup, no pending dump, no sidecar; the catalogue says deleted', async () => {
    store.objects.clear();
    store.calls.length = 0;
    const ctx = await newJob('command');
    await step(ctx, 'pg_dump into the store').run(ctx);
    const taken = ctx.state.taken!;
    expect([...store.objects.keys()]).toEqual([taken.pendingName]);
    // The stored dump rots before it is read back.
    const body = Buffer.from(store.objects.get(taken.pendingName)!.body);
    body.writeUInt8(body.readUInt8(body.length - 10) ^ 0xff, body.length - 10);
    store.put(taken.pendingName, body);
    const err = await step(ctx, 'check the stored backup')
      .run(ctx)
      .catch((e: unknown) => e);
    expect(String((err as Error).message)).toMatch(
      /has sha256 .* not the .* pg_dump wrote; the unchecked dump .* was removed from the store; nothing is under/,
    );
    expect([...store.objects.keys()]).toEqual([]);
    // Nothing was ever written or renamed to the backup name or its sidecar.
    const named = [taken.name, sidecarName(taken.name)];
    const writes = store.calls.filter((c) => c.op === 'write' || c.op === 'rename');
    expect(writes.filter((c) => named.includes(c.name ?? '') || named.includes(c.to ?? ''))).toEqual([]);
    const { rows } = await db.query<{ deleted: boolean; checked: boolean }>(
      'SELECT deleted_at IS NOT NULL AS deleted, checked_at IS NOT NULL AS checked FROM backups WHERE name = $1',
      [taken.name],
    );
    expect(rows).toEqual([{ deleted: true, checked: false }]);
    const audit = await db.query<{ detail: string }>(
      "SELECT detail FROM audit_log WHERE action = 'backup_deleted' AND job = $1",
      [ctx.job.number],
    );
    expect(audit.rows.map((r) => r.detail)).toEqual([`${taken.name}: its check did not pass`]);
  });

  test('a worker that died between the dump and the check leaves no backup name; the next backup job removes that dump once it is a day old', async () => {
    store.objects.clear();
    const died = await newJob('command');
    await step(died, 'pg_dump into the store').run(died);
    const orphan = died.state.taken!.pendingName;
    // What every reader of the store sees: no backup at all.
    expect(backupNames()).toEqual([]);
    expect(latestBackup((await store.list()).flatMap((o) => parseBackupName('shop', o.name) ?? []))).toBeUndefined();

    // The next job, the same day: the orphan may still be a running job's, so it stays.
    const sameDay = await runBackup('command');
    expect(pendingNames()).toEqual([orphan]);
    expect(sameDay.at(-1)![1]).not.toMatch(/unchecked dump/);

    // A day later it is stale: the next job removes it and audits that.
    store.put(orphan, store.objects.get(orphan)!.body, new Date(Date.now() - 25 * 3_600_000));
    // Backup names carry the second: a second job within the same second would take the first one's name.
    await new Promise((resolve) => setTimeout(resolve, 1_005 - (Date.now() % 1_000)));
    const later = await runBackup('command');
    expect(pendingNames()).toEqual([]);
    expect(later.at(-1)![1]).toContain(`1 unchecked dump older than a day deleted (${orphan})`);
    const audit = await db.query<{ detail: string }>(
      "SELECT detail FROM audit_log WHERE action = 'backup_deleted' AND detail LIKE $1",
      [`${orphan}:%`],
    );
    expect(audit.rows.map((r) => r.detail)).toEqual([`${orphan}: an unchecked dump older than a day`]);
    expect(backupNames()).toHaveLength(2); // the two good backups of the later jobs
  });

  test('resumed after the rename (the worker died before the sidecar): the check step checks it where it is and finishes', async () => {
    store.objects.clear();
    const ctx = await newJob('command');
    await step(ctx, 'pg_dump into the store').run(ctx);
    const taken = ctx.state.taken!;
    await store.rename(taken.pendingName, taken.name);
    const line = await step(ctx, 'check the stored backup').run(ctx);
    expect(line).toContain('already under its name');
    expect([...store.objects.keys()].sort()).toEqual([taken.name, sidecarName(taken.name)]);
    const { rows } = await db.query<{ checked: boolean }>(
      'SELECT checked_at IS NOT NULL AS checked FROM backups WHERE name = $1',
      [taken.name],
    );
    expect(rows).toEqual([{ checked: true }]);
  });
});
