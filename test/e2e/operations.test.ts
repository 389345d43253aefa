// What operators rely on: /healthz, /metrics, config errors that name the setting, no secrets in any log line or
// Slack message (also on failure paths, at LOG_LEVEL=debug), and SIGTERM → exit 0 within 10 s.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, linesWithSecrets, slackTextsWithSecrets, World } from '../support/e2e.js';
import { ROUTING_KEYS, USERS, type LifelineProcess } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

// Ladders run in seconds and processes restart: more than vitest's default per test, on a busy 2-core machine.
vi.setConfig({ testTimeout: 60_000 });

let w: World;
let lifeline: LifelineProcess;

beforeAll(async () => {
  w = await World.create({
    config: {
      steps: [
        { after_minutes: 0, notify: 'oncall' },
        { after_minutes: 1, notify: 'engineering_lead' },
      ],
    },
    extraEnv: { LOG_LEVEL: 'debug' },
  });
  lifeline = await w.process().start();
});

afterAll(async () => {
  await w?.close();
});

/** The sum of a Prometheus metric's samples (all label sets). */
function metricTotal(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('operational endpoints', () => {
  test('GET /healthz answers 200 with JSON while PostgreSQL and Redis answer', async () => {
    const res = await fetch(`${lifeline.baseUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body: unknown = JSON.parse(await res.text());
    expect(typeof body).toBe('object');
  });

  test('GET /metrics is Prometheus text with the incident and page counters', async () => {
    const inc = await w.declare('sev1', 'Metrics check');
    await waitUntil('the page', () => w.triggersOf(inc.number).length === 1).catch((err: Error) => {
      throw new Error(
        `${err.message}; PagerDuty got ${JSON.stringify(w.pd.events)}; log tail:\n${lifeline.output.slice(-15).join('\n')}`,
      );
    });
    let last = '';
    await waitUntil('the counters', async () => {
      last = await (await fetch(`${lifeline.baseUrl}/metrics`)).text();
      return (
        metricTotal(last, 'lifeline_incidents_declared_total') >= 1 &&
        metricTotal(last, 'lifeline_pages_sent_total') >= 1
      );
    }).catch((err: Error) => {
      throw new Error(
        `${err.message}; last /metrics lines: ${last
          .split('\n')
          .filter((l) => /^lifeline_(incidents|pages)/.test(l))
          .join(' | ')}`,
      );
    });
    const res = await fetch(`${lifeline.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^# TYPE lifeline_incidents_declared_total counter$/m);
    expect(text).toMatch(/^# TYPE lifeline_pages_sent_total counter$/m);
    expect(metricTotal(text, 'lifeline_incidents_declared_total')).toBe(1);
    expect(metricTotal(text, 'lifeline_pages_sent_total')).toBe(1);
    await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
    await waitUntil('the resolve', () => w.followUpsOf(inc.number, 'resolve').length === 1);
  });
});

describe('secrets stay out of logs and Slack, also when things fail', () => {
  test('PagerDuty 500 then 202 (retried), PagerDuty 400 echoing the request, Slack refusing the card', async () => {
    w.pd.echoRequestInErrors = true;

    // 500 once: the page is retried and lands once.
    w.pd.nextStatuses.push(500);
    const retried = await w.declare('sev1', 'PagerDuty hiccup');
    await waitUntil('the retried page', () => w.triggersOf(retried.number).length === 1, 15_000);
    expect(w.pd.attempts.length).toBeGreaterThanOrEqual(w.pd.events.length + 1);

    // 400: refused for good; its echo carries the routing key, which must not reach a log line.
    const attempts = w.pd.attempts.length;
    w.pd.nextStatuses.push(400);
    const refused = await w.declare('sev1', 'PagerDuty refuses');
    await waitUntil('the refused page attempt', () => w.pd.attempts.length > attempts);
    await waitUntil('the failure logged', () =>
      lifeline.output.slice(-200).some((l) => /PagerDuty/.test(l) && /400/.test(l)),
    );

    // Slack refuses the card: the incident still exists and the declarer is told.
    w.slack.failures.push({ method: 'chat.postMessage', status: 200, error: 'channel_not_found' });
    const sent = await w.command('sev3 Slack refuses the card');
    const reply = await w.reply(sent);
    expect(reply).toMatch(/INC-\d+/);
    expect(reply).toMatch(/card/i);

    w.pd.echoRequestInErrors = false;
    for (const inc of [retried, refused]) await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
    const { rows } = await w.sql.query<{ number: number }>(
      `SELECT number FROM incidents WHERE title = 'Slack refuses the card'`,
    );
    await w.reply(await w.command(`resolve INC-${rows[0]!.number}`, { user: USERS.oncall }));

    // The routing key did travel (to PagerDuty, as it must) — so its absence from the logs means something.
    expect(w.pd.events.some((e) => e.routing_key === ROUTING_KEYS.oncall)).toBe(true);
    expect(lifeline.output.length).toBeGreaterThan(5);
    expect(linesWithSecrets(lifeline.output)).toEqual([]);
    expect(slackTextsWithSecrets(w.slack)).toEqual([]);
    expect(
      w.slack
        .posts()
        .map((c) => allText(c.body))
        .join('\n'),
    ).not.toContain('xoxb-');
  });
});

describe('configuration errors stop startup with a line naming the setting', () => {
  /** Writes a variant of the test config and runs a process on it to its exit. */
  async function runWith(
    edit: (yaml: string) => string,
    extraEnv: Record<string, string> = {},
  ): Promise<{ code: number; output: string[] }> {
    const path = w.configPath.replace(/\.yml$/, `-${Math.random().toString(36).slice(2)}.yml`);
    writeFileSync(path, edit(readFileSync(w.configPath, 'utf8')));
    const p = w.process({ configPath: path, extraEnv });
    const started = Date.now();
    const code = await p.runToExit(15_000);
    expect(Date.now() - started, 'a config error stops startup at once').toBeLessThan(10_000);
    expect(linesWithSecrets(p.output)).toEqual([]);
    expect(p.output.some((l) => l.includes('Lifeline started'))).toBe(false);
    return { code, output: p.output };
  }

  test('an unknown top-level key', async () => {
    const { code, output } = await runWith((y) => `${y}\ncolour: blue\n`);
    expect(code).toBe(2);
    expect(output.filter((l) => l.includes('colour'))).toHaveLength(1);
  });

  test('an unknown key deep inside (roles.oncall.phone)', async () => {
    const { code, output } = await runWith((y) =>
      y.replace('oncall:           { slack_users:', 'oncall:           { phone: "555", slack_users:'),
    );
    expect(code).toBe(2);
    expect(output.some((l) => l.includes('roles.oncall.phone'))).toBe(true);
  });

  test('a ${VARIABLE} that is not set', async () => {
    const { code, output } = await runWith((y) => y, { PD_KEY_CEO: '' });
    expect(code).toBe(2);
    expect(output.some((l) => l.includes('PD_KEY_CEO'))).toBe(true);
  });

  test('SLACK_SIGNING_SECRET missing in HTTP mode', async () => {
    const { code, output } = await runWith((y) => y, { SLACK_SIGNING_SECRET: '' });
    expect(code).toBe(2);
    expect(output.some((l) => l.includes('SLACK_SIGNING_SECRET'))).toBe(true);
  });
});

test('SIGTERM with a step still pending: exit 0 within 10 s', async () => {
  const inc = await w.declare('sev1', 'Shutdown with a pending step');
  await waitUntil('the first page', () => w.triggersOf(inc.number).length === 1);
  const started = Date.now();
  const code = await lifeline.stop('SIGTERM', 12_000);
  expect(code).toBe(0);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(linesWithSecrets(w.output())).toEqual([]);
});
