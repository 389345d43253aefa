// Jobs stored before typed kinds (steps named by their display text, people as <@U…> in outcomes and step details)
// after migration 008: known step names get their ids and such a job resumes at the right step; a step name no kind
// knows, or a stored state that does not fit its kind, fails the job saying why, and nothing more runs.
import { createSlackAlertNotifier } from '../../src/delivery/slack/alert-notifier.js';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MemoryEcs, MemoryLogs, MemoryRds } from '../../src/adapters/aws/memory.js';
import { createBackupStore } from '../../src/adapters/backup-store/stores.js';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { createRecoveryQueue, recoveryTriggers, type RecoveryJobData } from '../../src/delivery/jobs/recovery-queue.js';
import { createSlackRecoveryNotifier } from '../../src/delivery/slack/recovery-notifier.js';
import { kindsTable } from '../../src/domain/recovery/kinds/index.js';
import { RecoveryRunner } from '../../src/domain/recovery/runner.js';
import * as store from '../../src/domain/recovery/store.js';
import { AlertDesk } from '../../src/domain/backups/alerts.js';
import { RpoWatch } from '../../src/domain/backups/rpo-watch.js';
import { MemoryPager } from '../../src/adapters/pagerduty/memory.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { createLogger } from '../../src/shared/log.js';
import {
  createTestDatabase,
  dropQueuePrefix,
  TEST_REDIS_URL,
  uniqueQueuePrefix,
  type TestDatabase,
} from '../support/db.js';
import { testConfigYaml } from '../support/test-config.js';

const log = createLogger('silent', []);
const MIGRATIONS = fileURLToPath(new URL('../../migrations/', import.meta.url));

let testDb: TestDatabase;
let db: Db;
let redis: Redis;
let prefix: string;
let queue: Queue<RecoveryJobData>;
let before: string;
let file: FileConfig;
const ecs = new MemoryEcs();

/** A job as the code before typed kinds wrote it, with its steps; returns its number. */
async function oldJob(
  kind: string,
  params: object,
  state: string,
  stepState: object,
  outcome: string | null,
  steps: { name: string; state: string; detail: string; destructive?: boolean }[],
): Promise<number> {
  const { rows } = await db.query<{ number: number }>(
    `INSERT INTO recovery_jobs (kind, env, target, params, requested_by, requested_in, state, needs_approval, step_state,
       outcome, started_at)
     VALUES ($1, 'prod', $2, $3, 'U0ONCALL', 'C0EMERGENCY', $4, false, $5, $6, now()) RETURNING number`,
    [kind, `prod/${kind}-${Math.random()}`, JSON.stringify(params), state, JSON.stringify(stepState), outcome],
  );
  const number = rows[0]!.number;
  for (const [index, step] of steps.entries()) {
    await db.query(
      `INSERT INTO recovery_steps (job, step_index, name, destructive, state, finished_at, detail)
       VALUES ($1, $2, $3, $4, $5, now(), $6)`,
      [number, index, step.name, step.destructive ?? false, step.state, step.detail],
    );
  }
  return number;
}

async function stepRows(job: number): Promise<{ step: string | null; name: string; state: string; detail: unknown }[]> {
  const { rows } = await db.query<{ step: string | null; name: string; state: string; detail: unknown }>(
    'SELECT step, name, state, detail FROM recovery_steps WHERE job = $1 ORDER BY step_index',
    [job],
  );
  return rows;
}

function runner(): RecoveryRunner {
  const chat = new MemoryChat();
  const alerts = new AlertDesk({
    db,
    pager: new MemoryPager(),
    notifier: createSlackAlertNotifier(chat, file),
    file,
    log,
  });
  const rpo = new RpoWatch({ file, storeFor: createBackupStore, alerts, observe: () => undefined, log });
  const waits = { pollSeconds: 0.05, maxWaitSeconds: 5 };
  return new RecoveryRunner({
    db,
    file,
    notifier: createSlackRecoveryNotifier(chat, { keepText: async () => undefined, keepPlan: async () => undefined }),
    queue: recoveryTriggers(queue),
    kinds: kindsTable({
      restore: { db, storeFor: createBackupStore, rds: new MemoryRds(), parallelJobs: 1, ...waits },
      ecs: { ecs, logs: new MemoryLogs(), ...waits },
      backup: { db, storeFor: createBackupStore, rds: new MemoryRds(), alerts, rpo, observe: () => undefined, log },
      drill: { db, storeFor: createBackupStore, parallelJobs: 1, observe: () => undefined },
    }),
    approvers: () => [],
    log,
    leaseMs: 5_000,
    stepDeadlineMs: 60_000,
  });
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = createPool(testDb.url, log);
  // The schema as it was before migration 008.
  before = mkdtempSync(join(tmpdir(), 'lifeline-migrations-'));
  for (const name of readdirSync(MIGRATIONS).filter((n) => n < '008'))
    cpSync(join(MIGRATIONS, name), join(before, name));
  await migrate(db, `${before}/`);
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  prefix = uniqueQueuePrefix();
  queue = createRecoveryQueue(redis, prefix);
  const environmentsYaml = `  prod:
    database: { url: "${testDb.url}", verify: [SELECT 1] }
    backups: { store: "file://${before}", prefix: shop, retention_days: 7, rpo_minutes: 360 }
    ecs: { cluster: main, services: [api], max_count: 10 }
    require_approval: []`;
  file = parseConfigText(testConfigYaml({ environmentsYaml }), {
    PD_KEY_ONCALL: 'k1',
    PD_KEY_LEAD: 'k2',
    PD_KEY_CTO: 'k3',
    PD_KEY_CEO: 'k4',
  });
});

afterAll(async () => {
  await queue?.close();
  await redis?.quit();
  await db?.end();
  await testDb?.drop();
  await dropQueuePrefix(prefix);
  if (before) rmSync(before, { recursive: true, force: true });
});

describe('migration 008: jobs stored before typed kinds', () => {
  let resumable: number;
  let unknownStep: number;
  let unfitState: number;
  let cancelled: number;

  test('maps known step names to ids, leaves unknown ones without, and turns <@U…> into person parts', async () => {
    resumable = await oldJob(
      'scale',
      { kind: 'scale', service: 'api', count: 3 },
      'running',
      { before: { desired: 2, running: 2 } },
      null,
      [{ name: 'set desired count', state: 'succeeded', detail: 'desired count set to 3', destructive: true }],
    );
    unknownStep = await oldJob('redeploy', { kind: 'redeploy', service: 'api' }, 'running', {}, null, [
      { name: 'force a new deployment (old wording)', state: 'succeeded', detail: 'deployment started' },
    ]);
    unfitState = await oldJob(
      'drill',
      { kind: 'drill', trigger: 'command' },
      'running',
      { startedAt: 'yesterday' },
      null,
      [],
    );
    cancelled = await oldJob(
      'scale',
      { kind: 'scale', service: 'web', count: 1 },
      'cancelled',
      {},
      'cancelled by <@U0LEAD> during "wait until running = desired", which was interrupted',
      [
        { name: 'set desired count', state: 'succeeded', detail: 'desired count set to 1', destructive: true },
        {
          name: 'wait until running = desired',
          state: 'failed',
          detail: 'interrupted: cancelled by <@U0LEAD> before it changed anything',
        },
      ],
    );

    // 008 first; the migrations after it concern other tables.
    expect((await migrate(db))[0]).toBe('008_step_ids_and_said.sql');

    expect((await stepRows(resumable)).map((s) => [s.step, s.name, s.detail])).toEqual([
      ['set-desired', 'set desired count', ['desired count set to 3']],
    ]);
    expect((await stepRows(unknownStep)).map((s) => s.step)).toEqual([null]);
    expect((await stepRows(cancelled)).map((s) => [s.step, s.detail])).toEqual([
      ['set-desired', ['desired count set to 1']],
      ['wait-running', ['interrupted: cancelled by ', { person: 'U0LEAD' }, ' before it changed anything']],
    ]);
    expect((await store.getJob(db, cancelled))?.outcome).toEqual([
      'cancelled by ',
      { person: 'U0LEAD' },
      ' during "wait until running = desired", which was interrupted',
    ]);
    expect((await store.getJob(db, resumable))?.outcome).toBeUndefined();
  });

  test('a job interrupted after its first step resumes at the second: the finished step does not run again', async () => {
    ecs.setService({ cluster: 'main', name: 'api', desired: 3 });
    await runner().run(resumable);
    const job = await store.getJob(db, resumable);
    expect(job?.state).toBe('succeeded');
    expect(job?.outcome).toEqual(['Scaled api (prod) to 3: 3 running.']);
    expect(ecs.calls.filter((c) => c.method === 'setDesiredCount')).toEqual([]);
    expect((await stepRows(resumable)).map((s) => [s.step, s.state])).toEqual([
      ['set-desired', 'succeeded'],
      ['wait-running', 'succeeded'],
    ]);
  });

  test('a job whose recorded step no kind knows fails saying which, and nothing more runs', async () => {
    const calls = ecs.calls.length;
    await runner().run(unknownStep);
    const job = await store.getJob(db, unknownStep);
    expect(job?.state).toBe('failed');
    expect(job?.outcome).toEqual([
      'could not resume: its step 1 was recorded as "force a new deployment (old wording)", which this version of ' +
        'Lifeline does not run there (it runs "force new deployment"); nothing more was run, check the job\'s target ' +
        'by hand',
    ]);
    expect(ecs.calls.length).toBe(calls);
    expect((await stepRows(unknownStep)).map((s) => [s.step, s.state])).toEqual([[null, 'succeeded']]);
  });

  test('a job whose stored state does not fit its kind fails naming the kind, the step and the path; nothing runs', async () => {
    await runner().run(unfitState);
    const job = await store.getJob(db, unfitState);
    expect(job?.state).toBe('failed');
    const outcome = job?.outcome?.join('') ?? '';
    expect(outcome).toMatch(/^could not resume: its stored drill state does not fit this version of Lifeline/);
    expect(outcome).toContain('at "preflight: latest backup readable"');
    expect(outcome).toMatch(/startedAt: .*expected number/i);
    expect(await stepRows(unfitState)).toEqual([]);
  });
});
