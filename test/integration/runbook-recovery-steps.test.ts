// The restore and backup runbook steps against the real recovery jobs: PostgreSQL, a file:// store, the recovery
// service and runner with the real restore and backup kinds (their triggers run in-process instead of through
// BullMQ). A job the run's approval covers asks for no approval of its own, a resumed step re-attaches to its job
// instead of starting another, a failed job fails the step and Retry starts a new one, and the restore reports the
// restored data's age.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MemoryEcs, MemoryLogs, MemoryRds } from '../../src/adapters/aws/memory.js';
import { createBackupStore } from '../../src/adapters/backup-store/stores.js';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { MemoryPager } from '../../src/adapters/pagerduty/memory.js';
import { createSlackAlertNotifier } from '../../src/delivery/slack/alert-notifier.js';
import { createSlackRecoveryNotifier } from '../../src/delivery/slack/recovery-notifier.js';
import { AlertDesk } from '../../src/domain/backups/alerts.js';
import { RpoWatch } from '../../src/domain/backups/rpo-watch.js';
import { kindsTable } from '../../src/domain/recovery/kinds/index.js';
import type { RecoveryQueue } from '../../src/domain/recovery/notifier.js';
import { RecoveryRunner } from '../../src/domain/recovery/runner.js';
import { RecoveryService } from '../../src/domain/recovery/service.js';
import { createRecoveryJobs } from '../../src/domain/runbooks/recovery-jobs.js';
import { backupKind } from '../../src/domain/runbooks/steps/backup/index.js';
import type { RecoveryJobsPort } from '../../src/domain/runbooks/steps/recovery-jobs.js';
import { restoreKind } from '../../src/domain/runbooks/steps/restore/index.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { createLogger } from '../../src/shared/log.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { backupName, createAppDatabase, dumpCustom, type AppDatabase } from '../support/recovery.js';
import { RUN, stepHarness } from '../support/step-harness.js';
import { testConfigYaml } from '../support/test-config.js';

const log = createLogger('silent', []);
const PREFIX = 'shop';
let testDb: TestDatabase;
let db: Db;
let app: AppDatabase;
let folder: string;
let emptyFolder: string;
let file: FileConfig;
let jobs: RecoveryJobsPort;
let takenAt: Date;
const running: Promise<unknown>[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = createPool(testDb.url, log);
  await migrate(db);
  app = await createAppDatabase(30);
  folder = mkdtempSync(join(tmpdir(), 'lifeline-runbook-store-'));
  emptyFolder = mkdtempSync(join(tmpdir(), 'lifeline-runbook-empty-'));
  takenAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 20 * 60_000);
  await dumpCustom(app.url, join(folder, backupName(PREFIX, takenAt, 'dump')));
  const environmentsYaml = `  prod:
    database: { url: "${app.url}", verify: [SELECT COUNT(*) FROM users] }
    backups: { store: "file://${folder}", prefix: ${PREFIX}, retention_days: 7, rpo_minutes: 360, drill_schedule: "off" }
    require_approval: [restore]
  empty:
    database: { url: "${app.url}" }
    backups: { store: "file://${emptyFolder}", prefix: ${PREFIX}, retention_days: 7, rpo_minutes: 360, drill_schedule: "off" }`;
  file = parseConfigText(testConfigYaml({ environmentsYaml }), {
    PD_KEY_ONCALL: 'k1',
    PD_KEY_LEAD: 'k2',
    PD_KEY_CTO: 'k3',
    PD_KEY_CEO: 'k4',
  });
  const chat = new MemoryChat();
  const notifier = createSlackRecoveryNotifier(chat, {
    keepText: async () => undefined,
    keepPlan: async () => undefined,
  });
  const alerts = new AlertDesk({
    db,
    pager: new MemoryPager(),
    notifier: createSlackAlertNotifier(chat, file),
    file,
    log,
  });
  const rpo = new RpoWatch({ file, storeFor: createBackupStore, alerts, observe: () => undefined, log });
  const rds = new MemoryRds();
  const kinds = kindsTable({
    restore: { db, storeFor: createBackupStore, rds, parallelJobs: 1, pollSeconds: 0.05, maxWaitSeconds: 5 },
    ecs: { ecs: new MemoryEcs(), logs: new MemoryLogs(), pollSeconds: 0.05, maxWaitSeconds: 5 },
    backup: { db, storeFor: createBackupStore, rds, alerts, rpo, observe: () => undefined, log },
    drill: { db, storeFor: createBackupStore, parallelJobs: 1, observe: () => undefined },
  });
  // The triggers BullMQ would deliver, run in this process as they come.
  const queue: RecoveryQueue = {
    plan: async (job) => void running.push(runner.plan(job)),
    run: async (job) => void running.push(runner.run(job)),
    expireAt: async () => undefined,
  };
  const service = new RecoveryService({ db, file, notifier, queue, log });
  const runner: RecoveryRunner = new RecoveryRunner({
    db,
    file,
    notifier,
    queue,
    kinds,
    approvers: (job) => service.approversFor(job),
    log,
    leaseMs: 5_000,
    stepDeadlineMs: 60_000,
  });
  jobs = createRecoveryJobs({ db, file, storeFor: createBackupStore, service });
});

afterAll(async () => {
  await Promise.allSettled(running);
  await db?.end();
  await testDb?.drop();
  await app?.drop();
  for (const dir of [folder, emptyFolder]) if (dir) rmSync(dir, { recursive: true, force: true });
});

const deps = () => ({ recoveryJobs: jobs, pollMs: 50 });

async function jobRows(): Promise<{ number: number; kind: string; state: string; needs_approval: boolean }[]> {
  const { rows } = await db.query<{ number: number; kind: string; state: string; needs_approval: boolean }>(
    'SELECT number, kind, state, needs_approval FROM recovery_jobs ORDER BY number',
  );
  return rows;
}

describe('restore and backup runbook steps', () => {
  test('plans name the backup, or what is missing: an unknown env, no backup', async () => {
    const plan = await stepHarness(restoreKind, { env: 'prod' }, deps()).plan();
    expect(plan.missing).toEqual([]);
    expect(plan.does).toContain(`would restore the prod database from ${backupName(PREFIX, takenAt, 'dump')} (taken `);
    expect((await stepHarness(restoreKind, { env: 'empty' }, deps()).plan()).missing).toEqual([
      `no backup of empty in file://${emptyFolder}`,
    ]);
    expect(
      (await stepHarness(restoreKind, { env: 'prod', backup: 'shop_20200101_000000.dump' }, deps()).plan()).missing,
    ).toEqual([`no backup shop_20200101_000000.dump in file://${folder}`]);
    expect((await stepHarness(backupKind, { env: 'nowhere' }, deps()).plan()).missing).toEqual([
      'unknown environment "nowhere" (environments: prod, empty)',
    ]);
    expect(await jobRows()).toEqual([]);
  });

  test('a restore runs as a job with no approval of its own, re-attached when resumed, and reports the data age', async () => {
    const step = stepHarness(restoreKind, { env: 'prod', backup: 'latest' }, deps());
    await step.run();
    // A restart after the job started: the resumed step finds the job in its state and starts no other.
    step.restart();
    await step.run();
    const result = await step.check();
    const rows = await jobRows();
    expect(rows).toEqual([{ number: 1, kind: 'restore', state: 'succeeded', needs_approval: false }]);
    expect(result.detail).toBe(`JOB-1: Restored prod from ${backupName(PREFIX, takenAt, 'dump')}.`);
    expect(result.outputs).toEqual({ job: 'JOB-1', backup: backupName(PREFIX, takenAt, 'dump') });
    expect(result.dataAgeMs).toBeGreaterThanOrEqual(20 * 60_000);
    expect(result.dataAgeMs).toBeLessThan(25 * 60_000);
    expect(step.changes).toEqual([
      'asking for a job: restore prod from the latest backup',
      'JOB-1 started: restore prod from the latest backup',
    ]);
    const { rows: audit } = await db.query<{ actor: string; action: string; detail: string }>(
      `SELECT actor, action, detail FROM audit_log WHERE job = 1 AND action = 'requested'`,
    );
    expect(audit).toEqual([
      {
        actor: RUN.requestedBy,
        action: 'requested',
        detail: `restore prod database from the latest backup (approved as RUN-${RUN.number}'s approval)`,
      },
    ]);
  });

  test('a crash between asking and recording the job: the resumed step re-attaches to the job it asked for', async () => {
    let dies = true;
    const dying: RecoveryJobsPort = {
      ...jobs,
      start: async (intent, by) => {
        const number = await jobs.start(intent, by);
        if (!dies) return number;
        dies = false;
        throw new Error('worker died');
      },
    };
    const before = (await jobRows()).length;
    const step = stepHarness(backupKind, { env: 'prod' }, { recoveryJobs: dying, pollMs: 50 });
    await expect(step.run()).rejects.toThrow('worker died');
    step.restart();
    await step.run();
    const result = await step.check();
    const rows = await jobRows();
    expect(rows.slice(before)).toEqual([
      { number: before + 1, kind: 'backup', state: 'succeeded', needs_approval: false },
    ]);
    expect(step.changes).toEqual(['asking for a job: back up prod', `re-attached to JOB-${before + 1} (back up prod)`]);
    expect(result.outputs.job).toBe(`JOB-${before + 1}`);
    expect(result.outputs.backup).toMatch(/^shop_\d{8}_\d{6}\.dump$/);
  });

  test('a job that fails fails the step with its outcome; Retry starts a new job', async () => {
    const before = (await jobRows()).length;
    const step = stepHarness(restoreKind, { env: 'empty' }, deps());
    await step.run();
    await expect(step.check()).rejects.toThrow(
      `JOB-${before + 1} did not succeed: There is no backup of empty in file://${emptyFolder}.`,
    );
    await step.run();
    await expect(step.check()).rejects.toThrow(`JOB-${before + 2} did not succeed`);
    expect((await jobRows()).slice(before).map((r) => r.state)).toEqual(['failed', 'failed']);
  });
});
