// Three processes (LIFELINE_ROLE all, all, worker; each its own port) on one database and queue prefix, started at
// the same time on an empty database: migrations once, and every step, page and follow-up exactly once.
// Ladder: oncall at 0 s, engineering_lead at 3 s, cto at 6 s, ceo at 9 s.
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { allText, linesWithSecrets, ROLE_ORDER, ROLE_USERS, stillAfter, World, type Declared } from '../support/e2e.js';
import type { LifelineProcess } from '../support/lifeline-process.js';
import { ROUTING_KEYS, USERS } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

// Ladders run in seconds and processes restart: more than vitest's default per test, on a busy 2-core machine.
vi.setConfig({ testTimeout: 60_000 });

const STEP_MS = [0, 3_000, 6_000, 9_000];
let w: World;
let a: LifelineProcess;
let b: LifelineProcess;
let worker: LifelineProcess;

beforeAll(async () => {
  w = await World.create({ ladderMs: STEP_MS });
  a = w.process({ role: 'all' });
  b = w.process({ role: 'all' });
  worker = w.process({ role: 'worker' });
  await Promise.all([a.start(), b.start(), worker.start()]);
});

afterAll(async () => {
  await w?.close();
});

test('all three are up on their own ports, the worker included', async () => {
  expect(new Set([a.port, b.port, worker.port]).size).toBe(3);
  for (const p of [a, b, worker]) {
    const res = await fetch(`${p.baseUrl}/healthz`);
    expect(res.status, `healthz of ${p.env().LIFELINE_ROLE} on ${p.port}`).toBe(200);
    JSON.parse(await res.text());
  }
  const { rows } = await w.sql.query<{ n: string }>('SELECT count(*) AS n FROM schema_migrations');
  expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(1);
});

test('incidents declared through either bot: every step fires exactly once; acknowledge and resolve go out once per key', async () => {
  const declared: Declared[] = await Promise.all([
    w.declare('sev1', 'Replica test one', { via: a }),
    w.declare('sev1', 'Replica test two', { via: b }),
    w.declare('sev2', 'Replica test three', { via: a }),
  ]);
  expect(new Set(declared.map((d) => d.number)).size).toBe(3);

  await waitUntil('12 triggers', () => declared.every((d) => w.triggersOf(d.number).length >= 4), 25_000);
  await waitUntil('12 thread mentions', () => declared.every((d) => w.threadOf(d.card).length >= 4));
  await stillAfter(
    'no step firing twice',
    () => w.pd.triggers().length === 12 && declared.every((d) => w.threadOf(d.card).length === 4),
    2_000,
  );

  const keys = w.pd.triggers().map((t) => t.dedup_key);
  expect(new Set(keys).size).toBe(12);
  for (const d of declared) {
    expect(w.triggersOf(d.number).map((t) => t.routing_key)).toEqual(ROLE_ORDER.map((r) => ROUTING_KEYS[r]));
    for (const role of ROLE_ORDER) {
      expect(
        w.threadOf(d.card).filter((m) => allText(m.body).includes(`<@${ROLE_USERS[role]}>`)),
        `${d.id} mentions of ${role}`,
      ).toHaveLength(1);
    }
  }
  expect(w.topLevelPosts()).toHaveLength(3);

  // Acknowledge through one bot, resolve through the other.
  const [one, two, three] = declared as [Declared, Declared, Declared];
  await w.reply(await w.command(`ack ${one.id}`, { via: b, user: USERS.oncall }));
  await w.click(two.card, 'Acknowledge', { via: a, user: USERS.lead });
  await waitUntil(
    'acknowledges',
    () => w.followUpsOf(one.number, 'acknowledge').length >= 4 && w.followUpsOf(two.number, 'acknowledge').length >= 4,
  );
  for (const d of declared)
    await w.reply(await w.command(`resolve ${d.id}`, { via: d === three ? b : a, user: USERS.oncall }));
  await waitUntil('resolves', () => declared.every((d) => w.followUpsOf(d.number, 'resolve').length >= 4));
  await stillAfter(
    'one follow-up per key and action',
    () => {
      const counts = new Map<string, number>();
      for (const e of w.pd.events)
        counts.set(`${e.event_action} ${e.dedup_key}`, (counts.get(`${e.event_action} ${e.dedup_key}`) ?? 0) + 1);
      return [...counts.values()].every((n) => n === 1) && w.pd.events.length === 12 + 8 + 12;
    },
    1_500,
  );
  expect(w.followUpsOf(three.number, 'acknowledge')).toHaveLength(0);
});

test('no log line of any process carries a secret', () => {
  expect(linesWithSecrets(w.output())).toEqual([]);
});
