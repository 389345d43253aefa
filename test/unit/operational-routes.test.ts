// GET /metrics and GET /healthz as every role serves them (here through serveRoutes, the worker's server; Bolt's
// customRoutes get the same Route objects): METRICS_TOKEN, when set, guards /metrics and nothing else.
import type { Server } from 'node:http';
import { afterEach, describe, expect, test } from 'vitest';
import { operationalRoutes, serveRoutes } from '../../src/delivery/http/health.js';
import { createMetrics } from '../../src/shared/metrics.js';
import { freePort } from '../support/lifeline-process.js';

const TOKEN = 'metrics-token-unit-0123456789';
const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function serve(metricsToken: string | undefined): Promise<string> {
  const port = await freePort();
  const check = async () => ({ ok: true, postgres: 'up', redis: 'up' }) as const;
  servers.push(await serveRoutes(port, operationalRoutes(check, createMetrics(), metricsToken)));
  return `http://127.0.0.1:${port}`;
}

function metrics(base: string, authorization?: string): Promise<Response> {
  return fetch(`${base}/metrics`, authorization === undefined ? {} : { headers: { authorization } });
}

describe('/metrics and METRICS_TOKEN', () => {
  test('no token configured: open to anyone', async () => {
    const base = await serve(undefined);
    const res = await metrics(base);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('lifeline_commands_refused_total');
  });

  test('token set: 401 without it, with a wrong one, a prefix of it or another scheme; 200 with it', async () => {
    const base = await serve(TOKEN);
    const wrong = ['Bearer wrong', `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}0`, `Basic ${TOKEN}`, TOKEN];
    for (const authorization of [undefined, '', 'Bearer', ...wrong]) {
      const res = await metrics(base, authorization);
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get('www-authenticate'), String(authorization)).toMatch(/^Bearer /);
      const body = await res.text();
      expect(body, String(authorization)).not.toContain('lifeline_');
      expect(body).not.toContain(TOKEN);
    }
    for (const authorization of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`]) {
      const res = await metrics(base, authorization);
      expect(res.status, authorization).toBe(200);
      expect(await res.text()).toContain('lifeline_commands_refused_total');
    }
  });

  test('/healthz stays open when the token is set', async () => {
    const base = await serve(TOKEN);
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, postgres: 'up', redis: 'up' });
  });
});
