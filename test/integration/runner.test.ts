// The recovery runner against the real PostgreSQL and Redis: the lease that fences a job to one worker (taken over
// only after it ran out, a worker cut off from PostgreSQL stopping its step first, writes of a worker that lost it
// refused), step deadlines, a cancel that interrupts, the failure handling of a job resumed inside a destructive
// step, the hand-back on shutdown, and a plan that a duplicate plan trigger can never change.
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { MemoryRds } from '../../src/adapters/aws/memory.js';
import { createBackupStore } from '../../src/adapters/backup-store/stores.js';
import type { BackupStore } from '../../src/adapters/backup-store/port.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { createRecoveryQueue, recoveryTriggers, type RecoveryJobData } from '../../src/delivery/jobs/recovery-queue.js';
import { createLogger } from '../../src/shared/log.js';
import { z } from 'zod';
import { defineKind, type StepDefinition, type StopReason } from '../../src/domain/recovery/kind.js';
import { restoreKind } from '../../src/domain/recovery/kinds/restore/index.js';
import type { JobKind } from '../../src/domain/recovery/model.js';
import { AbortError } from '../../src/pgtools/errors.js';
import { RecoveryRunner } from '../../src/domain/recovery/runner.js';
import { RecoveryService } from '../../src/domain/recovery/service.js';
import * as store from '../../src/domain/recovery/store.js';
import { createSlackRecoveryNotifier } from '../../src/delivery/slack/recovery-notifier.js';
import { apiText } from '../../src/delivery/api/job-view.js';
import type { Said } from '../../src/shared/text.js';
import {
  createTestDatabase,
  dropQueuePrefix,
  TEST_REDIS_URL,
  uniqueQueuePrefix,
  type TestDatabase,
} from '../support/db.js';
import { backupName, createAppDatabase, dumpCustom, type AppDatabase } from '../support/recovery.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { testConfigYaml, USERS } from '../support/test-config.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 30_000 });

const log = createLogger('silent', []);
const EMERGENCY = 'C0EMERGENCY';
/** Short, so take-overs happen in a second or two: the heartbeat is every 500 ms, a worker cut off stops after 1 s. */
const LEASE_MS = 1_500;
const PREFIX = 'shop';

let testDb: TestDatabase;
let db: Db;
let redis: Redis;
let prefix: string;
let queue: Queue<RecoveryJobData>;
let app: AppDatabase;
let folder: string;
let file: FileConfig;
let chat: MemoryChat;
let service: RecoveryService;
const pools: Db[] = [];
let probeJobs = 0;

// ---- a kind whose steps the tests hold, release and watch ----------------------------------------------------------

/** A step that runs until the test releases it, or until its signal fires (then it throws, as a real step does). */
class HeldStep {
  readonly startedAt: number[] = [];
  readonly stoppedAt: number[] = [];
  readonly stopReasons: string[] = [];
  private releases: (() => void)[] = [];

  constructor(
    readonly name: string,
    private readonly options: {
      destructive?: boolean;
      interruptible?: boolean;
      deadlineMs?: number;
      onAbort?: (reason: string) => Error;
    } = {},
  ) {}

  get runs(): number {
    return this.startedAt.length;
  }

  release(): void {
    for (const release of this.releases.splice(0)) release();
  }

  definition(): StepDefinition<object, string> {
    const { deadlineMs, onAbort } = this.options;
    return {
      id: this.name,
      destructive: this.options.destructive ?? false,
      interruptible: this.options.interruptible ?? false,
      ...(deadlineMs !== undefined ? { deadline: () => deadlineMs } : {}),
      run: (ctx) =>
        new Promise<string>((resolve, reject) => {
          this.startedAt.push(Date.now());
          this.releases.push(() => resolve(`${this.name} done`));
          ctx.signal.addEventListener(
            'abort',
            () => {
              const reason = (ctx.signal.reason as Error).message;
              this.stoppedAt.push(Date.now());
              this.stopReasons.push(reason);
              reject(onAbort ? onAbort(reason) : new Error(`stopped: ${reason}`));
            },
            { once: true },
          );
        }),
    };
  }
}

class Probe {
  steps: HeldStep[] = [];
  readonly failures: { step: string; reason: StopReason }[] = [];
  /** Its steps' ids are their names; the test sets them before each job runs. */
  kind<K extends JobKind>(id: K) {
    const steps = () => this.steps;
    return defineKind<K, object, string>({
      id,
      state: z.object({}),
      get stepNames() {
        return Object.fromEntries(steps().map((s) => [s.name, s.name]));
      },
      plan: async () => 'Probe plan.',
      steps: () => this.steps.map((s) => s.definition()),
      onFailure: async (_ctx, step, reason) => {
        this.failures.push({ step, reason });
        return `probe handled "${step}" (${reason})`;
      },
      summarise: (_ctx, succeeded) => ({ headline: succeeded ? 'Probe done.' : 'Probe failed.', verified: [] }),
    });
  }
}

const probe = new Probe();
const notifier = () =>
  createSlackRecoveryNotifier(chat, { keepText: async () => undefined, keepPlan: async () => undefined });

function runner(options: { db?: Db; storeFor?: (url: string) => BackupStore } = {}): RecoveryRunner {
  const restore = restoreKind({
    db: options.db ?? db,
    storeFor: options.storeFor ?? createBackupStore,
    rds: new MemoryRds(),
    parallelJobs: 1,
    pollSeconds: 0.05,
    maxWaitSeconds: 5,
  });
  return new RecoveryRunner({
    db: options.db ?? db,
    file,
    notifier: notifier(),
    queue: recoveryTriggers(queue),
    kinds: {
      restore,
      scale: probe.kind('scale'),
      redeploy: probe.kind('redeploy'),
      backup: probe.kind('backup'),
      drill: probe.kind('drill'),
    },
    approvers: () => service.approvers(),
    log,
    leaseMs: LEASE_MS,
    stepDeadlineMs: 60_000,
  });
}

/** A probe job (a redeploy needs no approval in this config), planned and queued. */
async function queuedProbeJob(): Promise<number> {
  const job = await service.request({
    env: 'prod',
    params: { kind: 'redeploy', service: `probe-${++probeJobs}` },
    actor: USERS.oncall,
    channel: EMERGENCY,
  });
  await runner().plan(job.number);
  expect((await store.getJob(db, job.number))?.state).toBe('queued');
  return job.number;
}

/** The job's row, its outcome as the API shows it (people as <@U…>). */
async function jobRow(
  number: number,
): Promise<{ state: string; outcome: string | null; lease_epoch: string; lease_owner: string | null }> {
  const { rows } = await db.query<{
    state: string;
    outcome: Said | null;
    lease_epoch: string;
    lease_owner: string | null;
  }>('SELECT state, outcome, lease_epoch, lease_owner FROM recovery_jobs WHERE number = $1', [number]);
  const row = rows[0]!;
  return { ...row, outcome: row.outcome && apiText(row.outcome) };
}

async function auditActions(number: number): Promise<string[]> {
  const { rows } = await db.query<{ action: string; detail: string }>(
    'SELECT action, detail FROM audit_log WHERE job = $1 ORDER BY id',
    [number],
  );
  return rows.map((r) => r.action);
}

async function stepStates(number: number): Promise<[string, string][]> {
  const { rows } = await db.query<{ name: string; state: string }>(
    'SELECT name, state FROM recovery_steps WHERE job = $1 ORDER BY step_index',
    [number],
  );
  return rows.map((r) => [r.name, r.state]);
}

/** Lets the job's lease run out on the server's clock, as if its worker's heartbeat had stopped getting through. */
async function expireLease(number: number): Promise<void> {
  await db.query(`UPDATE recovery_jobs SET lease_until = clock_timestamp() - interval '1 second' WHERE number = $1`, [
    number,
  ]);
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = createPool(testDb.url, log);
  await migrate(db);
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  prefix = uniqueQueuePrefix();
  queue = createRecoveryQueue(redis, prefix);
  app = await createAppDatabase(40);
  folder = mkdtempSync(join(tmpdir(), 'lifeline-runner-store-'));
  const environmentsYaml = `  prod:
    database: { url: "${app.url}", verify: [SELECT COUNT(*) FROM users] }
    backups: { store: "file://${folder}", prefix: ${PREFIX}, retention_days: 7, rpo_minutes: 360 }
    require_approval: [restore]`;
  file = parseConfigText(testConfigYaml({ environmentsYaml }), {
    PD_KEY_ONCALL: 'k1',
    PD_KEY_LEAD: 'k2',
    PD_KEY_CTO: 'k3',
    PD_KEY_CEO: 'k4',
  });
});

beforeEach(() => {
  chat = new MemoryChat();
  service = new RecoveryService({ db, file, notifier: notifier(), queue: recoveryTriggers(queue), log });
  probe.steps = [];
  probe.failures.length = 0;
});

afterAll(async () => {
  await queue?.close();
  await redis?.quit();
  await Promise.allSettled(pools.map((p) => p.end()));
  await db?.end();
  await testDb?.drop();
  await app?.drop();
  await dropQueuePrefix(prefix);
  if (folder) rmSync(folder, { recursive: true, force: true });
});

// ---- the lease -----------------------------------------------------------------------------------------------------

describe('one worker per job: the lease', () => {
  test('a write fenced on a lease is refused once another worker took the job over, and changes nothing', async () => {
    const number = await queuedProbeJob();
    const first = (await store.takeLease(db, number, 'worker-a/1', LEASE_MS))!;
    expect(first.epoch).toBe(1);
    expect(await store.takeLease(db, number, 'worker-b/1', LEASE_MS)).toBeUndefined();
    await expireLease(number);
    const second = (await store.takeLease(db, number, 'worker-b/1', LEASE_MS))!;
    expect(second.epoch).toBe(2);

    const before = await auditActions(number);
    await expect(
      store.fenced(db, first, (tx) =>
        store.startStep(tx, number, { index: 0, step: 'late', name: 'late', destructive: true, interruptible: false }),
      ),
    ).rejects.toBeInstanceOf(store.LeaseLostError);
    expect(await store.renewLease(db, first, LEASE_MS)).toBeUndefined();
    expect(await stepStates(number)).toEqual([]);
    expect(await auditActions(number)).toEqual(before);
    await store.fenced(db, second, (tx) =>
      store.startStep(tx, number, {
        index: 0,
        step: 'current',
        name: 'current',
        destructive: false,
        interruptible: false,
      }),
    );
    expect(await stepStates(number)).toEqual([['current', 'running']]);
    await db.query(`UPDATE recovery_jobs SET state = 'failed' WHERE number = $1`, [number]);
  });

  test('a second worker cannot take a running job; once it lost the lease, the first stops, silent', async () => {
    const held = new HeldStep('hold');
    probe.steps = [held];
    const number = await queuedProbeJob();
    const a = runner();
    const b = runner();
    const first = a.run(number);
    await waitUntil('worker A to start the step', () => held.runs === 1);
    expect((await jobRow(number)).lease_epoch).toBe('1');

    // While A's lease is live, B finds the job taken and leaves it alone.
    await b.run(number);
    expect(held.runs).toBe(1);
    await sleep(LEASE_MS); // A's heartbeat keeps the lease alive past its first term
    await b.run(number);
    expect(held.runs).toBe(1);

    await expireLease(number);
    const second = b.run(number);
    await waitUntil('worker B to take the job over', () => held.runs === 2);
    await first;
    expect(held.stopReasons[0]).toMatch(/lost the job's lease/);
    // A wrote nothing after losing the lease: no step result, no failure handling, no transition.
    expect(await auditActions(number)).toEqual(['requested', 'planned', 'step_started', 'step_started']);
    expect(probe.failures).toEqual([]);
    expect((await jobRow(number)).lease_epoch).toBe('2');

    held.release();
    await second;
    expect((await jobRow(number)).state).toBe('succeeded');
    expect(await stepStates(number)).toEqual([['hold', 'succeeded']]);
    expect((await auditActions(number)).filter((a) => a === 'step_succeeded')).toHaveLength(1);
    expect((await jobRow(number)).lease_owner).toBeNull();
  });

  test('cut off from PostgreSQL, a worker stops its step before its lease runs out; another takes over', async () => {
    const held = new HeldStep('restore into a fresh database');
    probe.steps = [held];
    const number = await queuedProbeJob();
    const url = new URL(testDb.url);
    const proxy = await new TcpProxy({ host: url.hostname, port: Number(url.port || 5432) }).start();
    const cutOff = createPool(proxy.rewrite(testDb.url), log);
    pools.push(cutOff);
    const a = runner({ db: cutOff });
    const b = runner();
    const first = a.run(number);
    await waitUntil('worker A to start the step', () => held.runs === 1);
    await sleep(LEASE_MS); // a few heartbeats went through
    proxy.cut();
    const cutAt = Date.now();

    const second = (async () => {
      for (;;) {
        await b.run(number);
        if (held.runs >= 2) return;
        await sleep(50);
      }
    })();
    await first;
    await waitUntil('worker B to take the job over', () => held.runs === 2, 10_000);
    const takenAt = held.startedAt[1]!;
    // A stopped its step within the lease (no renewal got through), before B could take the job over.
    expect(held.stopReasons[0]).toMatch(/lost the job's lease/);
    expect(held.stoppedAt[0]! - cutAt).toBeLessThanOrEqual(LEASE_MS);
    expect(held.stoppedAt[0]).toBeLessThan(takenAt);
    // B took it only after the lease A last renewed had run out: at least a lease minus one heartbeat after the cut.
    expect(takenAt - cutAt).toBeGreaterThanOrEqual(LEASE_MS - LEASE_MS / 3 - 50);
    held.release();
    await second;
    expect((await jobRow(number)).state).toBe('succeeded');
    expect((await auditActions(number)).filter((a) => a === 'step_succeeded')).toHaveLength(1);
    await proxy.stop();
  });

  test('stop() hands a job back: lease given up; a destructive step that changed nothing runs anew', async () => {
    const swap = new HeldStep('swap', {
      destructive: true,
      onAbort: () => new AbortError('the swap was stopped before it committed; nothing was renamed'),
    });
    const after = new HeldStep('verify');
    probe.steps = [swap, after];
    const number = await queuedProbeJob();
    const a = runner();
    const first = a.run(number);
    await waitUntil('the swap to start', () => swap.runs === 1);
    a.stop();
    await first;
    expect(swap.stopReasons).toEqual(['Lifeline is shutting down']);
    const row = await jobRow(number);
    expect(row.state).toBe('running');
    expect(row.lease_owner).toBeNull();
    expect(await stepStates(number)).toEqual([]);
    expect(await auditActions(number)).toEqual(['requested', 'planned', 'step_started', 'step_interrupted']);

    const b = runner();
    const second = b.run(number); // no waiting for a lease to run out
    await waitUntil('the swap to run again on the next worker', () => swap.runs === 2);
    swap.release();
    await waitUntil('verify', () => after.runs === 1);
    after.release();
    await second;
    expect((await jobRow(number)).state).toBe('succeeded');
    expect(probe.failures).toEqual([]);
  });
});

// ---- deadlines, cancel, resume ------------------------------------------------------------------------------------

describe('deadlines, cancel and resume', () => {
  test('a step past its deadline is stopped and fails naming it; the kind’s failure handling runs', async () => {
    const slow = new HeldStep('slow step', { deadlineMs: 1_000 });
    const next = new HeldStep('next');
    probe.steps = [slow, next];
    const number = await queuedProbeJob();
    const started = Date.now();
    await runner().run(number);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    const row = await jobRow(number);
    expect(row.state).toBe('failed');
    expect(row.outcome).toBe(
      '"slow step" failed: it passed its deadline of 1 s and was stopped. probe handled "slow step" (failed)',
    );
    expect(probe.failures).toEqual([{ step: 'slow step', reason: 'failed' }]);
    expect(next.runs).toBe(0);
    expect(await stepStates(number)).toEqual([['slow step', 'failed']]);
  });

  test('/dr cancel interrupts a step that may be interrupted within seconds, and the cleanup runs', async () => {
    const fetch = new HeldStep('restore into a fresh database', { interruptible: true });
    const next = new HeldStep('swap', { destructive: true });
    probe.steps = [fetch, next];
    const number = await queuedProbeJob();
    const running = runner().run(number);
    await waitUntil('the step to start', () => fetch.runs === 1);
    const answer = await service.cancel(number, USERS.oncall);
    const cancelledAt = Date.now();
    expect(answer).toMatchObject({
      immediate: false,
      running: { name: 'restore into a fresh database', interruptible: true },
    });
    await running;
    expect(fetch.stoppedAt[0]! - cancelledAt).toBeLessThan(2_500);
    const row = await jobRow(number);
    expect(row.state).toBe('cancelled');
    expect(row.outcome).toBe(
      `cancelled by <@${USERS.oncall}> during "restore into a fresh database", which was interrupted`,
    );
    expect(probe.failures).toEqual([{ step: 'restore into a fresh database', reason: 'cancelled' }]);
    expect(next.runs).toBe(0);
    expect(await stepStates(number)).toEqual([['restore into a fresh database', 'failed']]);
    const result = chat.calls.find((c) => c.kind === 'post' && c.message.text.startsWith(`JOB-${number} failed`));
    expect(result?.message.text).toContain(
      `Cancelled by <@${USERS.oncall}> during "restore into a fresh database", which was interrupted`,
    );
    expect(result?.message.text).toContain('probe handled "restore into a fresh database" (cancelled)');
    expect(await auditActions(number)).toEqual([
      'requested',
      'planned',
      'step_started',
      'cancel_requested',
      'step_interrupted',
      'cancelled',
    ]);
  });

  test('/dr cancel never cuts a step that may not be interrupted: the job stops (and cleans up) after it', async () => {
    const swap = new HeldStep('swap', { destructive: true });
    const next = new HeldStep('verify', { interruptible: true });
    probe.steps = [swap, next];
    const number = await queuedProbeJob();
    const running = runner().run(number);
    await waitUntil('the swap to start', () => swap.runs === 1);
    const answer = await service.cancel(number, USERS.lead);
    expect(answer.running).toEqual({ name: 'swap', interruptible: false });
    await sleep(LEASE_MS); // several heartbeats saw the cancel
    expect(swap.stoppedAt).toEqual([]);
    swap.release();
    await running;
    const row = await jobRow(number);
    expect(row.state).toBe('cancelled');
    expect(row.outcome).toBe(`cancelled by <@${USERS.lead}> before "verify"`);
    expect(probe.failures).toEqual([{ step: 'verify', reason: 'cancelled' }]);
    expect(next.runs).toBe(0);
    expect(await stepStates(number)).toEqual([['swap', 'succeeded']]);
  });

  test('a job resumed after its worker died inside a destructive step runs the failure handling, says so', async () => {
    const change = new HeldStep('swap', { destructive: true });
    const next = new HeldStep('verify');
    probe.steps = [change, next];
    const number = await queuedProbeJob();
    const a = runner();
    const first = a.run(number);
    await waitUntil('the destructive step to start', () => change.runs === 1);
    // Worker A goes silent inside the step: its lease runs out, and it stops without recording anything.
    await expireLease(number);
    await first;
    expect(await stepStates(number)).toEqual([['swap', 'running']]);

    await runner().run(number);
    expect(change.runs).toBe(1);
    expect(next.runs).toBe(0);
    expect(probe.failures).toEqual([{ step: 'swap', reason: 'failed' }]);
    const row = await jobRow(number);
    expect(row.state).toBe('failed');
    expect(row.outcome).toBe(
      '"swap" failed: the worker running it stopped inside it, and a step that changes things is never run twice. ' +
        'probe handled "swap" (failed)',
    );
    expect(await stepStates(number)).toEqual([['swap', 'failed']]);
  });
});

// ---- the plan ------------------------------------------------------------------------------------------------------

describe('the plan', () => {
  test('plan triggers have one id per job: a repeated trigger is one job in the queue', async () => {
    const triggers = recoveryTriggers(queue);
    await triggers.plan(987_654);
    await triggers.plan(987_654);
    const planned = (await queue.getJobs(['waiting', 'delayed', 'active'])).filter(
      (j) => j.data.kind === 'plan' && j.data.job === 987_654,
    );
    expect(planned.map((j) => j.id)).toEqual(['plan-987654']);
    await triggers.run(987_654, 'lease-3');
    await triggers.run(987_654, 'lease-3');
    const runs = (await queue.getJobs(['waiting', 'delayed', 'active'])).filter(
      (j) => j.data.kind === 'run' && j.data.job === 987_654,
    );
    expect(runs.map((j) => j.id)).toEqual(['run-987654-lease-3']);
  });

  test('two plans at once (a newer backup lands between them): one stored; what runs was approved', async () => {
    const older = backupName(PREFIX, new Date(Date.now() - 2 * 3_600_000), 'dump');
    const newer = backupName(PREFIX, new Date(Date.now() - 3_600_000), 'dump');
    const side = mkdtempSync(join(tmpdir(), 'lifeline-runner-pending-'));
    await dumpCustom(app.url, join(folder, older)); // 40 users
    await app.query(`INSERT INTO users SELECT g, 'late' || g || '@example.com', now() FROM generate_series(41, 55) g`);
    const newerData = await app.fingerprint();
    await dumpCustom(app.url, join(side, newer)); // 55 users, not in the store yet
    await app.query('DELETE FROM users WHERE id > 5'); // the damage the restore repairs

    // The first plan lists the store (only the older backup is there) and is held before it decides.
    let hold: (() => void) | undefined;
    const held = new Promise<void>((resolve) => (hold = resolve));
    let listed = 0;
    const slowFirstList = (url: string): BackupStore => {
      const real = createBackupStore(url);
      return {
        location: real.location,
        list: async () => {
          const objects = await real.list();
          if (++listed === 1) await held;
          return objects;
        },
        read: (name) => real.read(name),
        write: (name, body) => real.write(name, body),
        remove: (name) => real.remove(name),
        rename: (from, to) => real.rename(from, to),
        ...(real.localPath ? { localPath: (name: string) => real.localPath!(name) } : {}),
      };
    };
    const job = await service.request({
      env: 'prod',
      params: { kind: 'restore', source: { type: 'latest' } },
      actor: USERS.oncall,
      channel: EMERGENCY,
    });
    const first = runner({ storeFor: slowFirstList }).plan(job.number);
    await waitUntil('the first plan to list the store', () => listed === 1);
    renameSync(join(side, newer), join(folder, newer));
    rmSync(side, { recursive: true, force: true });
    await runner().plan(job.number); // the second plan sees the newer backup, stores and posts its plan
    hold!();
    await first; // the first plan, on the older backup, finds the job planned and changes nothing

    const planned = (await store.getJob(db, job.number))!;
    expect(planned.state).toBe('awaiting_approval');
    expect(planned.plan).toContain(newer);
    expect(planned.plan).not.toContain(older);
    expect(z.object({ backup: z.object({ name: z.string() }) }).parse(planned.stepState).backup.name).toBe(newer);
    const plans = chat.calls.filter((c) => c.kind === 'post' && c.message.text.startsWith(`JOB-${job.number}:`));
    expect(plans).toHaveLength(1);
    expect(JSON.stringify(plans[0]!.message.blocks)).toContain(newer);
    expect((await auditActions(job.number)).filter((a) => a === 'planned')).toHaveLength(1);

    await service.approve(job.number, USERS.lead);
    await runner().run(job.number);
    const done = await jobRow(job.number);
    expect(done.state, done.outcome ?? '').toBe('succeeded');
    expect(done.outcome).toContain(newer);
    expect(await app.count()).toBe(55);
    expect(await app.fingerprint()).toBe(newerData);
    expect(await app.leftovers()).toEqual([]);
  });
});
