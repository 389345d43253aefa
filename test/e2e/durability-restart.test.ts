// A step whose time passes while Lifeline is down fires when it comes back, once: kill -9 between declaration and
// a due step, start a new process on the same database and queue prefix after the step's time.
// Ladder: oncall at 0 s, engineering_lead at 5 s, cto at 8 s, ceo at 14 s.
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { dropQueuePrefix } from '../support/db.js';
import {
  allText,
  linesWithSecrets,
  ROLE_ORDER,
  ROLE_USERS,
  stillAfter,
  waitUntilTime,
  World,
  type Declared,
} from '../support/e2e.js';
import { ROUTING_KEYS, USERS } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

// Ladders run in seconds and processes restart: more than vitest's default per test, on a busy 2-core machine.
vi.setConfig({ testTimeout: 60_000 });

const STEP_MS = [0, 5_000, 8_000, 14_000];
let w: World;

beforeAll(async () => {
  w = await World.create({ ladderMs: STEP_MS });
});

afterAll(async () => {
  await w?.close();
});

/** Each role paged exactly once (one trigger per key) and mentioned exactly once in the thread. */
async function expectEachStepOnce(inc: Declared): Promise<void> {
  await waitUntil('all 4 triggers', () => w.triggersOf(inc.number).length >= 4, 20_000);
  await waitUntil('all 4 thread mentions', () => w.threadOf(inc.card).length >= 4);
  await stillAfter(
    'each step to have fired once',
    () => w.triggersOf(inc.number).length === 4 && w.threadOf(inc.card).length === 4,
    1_500,
  );
  const triggers = w.triggersOf(inc.number);
  expect([...triggers.map((t) => t.routing_key)].sort()).toEqual(ROLE_ORDER.map((r) => ROUTING_KEYS[r]).sort());
  expect(new Set(triggers.map((t) => t.dedup_key)).size).toBe(4);
  for (const role of ROLE_ORDER) {
    const mentions = w.threadOf(inc.card).filter((m) => allText(m.body).includes(`<@${ROLE_USERS[role]}>`));
    expect(mentions, `thread mentions of ${role}`).toHaveLength(1);
  }
}

async function resolveAndCheck(inc: Declared): Promise<void> {
  await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
  await waitUntil('resolve for every key', () => w.followUpsOf(inc.number, 'resolve').length >= 4);
  await stillAfter('one resolve per key', () => w.followUpsOf(inc.number, 'resolve').length === 4, 500);
  expect(new Set(w.followUpsOf(inc.number, 'resolve').map((e) => e.dedup_key))).toEqual(
    new Set(w.triggersOf(inc.number).map((t) => t.dedup_key)),
  );
}

test('kill -9 after the first page; restarted after two steps fell due: each fires once, the next one on time', async () => {
  const first = w.process();
  await first.start();
  const inc = await w.declare('sev1', 'Primary database failover', { via: first });
  await waitUntil(
    'the oncall page and mention',
    () => w.triggersOf(inc.number).length === 1 && w.threadOf(inc.card).length === 1,
  );
  expect(await first.stop('SIGKILL')).not.toBe(0);

  const steps = await w.stepStates(inc.number);
  const due = steps.map((s) => s.due_at.getTime());
  // Down across engineering_lead's and cto's times.
  await waitUntilTime('cto step time + 0.5 s', due[2]! + 500);
  expect(w.triggersOf(inc.number)).toHaveLength(1);

  const second = w.process();
  const restartedAt = Date.now();
  await second.start();
  const readyAt = Date.now();
  await waitUntil(
    'engineering_lead and cto pages after the restart',
    () => w.triggersOf(inc.number).length >= 3,
    15_000,
  );
  await expectEachStepOnce(inc);
  const byRole = (role: (typeof ROLE_ORDER)[number]) =>
    w.triggersOf(inc.number).find((t) => t.routing_key === ROUTING_KEYS[role])!;
  for (const role of ['engineering_lead', 'cto'] as const) {
    expect(byRole(role).at, `${role} fired by the new process`).toBeGreaterThanOrEqual(restartedAt);
    expect(byRole(role).at, `${role} fired soon after the restart`).toBeLessThan(readyAt + 4_000);
  }
  // The step still ahead fires at its time (or right away, if starting up took past it).
  expect(byRole('ceo').at).toBeGreaterThanOrEqual(due[3]! - 50);
  expect(byRole('ceo').at).toBeLessThan(Math.max(due[3]!, readyAt) + 4_000);
  await resolveAndCheck(inc);
});

/** These roles paged exactly once and mentioned once; the others not at all (yet). */
async function expectPagedOnce(inc: Declared, roles: readonly (typeof ROLE_ORDER)[number][]): Promise<void> {
  const paged = () => new Set(w.triggersOf(inc.number).map((t) => t.routing_key));
  await waitUntil(`pages for ${roles.join(', ')}`, () => roles.every((r) => paged().has(ROUTING_KEYS[r])), 15_000);
  await waitUntil('their thread mentions', () => w.threadOf(inc.card).length >= roles.length);
  for (const role of roles) {
    expect(
      w.triggersOf(inc.number).filter((t) => t.routing_key === ROUTING_KEYS[role]),
      `pages for ${role}`,
    ).toHaveLength(1);
    expect(
      w.threadOf(inc.card).filter((m) => allText(m.body).includes(`<@${ROLE_USERS[role]}>`)),
      `mentions of ${role}`,
    ).toHaveLength(1);
  }
}

/** Acknowledges, stopping the ladder, and checks one acknowledge per key already triggered. */
async function acknowledge(inc: Declared, triggered: number): Promise<void> {
  await w.reply(await w.command(`ack ${inc.id}`, { user: USERS.oncall }));
  await waitUntil('acknowledge events', () => w.followUpsOf(inc.number, 'acknowledge').length >= triggered);
  await stillAfter(
    'no more pages or acknowledges',
    () =>
      w.triggersOf(inc.number).length === triggered && w.followUpsOf(inc.number, 'acknowledge').length === triggered,
    1_000,
  );
}

test('kill -9, and Redis lost the queued timers meanwhile: the restarted process still fires each due step once', async () => {
  const first = w.lifeline;
  const inc = await w.declare('sev1', 'Storage array degraded', { via: first });
  await waitUntil(
    'the oncall page and mention',
    () => w.triggersOf(inc.number).length === 1 && w.threadOf(inc.card).length === 1,
  );
  expect(await first.stop('SIGKILL')).not.toBe(0);
  await dropQueuePrefix(w.prefix); // a Redis failover that lost the newest delayed jobs

  const due = (await w.stepStates(inc.number)).map((s) => s.due_at.getTime());
  await waitUntilTime('engineering_lead step time + 0.5 s', due[1]! + 500);
  await w.process().start();
  await expectPagedOnce(inc, ['oncall', 'engineering_lead', 'cto']);
  await acknowledge(inc, 3);
});

test('SIGTERM while a page is in flight: exits 0 within 10 s, and after a restart that step is not paged again', async () => {
  const first = w.lifeline;
  const inc = await w.declare('sev1', 'Search cluster red', { via: first });
  await waitUntil('the oncall page', () => w.triggersOf(inc.number).length === 1 && w.threadOf(inc.card).length === 1);
  // PagerDuty answers slowly from now on: the engineering_lead page will be in flight when SIGTERM arrives.
  w.pd.delayMs = 2_000;
  await waitUntil('the engineering_lead page in flight', () => w.pd.inFlight > 0, 15_000);
  const stoppedAt = Date.now();
  expect(await first.stop('SIGTERM')).toBe(0);
  expect(Date.now() - stoppedAt).toBeLessThan(10_000);
  w.pd.delayMs = 0;

  await w.process().start();
  await expectPagedOnce(inc, ['oncall', 'engineering_lead', 'cto']);
  await acknowledge(inc, 3);
});

test('no log line of any process carries a secret', () => {
  expect(w.processes.length).toBeGreaterThanOrEqual(4);
  expect(linesWithSecrets(w.output())).toEqual([]);
});
