// The sandbox's HTTP server refuses what a web page the developer visits could send through their browser: any
// request from another origin, and page API posts that are not JSON (a cross-origin form cannot send JSON without a
// CORS preflight). Its own page, Lifeline's calls to the stand-ins and tools like curl (no Origin) still work. It serves
// the Vercel stand-in under /vercel/ and the sample API's health as its DNS record decides it.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SimulatedAws } from '../../src/adapters/aws/stand-in.js';
import { StatuspageStandIn } from '../../src/adapters/statuspage/stand-in.js';
import { VercelStandIn } from '../../src/adapters/vercel/stand-in.js';
import {
  jsonAnswer,
  serveOnLoopback,
  type HttpRequest,
  type LoopbackServer,
} from '../../src/shared/loopback-server.js';
import { SampleAlert } from '../../src/sandbox/alerts.js';
import { SandboxPagerDuty } from '../../src/sandbox/pagerduty.js';
import { apiHealth, seedSampleAws } from '../../src/sandbox/sample-aws.js';
import { ChangeFeed, pageOrigins, startServer } from '../../src/sandbox/server.js';
import { SandboxSlack } from '../../src/sandbox/slack.js';
import { Workspace } from '../../src/sandbox/workspace.js';
import { EMERGENCY, PEOPLE, SAMPLE_ALERT, SAMPLE_DR, SAMPLE_VERCEL, STATUS_PAGE } from '../../src/sandbox/world.js';
import { freePort } from '../support/lifeline-process.js';

const BOT_TOKEN = 'xoxb-sandbox-unit-test';
const ROUTING_KEY = 'sandbox-unit-routing-key';
const STATUSPAGE_KEY = 'sandbox-unit-statuspage-key';
const ALERTS_TOKEN = 'sandbox-unit-alerts-token-0123456789';
const VERCEL_TOKEN = 'sandbox-unit-vercel-token';
let base = '';
let port = 0;
let slack: SandboxSlack;
let pagerduty: SandboxPagerDuty;
let statuspage: StatuspageStandIn;
let vercel: VercelStandIn;
/** Never started: the server asks it only for the API's health, read from its state. */
const aws = new SimulatedAws();
let close: () => Promise<void>;
/** Lifeline's /alerts/alertmanager, as far as the sample alert can tell: what arrived, answered as Lifeline does. */
let lifeline: LoopbackServer;
const alerts: HttpRequest[] = [];

beforeAll(async () => {
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const changes = new ChangeFeed();
  slack = new SandboxSlack({ botToken: BOT_TOKEN, baseUrl: base, onChange: changes.changed });
  pagerduty = new SandboxPagerDuty(new Map([[ROUTING_KEY, 'oncall']]), changes.changed);
  lifeline = await serveOnLoopback((request) => {
    alerts.push(request);
    return request.headers.authorization === `Bearer ${ALERTS_TOKEN}`
      ? jsonAnswer(200, { ok: true, outcome: alerts.length === 1 ? 'declared' : 'resolved', incident: 'INC-1' })
      : jsonAnswer(401, { ok: false, reply: 'Send Authorization: Bearer <alerts.token>.' });
  });
  const alert = new SampleAlert(`${lifeline.url}/alerts/alertmanager`, ALERTS_TOKEN, changes.changed);
  statuspage = new StatuspageStandIn({
    pageId: STATUS_PAGE.pageId,
    apiKey: STATUSPAGE_KEY,
    components: [STATUS_PAGE.component],
  });
  vercel = new VercelStandIn({ token: VERCEL_TOKEN, rollbackMs: 0 });
  vercel.addProject(SAMPLE_VERCEL.project, SAMPLE_VERCEL.deployments);
  seedSampleAws(aws);
  // Commands would go to Lifeline; these tests only type plain messages, which stay in the sandbox.
  const workspace = new Workspace({ slack, eventsUrl: 'http://127.0.0.1:9/slack/events', signingSecret: 'unused' });
  close = await startServer({
    host: '127.0.0.1',
    port,
    changes,
    slack,
    pagerduty,
    statuspage,
    vercel,
    alert,
    workspace,
    state: async () => ({ ok: true }),
    healthy: async () => true,
    apiHealth: () => apiHealth(aws),
  });
});

afterAll(async () => {
  await close?.();
  await lifeline?.close();
});

const dev = PEOPLE.find((p) => p.role === undefined)!;
const PAGE_HEADERS = { 'content-type': 'application/json', origin: '' };

/** A message typed on the page, sent as the page's own fetch sends it unless told otherwise. */
function type(text: string, headers?: Record<string, string>, body?: string): Promise<Response> {
  return fetch(`${base}/api/type`, {
    method: 'POST',
    headers: headers ?? { ...PAGE_HEADERS, origin: base },
    body: body ?? JSON.stringify({ user: dev.id, channel: EMERGENCY.id, text }),
  });
}

function said(text: string): boolean {
  return slack.messages.some((m) => m.text === text);
}

describe('the page API', () => {
  test('its own page (Origin 127.0.0.1 or localhost on its port), posting JSON, is answered', async () => {
    expect((await type('from the page')).status).toBe(200);
    const localhost = { 'content-type': 'application/json; charset=utf-8', origin: `http://localhost:${port}` };
    expect((await type('from localhost', localhost)).status).toBe(200);
    expect(said('from the page') && said('from localhost')).toBe(true);
  });

  test('another origin is refused with 403 and nothing is said, whatever the content type', async () => {
    for (const origin of ['http://evil.example', `http://127.0.0.1:${port + 1}`, `https://127.0.0.1:${port}`, 'null']) {
      const text = `forged from ${origin}`;
      const res = await type(text, { 'content-type': 'application/json', origin });
      expect(res.status, origin).toBe(403);
      expect(((await res.json()) as { error: string }).error).toContain(origin);
      expect(said(text), origin).toBe(false);
    }
  });

  test('a post that is not JSON (what a cross-origin form can send) is refused with 415; nothing is said', async () => {
    const json = JSON.stringify({ user: dev.id, channel: EMERGENCY.id, text: 'form post' });
    const formTypes = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'];
    for (const contentType of [...formTypes, 'application/jsonx', '']) {
      const headers: Record<string, string> = contentType === '' ? {} : { 'content-type': contentType };
      const res = await type('form post', headers, json);
      expect(res.status, contentType).toBe(415);
    }
    expect(said('form post')).toBe(false);
  });

  test('reads from another origin are refused too (the state and the change feed)', async () => {
    for (const path of ['/api/state', '/api/events']) {
      const res = await fetch(`${base}${path}`, { headers: { origin: 'http://evil.example' } });
      expect(res.status, path).toBe(403);
    }
    expect((await fetch(`${base}/api/state`)).status).toBe(200);
  });
});

describe('the stand-ins Lifeline calls', () => {
  test('a form-encoded Web API call with no Origin (as @slack/web-api sends it) is answered, else not', async () => {
    const url = `${base}/slack/api/chat.postMessage`;
    const headers = { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${BOT_TOKEN}` };
    const form = (text: string) => new URLSearchParams({ channel: EMERGENCY.id, text }).toString();
    const ok = await fetch(url, { method: 'POST', headers, body: form('posted by Lifeline') });
    expect(((await ok.json()) as { ok: boolean }).ok).toBe(true);
    expect(said('posted by Lifeline')).toBe(true);
    const forged = { ...headers, origin: 'http://evil.example' };
    const refused = await fetch(url, { method: 'POST', headers: forged, body: form('forged post') });
    expect(refused.status).toBe(403);
    expect(said('forged post')).toBe(false);
  });

  test('PagerDuty events: JSON with no Origin is taken; text/plain (a form) is refused, nothing recorded', async () => {
    const url = `${base}/pagerduty/v2/enqueue`;
    const payload = { summary: 's', source: 'x', severity: 'critical' };
    const event = JSON.stringify({ routing_key: ROUTING_KEY, event_action: 'trigger', dedup_key: 'k1', payload });
    const form = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: event });
    expect(form.status).toBe(415);
    expect(pagerduty.events).toEqual([]);
    const ok = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: event });
    expect(ok.status).toBe(202);
    expect(pagerduty.pages().map((e) => [e.action, e.dedupKey])).toEqual([['trigger', 'k1']]);
  });
});

describe('the sample alert button', () => {
  const press = (status: string, origin = base) =>
    fetch(`${base}/api/alert`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin },
      body: JSON.stringify({ status }),
    });

  test('sends Alertmanager webhook v4 with the bearer token, firing then resolved, and shows the answer', async () => {
    const fired = (await (await press('firing')).json()) as { ok: boolean; sent: { outcome: string } };
    expect(fired).toMatchObject({ ok: true, sent: { outcome: 'declared', incident: 'INC-1', httpStatus: 200 } });
    const resolved = (await (await press('resolved')).json()) as { ok: boolean };
    expect(resolved).toMatchObject({ ok: true, sent: { status: 'resolved', outcome: 'resolved' } });
    expect(alerts.map((a) => a.path)).toEqual(['alerts/alertmanager', 'alerts/alertmanager']);
    const [firing, cleared] = alerts.map((a) => JSON.parse(a.raw) as Record<string, unknown>);
    expect(firing).toMatchObject({
      version: '4',
      status: 'firing',
      commonLabels: { alertname: SAMPLE_ALERT.alertname, severity: 'critical' },
      commonAnnotations: { summary: SAMPLE_ALERT.summary },
    });
    // One group: the resolve names the same groupKey and the same start as the firing it ends.
    expect(cleared).toMatchObject({ status: 'resolved', groupKey: firing!.groupKey });
    const starts = [firing, cleared].map((b) => (b!.alerts as { startsAt: string }[])[0]!.startsAt);
    expect(starts[1]).toBe(starts[0]);
  });

  test('anything but firing or resolved, or a press from another origin, sends nothing', async () => {
    const sentBefore = alerts.length;
    expect((await press('exploded')).status).toBe(400);
    expect((await press('firing', 'http://evil.example')).status).toBe(403);
    expect(alerts).toHaveLength(sentBefore);
  });
});

describe('the status page stand-in behind the sandbox server', () => {
  const call = (method: string, path: string, body: unknown, origin?: string) =>
    fetch(`${base}/statuspage/v1/pages/${STATUS_PAGE.pageId}/incidents${path}`, {
      method,
      headers: {
        'content-type': 'application/json',
        authorization: `OAuth ${STATUSPAGE_KEY}`,
        ...(origin ? { origin } : {}),
      },
      body: JSON.stringify({ incident: body }),
    });

  test('creates and resolves an incident as Statuspage does (POST, PATCH), refusing other origins', async () => {
    const forged = await call('POST', '', { name: 'forged', status: 'investigating' }, 'http://evil.example');
    expect(forged.status).toBe(403);
    const outage = { [STATUS_PAGE.component]: 'major_outage' };
    const created = await call('POST', '', { name: 'Checkout down', status: 'investigating', components: outage });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect(statuspage.components[STATUS_PAGE.component]).toBe('major_outage');
    const back = { [STATUS_PAGE.component]: 'operational' };
    expect((await call('PATCH', `/${id}`, { status: 'resolved', components: back })).status).toBe(200);
    expect(statuspage.incidents.map((i) => [i.name, i.status])).toEqual([['Checkout down', 'resolved']]);
    expect(statuspage.components[STATUS_PAGE.component]).toBe('operational');
  });
});

describe('the Vercel stand-in behind the sandbox server (VERCEL_API_URL = <base>/vercel)', () => {
  const call = (method: string, path: string, headers: Record<string, string> = {}) =>
    fetch(`${base}/vercel/${path}`, {
      method,
      headers: { authorization: `Bearer ${VERCEL_TOKEN}`, 'content-type': 'application/json', ...headers },
    });

  test('lists the project’s READY production deployments newest first, with the token only', async () => {
    const list = await call('GET', `v6/deployments?projectId=${SAMPLE_VERCEL.project}&target=production`);
    expect(list.status).toBe(200);
    const { deployments } = (await list.json()) as { deployments: { uid: string; state: string }[] };
    expect(deployments.map((d) => d.state)).toEqual(Array(SAMPLE_VERCEL.deployments).fill('READY'));
    expect(deployments[0]!.uid).toBe(vercel.productionOf(SAMPLE_VERCEL.project)!.id);
    const anonymous = await fetch(`${base}/vercel/v9/projects/${SAMPLE_VERCEL.project}`);
    expect(anonymous.status).toBe(403);
  });

  test('an instant rollback moves production; one from another origin is refused and moves nothing', async () => {
    const [newest, previous] = vercel.deployments.slice().sort((a, b) => b.createdAt - a.createdAt);
    const path = `v1/projects/${SAMPLE_VERCEL.project}/rollback/${previous!.id}`;
    expect((await call('POST', path, { origin: 'http://evil.example' })).status).toBe(403);
    expect(vercel.productionOf(SAMPLE_VERCEL.project)!.id).toBe(newest!.id);
    expect((await call('POST', path)).status).toBe(201);
    expect(vercel.productionOf(SAMPLE_VERCEL.project)!.id).toBe(previous!.id);
  });
});

describe('the sample API’s health (the region failover’s http_check)', () => {
  const health = async () => {
    const res = await fetch(`${base}/shop/api/health`);
    return `${res.status} ${await res.text()}`;
  };

  test('503 while DNS points at the primary region; 200 once it points at the DR region and that serves', async () => {
    expect(await health()).toBe(
      `503 ${SAMPLE_DR.record} points at ${SAMPLE_DR.primaryTarget} (${SAMPLE_DR.primaryRegion}), which does not answer`,
    );
    const dns = aws.route53;
    await dns.upsert(
      SAMPLE_DR.zoneId,
      { name: SAMPLE_DR.record, type: 'CNAME', ttl: 60, values: [SAMPLE_DR.drTarget] },
      '',
    );
    expect(await health()).toBe(`503 ${SAMPLE_DR.instance} in ${SAMPLE_DR.region} is not there`);
    aws.regions.rds(SAMPLE_DR.region).setInstance({ id: SAMPLE_DR.instance });
    expect(await health()).toBe(`503 ${SAMPLE_DR.service} in ${SAMPLE_DR.cluster} runs no task`);
    aws.regions.ecs(SAMPLE_DR.region).setService({ cluster: SAMPLE_DR.cluster, name: SAMPLE_DR.service, desired: 3 });
    expect(await health()).toBe(`200 ok: ${SAMPLE_DR.service} in ${SAMPLE_DR.region}, 3 tasks`);
  });
});

describe('pageOrigins', () => {
  test('loopback by name and address, the configured host, on its port; a wildcard adds this machine', () => {
    const loopback = ['http://127.0.0.1:3000', 'http://[::1]:3000', 'http://localhost:3000'];
    expect([...pageOrigins('127.0.0.1', 3000)].sort()).toEqual(loopback);
    expect(pageOrigins('10.1.2.3', 3000).has('http://10.1.2.3:3000')).toBe(true);
    const every = pageOrigins('0.0.0.0', 3000);
    expect(every.has('http://127.0.0.1:3000')).toBe(true);
    expect(every.has('http://0.0.0.0:3000')).toBe(false);
    expect([...every].every((o) => o.endsWith(':3000'))).toBe(true);
  });
});
