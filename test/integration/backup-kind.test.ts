// The backup job's steps against the real PostgreSQL and an in-memory RDS: the daily RDS snapshot (once per UTC day,
// scheduled backups only, recorded and tagged) and the retention of Lifeline's own snapshots (older than
// retention_days, never its newest, each deletion audited).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import pg from 'pg';
import { MemoryRds } from '../../src/adapters/aws-memory.js';
import { MemoryChat } from '../../src/adapters/chat-memory.js';
import { MemoryPager } from '../../src/adapters/pager-memory.js';
import { AlertDesk } from '../../src/backups/alerts.js';
import { MemoryStore } from '../../src/backups/memory-store.js';
import { RpoWatch } from '../../src/backups/rpo-watch.js';
import { parseConfigText, type FileConfig } from '../../src/config.js';
import { migrate } from '../../src/db/migrate.js';
import { createPool, type Db } from '../../src/db/pool.js';
import { createLogger } from '../../src/log.js';
import type { StepContext } from '../../src/recovery/kind.js';
import { backupKind } from '../../src/recovery/kinds/backup.js';
import type { RecoveryJob, Trigger } from '../../src/recovery/model.js';
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
  const alerts = new AlertDesk({ db, pager: new MemoryPager(), chat: new MemoryChat(), file, log });
  const rpo = new RpoWatch({ file, storeFor: () => store, alerts, observe: () => undefined, log });
  return backupKind({ db, storeFor: () => store, rds, alerts, rpo, observe: () => undefined, log });
}

/** Runs every step of one backup job the way the runner does; returns each step's name and result line. */
async function runBackup(trigger: Trigger): Promise<[string, string][]> {
  const { rows } = await db.query<{ number: number }>(
    `INSERT INTO recovery_jobs (kind, env, target, params, requested_by, requested_in, state, needs_approval)
     VALUES ('backup', 'prod', $1, $2, 'lifeline', 'C0EMERGENCY', 'running', false) RETURNING number`,
    [`prod/backup-${nextJob++}`, JSON.stringify({ kind: 'backup', trigger })],
  );
  const job = { number: rows[0]!.number, kind: 'backup', env: 'prod', params: { kind: 'backup', trigger }, createdAt: new Date() } as unknown as RecoveryJob;
  const env = file.environments.prod!;
  const ctx: StepContext = { job, env, state: {}, signal: new AbortController().signal, note: () => undefined };
  const k = kind();
  await k.plan(ctx);
  const results: [string, string][] = [];
  for (const step of k.steps(job, env)) results.push([step.name, await step.run(ctx)]);
  return results;
}

describe('the backup job and RDS snapshots', () => {
  test("a scheduled backup takes the day's RDS snapshot once; a second slot that day and a /dr backup do not", async () => {
    const first = await runBackup('schedule');
    expect(first.map(([name]) => name)).toEqual(['pg_dump into the store', 'check the stored backup', 'daily RDS snapshot', 'retention']);
    const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    const id = `${INSTANCE}-lifeline-${today}`;
    expect(first[2]![1]).toContain(`CreateDBSnapshot ${id}`);
    const created = rds.calls.filter((c) => c.method === 'createSnapshot');
    expect(created).toHaveLength(1);
    expect(created[0]!.args).toEqual([INSTANCE, id, { 'created-by': 'lifeline', 'lifeline-env': 'prod' }]);
    expect((await db.query('SELECT id, env, instance FROM rds_snapshots')).rows).toEqual([{ id, env: 'prod', instance: INSTANCE }]);

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
      await db.query("INSERT INTO rds_snapshots (id, env, instance, created_at) VALUES ($1, 'prod', $2, $3)", [snapshot, INSTANCE, at]);
    }
    rds.setSnapshot({ id: 'manual-by-a-human', instanceId: INSTANCE, status: 'available' });
    const results = await runBackup('command');
    expect(results.at(-1)![1]).toMatch(/2 RDS snapshots deleted/);
    const deleted = rds.calls.filter((c) => c.method === 'deleteSnapshot').map((c) => c.args[0]);
    expect(deleted.sort()).toEqual([older, old].sort());
    expect(rds.peekSnapshot('manual-by-a-human')).toBeDefined();
    const { rows } = await db.query<{ id: string; deleted: boolean }>('SELECT id, deleted_at IS NOT NULL AS deleted FROM rds_snapshots ORDER BY id');
    expect(rows.filter((r) => r.deleted).map((r) => r.id).sort()).toEqual([older, old].sort());
    expect(rows.filter((r) => !r.deleted)).toHaveLength(1); // today's, the newest
    const audit = await db.query<{ detail: string }>("SELECT detail FROM audit_log WHERE action = 'snapshot_deleted' ORDER BY id");
    expect(audit.rows.map((r) => r.detail.split(':')[0]).sort()).toEqual([older, old].sort());

    // Only old ones left: the newest of them stays.
    await db.query("UPDATE rds_snapshots SET created_at = '2020-06-01' WHERE deleted_at IS NULL");
    await runBackup('command');
    expect(rds.calls.filter((c) => c.method === 'deleteSnapshot')).toHaveLength(2);
  });
});
