// Alerts in against the real PostgreSQL and Redis (the escalation queue and worker), with the in-memory Slack and
// PagerDuty: two "replicas", each its own pool, AlertService and HTTP server with the real alert routes, so the
// unique index (not a check in one process) is what keeps one open incident per source. An alert storm of 1,000
// firings for 10 groups gives exactly 10 incidents, each paged on time.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { alertRoutes } from '../../src/delivery/alerts/routes.js';
import { serveRoutes } from '../../src/delivery/http/health.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import {
  fromAlertmanager,
  fromCloudWatch,
  type AlertmanagerWebhook,
  type AlertsConfig,
  type CloudWatchAlarmEvent,
} from '../../src/domain/alerts/alert.js';
import { AlertService } from '../../src/domain/alerts/service.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import * as store from '../../src/domain/incidents/store.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { createMetrics, type Metrics } from '../../src/shared/metrics.js';
import { createHarness, dedupKeyOf, EMERGENCY, ROUTING, type Harness } from './harness.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const TOKEN = 'alerts-token-itest-0123456789';
const CONFIG: AlertsConfig = {
  token: TOKEN,
  severity_map: { critical: 'sev1', warning: 'sev3' },
  cloudwatch_severity: 'sev2',
  auto_resolve: true,
  health_check_seconds: 30,
};

interface Replica {
  readonly db: Db;
  readonly metrics: Metrics;
  readonly service: AlertService;
  readonly server: Server;
  readonly url: string;
}

let h: Harness;
const replicas: Replica[] = [];

async function replica(config: AlertsConfig = CONFIG): Promise<Replica> {
  const db = createPool(h.testDb.url, h.log);
  const metrics = createMetrics();
  const notifier = createSlackIncidentNotifier(h.chat, h.file);
  const incidents = new IncidentService({ db, file: h.file, notifier, timers: h.timers, metrics, log: h.log });
  const service = new AlertService({ db, file: h.file, alerts: config, incidents, notifier, log: h.log });
  const routes = alertRoutes({ alerts: { config, service }, metrics, log: h.log });
  const server = await serveRoutes(0, routes);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const r = { db, metrics, service, server, url };
  replicas.push(r);
  return r;
}

beforeAll(async () => {
  h = await createHarness([{ after_minutes: 0, notify: 'oncall' }]);
});

afterAll(async () => {
  for (const r of replicas) {
    await new Promise((resolve) => r.server.close(resolve));
    await r.db.end();
  }
  await h?.close();
});

beforeEach(async () => {
  // Each test starts with no open alert incident, so group keys never meet one from an earlier test.
  await h.db.query(`UPDATE incidents SET resolved_at = now(), resolved_by = 'test' WHERE resolved_at IS NULL`);
  await h.stopWorkers();
  h.chat.calls.length = 0;
});

function webhook(group: string, status: 'firing' | 'resolved' = 'firing', severity = 'critical'): AlertmanagerWebhook {
  return {
    version: '4',
    groupKey: `{}:{alertname="${group}"}`,
    status,
    receiver: 'lifeline',
    groupLabels: { alertname: group },
    commonLabels: { alertname: group, severity },
    commonAnnotations: { summary: `${group} is failing` },
    externalURL: 'http://alertmanager:9093',
    alerts: [{ status, generatorURL: `http://prometheus:9090/graph?g0.expr=${group}` }],
  };
}

function alarm(name: string, value: 'ALARM' | 'OK' | 'INSUFFICIENT_DATA'): CloudWatchAlarmEvent {
  return {
    'detail-type': 'CloudWatch Alarm State Change',
    region: 'eu-west-1',
    resources: [`arn:aws:cloudwatch:eu-west-1:123456789012:alarm:${name}`],
    detail: { alarmName: name, state: { value, reason: `went ${value}` } },
  };
}

async function post(r: Replica, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${r.url}/alerts/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function openBySource(key: string): Promise<{ number: number; resolved_by: string | null }[]> {
  const { rows } = await h.db.query<{ number: number; resolved_by: string | null }>(
    'SELECT number, resolved_by FROM incidents WHERE source_key = $1 ORDER BY number',
    [key],
  );
  return rows;
}

function counter(metrics: Metrics, outcome: string): Promise<number> {
  return metrics.alertsReceived
    .get()
    .then((m) => m.values.filter((v) => v.labels.outcome === outcome).reduce((s, v) => s + v.value, 0));
}

describe('one open incident per source', () => {
  test('concurrent declarations of one source from two pools: the unique index lets exactly one in', async () => {
    const [a, b] = [await replica(), await replica()];
    const source = fromAlertmanager(webhook('IndexRace'), CONFIG).source;
    const attempts = Array.from({ length: 20 }, (_, i) =>
      store.declareIncident(i % 2 === 0 ? a.db : b.db, {
        severity: 'sev1',
        title: 'IndexRace',
        declaredBy: 'lifeline',
        declaredIn: EMERGENCY,
        declaredAt: undefined,
        steps: [],
        events: [{ kind: 'declared', detail: 'SEV1: IndexRace' }],
        source,
      }),
    );
    const results = await Promise.all(attempts);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    expect(await openBySource(source.key)).toHaveLength(1);
  });

  test('concurrent firings of one group through IncidentService.declare on two replicas: one incident, the rest repeats on its timeline', async () => {
    const [a, b] = [await replica(), await replica()];
    const alert = fromAlertmanager(webhook('ServiceRace'), CONFIG);
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).service.receive(alert, new Date())),
    );
    expect(results.filter((r) => r.outcome === 'declared')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'repeat')).toHaveLength(29);
    const incidents = await openBySource(alert.source.key);
    expect(incidents).toHaveLength(1);
    expect(new Set(results.map((r) => r.incident))).toEqual(new Set([incidents[0]!.number]));
    const kinds = (await store.timeline(h.db, incidents[0]!.number)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'alert_repeat')).toHaveLength(29);
    expect(kinds.filter((k) => k === 'declared')).toHaveLength(1);
  });
});

describe('an alert storm', () => {
  test('1,000 firing alerts for 10 groups, posted concurrently to two replicas: exactly 10 incidents, each paged on time', async () => {
    const [a, b] = [await replica(), await replica()];
    await h.startWorker();
    const groups = Array.from({ length: 10 }, (_, i) => `Storm${i}`);
    const bodies = Array.from({ length: 1_000 }, (_, i) => webhook(groups[i % 10]!));
    const started = Date.now();
    const answers: { status: number; body: Record<string, unknown> }[] = [];
    // 50 in flight at a time, alternating replicas: a burst, not one after another.
    for (let i = 0; i < bodies.length; i += 50) {
      answers.push(...(await Promise.all(bodies.slice(i, i + 50).map((body, j) => post(j % 2 === 0 ? a : b, body)))));
    }
    expect(Date.now() - started, 'the storm fits in a minute').toBeLessThan(60_000);
    expect(answers.every((x) => x.status === 200)).toBe(true);
    expect(answers.filter((x) => x.body.outcome === 'declared')).toHaveLength(10);
    expect(answers.filter((x) => x.body.outcome === 'repeat')).toHaveLength(990);

    const { rows } = await h.db.query<{ number: number; source_key: string; declared_at: Date; repeats: string }>(
      `SELECT number, source_key, declared_at,
              (SELECT count(*) FROM incident_events e WHERE e.incident = i.number AND e.kind = 'alert_repeat') AS repeats
         FROM incidents i WHERE source_key LIKE '%Storm%' ORDER BY number`,
    );
    expect(rows).toHaveLength(10);
    expect(new Set(rows.map((r) => r.source_key))).toEqual(new Set(groups.map((g) => `{}:{alertname="${g}"}`)));
    expect(rows.map((r) => Number(r.repeats))).toEqual(rows.map(() => 99));
    expect((await counter(a.metrics, 'declared')) + (await counter(b.metrics, 'declared'))).toBe(10);
    expect((await counter(a.metrics, 'repeat')) + (await counter(b.metrics, 'repeat'))).toBe(990);

    // Paging stays on time: each incident's on-call trigger within a few seconds of its declaration, one each.
    await waitUntil('10 on-call triggers', () => rows.every((r) => h.pager.of(r.number).length >= 1), 30_000);
    for (const r of rows) {
      const pages = h.pager.of(r.number);
      expect(pages.map((e) => `${e.action}:${e.routingKey}`)).toEqual([`trigger:${ROUTING.oncall}`]);
      expect(pages[0]!.dedupKey).toBe(dedupKeyOf(r.number, 'oncall'));
      const { rows: paged } = await h.db.query<{ late_ms: number }>(
        `SELECT extract(epoch FROM paged_at - due_at) * 1000 AS late_ms FROM escalation_steps WHERE incident = $1`,
        [r.number],
      );
      expect(Number(paged[0]!.late_ms)).toBeLessThan(5_000);
    }
  });
});

describe('paging like /incident sev1', () => {
  test("the incident is declared by Lifeline at the webhook's arrival, and its ladder runs from then", async () => {
    const r = await replica();
    const arrived = new Date(Date.now() - 2_000);
    const declared = await r.service.receive(fromAlertmanager(webhook('Arrival'), CONFIG), arrived);
    const incident = await store.getIncident(h.db, declared.incident!);
    expect(incident?.declaredBy).toBe('lifeline');
    expect(incident?.declaredAt.getTime()).toBe(arrived.getTime());
    const { rows } = await h.db.query<{ role: string; due_at: Date }>(
      'SELECT role, due_at FROM escalation_steps WHERE incident = $1',
      [declared.incident],
    );
    expect(rows.map((s) => [s.role, s.due_at.getTime()])).toEqual([['oncall', arrived.getTime()]]);
    const kinds = (await store.timeline(h.db, declared.incident!)).map((e) => e.kind);
    expect(kinds).toEqual(['declared', 'ladder_started']);
  });
});

describe('resolved, cleared and other states', () => {
  test('resolved with auto_resolve: resolved as Lifeline with a note naming the alert; the next firing is a new incident', async () => {
    const r = await replica();
    const declared = await r.service.receive(fromAlertmanager(webhook('Resolves'), CONFIG), new Date());
    expect(declared.outcome).toBe('declared');
    const resolved = await r.service.receive(fromAlertmanager(webhook('Resolves', 'resolved'), CONFIG), new Date());
    expect(resolved).toEqual({ outcome: 'resolved', incident: declared.incident });
    const incident = await store.getIncident(h.db, declared.incident!);
    expect(incident?.resolvedBy).toBe('lifeline');
    expect(incident?.resolutionNote).toContain('Alertmanager group Resolves cleared');

    const again = await r.service.receive(fromAlertmanager(webhook('Resolves', 'resolved'), CONFIG), new Date());
    expect(again).toEqual({ outcome: 'ignored', reason: 'no incident is open for this group' });
    const refired = await r.service.receive(fromAlertmanager(webhook('Resolves'), CONFIG), new Date());
    expect(refired.outcome).toBe('declared');
    expect(refired.incident).not.toBe(declared.incident);
  });

  test('CloudWatch: ALARM declares at cloudwatch_severity, INSUFFICIENT_DATA goes on the timeline only, OK resolves', async () => {
    const r = await replica();
    const declared = await r.service.receive(fromCloudWatch(alarm('db-cpu', 'ALARM'), CONFIG), new Date());
    expect(declared.outcome).toBe('declared');
    expect((await store.getIncident(h.db, declared.incident!))?.severity).toBe('sev2');
    const postsBefore = h.chat.calls.length;
    const insufficient = await r.service.receive(
      fromCloudWatch(alarm('db-cpu', 'INSUFFICIENT_DATA'), CONFIG),
      new Date(),
    );
    expect(insufficient).toEqual({ outcome: 'repeat', incident: declared.incident });
    expect(h.chat.calls.length).toBe(postsBefore);
    const kinds = (await store.timeline(h.db, declared.incident!)).map((e) => e.kind);
    expect(kinds.at(-1)).toBe('alert_state');
    expect((await store.getIncident(h.db, declared.incident!))?.resolvedAt).toBeUndefined();
    const ok = await r.service.receive(fromCloudWatch(alarm('db-cpu', 'OK'), CONFIG), new Date());
    expect(ok).toEqual({ outcome: 'resolved', incident: declared.incident });
  });

  test('without auto_resolve: "cleared" on the timeline and in the thread, and the incident stays open', async () => {
    const r = await replica({ ...CONFIG, auto_resolve: false });
    const declared = await r.service.receive(fromAlertmanager(webhook('Clears'), CONFIG), new Date());
    const card = h.chat.calls.find(
      (c) => c.kind === 'post' && c.threadTs === undefined && c.message.text.includes('Clears'),
    );
    expect(card).toBeDefined();
    const cleared = await r.service.receive(fromAlertmanager(webhook('Clears', 'resolved'), CONFIG), new Date());
    expect(cleared).toEqual({ outcome: 'cleared', incident: declared.incident });
    const incident = await store.getIncident(h.db, declared.incident!);
    expect(incident?.resolvedAt).toBeUndefined();
    expect((await store.timeline(h.db, declared.incident!)).map((e) => e.kind)).toContain('alert_cleared');
    const note = h.chat.calls.find((c) => c.threadTs === card!.ts && c.message.text.includes('cleared'));
    expect(note?.message.text).toContain('Alertmanager group Clears cleared');
  });

  test('a firing group whose severity is not in severity_map declares nothing and changes nothing', async () => {
    const r = await replica();
    const before = await h.db.query(
      'SELECT (SELECT count(*) FROM incidents) AS i, (SELECT count(*) FROM incident_events) AS e',
    );
    const answer = await post(r, webhook('Info', 'firing', 'info'));
    expect(answer).toEqual({
      status: 200,
      body: { ok: true, outcome: 'ignored', reason: 'severity "info" is not in alerts.severity_map' },
    });
    const after = await h.db.query(
      'SELECT (SELECT count(*) FROM incidents) AS i, (SELECT count(*) FROM incident_events) AS e',
    );
    expect(after.rows).toEqual(before.rows);
    expect(h.chat.calls).toHaveLength(0);
    expect(await counter(r.metrics, 'ignored')).toBe(1);
  });
});
