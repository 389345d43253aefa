// /dr against AWS end to end: the real process (node dist/main.js) with the real AWS SDK serialising RDS (query
// protocol), ECS and CloudWatch Logs (JSON 1.1) to FakeAws and S3 (path-style) to S3StandIn, reached only through
// AWS_ENDPOINT_URL_RDS / _ECS / _CLOUDWATCH_LOGS / _S3 in the process environment. Covers scale, redeploy (completed
// and failed rollouts), a refused UpdateService, logs at the response_url (escaped, bounded), status, the backup and
// snapshot listing, the RDS snapshot restore, a worker killed mid-job and resumed, and cancel.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { statusesUntil } from '../../src/adapters/aws/memory.js';
import { allText, linesWithSecrets, stillAfter, World, type Sent } from '../support/e2e.js';
import { FakeAws, type FakeAwsCall } from '../support/fake-aws.js';
import { S3StandIn } from '../../src/adapters/backup-store/stand-in.js';
import type { SlackCall } from '../../src/adapters/slack/stand-in.js';
import { USERS } from '../support/lifeline-process.js';
import {
  approvablePlan,
  auditOf,
  backupName,
  buttonsOf,
  clickButton,
  finished,
  jobCount,
  jobNumberIn,
  jobRow,
  planPost,
  progressOf,
  replyJob,
  resultText,
  updatesOf,
} from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const CLUSTER = 'prod-cluster';
const LOG_GROUP = '/ecs/production/app';
const INSTANCE = 'production-db';
const SNAPSHOT = 'prod-nightly-1';
const AUTOMATED = 'rds:production-db-2024-05-01-06-00';
const BUCKET = 'lifeline-backups';
const PREFIX = 'shop';
const DB_PASSWORD = `prod-pw-${randomBytes(6).toString('hex')}`;
const AWS_SECRET = 'fake-aws-secret-key'; // FakeAws.env()'s AWS_SECRET_ACCESS_KEY

const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const ago = (minutes: number) => new Date(now.getTime() - minutes * 60_000);
const dumpName = backupName(PREFIX, ago(60), 'dump'); // inside the 6 h RPO
const sqlName = backupName(PREFIX, ago(600), 'sql.gz'); // outside it
const safetyName = backupName(`${PREFIX}_pre-restore`, ago(30), 'dump'); // a safety copy: listed, never the newest backup
const nestedName = backupName(PREFIX, ago(5), 'dump'); // under a sub-folder of the prefix: not in this store
const staleStaging = backupName(PREFIX, ago(2 * 24 * 60), 'dump');

let w: World;
let fake: FakeAws;
let s3: S3StandIn;
let health: Server;
let healthBase = '';

beforeAll(async () => {
  fake = await new FakeAws().start();
  s3 = await new S3StandIn({ bucket: BUCKET }).start();
  // The env's health_url: 200 on /health, 503 on /down, each after 40 ms.
  health = createServer((req, res) => {
    setTimeout(() => {
      res.writeHead(req.url === '/health' ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(req.url === '/health' ? 'ok' : 'down');
    }, 40);
  });
  await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', resolve));
  healthBase = `http://127.0.0.1:${(health.address() as AddressInfo).port}`;

  fake.rds.setInstance({
    id: INSTANCE,
    instanceClass: 'db.r6g.large',
    subnetGroupName: 'prod-subnets',
    vpcSecurityGroupIds: ['sg-0prod'],
    multiAz: true,
    publiclyAccessible: false,
  });
  fake.rds.setSnapshot({ id: SNAPSHOT, instanceId: INSTANCE, type: 'manual', createdAt: ago(120) });
  fake.rds.setSnapshot({ id: AUTOMATED, instanceId: INSTANCE, type: 'automated', createdAt: ago(300) });
  fake.rds.setSnapshot({ id: 'prod-before-migration', instanceId: INSTANCE, type: 'manual', createdAt: ago(26 * 60) });
  fake.rds.setSnapshot({ id: 'other-db-snap', instanceId: 'other-db', type: 'manual', createdAt: ago(10) });
  fake.ecs.setService({ cluster: CLUSTER, name: 'web', desired: 2 });
  fake.ecs.setService({ cluster: CLUSTER, name: 'api', desired: 3 });
  fake.ecs.setService({ cluster: CLUSTER, name: 'worker', desired: 1 });
  fake.logs.addEvents(LOG_GROUP, []);

  s3.objects.set(`production/${dumpName}`, Buffer.alloc(2.5 * 1024 * 1024, 1));
  s3.objects.set(`production/${sqlName}`, Buffer.alloc(1536, 2));
  s3.objects.set(`production/${safetyName}`, Buffer.alloc(512 * 1024, 3));
  s3.objects.set(`production/${dumpName}.sha256`, Buffer.from('not a backup\n'));
  s3.objects.set(`production/archive/${nestedName}`, Buffer.alloc(100, 4));
  s3.objects.set(`staging/${staleStaging}`, Buffer.alloc(1024, 5));

  const environmentsYaml = `  production:
    database:
      url: "postgres://app:${DB_PASSWORD}@db.production.internal:5432/app"
      rds_instance: ${INSTANCE}
      verify: [SELECT 1]
    backups: { store: "s3://${BUCKET}/production/", prefix: ${PREFIX}, retention_days: 30, rpo_minutes: 360 }
    ecs: { cluster: ${CLUSTER}, services: [web, api, worker], log_group: ${LOG_GROUP}, max_count: 10 }
    health_url: "${healthBase}/health"
    require_approval: [restore, scale, redeploy]
  staging:
    database: { url: "postgres://127.0.0.1:5432/staging_unused" }
    backups: { store: "s3://${BUCKET}/staging/", prefix: ${PREFIX}, retention_days: 7, rpo_minutes: 1440 }
    health_url: "${healthBase}/down"
  dev:
    database: { url: "postgres://127.0.0.1:5432/dev_unused" }
    backups: { store: "s3://${BUCKET}/dev/", prefix: ${PREFIX}, retention_days: 7, rpo_minutes: 60 }`;
  w = await World.create({
    // staging's health_url fails on purpose (for /dr status): hourly health checks keep them from declaring a SEV1
    // in the middle of these tests.
    config: {
      steps: [{ after_minutes: 0, notify: 'oncall' }],
      environmentsYaml,
      extraYaml: 'alerts:\n  token: "alerts-token-recovery-aws-0123"\n  health_check_seconds: 3600\n',
    },
    // A killed worker's job is taken over once its lease runs out: 3 s here rather than 30.
    extraEnv: {
      ...fake.env(),
      AWS_ENDPOINT_URL_S3: s3.url,
      LIFELINE_AWS_POLL_SECONDS: '0.1',
      LIFELINE_AWS_MAX_WAIT_MINUTES: '1',
      LIFELINE_JOB_LEASE_SECONDS: '3',
    },
  });
  await w.process().start();
  // staging's stale backup and dev's empty store breach their RPO: the watch's first round posts both notices in the
  // channel. Wait for them, so that a test counting channel posts does not count them.
  await waitUntil(
    'the startup RPO notices for staging and dev',
    async () => {
      const { rows } = await w.sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM open_alerts WHERE kind = 'rpo' AND env IN ('staging', 'dev') AND posted_at IS NOT NULL`,
      );
      return rows[0]?.n === 2;
    },
    20_000,
    50,
  );
});

afterAll(async () => {
  await w?.close();
  await Promise.allSettled([
    fake?.stop(),
    s3?.stop(),
    new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve())),
  ]);
});

// ---- helpers -------------------------------------------------------------------------------------------------------

function dr(text: string, user: string = USERS.oncall): Promise<Sent> {
  return w.command(text, { user }, '/dr');
}

/** Requests a job and returns its number and plan message (with its Approve/Reject buttons). */
async function requestJob(text: string, user: string): Promise<{ job: number; plan: SlackCall; sent: Sent }> {
  const sent = await dr(text, user);
  expect(sent.status).toBe(200);
  const { job } = await replyJob(w, sent);
  return { job, plan: await approvablePlan(w, job), sent };
}

async function approve(plan: SlackCall, user: string): Promise<void> {
  const click = await clickButton(w, plan, 'Approve', user);
  expect(click.status).toBe(200);
}

/** Thread replies that name JOB-n (its progress message and its result). */
function jobThreadPosts(job: number): SlackCall[] {
  const re = new RegExp(`\\bJOB-${job}\\b`);
  return w.slack.posts().filter((c) => c.body.thread_ts !== undefined && re.test(allText(c.body)));
}

function callsSince(mark: number, action?: string): FakeAwsCall[] {
  return fake.calls.slice(mark).filter((c) => action === undefined || c.action === action);
}

function onlyDescribes(calls: readonly FakeAwsCall[]): boolean {
  return calls.every((c) => c.action.startsWith('Describe'));
}

interface StepRow {
  readonly step_index: number;
  readonly name: string;
  readonly destructive: boolean;
  readonly state: string;
}

async function stepRows(job: number): Promise<StepRow[]> {
  const { rows } = await w.sql.query<StepRow>(
    'SELECT step_index, name, destructive, state FROM recovery_steps WHERE job = $1 ORDER BY step_index',
    [job],
  );
  return rows;
}

async function waitForStep(job: number, index: number, state: string): Promise<void> {
  await waitUntil(
    `JOB-${job} step ${index} ${state}`,
    async () => (await stepRows(job)).some((r) => r.step_index === index && r.state === state),
    15_000,
    50,
  );
}

async function cancelRequestedBy(job: number): Promise<string | null> {
  const { rows } = await w.sql.query<{ cancel_requested_by: string | null }>(
    'SELECT cancel_requested_by FROM recovery_jobs WHERE number = $1',
    [job],
  );
  return rows[0]?.cancel_requested_by ?? null;
}

function utc(at: Date): string {
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

// ---- read-only lookups
// -----------------------------------------------------------------------------------------------

describe('/dr status and /dr restore list', () => {
  test('`status production`: RDS status, newest backup inside RPO, each ECS service, health_url status and latency; to the sender alone', async () => {
    const mark = fake.calls.length;
    const posts = w.slack.posts().length;
    const sent = await dr('status production', USERS.other);
    expect(sent.status).toBe(200);
    const reply = await w.reply(sent, 15_000);
    expect(reply).toContain('*production*');
    expect(reply).toContain(`RDS ${INSTANCE}: available`);
    // The newest backup is the 1 h old dump: not the 30 min safety copy, not the file in a sub-folder.
    expect(reply).toMatch(
      new RegExp(`Newest backup \`${dumpName.replace(/\./g, '\\.')}\`: 1 h( \\d+ min)? old, inside RPO \\(6 h\\)`),
    );
    expect(reply).not.toMatch(/RPO breached/);
    expect(reply).toContain('ECS web: running 2/2 desired');
    expect(reply).toContain('ECS api: running 3/3 desired');
    expect(reply).toContain('ECS worker: running 1/1 desired');
    const latency = new RegExp(`${healthBase}/health: HTTP 200 in (\\d+) ms`).exec(reply);
    expect(latency, reply).not.toBeNull();
    expect(Number(latency![1])).toBeGreaterThanOrEqual(35);
    expect(reply).not.toContain('*staging*');
    expect(w.privateMessages(sent).every((m) => m.via !== 'ephemeral' || m.text === reply)).toBe(true);
    expect(w.slack.posts()).toHaveLength(posts);
    expect(
      callsSince(mark)
        .map((c) => c.action)
        .sort(),
    ).toEqual(['DescribeDBInstances', 'DescribeServices', 'DescribeServices', 'DescribeServices']);
  });

  test('`status` (every env): a stale newest backup and an empty store are flagged as RPO breaches; a failing health_url shows its status', async () => {
    const mark = fake.calls.length;
    const reply = await w.reply(await dr('status', USERS.other), 15_000);
    const section = (env: string) => reply.slice(reply.indexOf(`*${env}*`)).split(/\n\*(?!RPO)/)[0] ?? '';
    expect(reply.indexOf('*production*')).toBeLessThan(reply.indexOf('*staging*'));
    expect(reply.indexOf('*staging*')).toBeLessThan(reply.indexOf('*dev*'));
    expect(section('production')).toContain('inside RPO (6 h)');
    expect(section('production')).toContain('HTTP 200');
    // staging: the only backup is 2 days old against a 24 h RPO.
    expect(section('staging')).toMatch(
      new RegExp(
        `Newest backup \`${staleStaging.replace(/\./g, '\\.')}\`: 2 d 0 h old, :warning: \\*RPO breached\\* \\(1 d 0 h\\)`,
      ),
    );
    expect(section('staging')).toContain(`${healthBase}/down: HTTP 503 in`);
    expect(section('staging')).not.toMatch(/RDS|ECS/);
    // dev: nothing in its store counts as breached.
    expect(section('dev')).toMatch(/Backups: \*none\* \(RPO 1 h breached\)/);
    expect(onlyDescribes(callsSince(mark))).toBe(true);
  });

  test('`restore production list`: S3 backups newest first with UTC time, size, age, RPO standing, the safety copy marked; RDS snapshots of the instance', async () => {
    const mark = fake.calls.length;
    const listsBefore = s3.callsOf('ListObjectsV2').length;
    const jobs = await jobCount(w);
    const sent = await dr('restore production list', USERS.other);
    const reply = await w.reply(sent, 15_000);
    expect(s3.callsOf('ListObjectsV2').length).toBeGreaterThan(listsBefore);
    expect(reply).toContain(`s3://${BUCKET}/production/`);
    const lines = reply.split('\n');
    const line = (name: string) => lines.find((l) => l.includes(`\`${name}\``)) ?? '';
    expect(line(safetyName)).toMatch(
      new RegExp(`${utc(ago(30))}, 512\\.0 KB, 30 min( \\d+ s)? old, inside RPO.*safety copy`),
    );
    expect(line(dumpName)).toMatch(new RegExp(`${utc(ago(60))}, 2\\.5 MB, 1 h( \\d+ min)? old, inside RPO`));
    expect(line(sqlName)).toMatch(new RegExp(`${utc(ago(600))}, 1\\.5 KB, 10 h( \\d+ min)? old, \\*outside RPO\\*`));
    expect(line(dumpName)).not.toMatch(/safety copy/);
    expect(line(sqlName)).not.toMatch(/safety copy/);
    expect(reply.indexOf(safetyName)).toBeLessThan(reply.indexOf(dumpName));
    expect(reply.indexOf(dumpName)).toBeLessThan(reply.indexOf(sqlName));
    expect(reply).not.toContain('.sha256');
    expect(reply).not.toContain(nestedName);
    expect(reply).not.toContain(staleStaging);

    // RDS snapshots of production-db only, newest first, with type, status and UTC time.
    const snapshots = reply.slice(reply.indexOf('*RDS snapshots*'));
    expect(reply.indexOf('*RDS snapshots*')).toBeGreaterThan(reply.indexOf(sqlName));
    expect(snapshots).toContain(`\`${SNAPSHOT}\` manual, available, ${utc(ago(120))}`);
    expect(snapshots).toContain(`\`${AUTOMATED}\` automated, available, ${utc(ago(300))}`);
    expect(snapshots).toContain(`\`prod-before-migration\` manual, available, ${utc(ago(26 * 60))}`);
    expect(snapshots.indexOf(SNAPSHOT)).toBeLessThan(snapshots.indexOf(AUTOMATED));
    expect(snapshots.indexOf(AUTOMATED)).toBeLessThan(snapshots.indexOf('prod-before-migration'));
    expect(snapshots).not.toContain('other-db-snap');
    const described = callsSince(mark, 'DescribeDBSnapshots');
    expect(described.map((c) => c.params.DBInstanceIdentifier)).toEqual([INSTANCE]);
    expect(onlyDescribes(callsSince(mark))).toBe(true);
    expect(await jobCount(w)).toBe(jobs);
  });
});

// ---- ECS ---------------------------------------------------------------------------------------------------------

describe('/dr scale and /dr redeploy', () => {
  test('scale web to 5: plan with current counts, only Describe* before approval, one UpdateService, live progress, 5/5 and the time taken', async () => {
    fake.ecs.convergePolls = 20; // ~2 s of polls at 0.1 s: visible progress
    const mark = fake.calls.length;
    const { job, plan } = await requestJob('scale production web 5', USERS.lead);
    const text = allText(plan.body);
    expect(text).toContain(`Scale web in ${CLUSTER} (production) from 2 to 5 tasks (now running 2/2 desired)`);
    expect(text).toMatch(/set the desired count; wait until running equals desired/);
    expect(text).toContain(`<@${USERS.cto}>`);

    // Self-approval is refused; nothing reaches AWS but Describe* until a second approver approves.
    const self = await clickButton(w, plan, 'Approve', USERS.lead);
    expect(await w.reply(self)).toMatch(/another approver/i);
    await stillAfter(
      'no AWS change before approval',
      () => onlyDescribes(callsSince(mark)) && callsSince(mark).length > 0,
      700,
    );
    expect(callsSince(mark).map((c) => c.action)).toEqual(['DescribeServices']);
    const beforeClick = fake.calls.length;

    await approve(plan, USERS.cto);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    const updates = callsSince(mark, 'UpdateService');
    expect(updates).toHaveLength(1);
    expect(updates[0]!.params).toMatchObject({ cluster: CLUSTER, service: 'web', desiredCount: 5 });
    expect(updates[0]!.params.forceNewDeployment).toBeUndefined();
    expect(fake.calls.indexOf(updates[0]!)).toBeGreaterThanOrEqual(beforeClick);
    expect(fake.ecs.peekService(CLUSTER, 'web')).toMatchObject({ desired: 5, running: 5 });

    // Live progress: one message in the plan's thread, updated in place while running climbs to 5 (its last
    // update goes out before the result is posted).
    const result = await resultText(w, job);
    const progress = progressOf(w, job)!;
    expect(progress.body.thread_ts).toBe(plan.result?.ts);
    const texts = updatesOf(w, progress).map((u) => allText(u.body));
    expect(
      texts.some((t) => /now: wait until running = desired: running [0-4]\/5 desired/.test(t)),
      texts.join('\n---\n'),
    ).toBe(true);
    expect(texts.at(-1)).toMatch(/succeeded/);
    const times = [progress.at, ...updatesOf(w, progress).map((u) => u.at)];
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(
      gaps.filter((g) => g < 900),
      `gaps between progress messages: ${gaps.join(', ')} ms`,
    ).toEqual([]);
    expect(texts.at(-1)).toMatch(
      /wait until running = desired: started [^\n]*ended [^\n]*\(\d+\.\d s\): running 5\/5 desired/,
    );

    expect(result).toContain(`JOB-${job} succeeded`);
    expect(result).toContain('running/desired: 5/5');
    expect(result).toMatch(/Took \d+\.\d s in all/);
    expect(result).toMatch(/set desired count: \d+\.\d s/);
    expect(result).toMatch(/wait until running = desired: \d+\.\d s/);
    expect(jobThreadPosts(job)).toHaveLength(2);
    expect((await stepRows(job)).map((s) => [s.name, s.destructive, s.state])).toEqual([
      ['set desired count', true, 'succeeded'],
      ['wait until running = desired', false, 'succeeded'],
    ]);
  });

  test('an AccessDenied UpdateService fails the job at "set desired count", says why, and is sent once (no retry)', async () => {
    const mark = fake.calls.length;
    const { job, plan } = await requestJob('scale production web 1', USERS.oncall);
    fake.failNext('UpdateService');
    await approve(plan, USERS.lead);
    const end = await finished(w, job);
    expect(end.state).toBe('failed');
    expect(end.outcome).toMatch(/"set desired count" failed: .*AccessDenied/);
    const result = await resultText(w, job);
    expect(result).toContain(`JOB-${job} failed`);
    expect(result).toMatch(/"set desired count" failed/);
    expect(result).toMatch(/AccessDeniedException/);
    expect(result).toMatch(/not authorized to perform: UpdateService/);
    await stillAfter('no second UpdateService', () => callsSince(mark, 'UpdateService').length === 1, 1_500);
    expect((await stepRows(job)).map((s) => [s.name, s.state])).toEqual([['set desired count', 'failed']]);
    expect(fake.ecs.peekService(CLUSTER, 'web')).toMatchObject({ desired: 5, running: 5 });
    const audit = await auditOf(w, job);
    expect(audit.some((e) => e.action === 'step_failed' && /set desired count: .*AccessDenied/.test(e.detail))).toBe(
      true,
    );
    expect(audit.at(-1)?.action).toBe('failed');
  });

  test('scale to the count it already has: the plan says so, asks nobody to approve, and changes nothing', async () => {
    const mark = fake.calls.length;
    const sent = await dr('scale production web 5', USERS.lead);
    const job = jobNumberIn(await w.reply(sent))!;
    expect(job).toBeDefined();
    const plan = await waitUntil(`the plan of JOB-${job}`, () => planPost(w, job), 15_000);
    const said = `web in ${CLUSTER} (production) is already at 5 desired (now running 5/5 desired); nothing to change.`;
    expect(allText(plan.body)).toContain(said);
    expect(allText(plan.body)).toMatch(/succeeded/);
    expect(buttonsOf(plan.body)).toEqual([]);
    const row = await jobRow(w, job);
    expect(row).toMatchObject({ state: 'succeeded', outcome: said, decided_by: null });
    const untouched = () => onlyDescribes(callsSince(mark)) && jobThreadPosts(job).length === 0;
    await stillAfter('no AWS change and no run', untouched, 1_500);
    expect(callsSince(mark).map((c) => c.action)).toEqual(['DescribeServices']);
    expect(await stepRows(job)).toEqual([]);
    expect((await auditOf(w, job)).map((e) => e.action)).toEqual(['requested', 'planned', 'succeeded']);
    expect(fake.ecs.peekService(CLUSTER, 'web')).toMatchObject({ desired: 5, running: 5 });
  });

  test('a transient DescribeServices failure while waiting (5xx after the SDK’s own retries) does not fail a scale that already happened', async () => {
    fake.ecs.convergePolls = 15;
    const mark = fake.calls.length;
    const { job, plan } = await requestJob('scale production web 4', USERS.oncall);
    await approve(plan, USERS.cto);
    await waitForStep(job, 1, 'running');
    // Three 500s in a row: the SDK's three attempts of one poll all fail.
    fake.failNext('DescribeServices', {
      code: 'ServerException',
      status: 500,
      message: 'Service temporarily unavailable',
      times: 3,
    });
    const end = await finished(w, job);
    expect(callsSince(mark, 'UpdateService')).toHaveLength(1);
    expect(callsSince(mark, 'DescribeServices').length).toBeGreaterThan(3);
    // Regression: a transient describe error used to fail a wait whose change had already been made.
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    expect(await resultText(w, job)).toContain('running/desired: 4/4');
  });

  test('redeploy api: one forceNewDeployment, the rollout followed to COMPLETED, the result names the deployment and its state', async () => {
    fake.ecs.rolloutOutcome = 'COMPLETED';
    fake.ecs.rolloutPolls = 4;
    const mark = fake.calls.length;
    const { job, plan } = await requestJob('redeploy production api', USERS.lead);
    expect(allText(plan.body)).toContain(`Force a new deployment of api in ${CLUSTER} (production)`);
    expect(onlyDescribes(callsSince(mark))).toBe(true);
    await approve(plan, USERS.cto);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    const updates = callsSince(mark, 'UpdateService');
    expect(updates).toHaveLength(1);
    expect(updates[0]!.params).toMatchObject({ cluster: CLUSTER, service: 'api', forceNewDeployment: true });
    expect(updates[0]!.params.desiredCount).toBeUndefined();
    const primary = fake.ecs.peekService(CLUSTER, 'api')!.deployments.find((d) => d.status === 'PRIMARY')!;
    expect(primary.rolloutState).toBe('COMPLETED');
    const result = await resultText(w, job);
    expect(result).toContain(`JOB-${job} succeeded`);
    expect(result).toContain(`deployment ${primary.id}: COMPLETED`);
    expect(result).toMatch(/Took \d+\.\d s in all/);
    expect(callsSince(mark, 'FilterLogEvents')).toEqual([]);
  });

  test('a FAILED rollout fails the job with the last 20 error lines of the log group in the result', async () => {
    fake.ecs.rolloutOutcome = 'FAILED';
    fake.ecs.rolloutPolls = 3;
    const t0 = Date.now() - 10 * 60_000;
    const events = [];
    for (let i = 1; i <= 25; i++) {
      events.push({
        at: t0 + i * 2_000,
        stream: 'ecs/api/1',
        message: `ERROR payment gateway refused the connection #${String(i).padStart(2, '0')}`,
      });
      events.push({
        at: t0 + i * 2_000 + 1_000,
        stream: 'ecs/api/1',
        message: `INFO served request #${String(i).padStart(2, '0')}`,
      });
    }
    fake.logs.addEvents(LOG_GROUP, events);
    try {
      const mark = fake.calls.length;
      const { job, plan } = await requestJob('redeploy production api', USERS.oncall);
      await approve(plan, USERS.cto);
      const end = await finished(w, job);
      expect(end.state).toBe('failed');
      expect(callsSince(mark, 'UpdateService')).toHaveLength(1);
      const result = await resultText(w, job);
      expect(result).toContain(`JOB-${job} failed`);
      expect(result).toMatch(/"follow the rollout" failed: rollout FAILED: ECS deployment circuit breaker/);
      expect(result).toContain('Last error lines:');
      // Log lines are data: each one shown as code, so nothing in it can become markup.
      for (let i = 6; i <= 25; i++)
        expect(result).toMatch(
          new RegExp(
            `• \\d\\d:\\d\\d:\\d\\d \`ERROR payment gateway refused the connection #${String(i).padStart(2, '0')}\``,
          ),
        );
      for (let i = 1; i <= 5; i++) expect(result).not.toContain(`connection #${String(i).padStart(2, '0')}`);
      expect(result).not.toContain('INFO served request');
      const filters = callsSince(mark, 'FilterLogEvents');
      expect(filters.length).toBeGreaterThanOrEqual(1);
      expect(filters[0]!.params).toMatchObject({ logGroupName: LOG_GROUP });
      expect(String(filters[0]!.params.filterPattern)).toMatch(/\?ERROR/);
      expect((await stepRows(job)).map((s) => [s.name, s.state])).toEqual([
        ['force new deployment', 'succeeded'],
        ['follow the rollout', 'failed'],
      ]);
    } finally {
      fake.ecs.rolloutOutcome = 'COMPLETED';
    }
  });
});

// ---- logs ----------------------------------------------------------------------------------------------------------

describe('/dr logs', () => {
  /** Channel posts that carry a logs reply or a log line: there must be none. */
  function logPosts(): SlackCall[] {
    return w.slack
      .posts()
      .filter((c) => /Logs of production|upstream timeout|payment failed|evil\.example/.test(allText(c.body)));
  }

  /** The code-block lines of the replies at this request's response_url, in order. */
  function loggedLines(sent: Sent): string[] {
    return w.slack.responses
      .filter((r) => r.id === sent.responseId)
      .flatMap((r) =>
        ((r.body.blocks ?? []) as { type: string; text?: { text: string } }[]).map((b) => b.text?.text ?? ''),
      )
      .filter((t) => t.startsWith('```\n'))
      .flatMap((t) => {
        expect(t.endsWith('\n```'), t.slice(-40)).toBe(true);
        expect(t.length).toBeLessThanOrEqual(3_000);
        return t.slice(4, -4).split('\n');
      });
  }

  test('`logs production web --since 1h --filter timeout`: FilterLogEvents with the group, startTime and a quoted pattern; whole lines in code blocks, at the response_url only', async () => {
    const base = Date.now() - 50 * 60_000;
    const matching = Array.from({ length: 120 }, (_, i) => ({
      at: base + i * 1_000,
      stream: `ecs/web/${i % 3}`,
      message: `WARN upstream timeout after 30s calling payments (request ${String(i).padStart(4, '0')}) ${'x'.repeat(40 + (i % 7) * 10)}`,
    }));
    const others = Array.from({ length: 30 }, (_, i) => ({
      at: base + i * 1_000 + 500,
      message: `INFO request ${i} served in 12 ms`,
    }));
    const old = [{ at: Date.now() - 2 * 3_600_000, message: 'WARN an old timeout, outside the hour' }];
    fake.logs.addEvents(LOG_GROUP, [...matching, ...others, ...old]);
    fake.logPageSize = 40; // three pages through nextToken
    const mark = fake.calls.length;
    try {
      const sent = await dr('logs production web --since 1h --filter timeout', USERS.oncall);
      expect(sent.status).toBe(200);
      const header = await waitUntil(
        'the logs reply',
        () => w.replies(sent).find((r) => /Logs of production web/.test(r)),
        15_000,
      );
      expect(header).toContain(':scroll: Logs of production web, last 60 min, filter "timeout": 120 lines');

      const filters = callsSince(mark, 'FilterLogEvents');
      expect(filters).toHaveLength(3);
      for (const f of filters) {
        expect(f.params).toMatchObject({ logGroupName: LOG_GROUP, filterPattern: '"timeout"' });
        expect(f.params.startTime).toBe(filters[0]!.params.startTime);
      }
      expect(filters.slice(1).map((f) => f.params.nextToken)).toEqual(['page-40', 'page-80']);
      const startTime = Number(filters[0]!.params.startTime);
      expect(startTime).toBeGreaterThanOrEqual(sent.sentAt - 3_600_000 - 1_000);
      expect(startTime).toBeLessThanOrEqual(filters[0]!.at - 3_600_000);

      const expected = matching.map(
        (e) => `${new Date(e.at).toISOString().slice(0, 19).replace('T', ' ')} ${e.message}`,
      );
      await waitUntil('every line at the response_url', () => loggedLines(sent).length >= expected.length, 15_000);
      expect(loggedLines(sent)).toEqual(expected); // every line whole, once, in time order
      const used = w.slack.responses.filter((r) => r.id === sent.responseId);
      expect(used.length).toBeGreaterThanOrEqual(2); // 120 long lines take more than one message
      expect(used.length).toBeLessThanOrEqual(5);
      // Nothing went through chat.postMessage: the channel's posting budget is the incident's.
      await stillAfter('no log line posted with chat.postMessage', () => logPosts().length === 0, 1_000);
    } finally {
      fake.logPageSize = 10_000;
    }
  });

  test('`--filter <!channel>`: the filter and log lines with <!here>, <@U…> and & arrive escaped; no broadcast, mention or link reaches Slack', async () => {
    const base = Date.now() - 5 * 60_000;
    const hostile = [
      { at: base, message: 'payment failed <!channel> please look' },
      { at: base + 1_000, message: 'ping <!here> from <@U0CEO> & <@U0CTO|cto>' },
      { at: base + 2_000, message: 'see <https://evil.example/login|the docs> ``` <!everyone>' },
    ];
    fake.logs.addEvents(LOG_GROUP, hostile);
    const mark = fake.calls.length;
    // Slack sends what the user typed with &, < and > as entities; Lifeline reads them back as typed.
    const sent = await dr('logs production web --since 10m --filter &lt;!channel&gt;', USERS.oncall);
    expect(sent.status).toBe(200);
    const header = await waitUntil(
      'the logs reply',
      () => w.replies(sent).find((r) => /Logs of production web/.test(r)),
      15_000,
    );
    // The fake CloudWatch got the filter as typed, so the lines that carry it were found.
    expect(callsSince(mark, 'FilterLogEvents')[0]!.params.filterPattern).toBe('"<!channel>"');
    expect(header).toContain('filter "&lt;!channel&gt;"');
    expect(header).not.toContain('<!channel>');
    const lines = loggedLines(sent);
    expect(lines).toEqual([
      `${new Date(base).toISOString().slice(0, 19).replace('T', ' ')} payment failed &lt;!channel&gt; please look`,
    ]);
    // Whatever the filter matched, nothing anywhere in what Slack received is a special form.
    const received = [...w.slack.responses.filter((r) => r.id === sent.responseId).map((r) => JSON.stringify(r.body))];
    for (const body of received) {
      expect(body).not.toMatch(/<!channel>|<!here>|<!everyone>|<@U|<https?:/);
      expect(body).toContain('&lt;!channel&gt;');
    }
    await stillAfter('no log line posted with chat.postMessage', () => logPosts().length === 0, 1_000);
  });

  test('the other hostile lines, unfiltered: <!here>, <@U…>, & and a code fence come through as text', async () => {
    const sent = await dr('logs production web --since 10m', USERS.oncall);
    expect(sent.status).toBe(200);
    await waitUntil('the logs reply', () => loggedLines(sent).some((l) => l.includes('&lt;!here&gt;')), 15_000);
    const lines = loggedLines(sent);
    expect(lines).toContainEqual(
      expect.stringMatching(/ ping &lt;!here&gt; from &lt;@U0CEO&gt; &amp; &lt;@U0CTO\|cto&gt;$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/ see &lt;https:\/\/evil\.example\/login\|the docs&gt; ''' &lt;!everyone&gt;$/),
    );
    const bodies = w.slack.responses.filter((r) => r.id === sent.responseId).map((r) => JSON.stringify(r.body));
    for (const body of bodies) expect(body).not.toMatch(/<!channel>|<!here>|<!everyone>|<@U|<https?:/);
  });
});

// ---- RDS snapshot restore ------------------------------------------------------------------------------------------

describe('/dr restore snapshot', () => {
  test('plan, approval, CreateDBSnapshot then one RestoreDBInstanceFromDBSnapshot, progress while waiting, the new endpoint; the instance untouched', async () => {
    fake.rds.newSnapshotStatuses = statusesUntil(3);
    fake.rds.restoredInstanceStatuses = [...Array<string>(25).fill('creating'), 'backing-up', 'available'];
    const before = fake.rds.peekInstance(INSTANCE);
    const mark = fake.calls.length;
    const { job, plan } = await requestJob(`restore production snapshot ${SNAPSHOT}`, USERS.lead);
    const text = allText(plan.body);
    const planned = /into a NEW instance (production-db-restored-\d{8}-\d{6})/.exec(text);
    expect(planned, text).not.toBeNull();
    const newId = planned![1]!;
    expect(text).toContain(`Restore RDS snapshot ${SNAPSHOT} of ${INSTANCE} (taken ${utc(ago(120))})`);
    expect(text).toMatch(/data-loss window 2 h( \d+ min)? \(now minus the backup's time\), inside the RPO of 6 h/);
    expect(text).toMatch(/safety snapshot production-db-pre-restore-\d{8}-\d{6} of production-db/);
    expect(text).toContain(`${INSTANCE} itself is not changed`);
    expect(onlyDescribes(callsSince(mark))).toBe(true);

    await approve(plan, USERS.cto);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');

    // Exactly: the safety snapshot, then one restore into the new instance; nothing else changed anything.
    const changes = callsSince(mark).filter((c) => !c.action.startsWith('Describe'));
    expect(changes.map((c) => c.action)).toEqual(['CreateDBSnapshot', 'RestoreDBInstanceFromDBSnapshot']);
    const [create, restore] = changes as [FakeAwsCall, FakeAwsCall];
    expect(create.params.DBInstanceIdentifier).toBe(INSTANCE);
    expect(String(create.params.DBSnapshotIdentifier)).toMatch(/^production-db-pre-restore-\d{8}-\d{6}$/);
    expect(restore.params).toMatchObject({
      DBSnapshotIdentifier: SNAPSHOT,
      DBInstanceIdentifier: newId,
      DBInstanceClass: 'db.r6g.large',
      DBSubnetGroupName: 'prod-subnets',
      'VpcSecurityGroupIds.VpcSecurityGroupId.1': 'sg-0prod',
      MultiAZ: 'true',
    });
    expect(fake.rds.peekSnapshot(String(create.params.DBSnapshotIdentifier))?.status).toBe('available');
    expect(fake.rds.peekInstance(INSTANCE)).toEqual(before);
    expect(fake.rds.peekInstance(newId)).toMatchObject({
      status: 'available',
      instanceClass: 'db.r6g.large',
      subnetGroupName: 'prod-subnets',
      multiAz: true,
    });

    const result = await resultText(w, job);
    const progress = progressOf(w, job)!;
    const texts = updatesOf(w, progress).map((u) => allText(u.body));
    expect(
      texts.some((t) => /now: wait until the new instance is available: (creating|backing-up)/.test(t)),
      texts.join('\n---\n'),
    ).toBe(true);
    expect(texts.at(-1)).toMatch(/succeeded/);
    expect(result).toContain(`JOB-${job} succeeded`);
    expect(result).toContain(`new instance ${newId}: available, endpoint ${newId}.memory.rds.amazonaws.com:5432`);
    expect(result).toMatch(/point DATABASE_URL, the ECS task definitions and the secrets/);
    expect(result).toContain(`${INSTANCE} is unchanged`);
    expect(result).toMatch(/Took \d+\.\d s in all/);
    expect((await stepRows(job)).map((s) => [s.destructive, s.state])).toEqual([
      [false, 'succeeded'],
      [true, 'succeeded'],
      [false, 'succeeded'],
    ]);
  });

  test('a snapshot id that does not exist is refused to the requester at planning: no approval posted, no change in AWS', async () => {
    const mark = fake.calls.length;
    const sent = await dr('restore production snapshot prod-no-such-snapshot', USERS.lead);
    const job = jobNumberIn(await w.reply(sent))!;
    expect(job).toBeDefined();
    const refusal = await waitUntil('the refusal', () => w.replies(sent).find((r) => /not started/.test(r)), 15_000);
    expect(refusal).toContain('RDS snapshot prod-no-such-snapshot was not found');
    expect(w.privateMessages(sent).every((m) => m.via !== 'ephemeral' || m.text === refusal)).toBe(true);
    expect((await jobRow(w, job))?.state).toBe('failed');
    await stillAfter(
      'no plan and no AWS change',
      () => planPost(w, job) === undefined && onlyDescribes(callsSince(mark)),
      800,
    );
    expect(callsSince(mark, 'DescribeDBSnapshots').map((c) => c.params.DBSnapshotIdentifier)).toContain(
      'prod-no-such-snapshot',
    );
    expect(jobThreadPosts(job)).toEqual([]);
  });

  test('cancel during the safety snapshot: requester or responder only; it stops before the restore', async () => {
    fake.rds.newSnapshotStatuses = statusesUntil(40); // ~4 s
    const mark = fake.calls.length;
    const { job, plan } = await requestJob(`restore production snapshot ${SNAPSHOT}`, USERS.oncall);
    await approve(plan, USERS.lead);
    await waitForStep(job, 0, 'running');
    await waitUntil('the safety snapshot to be started', () => callsSince(mark, 'CreateDBSnapshot').length === 1);

    const jobs = await w.reply(await dr('jobs', USERS.other));
    expect(jobs).toMatch(new RegExp(`JOB-${job}\\*? [^\\n]*running`));

    const foreign = await dr(`cancel JOB-${job}`, USERS.other);
    expect(await w.reply(foreign)).toMatch(/Only responders \(.*\) may cancel JOB-\d+, which <@\w+> requested/);
    expect(await cancelRequestedBy(job)).toBeNull();

    const cancel = await dr(`cancel JOB-${job}`, USERS.oncall);
    expect(await w.reply(cancel)).toMatch(/stops before its next step/);
    expect((await jobRow(w, job))?.state).toBe('running'); // the running step is finished, not cut

    const end = await finished(w, job);
    expect(end.state).toBe('cancelled');
    expect(end.outcome).toContain(`cancelled by <@${USERS.oncall}> before "start the restore into a new instance"`);
    const result = await resultText(w, job);
    expect(result).toContain(
      `Cancelled by <@${USERS.oncall}> before "start the restore into a new instance"; nothing after it ran`,
    );
    expect(callsSince(mark, 'RestoreDBInstanceFromDBSnapshot')).toEqual([]);
    expect(
      callsSince(mark)
        .filter((c) => !c.action.startsWith('Describe'))
        .map((c) => c.action),
    ).toEqual(['CreateDBSnapshot']);
    expect((await stepRows(job)).map((s) => [s.step_index, s.state])).toEqual([[0, 'succeeded']]);
    const audit = await auditOf(w, job);
    expect(audit.filter((e) => e.action === 'cancel_requested').map((e) => e.actor)).toEqual([USERS.oncall]);
    expect(audit.at(-1)?.action).toBe('cancelled');
    const progress = progressOf(w, job)!;
    expect(allText(updatesOf(w, progress).at(-1)!.body)).toMatch(/cancelled/);
  });
});

// ---- a worker killed mid-job, and cancel during the last step ------------------------------------------------------

describe('durability and cancel', () => {
  test('kill -9 while waiting for running = desired: a new process resumes, UpdateService is not sent again, the job succeeds and says so', async () => {
    fake.ecs.convergePolls = 50; // ~5 s of polls
    const first = w.lifeline;
    const mark = fake.calls.length;
    const { job, plan } = await requestJob('scale production worker 3', USERS.oncall);
    await approve(plan, USERS.lead);
    await waitForStep(job, 1, 'running');
    await waitUntil('a few polls of the wait', () => {
      const update = callsSince(mark, 'UpdateService')[0];
      return update && callsSince(mark, 'DescribeServices').filter((c) => c.at > update.at).length >= 5;
    });
    await first.stop('SIGKILL');
    expect(first.running).toBe(false);
    expect((await jobRow(w, job))?.state).toBe('running');
    expect((await stepRows(job)).map((s) => s.state)).toEqual(['succeeded', 'running']);
    expect(fake.ecs.peekService(CLUSTER, 'worker')!.running).toBeLessThan(3);

    await w.process().start();
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    const updates = callsSince(mark, 'UpdateService');
    expect(updates).toHaveLength(1);
    expect(updates[0]!.params).toMatchObject({ service: 'worker', desiredCount: 3 });
    expect(fake.ecs.peekService(CLUSTER, 'worker')).toMatchObject({ desired: 3, running: 3 });

    expect((await stepRows(job)).map((s) => [s.step_index, s.name, s.destructive, s.state])).toEqual([
      [0, 'set desired count', true, 'succeeded'],
      [1, 'wait until running = desired', false, 'succeeded'],
    ]);
    const audit = await auditOf(w, job);
    expect(audit.filter((e) => e.action === 'step_started' && e.detail === 'set desired count')).toHaveLength(1);
    expect(
      audit.filter((e) => e.action === 'step_started' && e.detail === 'wait until running = desired'),
    ).toHaveLength(2);

    // Reported in Slack by the new process: the same progress message, updated; one result.
    const result = await resultText(w, job);
    expect(result).toContain(`JOB-${job} succeeded`);
    expect(result).toContain('running/desired: 3/3');
    expect(jobThreadPosts(job)).toHaveLength(2);
    expect(allText(updatesOf(w, progressOf(w, job)!).at(-1)!.body)).toMatch(/succeeded/);
  });

  test('cancel by an approver during the wait after the scale: the wait is interrupted, the job cancelled', async () => {
    fake.ecs.convergePolls = 100; // ~10 s: far longer than the cancel may take
    const mark = fake.calls.length;
    const { job, plan } = await requestJob('scale production worker 2', USERS.oncall);
    await approve(plan, USERS.lead);
    await waitForStep(job, 1, 'running');

    const foreign = await dr(`cancel JOB-${job}`, USERS.other);
    expect(await w.reply(foreign)).toMatch(/Only responders \(.*\) may cancel JOB-\d+, which <@\w+> requested/);
    expect(await cancelRequestedBy(job)).toBeNull();

    const cancel = await dr(`cancel JOB-${job}`, USERS.cto); // an approver who neither requested nor approved it
    const cancelledAt = Date.now();
    expect(await w.reply(cancel)).toMatch(/is being stopped: "wait until running = desired" is interrupted now/);
    expect(await cancelRequestedBy(job)).toBe(USERS.cto);

    const end = await finished(w, job);
    // Stopping a wait changes nothing, so it need not be waited out: the heartbeat (every 2 s) carries the cancel.
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);
    expect(end.state).toBe('cancelled');
    const during = 'during "wait until running = desired", which was interrupted';
    expect(end.outcome).toBe(`cancelled by <@${USERS.cto}> ${during}`);
    expect(callsSince(mark, 'UpdateService')).toHaveLength(1);
    const result = await resultText(w, job);
    expect(result).toContain(`Cancelled by <@${USERS.cto}> ${during}`);
    expect((await stepRows(job)).map((s) => [s.name, s.state])).toEqual([
      ['set desired count', 'succeeded'],
      ['wait until running = desired', 'failed'],
    ]);
  });

  test('no Slack message or log line carries the AWS secret key, the database password or another secret', () => {
    const texts = [
      ...w.slack.calls.filter((c) => c.method.startsWith('chat.')).map((c) => JSON.stringify(c.body)),
      ...w.slack.responses.map((r) => JSON.stringify(r.body)),
    ];
    for (const secret of [AWS_SECRET, DB_PASSWORD]) {
      expect(texts.filter((t) => t.includes(secret))).toEqual([]);
      expect(w.output().filter((l) => l.includes(secret))).toEqual([]);
    }
    expect(linesWithSecrets(w.output())).toEqual([]);
  });
});
