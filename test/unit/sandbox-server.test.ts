// The sandbox's HTTP server refuses what a web page the developer visits could send through their browser: any
// request from another origin, and page API posts that are not JSON (a cross-origin form cannot send JSON without a
// CORS preflight). Its own page, Lifeline's calls to the stand-ins and tools like curl (no Origin) still work.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SandboxPagerDuty } from '../../src/sandbox/pagerduty.js';
import { ChangeFeed, pageOrigins, startServer } from '../../src/sandbox/server.js';
import { SandboxSlack } from '../../src/sandbox/slack.js';
import { Workspace } from '../../src/sandbox/workspace.js';
import { EMERGENCY, PEOPLE } from '../../src/sandbox/world.js';
import { freePort } from '../support/lifeline-process.js';

const BOT_TOKEN = 'xoxb-sandbox-unit-test';
const ROUTING_KEY = 'sandbox-unit-routing-key';
let base = '';
let port = 0;
let slack: SandboxSlack;
let pagerduty: SandboxPagerDuty;
let close: () => Promise<void>;

beforeAll(async () => {
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const changes = new ChangeFeed();
  slack = new SandboxSlack({ botToken: BOT_TOKEN, baseUrl: base, onChange: changes.changed });
  pagerduty = new SandboxPagerDuty(new Map([[ROUTING_KEY, 'oncall']]), changes.changed);
  // Commands would go to Lifeline; these tests only type plain messages, which stay in the sandbox.
  const workspace = new Workspace({ slack, eventsUrl: 'http://127.0.0.1:9/slack/events', signingSecret: 'unused' });
  close = await startServer({
    host: '127.0.0.1',
    port,
    changes,
    slack,
    pagerduty,
    workspace,
    state: async () => ({ ok: true }),
    healthy: async () => true,
  });
});

afterAll(async () => {
  await close?.();
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
