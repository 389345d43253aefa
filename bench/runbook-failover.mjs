// Runbook failover: a 6-step region failover (rds_restore_snapshot across regions, ecs_scale, dns_switch, http_check,
// statuspage, notify) run by the real process (node dist/main.js) against the AWS stand-in, a local HTTP target, the
// Statuspage stand-in and the fake Slack, from the approval (the Approve click's HTTP answer) to the report (the run's
// "succeeded" post at the fake Slack). Baseline, in the same run: the same calls made back to back by this script
// (the AWS SDK clients, fetch to the same stand-ins) with the same waits: both poll every POLL_MS, and the stand-ins
// answer both alike (a snapshot copy and a restored instance are available at the third describe, the ECS service
// runs its tasks after two, a Route 53 change is INSYNC ROUTE53_SYNC_MS after it was made). The baseline ends with the
// last step's call; Lifeline's report post is counted as Lifeline's. The two alternate, one run at a time, each run of
// Lifeline on a runbook of its own (a restore needs a new instance name); Lifeline's time is also split by its step
// records (the steps, and the engine before, between and after them). Target: Lifeline's median at most 1.2x the
// script's; a run that does not succeed fails the benchmark.
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import {
  CopyDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  RestoreDBInstanceFromDBSnapshotCommand,
} from '@aws-sdk/client-rds';
import { DescribeServicesCommand, ECSClient, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import {
  ChangeResourceRecordSetsCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
  waitUntilResourceRecordSetsChanged,
} from '@aws-sdk/client-route-53';
import { SimulatedAws } from '../dist/adapters/aws/stand-in.js';
import { StatuspageStandIn } from '../dist/adapters/statuspage/stand-in.js';
import { onCleanup } from './support/cleanup.mjs';
import { startFakes } from './support/fakes.mjs';
import { openPool } from './support/infra.mjs';
import { CHANNEL, startOwnLifeline } from './support/processes.mjs';
import { approvedRun } from './support/runbook-runs.mjs';
import { BOT_TOKEN } from './support/slack-requests.mjs';
import { ratio, round, summary, verdict } from './support/stats.mjs';

export const name = 'runbook-failover';
export const timeLimitMs = 300_000;

const RUNS = Number(process.env.BENCH_FAILOVER_RUNS ?? 5);
const MAX_RATIO = 1.2;
const POLL_MS = 250;
const ROUTE53_SYNC_MS = 1_000;

const FROM = 'us-east-1';
const TO = 'us-west-2';
const SOURCE = 'bench-db';
const CLUSTER = 'bench-dr';
const SERVICE = 'bench-api';
const TASKS = 3;
const ZONE = 'ZBENCH0001';
const ZONE_NAME = 'bench.example';
const RECORD = `api.${ZONE_NAME}`;
const PRIMARY = `api-primary.${ZONE_NAME}`;
const DR = `api-dr.${ZONE_NAME}`;
const PAGE = 'benchpage01';
const STATUSPAGE_KEY = 'bench-statuspage-key-0123456789';
const COMPONENT = 'benchcomponent01';
const MESSAGE = 'Service restored from the DR region';
const NOTICE = 'Failover to us-west-2 done';

/** Lifeline's runbooks: one per run (the warm-up's is number 0), alike but for the instance each restores. */
function runbooksYaml(healthUrl) {
  const one = (i) => `  failover-${i}:
    title: Fail over to ${TO} (run ${i})
    steps:
      - rds_restore_snapshot: { from_region: ${FROM}, source_instance: ${SOURCE}, region: ${TO}, target_instance: ${SOURCE}-dr-${i} }
      - ecs_scale: { region: ${TO}, cluster: ${CLUSTER}, service: ${SERVICE}, count: ${TASKS} }
      - dns_switch: { zone_id: ${ZONE}, record: ${RECORD}, type: CNAME, value: ${DR}, ttl: 60 }
      - http_check: { url: "${healthUrl}", expect_status: 200, within_minutes: 1 }
      - statuspage: { status: monitoring, message: "${MESSAGE}" }
      - notify: { channel: ${CHANNEL}, text: "${NOTICE}" }`;
  return `statuspage:
  page_id: ${PAGE}
  api_key: ${STATUSPAGE_KEY}
  components: { staging: ${COMPONENT} }
runbooks:
${Array.from({ length: RUNS + 1 }, (_, i) => one(i)).join('\n')}
`;
}

/** The failed region's newest snapshot, taken now (so it, not an older copy, is what each run restores); the DR
 * service back at 0 tasks; the record back on the primary. */
function primaryDown(aws, tag) {
  aws.regions.rds(FROM).setSnapshot({ id: `${SOURCE}-${tag}`, instanceId: SOURCE, type: 'manual' });
  aws.regions.ecs(TO).setService({ cluster: CLUSTER, name: SERVICE, desired: 0 });
  aws.route53.setZone(ZONE, ZONE_NAME, [{ name: RECORD, type: 'CNAME', ttl: 60, values: [PRIMARY] }]);
}

/** The health endpoint http_check GETs (the service in the DR region). */
async function startHealthTarget() {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup('stop the health target', async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${server.address().port}/api/health`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Describes until `done(answer)`, POLL_MS apart, as Lifeline's waits do (bounded: a stand-in gone wrong ends it). */
async function pollUntil(what, describe, done) {
  for (let polls = 1; polls <= 200; polls++) {
    if (done(await describe())) return;
    await sleep(POLL_MS);
  }
  throw new Error(`baseline: ${what} never got there`);
}

/** The script's clients: the AWS SDK's, on the stand-in's endpoint, as Lifeline's reach it through AWS_ENDPOINT_URL_*. */
function sdkClients(aws) {
  const options = (region) => ({
    region,
    endpoint: aws.url,
    credentials: { accessKeyId: 'AKIDFAKEAWS', secretAccessKey: 'fake-aws-secret-key' },
  });
  const clients = {
    rdsFrom: new RDSClient(options(FROM)),
    rdsTo: new RDSClient(options(TO)),
    ecs: new ECSClient(options(TO)),
    route53: new Route53Client(options(FROM)),
  };
  onCleanup('destroy the baseline AWS clients', async () => Object.values(clients).forEach((c) => c.destroy()));
  return clients;
}

/** The failover's calls back to back: what the six steps call, in their order, with the same polls. */
async function baselineRun({ clients, aws, statuspage, slack, healthUrl }, tag) {
  primaryDown(aws, tag);
  const target = `${SOURCE}-base-${tag}`;
  const started = performance.now();
  const lists = await Promise.all(
    [clients.rdsFrom, clients.rdsTo].map((c) =>
      c.send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: SOURCE, MaxRecords: 100 })),
    ),
  );
  const newest = lists
    .flatMap((l) => l.DBSnapshots ?? [])
    .filter((s) => s.Status === 'available')
    .sort((a, b) => takenAt(b) - takenAt(a))[0];
  await clients.rdsTo
    .send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target }))
    .then(() => Promise.reject(new Error(`baseline: ${target} already exists`)))
    .catch((err) => {
      if (err.name !== 'DBInstanceNotFoundFault') throw err;
    });
  const copy = `base-copy-${tag}`;
  await clients.rdsTo.send(
    new CopyDBSnapshotCommand({
      SourceDBSnapshotIdentifier: newest.DBSnapshotArn,
      TargetDBSnapshotIdentifier: copy,
      CopyTags: true,
    }),
  );
  await pollUntil(
    `snapshot ${copy}`,
    () => clients.rdsTo.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: copy })),
    (out) => out.DBSnapshots?.[0]?.Status === 'available',
  );
  await clients.rdsTo.send(
    new RestoreDBInstanceFromDBSnapshotCommand({ DBSnapshotIdentifier: copy, DBInstanceIdentifier: target }),
  );
  await pollUntil(
    `instance ${target}`,
    () => clients.rdsTo.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target })),
    (out) => out.DBInstances?.[0]?.DBInstanceStatus === 'available',
  );

  await clients.ecs.send(new UpdateServiceCommand({ cluster: CLUSTER, service: SERVICE, desiredCount: TASKS }));
  await pollUntil(
    `service ${SERVICE}`,
    () => clients.ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: [SERVICE] })),
    (out) => out.services?.[0]?.runningCount === TASKS && out.services[0].pendingCount === 0,
  );

  const change = await clients.route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: ZONE,
      ChangeBatch: {
        Changes: [
          {
            Action: 'UPSERT',
            ResourceRecordSet: { Name: RECORD, Type: 'CNAME', TTL: 60, ResourceRecords: [{ Value: DR }] },
          },
        ],
      },
    }),
  );
  const delay = POLL_MS / 1000;
  await waitUntilResourceRecordSetsChanged(
    { client: clients.route53, minDelay: delay, maxDelay: delay, maxWaitTime: 60 },
    { Id: change.ChangeInfo.Id },
  );
  const records = await clients.route53.send(
    new ListResourceRecordSetsCommand({ HostedZoneId: ZONE, StartRecordName: RECORD, MaxItems: 100 }),
  );
  if (records.ResourceRecordSets?.[0]?.ResourceRecords?.[0]?.Value !== DR)
    throw new Error('baseline: DNS not switched');

  const health = await fetch(healthUrl);
  await health.body?.cancel();
  if (health.status !== 200) throw new Error(`baseline: the health target answered ${health.status}`);

  const incident = await fetch(`${statuspage.url}/pages/${PAGE}/incidents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `OAuth ${STATUSPAGE_KEY}` },
    body: JSON.stringify({
      incident: {
        name: MESSAGE,
        status: 'monitoring',
        body: MESSAGE,
        components: {},
        component_ids: [],
        deliver_notifications: true,
      },
    }),
  });
  await incident.text();
  if (!incident.ok) throw new Error(`baseline: Statuspage answered ${incident.status}`);

  const notice = await fetch(`${slack.apiUrl}chat.postMessage`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BOT_TOKEN}`, 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ channel: CHANNEL, text: NOTICE }),
  });
  await notice.text();
  return performance.now() - started;
}

function takenAt(snapshot) {
  return (snapshot.OriginalSnapshotCreateTime ?? snapshot.SnapshotCreateTime)?.getTime() ?? 0;
}

/**
 * One run of Lifeline on runbook failover-<i>, checked against the stand-ins (the instance is there, DNS switched);
 * its time split by Lifeline's step records: the steps themselves, and the engine's time before the first, between
 * them and after the last (to the report).
 */
async function lifelineRun({ lifeline, slack, pool, aws }, i) {
  primaryDown(aws, `run-${i}`);
  const run = await approvedRun({ lifeline, slack, pool, runbook: `failover-${i}` });
  const restored = aws.regions.rds(TO).peekInstance(`${SOURCE}-dr-${i}`);
  if (restored?.status !== 'available') throw new Error(`RUN-${run.number}: ${SOURCE}-dr-${i} is ${restored?.status}`);
  if (aws.route53.peekRecords(ZONE)[0]?.values[0] !== DR) throw new Error(`RUN-${run.number}: DNS not switched`);
  const { rows: steps } = await pool.query(
    `SELECT started_at, finished_at FROM runbook_steps WHERE run = $1 ORDER BY step_index`,
    [run.number],
  );
  const stepsMs = steps.reduce((sum, s) => sum + (s.finished_at - s.started_at), 0);
  const beforeMs = steps[0].started_at.getTime() - run.approvedAt;
  const afterMs = run.reportAt - steps.at(-1).finished_at.getTime();
  const ms = run.reportAt - run.approvedAt;
  return { ms, stepsMs, beforeMs, betweenMs: ms - stepsMs - beforeMs - afterMs, afterMs };
}

/** `work`'s time, and the AWS calls the stand-in took meanwhile ("DescribeDBSnapshots x5, ..."), to show both sides
 * made the same ones. */
async function withAwsCalls(aws, work) {
  const from = aws.calls.length;
  const ms = await work();
  const counts = {};
  for (const call of aws.calls.slice(from)) counts[call.action] = (counts[call.action] ?? 0) + 1;
  return {
    ms,
    calls: Object.entries(counts)
      .map(([action, n]) => `${action} x${n}`)
      .join(', '),
  };
}

export async function run(print) {
  const { slack, pagerduty } = await startFakes();
  const aws = await new SimulatedAws().start();
  onCleanup('stop the AWS stand-in', () => aws.stop());
  aws.route53.syncMs = ROUTE53_SYNC_MS;
  const statuspage = await new StatuspageStandIn({
    pageId: PAGE,
    apiKey: STATUSPAGE_KEY,
    components: [COMPONENT],
  }).start();
  onCleanup('stop the Statuspage stand-in', () => statuspage.stop());
  const healthUrl = await startHealthTarget();
  const { db, lifeline } = await startOwnLifeline({
    tag: 'failover',
    steps: [{ after_minutes: 0, notify: 'oncall' }],
    slack,
    pagerduty,
    configOptions: { extraYaml: runbooksYaml(healthUrl) },
    extraEnv: {
      ...aws.env(),
      STATUSPAGE_API_URL: statuspage.url,
      LIFELINE_AWS_POLL_SECONDS: String(POLL_MS / 1000),
    },
  });
  const pool = openPool(db.url);
  onCleanup('close the failover benchmark pool', () => pool.end());
  const world = { lifeline, slack, pool, aws, statuspage, healthUrl, clients: sdkClients(aws) };

  // A warm-up of each on the fresh process and clients, printed, not counted.
  const warmBase = await withAwsCalls(aws, () => baselineRun(world, 'warm'));
  const warmRun = await withAwsCalls(aws, async () => (await lifelineRun(world, 0)).ms);
  print(`warm-up: script ${round(warmBase.ms)} ms, Lifeline ${warmRun.ms} ms`);
  print(`AWS calls of the script: ${warmBase.calls}`);
  print(`AWS calls of Lifeline:   ${warmRun.calls}`);
  const runs = [];
  const baselines = [];
  for (let i = 1; i <= RUNS; i++) {
    // In turns, so that neither side always runs right after the other.
    if (i % 2 === 1) baselines.push(await baselineRun(world, String(i)));
    runs.push(await lifelineRun(world, i));
    if (i % 2 === 0) baselines.push(await baselineRun(world, String(i)));
    const [base, life] = [baselines.at(-1), runs.at(-1)];
    print(
      `run ${i}: script ${round(base)} ms, Lifeline ${life.ms} ms (+${round(life.ms - base)} ms): its steps ${life.stepsMs} ms, ` +
        `engine ${life.beforeMs} ms to the first step, ${life.betweenMs} ms between steps, ${life.afterMs} ms to the report`,
    );
  }
  const life = summary(runs.map((r) => r.ms));
  const base = summary(baselines);
  const parts = Object.fromEntries(
    ['stepsMs', 'beforeMs', 'betweenMs', 'afterMs'].map((k) => [k, summary(runs.map((r) => r[k])).p50]),
  );
  const medianRatio = ratio(life.p50, base.p50);
  const p99Ratio = ratio(life.p99, base.p99);
  const complete = runs.length === RUNS && baselines.length === RUNS;
  const withinRatio = complete && medianRatio !== null && medianRatio <= MAX_RATIO;
  print(
    `${verdict(withinRatio)} approval to report at most ${MAX_RATIO}x the script, medians of ${RUNS} runs (${medianRatio}x)`,
  );
  return {
    pass: withinRatio,
    headline: `failover approval to report p50 ${life.p50} ms vs ${base.p50} ms for the same calls by a script (ratio ${medianRatio}; p99 ratio ${p99Ratio}); Lifeline takes ${round(life.p50 - base.p50)} ms more (medians) for the 6 steps`,
    lifeline_ms: life,
    lifeline_parts_p50_ms: {
      steps: parts.stepsMs,
      before_first_step: parts.beforeMs,
      between_steps: parts.betweenMs,
      to_report: parts.afterMs,
    },
    baseline_ms: base,
    ratio_p50: medianRatio,
    ratio_p99: p99Ratio,
    poll_ms: POLL_MS,
    route53_sync_ms: ROUTE53_SYNC_MS,
    aws_calls: { script: warmBase.calls, lifeline: warmRun.calls },
    targets: { [`approval to report at most ${MAX_RATIO}x the script (medians)`]: verdict(withinRatio) },
  };
}
