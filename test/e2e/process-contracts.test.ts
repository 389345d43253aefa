// What the README promises about the process itself, through the real process (node dist/main.js): exit code 2 and
// one line naming the setting on a config error; exit code 1 after the 30 s startup wait when PostgreSQL or Redis
// does not answer; /healthz 503 naming what went away while running (behind a TCP proxy the test cuts, never the
// shared servers) and 200 again when it is back; METRICS_TOKEN guarding /metrics in every role; and a bot and a
// worker as separate processes: the bot answers and enqueues, the worker pages, a bot alone never pages.
import { readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { TEST_REDIS_URL } from '../support/db.js';
import { linesWithSecrets, stillAfter, World } from '../support/e2e.js';
import { freePort, type LifelineProcess } from '../support/lifeline-process.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const METRICS_TOKEN = 'metrics-token-e2e-0123456789abcdef';
let w: World;

beforeAll(async () => {
  w = await World.create({ config: { steps: [{ after_minutes: 0, notify: 'oncall' }] } });
});

afterAll(async () => {
  await w?.close();
});

interface Exit {
  readonly code: number;
  readonly ms: number;
  readonly lines: string[];
}

/** Runs a process to its exit; returns its code, how long it ran and its lines. */
async function runToExit(p: LifelineProcess, timeoutMs: number): Promise<Exit> {
  const started = Date.now();
  const code = await p.runToExit(timeoutMs);
  return { code, ms: Date.now() - started, lines: p.output };
}

describe('startup', () => {
  test('a config error exits with exactly 2 and one line naming the setting, at once', async () => {
    const badRole = await runToExit(w.process({ extraEnv: { LIFELINE_ROLE: 'scheduler' } }), 15_000);
    expect(badRole.code).toBe(2);
    expect(badRole.lines).toEqual(['lifeline: config error: LIFELINE_ROLE: must be all, bot or worker']);
    expect(badRole.ms).toBeLessThan(10_000);

    // A config-file mistake: two environments on one store and prefix.
    const path = w.configPath.replace(/\.yml$/, '-shared-store.yml');
    const yaml = readFileSync(w.configPath, 'utf8');
    const staging = /^ {2}staging:\n(?: {4}.*\n)+/m.exec(yaml)![0];
    writeFileSync(path, yaml.replace(staging, `${staging}${staging.replace('  staging:', '  qa:')}`));
    const shared = await runToExit(w.process({ configPath: path }), 15_000);
    expect(shared.code).toBe(2);
    expect(shared.lines).toHaveLength(1);
    expect(shared.lines[0]).toMatch(/^lifeline: config error: .*environments\.qa\.backups: same store and prefix as /);
    expect(shared.lines[0]).toContain('as environments.staging.backups');
  });

  test('PostgreSQL or Redis not answering: exit code exactly 1 after the 30 s wait, naming which', async () => {
    const [pgPort, redisPort] = [await freePort(), await freePort()];
    const noPostgres = w.process({ extraEnv: { DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/lifeline` } });
    const noRedis = w.process({ extraEnv: { REDIS_URL: `redis://127.0.0.1:${redisPort}` } });
    const [postgres, redis] = await Promise.all([runToExit(noPostgres, 60_000), runToExit(noRedis, 60_000)]);
    for (const [run, name, url] of [
      [postgres, 'PostgreSQL', `postgres://postgres@127.0.0.1:${pgPort}/lifeline`],
      [redis, 'Redis', `redis://127.0.0.1:${redisPort}`],
    ] as const) {
      expect(run.code, name).toBe(1);
      expect(run.ms, name).toBeGreaterThanOrEqual(30_000);
      // The wait, plus starting and stopping Node on a busy machine: not a second wait, not forever.
      expect(run.ms, name).toBeLessThan(55_000);
      const failure = run.lines.filter((l) => l.startsWith('lifeline: startup failed:'));
      expect(failure, run.lines.join('\n')).toHaveLength(1);
      expect(failure[0]).toContain(`${name} did not answer within 30 s at ${url}`);
    }
  }, 90_000);
});

describe('/healthz while running', () => {
  test('503 naming Redis, then PostgreSQL, while each is cut off; 200 again once it is back', async () => {
    const redisUrl = new URL(TEST_REDIS_URL);
    const dbUrl = new URL(w.db.url);
    const redisProxy = await new TcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) }).start();
    const pgProxy = await new TcpProxy({ host: dbUrl.hostname, port: Number(dbUrl.port || 5432) }).start();
    const proxiedRedis = new URL(redisUrl);
    proxiedRedis.port = String(redisProxy.port);
    const proxiedDb = new URL(dbUrl);
    proxiedDb.port = String(pgProxy.port);
    const extraEnv = { REDIS_URL: proxiedRedis.toString(), DATABASE_URL: proxiedDb.toString() };
    const p = await w.process({ extraEnv }).start();
    // A fresh connection per probe (no keep-alive pool): a pooled socket the server just closed would fail the probe
    // with ECONNRESET, which says nothing about the process. A process that died still fails it (ECONNREFUSED).
    const health = () =>
      new Promise<{ status: number; body: { down?: string[] } }>((resolve, reject) => {
        get(`${p.baseUrl}/healthz`, { agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { down?: string[] } }));
        }).on('error', reject);
      });
    try {
      expect(await health()).toEqual({ status: 200, body: { ok: true, postgres: 'up', redis: 'up' } });

      for (const [proxy, name] of [
        [redisProxy, 'redis'],
        [pgProxy, 'postgres'],
      ] as const) {
        proxy.cut();
        const down = await waitUntil(
          `/healthz to name ${name}`,
          async () => {
            const h = await health();
            return h.status === 503 ? h : undefined;
          },
          15_000,
          200,
        );
        expect(down.body.down).toEqual([name]);
        proxy.reopen();
        const up = async () => (await health()).status === 200;
        await waitUntil(`/healthz to be 200 again after ${name} came back`, up, 30_000, 200);
        expect(p.running).toBe(true);
      }
    } finally {
      await p.stop('SIGKILL');
      await Promise.all([redisProxy.stop(), pgProxy.stop()]);
    }
  }, 90_000);
});

describe('a bot and a worker, each its own process', () => {
  let bot: LifelineProcess;
  let worker: LifelineProcess;

  test('a bot alone answers and posts the card but never pages; the worker, once started, pages', async () => {
    bot = await w.process({ role: 'bot', extraEnv: { METRICS_TOKEN } }).start();
    const inc = await w.declare('sev1', 'Split roles', { via: bot });
    expect(await w.reply(inc.sent)).toContain(`Declared *${inc.id}*`);
    // The oncall step is due at once: a bot that ran it would page within a moment.
    await stillAfter('no page without a worker', () => w.pd.events.length === 0, 3_000);

    worker = await w.process({ role: 'worker', extraEnv: { METRICS_TOKEN } }).start();
    await waitUntil('the worker to page on-call', () => w.triggersOf(inc.number).length === 1, 15_000);
    await stillAfter('one page, once', () => w.triggersOf(inc.number).length === 1, 1_000);
  });

  test('METRICS_TOKEN: /metrics is 401 without it or with a wrong one, 200 with it, in both roles', async () => {
    for (const p of [bot, worker]) {
      const role = p.env().LIFELINE_ROLE;
      const metrics = (authorization?: string) =>
        fetch(`${p.baseUrl}/metrics`, authorization ? { headers: { authorization } } : {});
      expect((await metrics()).status, role).toBe(401);
      expect((await metrics('Bearer wrong-token-0123456789abcdef')).status, role).toBe(401);
      expect((await metrics(`Bearer ${METRICS_TOKEN}x`)).status, role).toBe(401);
      expect((await metrics(METRICS_TOKEN)).status, role).toBe(401);
      const ok = await metrics(`Bearer ${METRICS_TOKEN}`);
      expect(ok.status, role).toBe(200);
      expect(await ok.text(), role).toMatch(/^# TYPE lifeline_incidents_declared_total counter$/m);
      expect((await fetch(`${p.baseUrl}/healthz`)).status, role).toBe(200);
    }
    expect(w.output().filter((l) => l.includes(METRICS_TOKEN))).toEqual([]);
    expect(linesWithSecrets(w.output())).toEqual([]);
  });
});
