// Health checks against the real PostgreSQL and Redis: the real schedules queue and worker (a BullMQ job scheduler
// per env, 0.2 s apart here), the real HealthChecks with its streak in health_checks, IncidentService and the
// escalation worker paging the in-memory PagerDuty, and a local health target whose answers each test scripts.
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  createSchedulesQueue,
  startSchedulesWorker,
  syncSchedulers,
  type ScheduledWork,
} from '../../src/delivery/jobs/schedules.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import {
  HealthChecks,
  nextStreak,
  probe,
  probeTimeoutMs,
  type HealthCheckResult,
} from '../../src/domain/alerts/health.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import * as store from '../../src/domain/incidents/store.js';
import type { FileConfig } from '../../src/shared/config.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { createMetrics, type Metrics } from '../../src/shared/metrics.js';
import { dropQueuePrefix, uniqueQueuePrefix } from '../support/db.js';
import { startHealthTarget, type HealthTarget } from '../support/health-target.js';
import { waitUntil } from '../support/wait.js';
import { createHarness, newRedis, ROUTING, type Harness } from './harness.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const INTERVAL_SECONDS = 0.2;

let h: Harness;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  h = await createHarness([{ after_minutes: 0, notify: 'oncall' }]);
  await h.startWorker();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await h?.close();
});

/** The harness config with one env, `env`, whose health_url is the target, probed every `seconds`. */
function fileFor(env: string, url: string, seconds = INTERVAL_SECONDS): FileConfig {
  const staging = h.file.environments.staging!;
  return {
    ...h.file,
    environments: { [env]: { ...staging, backups: { ...staging.backups, drill_schedule: 'off' }, health_url: url } },
    alerts: {
      token: 'alerts-token-itest-0123456789',
      severity_map: {},
      cloudwatch_severity: 'sev2',
      auto_resolve: false,
      health_check_seconds: seconds,
    },
  };
}

interface Prober {
  readonly metrics: Metrics;
  readonly health: HealthChecks;
  /** Every slot this prober's worker probed, with what came of it. */
  readonly handled: { slot: number; result: HealthCheckResult | undefined }[];
}

/** HealthChecks on a pool of its own. */
function checker(file: FileConfig): { db: Db; metrics: Metrics; health: HealthChecks } {
  const db: Db = createPool(h.testDb.url, h.log);
  const metrics = createMetrics();
  const notifier = createSlackIncidentNotifier(h.chat, file);
  const incidents = new IncidentService({ db, file, notifier, timers: h.timers, metrics, log: h.log });
  return { db, metrics, health: new HealthChecks({ db, file, incidents, metrics, log: h.log }) };
}

/** One "replica": its own pool, Redis connections, schedules queue (syncSchedulers) and worker on `prefix`. */
async function prober(file: FileConfig, prefix: string): Promise<Prober> {
  const { db, metrics, health } = checker(file);
  const handled: Prober['handled'] = [];
  const queueRedis: Redis = newRedis();
  const workerRedis: Redis = newRedis();
  const queue: Queue<ScheduledWork> = createSchedulesQueue(queueRedis, prefix);
  await syncSchedulers(queue, file, 3600);
  const worker: Worker<ScheduledWork> = startSchedulesWorker(
    workerRedis,
    prefix,
    {
      start: async () => undefined,
      watchRpo: async () => undefined,
      dryRun: async () => undefined,
      checkHealth: async (env, slot) => {
        handled.push({ slot, result: await health.check(env, slot) });
      },
    },
    h.log,
  );
  cleanups.push(async () => {
    await worker.close();
    await queue.close();
    await Promise.all([queueRedis.quit(), workerRedis.quit()]);
    await db.end();
  });
  return { metrics, health, handled };
}

async function target(mode: number | 'hang' = 200): Promise<HealthTarget> {
  const t = await startHealthTarget(mode);
  cleanups.push(() => t.close());
  return t;
}

function queuePrefix(): string {
  const prefix = uniqueQueuePrefix();
  cleanups.push(() => dropQueuePrefix(prefix));
  return prefix;
}

async function healthIncidents(env: string): Promise<{ number: number; resolved_by: string | null }[]> {
  const { rows } = await h.db.query<{ number: number; resolved_by: string | null }>(
    `SELECT number, resolved_by FROM incidents WHERE source_kind = 'health' AND source_key = $1 ORDER BY number`,
    [env],
  );
  return rows;
}

async function streak(env: string): Promise<{ failures: number; successes: number; failing: boolean } | undefined> {
  const { rows } = await h.db.query<{ failures: number; successes: number; failing: boolean }>(
    'SELECT failures, successes, failing FROM health_checks WHERE env = $1',
    [env],
  );
  return rows[0];
}

async function kinds(incident: number): Promise<string[]> {
  return (await store.timeline(h.db, incident)).map((e) => e.kind);
}

async function counted(metrics: Metrics, outcome: string): Promise<number> {
  const { values } = await metrics.alertsReceived.get();
  return values
    .filter((v) => v.labels.source === 'health' && v.labels.outcome === outcome)
    .reduce((sum, v) => sum + v.value, 0);
}

describe('the streak', () => {
  test('three failures in a row flip to failing, three successes back; a success or a failure in between restarts the count', () => {
    let s = { failures: 0, successes: 0, failing: false };
    const flips: (string | undefined)[] = [];
    for (const ok of [false, false, true, false, false, false, false, true, true, false, true, true, true, true]) {
      const next = nextStreak(s, ok);
      flips.push(next.flip);
      s = next;
    }
    expect(flips).toEqual([
      ...[undefined, undefined, undefined, undefined, undefined, 'failing', undefined],
      ...[undefined, undefined, undefined, undefined, undefined, 'recovered', undefined],
    ]);
  });

  test('a slot is counted once: the same slot recorded ten times from two pools concurrently, and again later, counts one failure', async () => {
    const t = await target(500);
    const file = fileFor('slot-once', t.url);
    const [a, b] = [checker(file), checker(file)];
    cleanups.push(() => Promise.all([a.db.end(), b.db.end()]));
    const slot = Date.now();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).health.record('slot-once', t.url, slot, failure, new Date()),
      ),
    );
    expect(results.filter((r) => r.outcome === 'counted')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'duplicate')).toHaveLength(9);
    expect((await a.health.record('slot-once', t.url, slot, failure, new Date())).outcome).toBe('duplicate');
    expect(await streak('slot-once')).toMatchObject({ failures: 1, successes: 0, failing: false });
  });
});

describe('the probe', () => {
  test('a 2xx or a 3xx (not followed) is a success; a 4xx or 5xx is a failure named by its status', async () => {
    const t = await target(200);
    t.script([204, 302, 404, 500]);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await probe(t.url, 1_000));
    expect(results.map((r) => [r.ok, r.status, r.reason])).toEqual([
      [true, 204, undefined],
      [true, 302, undefined],
      [false, 404, 'HTTP 404'],
      [false, 500, 'HTTP 500'],
    ]);
    expect(t.requests).toBe(4);
  });
});

const failure = { ok: false, status: 500, latencyMs: 4, reason: 'HTTP 500' };

/** A failing target and an env whose streak flipped to failing with the declaration owed since `secondsAgo`. */
async function owedDeclaration(env: string, secondsAgo: number) {
  const t = await target(500);
  const c = checker(fileFor(env, t.url));
  cleanups.push(() => c.db.end());
  await h.db.query(
    `INSERT INTO health_checks (env, failures, successes, failing, pending, pending_at, last_slot)
     VALUES ($1, 3, 0, true, 'declare', now() - make_interval(secs => $2), $3)`,
    [env, secondsAgo, Date.now() - 1_000],
  );
  return { t, c };
}

describe('a flip left undone', () => {
  test('a declaration owed by a process that died after the third failure is made by a probe a minute later, once', async () => {
    // What the dead process left: the streak flipped to failing, the declaration owed since two minutes, no incident.
    const { t, c } = await owedDeclaration('hc-owed', 120);
    const first = await c.health.record('hc-owed', t.url, Date.now(), failure, new Date());
    expect(first).toMatchObject({ outcome: 'declared', failures: 4 });
    expect(await healthIncidents('hc-owed')).toHaveLength(1);
    const next = await c.health.record('hc-owed', t.url, Date.now() + 1, failure, new Date());
    expect(next.outcome).toBe('counted');
    const { rows } = await h.db.query('SELECT pending, pending_at FROM health_checks WHERE env = $1', ['hc-owed']);
    expect(rows[0]).toEqual({ pending: null, pending_at: null });
  });

  test('an owed declaration taken on less than a minute ago is left to the probe that took it: no repeat', async () => {
    const { t, c } = await owedDeclaration('hc-busy', 0);
    expect((await c.health.record('hc-busy', t.url, Date.now(), failure, new Date())).outcome).toBe('counted');
    expect(await healthIncidents('hc-busy')).toEqual([]);
  });
});

describe('health checks on a 0.2 s job scheduler', () => {
  test('3 failures in a row -> one SEV1 "<env> health check failing", paged once; further failures add nothing', async () => {
    const t = await target(503);
    const p = await prober(fileFor('hc-fail', t.url), queuePrefix());
    const incident = await waitUntil('the health incident', () => healthIncidents('hc-fail').then((r) => r[0]));
    const declared = (await store.getIncident(h.db, incident!.number))!;
    expect(declared).toMatchObject({ severity: 'sev1', title: 'hc-fail health check failing', declaredBy: 'lifeline' });
    expect(declared.source).toMatchObject({
      kind: 'health',
      key: 'hc-fail',
      labels: { env: 'hc-fail', url: t.url },
      annotations: { last_status: 'HTTP 503', reason: 'HTTP 503' },
      link: t.url,
    });
    expect(declared.source!.annotations.latency).toMatch(/^\d+ ms$/);
    // The card says where it came from: the URL, the last status and latency, the reason.
    const card = h.chat.calls.find((c) => c.kind === 'post' && JSON.stringify(c.message).includes('hc-fail health'));
    expect(JSON.stringify(card?.message)).toContain(t.url);
    expect(JSON.stringify(card?.message)).toContain('HTTP 503');

    await waitUntil('the on-call page', () => h.pager.of(incident!.number).length >= 1);
    // Six more failing probes: still one incident, one page, and nothing more on its timeline.
    const handledAtDeclare = p.handled.length;
    await waitUntil('six more probes', () => p.handled.length >= handledAtDeclare + 6);
    expect(await healthIncidents('hc-fail')).toHaveLength(1);
    expect(h.pager.summary(incident!.number)).toEqual(['trigger:oncall']);
    expect(h.pager.of(incident!.number)[0]!.routingKey).toBe(ROUTING.oncall);
    // One note for the change of state, saying what failed; nothing for the failures after it.
    const timeline = await store.timeline(h.db, incident!.number);
    expect(timeline.filter((e) => e.kind === 'declared')).toHaveLength(1);
    expect(timeline.filter((e) => e.kind.startsWith('alert_')).map((e) => e.detail)).toEqual([
      expect.stringMatching(
        new RegExp(`^health check of hc-fail failing: 3 failures in a row; last ${t.url}: HTTP 503 in \\d+ ms$`),
      ),
    ]);
    expect(p.handled.filter((x) => x.result?.outcome === 'declared')).toHaveLength(1);
    expect(await counted(p.metrics, 'declared')).toBe(1);
    const { values } = await p.metrics.healthProbe.get();
    const failures = values.find(
      (v) => v.metricName === 'lifeline_health_probe_seconds_count' && v.labels.outcome === 'failure',
    );
    // Every probe is observed before it is recorded (a later one may be in flight).
    expect(failures?.value).toBeGreaterThanOrEqual(p.handled.length);
    expect(p.handled.length).toBeGreaterThanOrEqual(handledAtDeclare + 6);
  });

  test('2 failures then a success, twice over -> no incident', async () => {
    const t = await target(200);
    t.script([500, 500, 200, 500, 500, 200]);
    const p = await prober(fileFor('hc-blip', t.url), queuePrefix());
    await waitUntil('ten probes', () => p.handled.length >= 10);
    expect(await healthIncidents('hc-blip')).toEqual([]);
    expect(p.handled.map((x) => x.result?.outcome)).not.toContain('declared');
    expect(await streak('hc-blip')).toMatchObject({ failures: 0, failing: false });
    expect(await counted(p.metrics, 'declared')).toBe(0);
  });

  test('3 successes in a row after the failures -> resolved by Lifeline with a note, and PagerDuty told', async () => {
    const t = await target(200);
    t.script([500, 500, 500, 200, 200, 200]);
    const p = await prober(fileFor('hc-recover', t.url), queuePrefix());
    await waitUntil('the resolving probe', () => p.handled.some((x) => x.result?.outcome === 'resolved'));
    const [incident] = await healthIncidents('hc-recover');
    expect(incident!.resolved_by).toBe('lifeline');
    const resolved = (await store.getIncident(h.db, incident!.number))!;
    expect(resolved.resolutionNote).toMatch(
      new RegExp(`^health check of hc-recover passing again: 3 successes in a row \\(.*HTTP 200 in \\d+ ms\\)$`),
    );
    expect(p.handled.map((x) => x.result?.outcome).filter((o) => o !== 'counted')).toEqual(['declared', 'resolved']);
    await waitUntil('the PagerDuty resolve', () => h.pager.summary(incident!.number).includes('resolve:oncall'));
    expect(await counted(p.metrics, 'resolved')).toBe(1);
    const timeline = await kinds(incident!.number);
    expect(timeline.filter((k) => k === 'declared' || k === 'resolved')).toEqual(['declared', 'resolved']);
  });

  test('a hanging target: each probe is cut at its bound (interval / 2) and counted as a failure that declares', async () => {
    const t = await target('hang');
    const p = await prober(fileFor('hc-hang', t.url), queuePrefix());
    await waitUntil('the health incident', () => healthIncidents('hc-hang').then((r) => r[0]));
    const bound = probeTimeoutMs(INTERVAL_SECONDS);
    expect(bound).toBe(100);
    const probes = p.handled.map((x) => x.result!.probe).slice(0, 3);
    for (const probe of probes) {
      expect(probe).toMatchObject({ ok: false, status: undefined, reason: 'no answer within 100 ms (timed out)' });
      expect(probe.latencyMs).toBeGreaterThanOrEqual(bound - 5);
      expect(probe.latencyMs).toBeLessThan(bound + 400);
    }
  });

  test('a refused connection is a failure with its reason', async () => {
    const t = await target(200);
    const url = t.url;
    await t.close();
    const p = await prober(fileFor('hc-refused', url), queuePrefix());
    await waitUntil('the health incident', () => healthIncidents('hc-refused').then((r) => r[0]));
    expect(p.handled[0]!.result!.probe).toMatchObject({ ok: false, reason: 'connection refused (ECONNREFUSED)' });
  });

  test('two probers (schedulers and workers) on one queue prefix: one probe per interval and one incident', async () => {
    const t = await target(500);
    const file = fileFor('hc-two', t.url);
    const prefix = queuePrefix();
    const started = Date.now();
    // Both schedule and both work; which of them takes a slot's probe is BullMQ's choice (often one takes them all).
    const [a, b] = await Promise.all([prober(file, prefix), prober(file, prefix)]);
    await waitUntil('the health incident', () => healthIncidents('hc-two').then((r) => r[0]));
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    // Between a request reaching the target and its probe being recorded: wait for the one in flight, if any.
    await waitUntil('every request recorded as a probe', () => a.handled.length + b.handled.length === t.requests);
    const elapsedSlots = (Date.now() - started) / (INTERVAL_SECONDS * 1000);
    const slots = [...a.handled, ...b.handled].map((x) => x.slot);
    expect(new Set(slots).size, 'no slot probed twice').toBe(slots.length);
    expect(t.requests).toBe(slots.length);
    expect(t.requests).toBeLessThanOrEqual(Math.ceil(elapsedSlots) + 1);
    expect(t.requests).toBeGreaterThanOrEqual(Math.floor(elapsedSlots * 0.6));
    expect(await healthIncidents('hc-two')).toHaveLength(1);
    expect((await counted(a.metrics, 'declared')) + (await counted(b.metrics, 'declared'))).toBe(1);
  });
});
