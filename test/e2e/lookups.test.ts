// Lookups and recovery jobs never wait for each other: /dr logs, status, backups and restore list
// run on their own queue and worker. The real process (node dist/main.js); FakeAws answers ECS and CloudWatch Logs,
// behind a gate that holds FilterLogEvents (a slow log read); the restore is a real pg_restore into PostgreSQL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { World, type Sent } from '../support/e2e.js';
import { AwsGate } from '../support/aws-gate.js';
import { FakeAws } from '../support/fake-aws.js';
import { USERS } from '../support/lifeline-process.js';
import { backupName, createAppDatabase, dumpCustom, jobRow, replyJob, type AppDatabase } from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 90_000 });

const LOG_GROUP = '/ecs/prod/app';
const SERVICES = ['s1', 's2', 's3', 's4'];
/** The recovery worker's concurrency in src/delivery/jobs/recovery-queue.ts, and the lookups worker's. */
const SLOTS = 4;

let w: World;
let app: AppDatabase;
let fake: FakeAws;
let gate: AwsGate;
let store: string;
let scratch: string;

beforeAll(async () => {
  app = await createAppDatabase(200);
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-lookups-store-'));
  scratch = mkdtempSync(join(tmpdir(), 'lifeline-e2e-lookups-tmp-'));
  await dumpCustom(app.url, join(store, backupName('shop', new Date(Date.now() - 30 * 60_000), 'dump')));
  fake = await new FakeAws().start();
  for (const name of SERVICES) fake.ecs.setService({ cluster: 'prod', name, desired: 1 });
  fake.logs.addEvents(LOG_GROUP, [{ at: Date.now() - 60_000, message: 'GET /health 200' }]);
  gate = await new AwsGate(fake.url).start();
  const environmentsYaml = `  prod:
    database: { url: "${app.configUrl}", verify: [SELECT COUNT(*) FROM users] }
    backups: { store: "file://${store}", prefix: shop, retention_days: 7, rpo_minutes: 360, drill_schedule: "off" }
    ecs: { cluster: prod, services: [${SERVICES.join(', ')}], log_group: ${LOG_GROUP} }`;
  w = await World.create({
    config: { steps: [{ after_minutes: 0, notify: 'oncall' }], environmentsYaml },
    extraEnv: {
      ...fake.env(),
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: gate.url,
      LIFELINE_AWS_POLL_SECONDS: '0.1',
      TMPDIR: scratch,
    },
  });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
  await Promise.allSettled([gate?.stop(), fake?.stop(), app?.drop()]);
  for (const dir of [store, scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
});

function dr(text: string): Promise<Sent> {
  return w.command(text, { user: USERS.oncall }, '/dr');
}

async function startJob(text: string): Promise<number> {
  return (await replyJob(w, await dr(text))).job;
}

async function jobsIn(state: string): Promise<number> {
  const { rows } = await w.sql.query<{ n: string }>('SELECT count(*) AS n FROM recovery_jobs WHERE state = $1', [
    state,
  ]);
  return Number(rows[0]!.n);
}

describe('lookups and recovery jobs do not wait for each other', () => {
  test('with every lookup slot held by slow log reads, a restore is planned and run at once', async () => {
    gate.hold('FilterLogEvents');
    const reads: Sent[] = [];
    for (let i = 0; i < SLOTS + 2; i++) reads.push(await dr('logs prod s1 --since 15m'));
    await waitUntil(`${SLOTS} log reads held at the gate`, () => gate.held === SLOTS, 10_000);

    const job = await startJob('restore prod latest');
    const end = await waitUntil(
      `JOB-${job} to finish`,
      async () => {
        const row = await jobRow(w, job);
        return row && ['succeeded', 'failed'].includes(row.state) ? row : undefined;
      },
      45_000,
      100,
    );
    expect(end.state).toBe('succeeded');
    expect(await app.count()).toBe(200);
    // All the while, no log read had its answer: they were still waiting on CloudWatch Logs.
    expect(reads.map((r) => w.replies(r))).toEqual(reads.map(() => []));

    gate.release();
    await waitUntil('an answer to every log read', () => reads.every((r) => w.replies(r).length > 0), 20_000);
  });

  test('with every recovery slot held by running jobs, /dr status, backups and restore list are answered at once', async () => {
    fake.ecs.convergePolls = 1_000_000; // a scale that never settles: each job keeps its worker slot
    for (const service of SERVICES) await startJob(`scale prod ${service} 3`);
    await waitUntil(`${SLOTS} scale jobs running`, async () => (await jobsIn('running')) === SLOTS, 20_000, 100);

    for (const text of ['status prod', 'backups prod', 'restore prod list']) {
      const sent = await dr(text);
      const answer = await w.reply(sent, 10_000);
      expect(answer, text).not.toMatch(/failed/);
    }
    expect(await jobsIn('running')).toBe(SLOTS);

    for (const name of SERVICES) fake.ecs.setService({ cluster: 'prod', name, desired: 3 });
    await waitUntil('every scale job to succeed', async () => (await jobsIn('succeeded')) === 1 + SLOTS, 30_000, 100);
  });
});
