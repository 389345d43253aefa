// Every runbook step kind through the real process (node dist/main.js) against the stand-ins at their HTTP
// boundaries: AWS (RDS in two regions, ECS, Route 53, Secrets Manager) through AWS_ENDPOINT_URL_<SERVICE>, Vercel
// through VERCEL_API_URL, Statuspage through STATUSPAGE_API_URL, a local health target, and a file:// backup store
// over a real application database. A region failover with one approval per step, checking the outside world after
// each step, its report (RTO, RPO) and audit trail; a frontend rollback; dry runs that make no write call and name
// what a broken runbook misses; kill -9 while dns_switch waits on its Route 53 change; Abort putting a secret back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { StatuspageStandIn } from '../../src/adapters/statuspage/stand-in.js';
import { VercelStandIn } from '../../src/adapters/vercel/stand-in.js';
import { allText, EMERGENCY, World } from '../support/e2e.js';
import { FakeAws } from '../support/fake-aws.js';
import { startHealthTarget, type HealthTarget } from '../support/health-target.js';
import { USERS } from '../support/lifeline-process.js';
import {
  backupName,
  clickButton,
  closeAll,
  createAppDatabase,
  dumpCustom,
  fileStoreYaml,
  storeFiles,
  type AppDatabase,
} from '../support/recovery.js';
import {
  clickRun,
  dr,
  requestRun,
  runAudit,
  runMessage,
  stepStates,
  untilState,
  withButtons,
} from '../support/runbooks.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 30_000 });

const REQUESTER: string = USERS.lead;
const APPROVER: string = USERS.cto;
const ENV = 'prod';
const PREFIX = 'shop';
const ROWS = 200;
const EAST = 'us-east-1';
const WEST = 'us-west-2';
const SOURCE_DB = 'production-db';
const DR_DB = 'production-db-dr';
const DR_ENDPOINT = `${DR_DB}.memory.rds.amazonaws.com`;
const CLUSTER = 'solosuccess-dr';
const SERVICE = 'api';
const ZONE = 'Z0E2EZONE';
const APP_SECRET = 'prod/app';
const CREDS_SECRET = 'app/creds';
const OLD_PASSWORD = 'old-db-password-4f1c9e7a2b';
const NEW_PASSWORD = 'new-db-password-8d3b6a0c5e';
const VERCEL_TOKEN = 'vercel-e2e-token-0123456789';
const SP_PAGE = 'e2erunbookpage';
const SP_KEY = 'sp-runbook-key-0123456789';
const SP_COMPONENT = 'cmprunbookprod';
const DR_DATABASE_URL = `postgres://app@${DR_ENDPOINT}:5432/app`;
const CUTOVER_TEXT = 'www moves to the DR region';
const DONE_TEXT = `Failover done; the database is ${DR_ENDPOINT}`;
/** The snapshot the DR database is restored from was taken this long before the run: the RPO it reports. */
const SNAPSHOT_AGE_MS = 2 * 3_600_000;
/** Longer than any restart: Route 53 keeps the change PENDING until the test lets it sync. */
const SYNC_MS = 120_000;

function runbooksYaml(health: string, failing: string): string {
  return `statuspage:
  page_id: ${SP_PAGE}
  api_key: "\${STATUSPAGE_API_KEY}"
  components: { ${ENV}: ${SP_COMPONENT} }
runbooks:
  failover:
    title: Fail over to the DR region (${WEST})
    approval: each_step
    steps:
      - confirm: "terraform workspace select dr && terraform apply"
      - restore: { env: ${ENV}, backup: latest }
        id: app_db
      - rds_restore_snapshot: { from_region: ${EAST}, source_instance: ${SOURCE_DB}, region: ${WEST}, target_instance: ${DR_DB} }
        id: dr_db
      - ecs_scale: { region: ${WEST}, cluster: ${CLUSTER}, service: ${SERVICE}, count: 3 }
        id: scale
      - secret_update: { region: ${WEST}, secret_id: ${APP_SECRET}, key: DATABASE_URL, value: "postgres://app@{{steps.dr_db.endpoint}}:{{steps.dr_db.port}}/app" }
        id: secret
      - ecs_redeploy: { region: ${WEST}, cluster: ${CLUSTER}, service: ${SERVICE} }
        id: redeploy
      - vercel_env: { project: web, key: DATABASE_URL, value: "postgres://app@{{steps.dr_db.endpoint}}:5432/app" }
        id: web_env
      - dns_switch: { zone_id: ${ZONE}, record: api.example.com, type: CNAME, value: api-dr.example.com, ttl: 60 }
        id: dns
      - http_check: { url: "${health}", expect_status: 200, within_minutes: 0.1 }
        id: health
      - statuspage: { status: monitoring, message: "Service restored from the DR region", components: operational }
        id: status
      - backup: { env: ${ENV} }
        id: fresh_backup
      - notify: { channel: ${EMERGENCY}, text: "Failover done; the database is {{steps.dr_db.endpoint}}" }
  frontend-rollback:
    title: Roll the marketing site back
    steps:
      - vercel_rollback: { project: marketing }
        id: rollback
      - http_check: { url: "${health}", within_minutes: 0.1 }
  dns-cutover:
    title: Point www at the DR region
    steps:
      - notify: { channel: ${EMERGENCY}, text: "${CUTOVER_TEXT}" }
      - dns_switch: { zone_id: ${ZONE}, record: www.example.com, type: CNAME, value: www-dr.example.com, ttl: 60 }
        id: www
  rotate:
    title: Rotate the database password, then check the service
    steps:
      - secret_update: { secret_id: ${CREDS_SECRET}, key: DB_PASSWORD, value: "${NEW_PASSWORD}" }
        id: password
      - http_check: { url: "${failing}", within_minutes: 0.005 }
        id: check
  broken:
    title: A runbook whose world is not there
    steps:
      - rds_restore_snapshot: { source_instance: ghost-db, region: ${WEST}, target_instance: ghost-db-dr }
        id: no_snapshot
      - dns_switch: { zone_id: Z0NOSUCHZONE, record: api.example.com, type: CNAME, value: x.example.com, ttl: 60 }
        id: no_zone
      - dns_switch: { zone_id: ${ZONE}, record: nothing.example.com, type: CNAME, value: x.example.com, ttl: 60 }
        id: no_record
      - vercel_rollback: { project: lonely }
        id: no_previous
      - http_check: { url: "http://no-such-host.invalid/health", within_minutes: 0.05 }
        id: no_host
`;
}

let w: World;
let aws: FakeAws;
let vercel: VercelStandIn;
let sp: StatuspageStandIn;
let health: HealthTarget;
let failing: HealthTarget;
let app: AppDatabase;
let store: string;
/** The deployments each project had before any run. */
const before = new Map<string, string[]>();

beforeAll(async () => {
  app = await createAppDatabase(ROWS);
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-runbook-store-'));
  await dumpCustom(app.url, join(store, backupName(PREFIX, new Date(Date.now() - 3_600_000), 'dump')));
  // Rows lost after the backup: the restore step brings them back.
  await app.query('DELETE FROM users WHERE id > 50');

  aws = await new FakeAws().start();
  aws.regions.rds(EAST).setInstance({ id: SOURCE_DB });
  aws.regions.rds(EAST).setSnapshot({
    id: `${SOURCE_DB}-nightly`,
    instanceId: SOURCE_DB,
    type: 'automated',
    createdAt: new Date(Date.now() - SNAPSHOT_AGE_MS),
  });
  aws.regions.ecs(WEST).setService({ cluster: CLUSTER, name: SERVICE, desired: 0, running: 0 });
  aws.regions
    .secrets(WEST)
    .setSecret(APP_SECRET, JSON.stringify({ DATABASE_URL: 'postgres://app@old:5432/app', API_KEY: 'k-1' }));
  aws.secrets.setSecret(CREDS_SECRET, JSON.stringify({ DB_USER: 'app', DB_PASSWORD: OLD_PASSWORD }));
  aws.route53.setZone(ZONE, 'example.com', [
    { name: 'api.example.com', type: 'CNAME', ttl: 300, values: ['api-east.example.com'] },
    { name: 'www.example.com', type: 'CNAME', ttl: 300, values: ['www-east.example.com'] },
  ]);

  vercel = await new VercelStandIn({ token: VERCEL_TOKEN }).start();
  for (const [name, count] of [
    ['web', 2],
    ['marketing', 3],
    ['lonely', 1],
  ] as const) {
    const project = vercel.addProject(name, count);
    before.set(
      name,
      vercel.deployments.filter((d) => d.projectId === project.id).map((d) => d.id),
    );
  }
  sp = await new StatuspageStandIn({ pageId: SP_PAGE, apiKey: SP_KEY, components: [SP_COMPONENT] }).start();
  health = await startHealthTarget(200);
  failing = await startHealthTarget(503);

  w = await World.create({
    config: {
      steps: [{ after_minutes: 0, notify: 'oncall' }],
      environmentsYaml: fileStoreYaml({ env: ENV, app, store, prefix: PREFIX, drillsOff: true }),
      extraYaml: runbooksYaml(health.url, failing.url),
    },
    extraEnv: {
      ...aws.env(),
      VERCEL_API_URL: vercel.url,
      VERCEL_TOKEN,
      STATUSPAGE_API_URL: sp.url,
      STATUSPAGE_API_KEY: SP_KEY,
      LIFELINE_AWS_POLL_SECONDS: '0.1',
      LIFELINE_JOB_LEASE_SECONDS: '2',
      LIFELINE_RECONCILE_SECONDS: '1',
    },
  });
  await w.process().start();
});

afterAll(async () => {
  await closeAll({ w, app, folders: [store] });
  await Promise.allSettled([aws?.stop(), vercel?.stop(), sp?.stop(), health?.close(), failing?.close()]);
});

/** Everything the stand-ins were asked to change: AWS's mutating calls, Vercel's and Statuspage's writes. */
function writeCalls(): number {
  return aws.mutatingCalls().length + vercel.calls.filter((c) => c.method !== 'GET').length + sp.calls.length;
}

/** Slack posts since `from` that are neither the run's message nor in its thread. */
function postsBesideRun(run: number, from: number): string[] {
  const ts = runMessage(w, run)?.result?.ts;
  return w.slack
    .posts()
    .slice(from)
    .filter((c) => c.result?.ts !== ts && c.body.thread_ts !== ts)
    .map((c) => allText(c.body));
}

async function stepRow(run: number, id: string) {
  const { rows } = await w.sql.query<{ state: string; attempts: number; data_age_ms: string | null; undone: string }>(
    'SELECT state, attempts, data_age_ms, undone FROM runbook_steps WHERE run = $1 AND id = $2',
    [run, id],
  );
  return rows[0]!;
}

function secretOf(region: string, name: string): Record<string, unknown> {
  return JSON.parse(aws.regions.secrets(region).peekVersions(name).at(-1)!) as Record<string, unknown>;
}

describe('dry runs', () => {
  test('a dry run of the failover makes no write call anywhere and posts nothing but its own message', async () => {
    const writes = writeCalls();
    const posts = w.slack.posts().length;
    const run = await requestRun(w, 'failover --dry-run', REQUESTER);
    await untilState(w, run, 'succeeded');
    expect((await stepStates(w, run)).every((s) => s.endsWith(':succeeded:1'))).toBe(true);
    expect(writeCalls()).toBe(writes);
    expect(postsBesideRun(run, posts)).toEqual([]);
    // The message is updated at most once a second: its last update may come after the run's end.
    const text = await waitUntil('the plans on the run message', () => {
      const shown = allText(runMessage(w, run)!.body);
      return shown.includes(':white_circle:') ? undefined : shown;
    });
    expect(text).toContain(`snapshot ${SOURCE_DB}-nightly in ${EAST}`);
    expect(text).toContain('(the endpoint of step dr_db)');
    expect(text).toContain('from api-east.example.com (TTL 300) to api-dr.example.com');
  });

  test('a dry run of a broken runbook names each gap, loudly, and still changes nothing', async () => {
    const writes = writeCalls();
    const run = await requestRun(w, 'broken --dry-run', REQUESTER);
    await untilState(w, run, 'failed', 20_000);
    expect(await stepStates(w, run)).toEqual([
      'no_snapshot:failed:1',
      'no_zone:failed:1',
      'no_record:failed:1',
      'no_previous:failed:1',
      'no_host:failed:1',
    ]);
    const alarm = await waitUntil('the dry run alarm', () =>
      w
        .topLevelPosts()
        .find(
          (c) =>
            c.body.channel === EMERGENCY && /<!here>/.test(allText(c.body)) && allText(c.body).includes(`RUN-${run}`),
        ),
    );
    const text = allText(alarm.body);
    for (const gap of [
      `no available snapshot of ghost-db in ${WEST}`,
      'no Route 53 hosted zone Z0NOSUCHZONE',
      `no CNAME record nothing.example.com in zone example.com (${ZONE})`,
      'no READY production deployment of lonely before',
      'http://no-such-host.invalid/health does not answer',
    ]) {
      expect(text).toContain(gap);
    }
    expect(writeCalls()).toBe(writes);
  });
});

describe('the failover with every kind, one approval per step', () => {
  test('each step changes the outside world as it says; the report gives RTO and RPO; the audit names every change', async () => {
    const run = await requestRun(w, 'failover', REQUESTER);
    await clickRun(w, run, ['Done', 'Abort'], 'Done', REQUESTER);
    const approvable = await withButtons(w, run, ['Approve', 'Reject']);
    /** Waits until step `id` asks for its approval (so every step before it ended), then approves it. */
    const approveWhenAsked = async (id: string, checkBefore: () => void | Promise<void>) => {
      await waitUntil(`${id} awaiting approval`, async () =>
        (await stepStates(w, run)).includes(`${id}:awaiting_approval:0`),
      );
      await checkBefore();
      const sent = await clickButton(w, approvable, 'Approve', APPROVER);
      expect(sent.status).toBe(200);
    };
    const rdsWest = aws.regions.rds(WEST);

    await approveWhenAsked('app_db', () => undefined);
    await approveWhenAsked('dr_db', async () => {
      expect(await app.count()).toBe(ROWS);
      expect(rdsWest.peekInstance(DR_DB)).toBeUndefined();
    });
    await approveWhenAsked('scale', () => {
      expect(rdsWest.peekInstance(DR_DB)?.status).toBe('available');
      const copy = rdsWest.peekSnapshot(`lifeline-run-${run}-${DR_DB}`);
      expect(copy?.status).toBe('available');
      expect(aws.callsTo('CopyDBSnapshot').map((c) => c.region)).toEqual([WEST]);
      expect(aws.regions.ecs(WEST).peekService(CLUSTER, SERVICE)?.desired).toBe(0);
    });
    await approveWhenAsked('secret', () => {
      const service = aws.regions.ecs(WEST).peekService(CLUSTER, SERVICE)!;
      expect([service.desired, service.running]).toEqual([3, 3]);
      expect(secretOf(WEST, APP_SECRET).DATABASE_URL).toBe('postgres://app@old:5432/app');
    });
    let deploymentBefore = '';
    await approveWhenAsked('redeploy', () => {
      expect(secretOf(WEST, APP_SECRET)).toEqual({ DATABASE_URL: DR_DATABASE_URL, API_KEY: 'k-1' });
      deploymentBefore = aws.regions.ecs(WEST).peekService(CLUSTER, SERVICE)!.deployments[0]!.id;
    });
    await approveWhenAsked('web_env', () => {
      const primary = aws.regions.ecs(WEST).peekService(CLUSTER, SERVICE)!.deployments[0]!;
      expect(primary.id).not.toBe(deploymentBefore);
      expect([primary.status, primary.rolloutState]).toEqual(['PRIMARY', 'COMPLETED']);
      expect(vercel.projects.find((p) => p.name === 'web')!.env.DATABASE_URL).toBeUndefined();
    });
    await approveWhenAsked('dns', () => {
      expect(vercel.projects.find((p) => p.name === 'web')!.env.DATABASE_URL?.value).toBe(DR_DATABASE_URL);
      const production = vercel.productionOf('web')!;
      expect(before.get('web')).not.toContain(production.id);
      expect(production.env.DATABASE_URL).toBe(DR_DATABASE_URL);
      expect(Date.now()).toBeGreaterThanOrEqual(production.readyAt);
      expect(vercel.callsTo('v13/deployments', 'POST')).toHaveLength(1);
    });
    await approveWhenAsked('health', () => {
      const record = aws.route53.peekRecords(ZONE).find((r) => r.name === 'api.example.com');
      expect(record).toMatchObject({ type: 'CNAME', ttl: 60, values: ['api-dr.example.com'] });
    });
    await approveWhenAsked('status', () => expect(sp.incidents).toHaveLength(0));
    const storedBefore = await storeFiles(store);
    await approveWhenAsked('fresh_backup', () => {
      expect(sp.incidents).toHaveLength(1);
      expect(sp.incidents[0]).toMatchObject({ status: 'monitoring', components: { [SP_COMPONENT]: 'operational' } });
      expect(sp.incidents[0]!.updates.map((u) => u.body)).toEqual(['Service restored from the DR region']);
    });
    await approveWhenAsked('step-12', async () => {
      const added = (await storeFiles(store)).filter((f) => !storedBefore.includes(f));
      expect(added).toEqual([expect.stringMatching(/^shop_\d{8}_\d{6}\.dump$/), expect.stringMatching(/\.sha256$/)]);
      expect(w.slack.posts().filter((c) => c.body.text === DONE_TEXT)).toHaveLength(0);
    });
    await untilState(w, run, 'succeeded');
    expect(w.slack.posts().filter((c) => c.body.text === DONE_TEXT)).toHaveLength(1);
    expect((await stepStates(w, run)).every((s) => s.endsWith(':succeeded:1'))).toBe(true);

    // RPO: the oldest data restored, the DR snapshot's (the restored backup is an hour old).
    const dataAge = Number((await stepRow(run, 'dr_db')).data_age_ms);
    expect(dataAge).toBeGreaterThanOrEqual(SNAPSHOT_AGE_MS);
    expect(dataAge).toBeLessThan(SNAPSHOT_AGE_MS + 60_000);
    const report = await w.reply(await dr(w, `run report RUN-${run}`, REQUESTER));
    expect(report).toMatch(/RTO achieved: \d+ s \(first approval .* to the last http_check passing/);
    expect(report).toContain('RPO achieved: the restored data was 2 h old (step dr_db)');
    expect(report).toContain('Nothing: every step passed at its first attempt.');

    const entries = await runAudit(w, run);
    const approvals = entries.filter((e) => e.action === 'approved');
    expect(approvals.map((e) => e.actor)).toEqual(Array(11).fill(APPROVER));
    expect(approvals.map((e) => e.detail)).toContain('step dr_db');
    expect(entries).toContainEqual({ actor: REQUESTER, action: 'step_done', detail: 'step-1' });
    const changes = entries.filter((e) => e.action === 'change').map((e) => e.detail);
    for (const change of [
      /^app_db: JOB-\d+ started: restore prod from the latest backup$/,
      new RegExp(`^dr_db: CopyDBSnapshot: arn:aws:rds:${EAST}:\\d+:snapshot:${SOURCE_DB}-nightly to ${WEST}`),
      new RegExp(`^dr_db: RestoreDBInstanceFromDBSnapshot: ${DR_DB} in ${WEST}`),
      new RegExp(`^scale: UpdateService: ${SERVICE} in ${CLUSTER} \\(${WEST}\\) desired count 3$`),
      new RegExp(`^secret: PutSecretValue: key DATABASE_URL of secret ${APP_SECRET} \\(${WEST}\\)`),
      /^redeploy: UpdateService: forced new deployment ecs-svc\//,
      /^web_env: set DATABASE_URL of web \(production\)$/,
      /^web_env: redeploy of web started: dpl_/,
      /^dns: Route 53 UPSERT CNAME api\.example\.com -> api-dr\.example\.com \(TTL 60\)/,
      /^status: status page incident sp\d+ opened \(monitoring\)$/,
      /^fresh_backup: JOB-\d+ started: back up prod$/,
      new RegExp(`^step-12: posted to ${EMERGENCY}$`),
    ]) {
      expect(
        changes.filter((c) => change.test(c)),
        String(change),
      ).toHaveLength(1);
    }
    // No value of a secret or an env variable is on the trail.
    expect(JSON.stringify(entries)).not.toContain(DR_DATABASE_URL);
  });

  test('frontend-rollback: Vercel production back to the deployment before the current one', async () => {
    const [, previous, current] = before.get('marketing')!;
    expect(vercel.productionOf('marketing')!.id).toBe(current);
    const run = await requestRun(w, 'frontend-rollback', REQUESTER);
    await clickRun(w, run, ['Approve', 'Reject'], 'Approve', APPROVER);
    await untilState(w, run, 'succeeded');
    expect(vercel.productionOf('marketing')!.id).toBe(previous);
    expect(vercel.callsTo('v1/projects/', 'POST').map((c) => c.path)).toEqual([
      expect.stringMatching(new RegExp(`/rollback/${previous}$`)),
    ]);
    const changes = (await runAudit(w, run)).filter((e) => e.action === 'change').map((e) => e.detail);
    expect(changes).toEqual([
      `rollback: rolling marketing back from ${current} to ${previous} (https://${vercel.productionOf('marketing')!.host})`,
    ]);
  });
});

describe('kill -9 while dns_switch waits on its Route 53 change', () => {
  test('the restarted process waits on the recorded change: one ChangeResourceRecordSets overall', async () => {
    const upserts = () => aws.callsTo('ChangeResourceRecordSets').filter((c) => c.params.name === 'www.example.com');
    aws.route53.syncMs = SYNC_MS;
    try {
      const run = await requestRun(w, 'dns-cutover', REQUESTER);
      await clickRun(w, run, ['Approve', 'Reject'], 'Approve', APPROVER);
      const change = await waitUntil('the change recorded and waited on', async () => {
        const recorded = (await runAudit(w, run)).find(
          (e) => e.action === 'change' && e.detail.startsWith('www: Route 53 UPSERT'),
        );
        const id = recorded && /change (\S+)$/.exec(recorded.detail)?.[1];
        return id && upserts().length === 1 && aws.callsTo('GetChange').some((c) => c.params.Id === id) && id;
      });
      const polled = aws.callsTo('GetChange').length;
      await w.lifeline.stop('SIGKILL');
      await w.processes[0]!.start();
      // The resumed attempt polls the recorded change while Route 53 still has it PENDING; then Route 53 syncs it.
      await waitUntil('the resumed attempt polling the change', () => aws.callsTo('GetChange').length > polled, 20_000);
      expect(await stepStates(w, run)).toEqual(['step-1:succeeded:1', 'www:running:2']);
      aws.route53.syncPending();
      await untilState(w, run, 'succeeded');
      expect(await stepStates(w, run)).toEqual(['step-1:succeeded:1', 'www:succeeded:2']);
      expect(upserts()).toHaveLength(1);
      expect(
        aws
          .callsTo('GetChange')
          .slice(polled)
          .every((c) => c.params.Id === change),
      ).toBe(true);
      expect(w.slack.posts().filter((c) => c.body.text === CUTOVER_TEXT)).toHaveLength(1);
      const entries = await runAudit(w, run);
      expect(entries.filter((e) => e.action === 'change' && e.detail.startsWith('www:'))).toHaveLength(1);
      expect(entries).toContainEqual({
        actor: 'lifeline',
        action: 'step_started',
        detail: 'www (again: its worker stopped inside it)',
      });
      const record = aws.route53.peekRecords(ZONE).find((r) => r.name === 'www.example.com');
      expect(record?.values).toEqual(['www-dr.example.com']);
    } finally {
      aws.route53.syncMs = 0;
    }
  });
});

describe('Abort after a failed step', () => {
  test('puts the secret back, and neither password shows in Slack or in a log line', async () => {
    const original = secretOf(EAST, CREDS_SECRET);
    const run = await requestRun(w, 'rotate', REQUESTER);
    await clickRun(w, run, ['Approve', 'Reject'], 'Approve', APPROVER);
    await untilState(w, run, 'stopped');
    expect(secretOf(EAST, CREDS_SECRET)).toEqual({ ...original, DB_PASSWORD: NEW_PASSWORD });
    await clickRun(w, run, ['Retry', 'Skip', 'Abort'], 'Abort', APPROVER);
    await untilState(w, run, 'aborted');
    expect(secretOf(EAST, CREDS_SECRET)).toEqual(original);
    expect(aws.secrets.peekVersions(CREDS_SECRET)).toHaveLength(3);
    const putBack = `put back the earlier value of key DB_PASSWORD of secret ${CREDS_SECRET} (the default region)`;
    expect((await stepRow(run, 'password')).undone).toBe(putBack);
    expect(await runAudit(w, run)).toContainEqual({
      actor: 'lifeline',
      action: 'undone',
      detail: `password: ${putBack}`,
    });

    const slackTexts = [
      ...w.slack.calls.filter((c) => c.method.startsWith('chat.')).map((c) => JSON.stringify(c.body)),
      ...w.slack.responses.map((r) => JSON.stringify(r.body)),
    ];
    for (const value of [OLD_PASSWORD, NEW_PASSWORD]) {
      expect(slackTexts.filter((t) => t.includes(value))).toEqual([]);
      expect(w.output().filter((l) => l.includes(value))).toEqual([]);
    }
  });
});
