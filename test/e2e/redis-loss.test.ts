// Nothing is lost for good when Redis loses its contents: the real
// process (node dist/main.js) against a redis-server of the test's own, which it flushes, kills and brings back
// empty. After a flush, within the reconcile interval (LIFELINE_RECONCILE_SECONDS, 2 s here) every schedule runs
// again (backups, drills, the RPO watch) and escalation steps that fell due meanwhile fire, once each; after a
// failover the reconnect alone brings everything back (the default 60 s interval never ticks during that test). An
// approval expiry that failed for good (PostgreSQL refused it on every attempt) is re-added and still expires.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, stillAfter, waitUntilTime, World } from '../support/e2e.js';
import { FakeAws } from '../support/fake-aws.js';
import type { PagerDutyEvent } from '../../src/adapters/pagerduty/stand-in.js';
import { ROUTING_KEYS, USERS } from '../support/lifeline-process.js';
import { PrivateRedis } from '../support/private-redis.js';
import {
  auditOf,
  backupName,
  buttonsOf,
  createAppDatabase,
  dumpCustom,
  jobNumberIn,
  jobRow,
  planPost,
  type AppDatabase,
} from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 90_000 });

const RECONCILE_MS = 2_000;
const BACKUP_SLOT_MS = 3_000;
const LEAD_AFTER_MS = 6_000; // the ladder below: on-call at once, engineering lead after 6 s, CTO after 12 s
const EXPIRE_MS = 6_000;
const RPO_WATCHED = 'lifeline-rpo-watched';

let redis: PrivateRedis;
let app: AppDatabase;
let fake: FakeAws;
let w: World;
let startedAt: number;
const folders: string[] = [];
let shopStore: string;
let watchedStore: string;

function folder(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `lifeline-e2e-redis-loss-${name}-`));
  folders.push(dir);
  return dir;
}

beforeAll(async () => {
  app = await createAppDatabase(50);
  fake = await new FakeAws().start();
  fake.ecs.setService({ cluster: 'fleet', name: 'web', desired: 2 });
});

afterAll(async () => {
  await Promise.allSettled([fake?.stop(), app?.drop()]);
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** A world of its own (database, queue prefix, private redis-server, stores) with one Lifeline process started. */
async function openWorld(extraEnv: Record<string, string>): Promise<void> {
  redis = await PrivateRedis.start();
  shopStore = folder('shop');
  // A first backup, so that drills have something to restore from the first slot on.
  await dumpCustom(app.url, join(shopStore, backupName('shop', new Date(Date.now() - 60_000), 'dump')));
  watchedStore = folder('watched'); // empty: the RPO watch pages about it until a backup lands
  const fleetStore = folder('fleet');
  writeFileSync(join(fleetStore, backupName('fleet', new Date(), 'dump')), 'PGDMP');
  const environmentsYaml = `  shop:
    database: { url: "${app.configUrl}", verify: [SELECT COUNT(*) FROM users] }
    backups: { store: "file://${shopStore}", prefix: shop, retention_days: 7, rpo_minutes: 60, schedule: "*/3 * * * * *", drill_schedule: "*/10 * * * * *" }
  watched:
    database: { url: "postgres://127.0.0.1:5432/watched_unused" }
    backups: { store: "file://${watchedStore}", prefix: watched, retention_days: 7, rpo_minutes: 60, drill_schedule: "off" }
  fleet:
    database: { url: "postgres://127.0.0.1:5432/fleet_unused" }
    backups: { store: "file://${fleetStore}", prefix: fleet, retention_days: 7, rpo_minutes: 1440, drill_schedule: "off" }
    ecs: { cluster: fleet, services: [web] }
    require_approval: [scale]`;
  w = await World.create({
    config: {
      steps: [
        { after_minutes: 0, notify: 'oncall' },
        { after_minutes: LEAD_AFTER_MS / 60_000, notify: 'engineering_lead' },
        { after_minutes: (2 * LEAD_AFTER_MS) / 60_000, notify: 'cto' },
      ],
      environmentsYaml,
      approvalsYaml: `  approver_roles: [engineering_lead, cto]\n  expire_minutes: ${EXPIRE_MS / 60_000}\n  allow_self_approval: false`,
    },
    extraEnv: {
      ...fake.env(),
      REDIS_URL: redis.url,
      LIFELINE_RPO_WATCH_SECONDS: '1',
      TMPDIR: folder('tmp'),
      ...extraEnv,
    },
  });
  await w.process().start();
  startedAt = Date.now();
}

async function closeWorld(): Promise<void> {
  await w?.close();
  await redis?.stop();
}

// ---- helpers -------------------------------------------------------------------------------------------------------

interface ScheduledJob {
  readonly number: number;
  readonly state: string;
  readonly kind: string;
  readonly created_at: Date;
}

/** Jobs the schedules filed for env shop, oldest first. */
async function scheduledJobs(kind: 'backup' | 'drill'): Promise<ScheduledJob[]> {
  const { rows } = await w.sql.query<ScheduledJob>(
    `SELECT number, state, params->>'kind' AS kind, created_at FROM recovery_jobs
      WHERE env = 'shop' AND requested_by = 'lifeline' AND params->>'kind' = $1 AND params->>'trigger' = 'schedule' ORDER BY number`,
    [kind],
  );
  return rows;
}

/** A scheduled job of this kind filed after `since` that succeeded. */
async function succeededSince(kind: 'backup' | 'drill', since: number, timeoutMs: number): Promise<ScheduledJob> {
  return waitUntil(
    `a scheduled ${kind} filed after ${new Date(since).toISOString()} to succeed`,
    async () => {
      return (await scheduledJobs(kind)).find((j) => j.created_at.getTime() > since && j.state === 'succeeded');
    },
    timeoutMs,
    100,
  );
}

/** The job schedulers Redis holds for this world's queue prefix. */
async function schedulerIds(): Promise<string[]> {
  return (await redis.withClient((c) => c.zrange(`${w.prefix}:schedules:repeat`, '0', '-1'))).sort();
}

function rpoEvents(action: PagerDutyEvent['event_action']): PagerDutyEvent[] {
  return w.pd.events.filter((e) => e.dedup_key === RPO_WATCHED && e.event_action === action);
}

/** The roles paged for INC-n, by routing key, in order. */
function pagedRoles(incident: number): string[] {
  const roleOf = new Map<string, string>(Object.entries(ROUTING_KEYS).map(([role, key]) => [key, role]));
  return w.triggersOf(incident).map((e) => roleOf.get(e.routing_key) ?? e.routing_key);
}

async function health(): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${w.lifeline.baseUrl}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** No two scheduled backups in one slot: re-creating a scheduler never runs a slot twice. */
async function expectOneBackupPerSlot(): Promise<void> {
  const slots = (await scheduledJobs('backup')).map((j) => Math.floor(j.created_at.getTime() / BACKUP_SLOT_MS));
  expect(slots.length).toBe(new Set(slots).size);
}

// ---- the tests -----------------------------------------------------------------------------------------------------

describe('with a 2 s reconcile interval', () => {
  beforeAll(() => openWorld({ LIFELINE_RECONCILE_SECONDS: String(RECONCILE_MS / 1000) }));
  afterAll(closeWorld);

  test('after a FLUSHALL every schedule runs again within the reconcile interval, and a step due meanwhile fires once', async () => {
    // Everything runs before the flush: a backup and a drill from their schedules, the RPO watch paging about watched.
    await succeededSince('backup', 0, 30_000);
    await succeededSince('drill', 0, 30_000);
    await waitUntil('the RPO watch paging about watched', () => rpoEvents('trigger').length === 1, 15_000);
    expect(await schedulerIds()).toEqual(['backup-shop', 'drill-shop', 'rpo-watch']);
    const incident = await w.declare('sev1', 'Redis is about to be flushed');
    await waitUntil('the on-call page', () => w.triggersOf(incident.number).length === 1);
    const declaredAt = incident.sent.sentAt;

    await redis.flushAll();
    const flushedAt = Date.now();
    // Not checked empty here: a reconcile pass (every 2 s) may be re-adding the schedulers already. What proves they
    // came back is each schedule running again after the flush, below.
    // A backup lands in watched: only the RPO watch running again can notice it and resolve its page.
    writeFileSync(join(watchedStore, backupName('watched', new Date(), 'dump')), 'PGDMP');

    await waitUntil(
      'the job schedulers back in Redis',
      async () => (await schedulerIds()).length === 3,
      RECONCILE_MS + 3_000,
      100,
    );
    expect(await schedulerIds()).toEqual(['backup-shop', 'drill-shop', 'rpo-watch']);
    const backup = await succeededSince('backup', flushedAt, RECONCILE_MS + BACKUP_SLOT_MS + 15_000);
    const { rows: catalogued } = await w.sql.query<{ name: string }>('SELECT name FROM backups WHERE job = $1', [
      backup.number,
    ]);
    expect(catalogued).toHaveLength(1);
    expect(readdirSync(shopStore)).toContain(catalogued[0]!.name);
    await succeededSince('drill', flushedAt, RECONCILE_MS + 10_000 + 20_000);
    const resolved = await waitUntil(
      'the RPO watch resolving watched',
      () => rpoEvents('resolve').find((e) => e.at > flushedAt),
      10_000,
    );
    expect(resolved.routing_key).toBe(ROUTING_KEYS.oncall);

    // The ladder went on from PostgreSQL: the lead step fell due after the flush, then the CTO's; each paged once.
    await waitUntil(
      'the CTO page',
      () => w.triggersOf(incident.number).length >= 3,
      2 * LEAD_AFTER_MS + RECONCILE_MS + 10_000,
    );
    await stillAfter(
      'three pages, no more',
      () => w.triggersOf(incident.number).length === 3,
      2 * RECONCILE_MS + 1_000,
    );
    expect(pagedRoles(incident.number)).toEqual(['oncall', 'engineering_lead', 'cto']);
    expect(w.triggersOf(incident.number)[1]!.at).toBeGreaterThanOrEqual(declaredAt + LEAD_AFTER_MS);
    await expectOneBackupPerSlot();
  });

  test('an expiry that failed for good (PostgreSQL refused it on every attempt) is re-added and still expires the request', async () => {
    const sent = await w.command('scale fleet web 3', { user: USERS.oncall }, '/dr');
    const job = jobNumberIn(await w.reply(sent));
    if (job === undefined) throw new Error('the reply names no job');
    const plan = await waitUntil(
      'the plan with its buttons',
      () => {
        const post = planPost(w, job);
        return post && buttonsOf(post.body).length > 0 ? post : undefined;
      },
      15_000,
    );
    const { rows } = await w.sql.query<{ expires_at: Date }>('SELECT expires_at FROM recovery_jobs WHERE number = $1', [
      job,
    ]);
    const expiresAt = rows[0]!.expires_at.getTime();

    // The reconciler re-adds the trigger every pass: it stays one delayed job, never a pile.
    await new Promise((r) => setTimeout(r, 2 * RECONCILE_MS + 500));
    expect(await redis.withClient((c) => c.zrange(`${w.prefix}:recovery:delayed`, '0', '-1'))).toEqual([
      `expire-${job}`,
    ]);

    await w.sql.query(`CREATE FUNCTION refuse_expiry() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.state = 'expired' THEN RAISE EXCEPTION 'PostgreSQL refuses for a moment'; END IF; RETURN NEW; END $$`);
    await w.sql.query(
      'CREATE TRIGGER refuse_expiry BEFORE UPDATE ON recovery_jobs FOR EACH ROW EXECUTE FUNCTION refuse_expiry()',
    );
    const failures = () =>
      w.output().filter((l) => l.includes('recovery job attempt failed') && l.includes(`"job":"expire-${job}"`));
    await waitUntil('all three attempts of the expiry to fail', () => failures().length >= 3, EXPIRE_MS + 20_000, 100);
    expect((await jobRow(w, job))?.state).toBe('awaiting_approval');
    await w.sql.query('DROP TRIGGER refuse_expiry ON recovery_jobs');
    await w.sql.query('DROP FUNCTION refuse_expiry()');

    await waitUntil(
      `JOB-${job} to expire`,
      async () => (await jobRow(w, job))?.state === 'expired',
      RECONCILE_MS + 10_000,
      100,
    );
    const { rows: finished } = await w.sql.query<{ finished_at: Date }>(
      'SELECT finished_at FROM recovery_jobs WHERE number = $1',
      [job],
    );
    expect(finished[0]!.finished_at.getTime()).toBeGreaterThanOrEqual(expiresAt);
    expect((await auditOf(w, job)).filter((a) => a.action === 'expired')).toHaveLength(1);
    await waitUntil(
      'the plan message to say it expired',
      () => w.cardUpdates(plan).some((u) => /expired/i.test(allText(u.body))),
      10_000,
    );
    expect(fake.mutatingCalls()).toEqual([]);
  });
});

describe('with the default reconcile interval (60 s)', () => {
  beforeAll(() => openWorld({}));
  afterAll(closeWorld);

  // The interval's first tick is a minute after the start, later than this test gets: what comes back here comes back
  // because the process reconciles as soon as it reconnects.
  test('a redis-server that dies and comes back empty (a failover): /healthz says so meanwhile, everything is back on reconnect', async () => {
    // Before: watched has a backup and no open RPO alert.
    await waitUntil('the RPO watch paging about the empty watched', () => rpoEvents('trigger').length === 1, 15_000);
    writeFileSync(join(watchedStore, backupName('watched', new Date(), 'dump')), 'PGDMP');
    await waitUntil('the RPO watch resolving watched', () => rpoEvents('resolve').length === 1, 15_000);
    const incident = await w.declare('sev1', 'Redis is about to fail over');
    await waitUntil('the on-call page', () => w.triggersOf(incident.number).length === 1);
    const declaredAt = incident.sent.sentAt;

    await redis.kill();
    const down = await waitUntil(
      '/healthz to say Redis is down',
      async () => {
        const answer = await health();
        return answer.status === 503 ? answer : undefined;
      },
      10_000,
      100,
    );
    expect(down.body).toMatchObject({ ok: false, postgres: 'up', redis: 'down', down: ['redis'] });
    // Down past the lead step's time; meanwhile watched loses its backups, which the RPO watch must notice later.
    await waitUntilTime('the lead step to fall due with Redis down', declaredAt + LEAD_AFTER_MS + 500);
    for (const name of readdirSync(watchedStore)) rmSync(join(watchedStore, name));
    expect(pagedRoles(incident.number)).toEqual(['oncall']);

    await redis.restart();
    const restartedAt = Date.now();
    await waitUntil('/healthz to answer 200 again', async () => (await health()).status === 200, 10_000, 100);
    await waitUntil('the job schedulers back in Redis', async () => (await schedulerIds()).length === 3, 5_000, 100);
    expect(Date.now() - startedAt, 'no reconcile tick can have come yet').toBeLessThan(55_000);
    await succeededSince('backup', restartedAt, BACKUP_SLOT_MS + 15_000);
    await succeededSince('drill', restartedAt, 10_000 + 20_000);
    await waitUntil(
      'the RPO watch paging about watched again',
      () => rpoEvents('trigger').find((e) => e.at > restartedAt),
      10_000,
    );

    await waitUntil('the lead and CTO pages', () => w.triggersOf(incident.number).length >= 3, LEAD_AFTER_MS + 10_000);
    await stillAfter('three pages, no more', () => w.triggersOf(incident.number).length === 3, 5_000);
    expect(pagedRoles(incident.number)).toEqual(['oncall', 'engineering_lead', 'cto']);
    // The lead's step fell due while Redis was down: it fired once Redis was back, within seconds, not a minute.
    const leadPagedAt = w.triggersOf(incident.number)[1]!.at;
    expect(leadPagedAt).toBeGreaterThanOrEqual(restartedAt);
    expect(leadPagedAt - restartedAt).toBeLessThan(5_000);
    expect(w.processes[0]!.running).toBe(true);
    await expectOneBackupPerSlot();
  });
});
