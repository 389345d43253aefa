// The sandbox, wired: its databases, the stand-ins for Slack, PagerDuty, Statuspage and Vercel, the simulated AWS, the page,
// the sample database's first backup (Lifeline's own backup job), the sample alert, and Lifeline itself as a child
// process pointed at all of them. stop() undoes it in reverse.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { RDSClient } from '@aws-sdk/client-rds';
import { createRdsPort } from '../adapters/aws/rds.js';
import { readConfig, type Config } from '../shared/config.js';
import { createLogger } from '../shared/log.js';
import { SYSTEM_ACTOR } from '../domain/access/permissions.js';
import { StatuspageStandIn } from '../adapters/statuspage/stand-in.js';
import { VercelStandIn } from '../adapters/vercel/stand-in.js';
import { SampleAlert } from './alerts.js';
import {
  checkServer,
  createSandboxDatabase,
  fillSampleDatabase,
  listBackups,
  prepareBackupsFolder,
  sampleStats,
  SAMPLE_ROWS,
  type SampleStats,
} from './databases.js';
import { maskedUrl, urlWithDatabase } from '../shared/db/connection.js';
import { isObject } from '../shared/loopback-server.js';
import { SetupError } from './errors.js';
import { runFirstBackup } from './first-backup.js';
import { clearQueues, removeConfigFolder, removeLeftovers, withRedis } from './leftovers.js';
import { LifelineChild } from './lifeline-child.js';
import { SandboxPagerDuty } from './pagerduty.js';
import { apiHealth, appendLogLines, seedSampleAws } from './sample-aws.js';
import { ChangeFeed, startServer } from './server.js';
import type { SandboxSettings } from './settings.js';
import { SimulatedAws } from '../adapters/aws/stand-in.js';
import { SandboxSlack } from './slack.js';
import { Workspace } from './workspace.js';
import {
  APPROVER_ROLES,
  BOT,
  CHANNELS,
  EMERGENCY,
  lifelineYaml,
  PEOPLE,
  routingKeyVariable,
  SAMPLE_ALERT,
  SAMPLE_DR,
  SAMPLE_VERCEL,
  STATUS_PAGE,
} from './world.js';

const LOG_EVERY_MS = 30_000;
const STATS_FRESH_MS = 2_000;
// Long enough to watch on the page, short enough to wait for.
const VERCEL_BUILD_MS = 5_000;
const VERCEL_ROLLBACK_MS = 1_500;

export interface RunningSandbox {
  /** The page. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface SandboxHooks {
  /** The sandbox's own progress lines and Lifeline's log. */
  readonly say: (line: string) => void;
  /** Lifeline ended by itself (a crash): the sandbox cannot go on. */
  readonly lifelineDied: (how: string) => void;
}

export async function startSandbox(settings: SandboxSettings, hooks: SandboxHooks): Promise<RunningSandbox> {
  const { say } = hooks;
  const undo: (() => Promise<unknown>)[] = [];
  const stop = async (): Promise<void> => {
    while (undo.length > 0) await undo.pop()!().catch((err: Error) => say(`sandbox: while stopping: ${err.message}`));
  };
  try {
    return await start(settings, hooks, undo, stop);
  } catch (err) {
    await stop();
    throw err;
  }
}

type Undo = (() => Promise<unknown>)[];

/** The stand-ins Lifeline talks to, the sample alert, and the feed that tells the page something changed. */
interface StandIns {
  readonly aws: SimulatedAws;
  readonly changes: ChangeFeed;
  readonly slack: SandboxSlack;
  readonly pagerduty: SandboxPagerDuty;
  readonly statuspage: StatuspageStandIn;
  readonly vercel: VercelStandIn;
  readonly alert: SampleAlert;
  readonly workspace: Workspace;
}

/** What Lifeline and the stand-ins share: made up fresh on every start. */
interface Secrets {
  readonly botToken: string;
  readonly signingSecret: string;
  /** PagerDuty routing key → the role it pages. */
  readonly routingKeys: ReadonlyMap<string, string>;
  readonly statuspageKey: string;
  readonly vercelToken: string;
  /** alerts.token: the bearer the sample alert is sent with. */
  readonly alertsToken: string;
}

async function start(
  settings: SandboxSettings,
  hooks: SandboxHooks,
  undo: Undo,
  stop: () => Promise<void>,
): Promise<RunningSandbox> {
  const { say } = hooks;
  const appUrl = urlWithDatabase(settings.adminUrl, settings.appDb);
  // Everything that can be wrong with the machine, before anything is created.
  await assertPortFree(settings.host, settings.port);
  await checkServer(settings.adminUrl);
  await withRedis(settings.redisUrl, (r) => r.ping());

  await createDatabases(settings, appUrl, undo, say);
  const aws = await startAws(undo);
  const secrets = makeSecrets();
  const lifelinePort = settings.lifelinePort || (await freePort());
  const base = `http://${reachableHost(settings.host)}:${settings.port}`;
  const standIns = createStandIns(aws, secrets, base, lifelinePort);

  const lifelineEnv = await lifelineEnvironment(settings, { aws, secrets, base, lifelinePort }, undo);
  // The config Lifeline itself will read from that environment, for the first backup taken before it starts.
  const config = readConfig(lifelineEnv);
  const child = new LifelineChild(lifelineEnv, (line) => say(`lifeline | ${line}`), hooks.lifelineDied);
  undo.push(await startPage(settings, appUrl, standIns, child, config));

  await takeFirstBackup(settings, config, aws, say);

  undo.push(() => child.stop());
  process.once('exit', () => child.killNow());
  say(`sandbox: starting Lifeline (node dist/main.js) on port ${lifelinePort}`);
  await child.start();
  standIns.changes.changed();

  return { url: `http://${shownHost(settings.host)}:${settings.port}`, stop };
}

async function createDatabases(
  settings: SandboxSettings,
  appUrl: string,
  undo: Undo,
  say: (line: string) => void,
): Promise<void> {
  say(
    `sandbox: creating databases ${settings.stateDb} (Lifeline's state) and ${settings.appDb} (the sample shop) on ${maskedUrl(settings.adminUrl)}`,
  );
  // Runs last on the way out, once Lifeline has stopped.
  undo.push(async () => {
    if (settings.dropOnExit) return removeLeftovers(settings, say, true);
    // A stopped Lifeline's timers mean nothing (the next start clears them anyway): only the data is worth a look.
    await clearQueues(settings.redisUrl, settings.queuePrefix);
    say(
      `sandbox: cleared its queues; kept ${settings.stateDb}, ${settings.appDb} and ${settings.backupsDir} to look at ` +
        '(`npm run sandbox -- --clean` removes them)',
    );
  });
  await createSandboxDatabase(settings.adminUrl, settings.stateDb);
  await createSandboxDatabase(settings.adminUrl, settings.appDb);
  await fillSampleDatabase(appUrl);
  await prepareBackupsFolder(settings.backupsDir);
  say(
    `sandbox: sample database filled (${SAMPLE_ROWS.users} users, ${SAMPLE_ROWS.orders} orders); ` +
      `its backups go to ${settings.backupsDir}`,
  );
  // Timers left in Redis by an earlier run point at incidents of the database just re-created.
  await clearQueues(settings.redisUrl, settings.queuePrefix);
}

async function startAws(undo: Undo): Promise<SimulatedAws> {
  const aws = await new SimulatedAws().start();
  undo.push(() => aws.stop());
  seedSampleAws(aws);
  const logs = setInterval(() => appendLogLines(aws), LOG_EVERY_MS);
  undo.push(async () => clearInterval(logs));
  return aws;
}

function makeSecrets(): Secrets {
  const secret = (bytes: number) => randomBytes(bytes).toString('hex');
  return {
    botToken: `xoxb-sandbox-${secret(12)}`,
    signingSecret: secret(32),
    routingKeys: new Map(PEOPLE.flatMap((p) => (p.role ? [[`sandbox${secret(13)}`, p.role] as const] : []))),
    statuspageKey: secret(16),
    vercelToken: secret(12),
    alertsToken: secret(24),
  };
}

function createStandIns(aws: SimulatedAws, secrets: Secrets, base: string, lifelinePort: number): StandIns {
  const changes = new ChangeFeed();
  const changed = changes.changed;
  aws.onAnswered = changed;
  const slack = new SandboxSlack({ botToken: secrets.botToken, baseUrl: base, onChange: changed });
  const pagerduty = new SandboxPagerDuty(secrets.routingKeys, changed);
  // Served by the sandbox's own server (below /statuspage/), so the page hears of every change.
  const statuspage = new StatuspageStandIn({
    pageId: STATUS_PAGE.pageId,
    apiKey: secrets.statuspageKey,
    components: [STATUS_PAGE.component],
  });
  // Served below /vercel/ the same way; never started on a port of its own.
  const vercel = new VercelStandIn({
    token: secrets.vercelToken,
    buildMs: VERCEL_BUILD_MS,
    rollbackMs: VERCEL_ROLLBACK_MS,
  });
  vercel.addProject(SAMPLE_VERCEL.project, SAMPLE_VERCEL.deployments);
  const lifeline = `http://127.0.0.1:${lifelinePort}`;
  const alert = new SampleAlert(`${lifeline}/alerts/alertmanager`, secrets.alertsToken, changed);
  const workspace = new Workspace({
    slack,
    eventsUrl: `${lifeline}/slack/events`,
    signingSecret: secrets.signingSecret,
  });
  return { aws, changes, slack, pagerduty, statuspage, vercel, alert, workspace };
}

/** Lifeline's environment: every address points into the sandbox, and its config file is written for it. */
async function lifelineEnvironment(
  settings: SandboxSettings,
  to: { aws: SimulatedAws; secrets: Secrets; base: string; lifelinePort: number },
  undo: Undo,
): Promise<Record<string, string>> {
  const { aws, secrets, base } = to;
  await mkdir(settings.configDir, { recursive: true });
  undo.push(() => removeConfigFolder(settings.configDir));
  const configPath = join(settings.configDir, 'lifeline.yml');
  const yaml = lifelineYaml({
    backupsDir: settings.backupsDir,
    backupPrefix: settings.appDb,
    healthUrl: `${base}/shop/health`,
    apiHealthUrl: `${base}/shop/api/health`,
  });
  await writeFile(configPath, yaml);
  const secretsEnv = {
    PRODUCTION_DATABASE_URL: urlWithDatabase(settings.adminUrl, settings.appDb),
    STATUSPAGE_API_KEY: secrets.statuspageKey,
    VERCEL_TOKEN: secrets.vercelToken,
    ALERTS_TOKEN: secrets.alertsToken,
    ...Object.fromEntries([...secrets.routingKeys].map(([key, role]) => [routingKeyVariable(role), key])),
  };
  return {
    ...settings.inherited,
    SLACK_BOT_TOKEN: secrets.botToken,
    SLACK_SIGNING_SECRET: secrets.signingSecret,
    SLACK_API_URL: `${base}/slack/api/`,
    PAGERDUTY_EVENTS_URL: `${base}/pagerduty/v2/enqueue`,
    STATUSPAGE_API_URL: `${base}/statuspage/v1`,
    VERCEL_API_URL: `${base}/vercel`,
    PORT: String(to.lifelinePort),
    DATABASE_URL: urlWithDatabase(settings.adminUrl, settings.stateDb),
    REDIS_URL: settings.redisUrl,
    LIFELINE_CONFIG: configPath,
    LIFELINE_QUEUE_PREFIX: settings.queuePrefix,
    LIFELINE_ROLE: 'all',
    LOG_LEVEL: settings.logLevel,
    // The simulated AWS answers at once; poll it often so a scale, a redeploy or a runbook's wait ends in seconds.
    LIFELINE_AWS_POLL_SECONDS: '1',
    ...aws.env(),
    ...secretsEnv,
  };
}

/** Starts the page's server; resolves with what closes it. */
async function startPage(
  settings: SandboxSettings,
  appUrl: string,
  standIns: StandIns,
  child: LifelineChild,
  config: Config,
): Promise<() => Promise<void>> {
  const { aws, changes, slack, pagerduty, statuspage, vercel, alert, workspace } = standIns;
  return startServer({
    host: settings.host,
    port: settings.port,
    changes,
    slack,
    pagerduty,
    statuspage,
    vercel,
    alert,
    workspace,
    state: pageState(settings, appUrl, standIns, child, config),
    healthy: async () => (await sampleStats(appUrl)) !== undefined,
    apiHealth: () => apiHealth(aws),
  }).catch((err: Error) => {
    changes.close();
    throw err;
  });
}

/**
 * Everything the page shows, as JSON. The shop's row counts are kept briefly so that asking often costs no counting.
 */
function pageState(
  settings: SandboxSettings,
  appUrl: string,
  { aws, slack, pagerduty, statuspage, vercel, alert, workspace }: StandIns,
  child: LifelineChild,
  config: Config,
): () => Promise<unknown> {
  const runbooks = Object.entries(config.file.runbooks).map(([name, r]) => ({
    name,
    title: r.title,
    approval: r.approval,
    steps: r.steps.length,
  }));
  let stats: { at: number; value: Promise<SampleStats | undefined> } | undefined;
  const freshStats = (): Promise<SampleStats | undefined> => {
    if (!stats || Date.now() - stats.at > STATS_FRESH_MS) stats = { at: Date.now(), value: sampleStats(appUrl) };
    return stats.value;
  };
  return async () => {
    const [shop, backups] = await Promise.all([freshStats(), listBackups(settings.backupsDir, settings.appDb)]);
    const rds = aws.rds.peekAll();
    const drRds = aws.regions.rds(SAMPLE_DR.region).peekAll();
    return {
      bot: BOT,
      people: PEOPLE,
      approverRoles: APPROVER_ROLES,
      channels: CHANNELS.map((c) => ({ ...c, allowed: c.id === EMERGENCY.id })),
      incidentChannels: [...slack.created.values()].map((c) => ({
        id: c.id,
        name: c.name,
        topic: c.topic,
        archived: c.archived,
        pins: [...c.pins],
        members: [...c.members],
      })),
      emergencyChannel: EMERGENCY.id,
      messages: slack.messages,
      pages: pagerduty.pages(),
      statuspage: {
        components: Object.entries(statuspage.components).map(([id, status]) => ({
          id,
          name: id === STATUS_PAGE.component ? STATUS_PAGE.componentName : id,
          status,
        })),
        incidents: [...statuspage.incidents].reverse(),
      },
      alert: { ...SAMPLE_ALERT, last: alert.last ?? null },
      aws: {
        region: aws.env().AWS_REGION,
        instances: rds.instances,
        snapshots: newestFirst(rds.snapshots),
        services: aws.ecs.peekAll(),
        calls: aws.calls
          .slice(-8)
          .reverse()
          .map((c) => ({ service: c.service, action: c.action, region: c.region, at: c.at })),
        dr: {
          region: SAMPLE_DR.region,
          instances: drRds.instances,
          snapshots: newestFirst(drRds.snapshots),
          services: aws.regions.ecs(SAMPLE_DR.region).peekAll(),
        },
        dns: { zone: SAMPLE_DR.zone, zoneId: SAMPLE_DR.zoneId, records: aws.route53.peekRecords(SAMPLE_DR.zoneId) },
        api: { record: SAMPLE_DR.record, drTarget: SAMPLE_DR.drTarget, ...apiHealth(aws) },
        secret: secretView(aws),
      },
      vercel: vercelView(vercel),
      runbooks,
      shop: { database: settings.appDb, rows: shop ?? null, backups, backupsDir: settings.backupsDir },
      lifeline: { state: child.state, pid: child.pid ?? null, requestUrl: workspace.requestUrl },
    };
  };
}

function newestFirst<T extends { readonly createdAt: Date | undefined }>(list: T[]): T[] {
  return list.sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0));
}

/** The database secret's host (a host name, nothing secret) and how many versions it has had. */
function secretView(aws: SimulatedAws): { id: string; host: string | null; versions: number } {
  const versions = aws.regions.secrets(SAMPLE_DR.primaryRegion).peekVersions(SAMPLE_DR.secretId);
  let host: string | null = null;
  try {
    const value: unknown = JSON.parse(versions.at(-1) ?? '{}');
    if (isObject(value) && typeof value.DATABASE_HOST === 'string') host = value.DATABASE_HOST;
  } catch {
    // a secret someone made unreadable shows no host
  }
  return { id: SAMPLE_DR.secretId, host, versions: versions.length };
}

/** The Vercel project: which deployment production serves, every deployment newest first, its env keys. */
function vercelView(vercel: VercelStandIn): unknown {
  const production = vercel.productionOf(SAMPLE_VERCEL.project);
  const project = vercel.projects.find((p) => p.name === SAMPLE_VERCEL.project)!;
  return {
    project: project.name,
    production: production?.id ?? null,
    rolledBack: project.rollback !== undefined,
    env: Object.entries(project.env).map(([key, v]) => ({ key, value: v.value })),
    deployments: vercel.deployments
      .filter((d) => d.projectId === project.id)
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((d) => ({ id: d.id, url: d.host, createdAt: d.createdAt, state: vercel.stateOf(d) })),
  };
}

async function takeFirstBackup(
  settings: SandboxSettings,
  config: Config,
  aws: SimulatedAws,
  say: (line: string) => void,
): Promise<void> {
  say("sandbox: taking the sample database's first backup with Lifeline's own backup job (/dr backup production)");
  const awsEnv = aws.env();
  const log = createLogger(settings.logLevel, config.secrets, {
    write: (line: string) => say(`lifeline (first backup) | ${line.trimEnd()}`),
  });
  const outcome = await runFirstBackup({
    config,
    env: 'production',
    requestedBy: SYSTEM_ACTOR, // Lifeline's own job, as a schedule's would be: no person asked for it
    channel: EMERGENCY.id,
    rds: createRdsPort(
      new RDSClient({
        endpoint: awsEnv.AWS_ENDPOINT_URL_RDS,
        region: awsEnv.AWS_REGION,
        credentials: {
          accessKeyId: awsEnv.AWS_ACCESS_KEY_ID ?? '',
          secretAccessKey: awsEnv.AWS_SECRET_ACCESS_KEY ?? '',
        },
      }),
    ),
    log,
  });
  say(`sandbox: ${outcome}`);
}

async function assertPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new SetupError(
          err.code === 'EADDRINUSE'
            ? `port ${port} is in use: set PORT to another one`
            : `cannot listen on ${host}:${port}: ${err.message}`,
        ),
      ),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** How Lifeline (on this machine) reaches the sandbox's server. */
function reachableHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** How the terminal names the page's address. */
function shownHost(host: string): string {
  return ['127.0.0.1', '0.0.0.0', '::', '::1', ''].includes(host) ? 'localhost' : reachableHost(host);
}
