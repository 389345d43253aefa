// PostgreSQL is the truth, Redis only the alarm clock: the reconciler re-creates timers and follow-ups that Redis
// lost, and steps that fell due while no worker ran fire once when one comes back.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { stepJobId } from '../../src/delivery/jobs/escalation-queue.js';
import { dropQueuePrefix } from '../support/db.js';
import { waitUntil } from '../support/wait.js';
import {
  createHarness,
  declareIncident,
  pendingFollowUps,
  queueIdle,
  stepsOf,
  USERS,
  waitPastAndIdle,
  type Harness,
  SHORT_LADDER,
} from './harness.js';

const TRIGGERS = ['trigger:oncall', 'trigger:engineering_lead', 'trigger:cto'];

let h: Harness;

beforeAll(async () => {
  h = await createHarness(SHORT_LADDER);
});

afterAll(async () => {
  await h?.close();
});

/** Redis loses everything under the queue prefix (a failover that dropped the newest writes, a flush...). */
async function loseRedis(): Promise<void> {
  await dropQueuePrefix(h.prefix);
  expect(await queueIdle(h.queue)).toBe(true);
}

async function followUpColumns(n: number): Promise<[string, boolean, boolean][]> {
  const { rows } = await h.db.query<{ role: string; acknowledge_sent_at: Date | null; resolve_sent_at: Date | null }>(
    'SELECT role, acknowledge_sent_at, resolve_sent_at FROM page_keys WHERE incident = $1 ORDER BY triggered_at',
    [n],
  );
  return rows.map((r) => [r.role, r.acknowledge_sent_at !== null, r.resolve_sent_at !== null]);
}

describe('reconcile', () => {
  test('after Redis loses the timers of a declared incident, reconcile re-creates them and each step fires once', async () => {
    const n = (await declareIncident(h, 'sev1', 'Redis lost my timers')).number;
    const steps = await stepsOf(h.db, n);
    for (const s of steps) expect(await h.queue.getJob(stepJobId(s.id))).toBeDefined();

    await loseRedis();
    for (const s of steps) expect(await h.queue.getJob(stepJobId(s.id))).toBeUndefined();
    const worker = await h.startWorker();
    try {
      // With the timers gone a worker alone does nothing, even past step 0's due time.
      await waitPastAndIdle(h.queue, steps[0]!.dueAt, 400);
      expect(h.pager.of(n)).toEqual([]);
      expect((await stepsOf(h.db, n)).map((s) => s.state)).toEqual(['pending', 'pending', 'pending']);

      expect(await h.escalation.reconcile()).toEqual({ steps: 3, followUps: 0 });
      await waitUntil('three triggers', () => h.pager.of(n).length >= 3, 10_000);
      expect(h.pager.summary(n)).toEqual(TRIGGERS);
      // Re-created with their original due times: lead and cto did not fire early.
      const now = await stepsOf(h.db, n);
      for (const s of now.slice(1)) {
        const index = h.pager.events.findIndex(
          (e) => e.action === 'trigger' && e.dedupKey === `lifeline-INC-${n}-${s.role}`,
        );
        expect(h.pager.acceptedAt[index]!).toBeGreaterThanOrEqual(s.dueAt.getTime() - 50);
      }
      await waitUntil('all steps to finish', async () => (await stepsOf(h.db, n)).every((s) => s.state === 'fired'));
      // Nothing left for a second reconcile; nothing fires twice.
      expect(await h.escalation.reconcile()).toEqual({ steps: 0, followUps: 0 });
      await waitPastAndIdle(h.queue, steps[2]!.dueAt, 300);
      expect(h.pager.summary(n)).toEqual(TRIGGERS);

      // The resolve follow-up is lost too: reconcile re-sends it, once per alert.
      await worker.close();
      await h.incidents.resolve({ number: n }, USERS.oncall, 'lost and found');
      expect(await pendingFollowUps(h.queue, n)).toBe(1);
      await loseRedis();
      const again = await h.startWorker();
      try {
        await waitPastAndIdle(h.queue, Date.now(), 300);
        expect(h.pager.summary(n)).toEqual(TRIGGERS);
        expect(await followUpColumns(n)).toEqual([
          ['oncall', false, false],
          ['engineering_lead', false, false],
          ['cto', false, false],
        ]);
        expect(await h.escalation.reconcile()).toEqual({ steps: 0, followUps: 1 });
        await waitUntil('three resolves', () => h.pager.of(n).length >= 6);
        await waitPastAndIdle(h.queue, Date.now(), 200);
        expect(h.pager.summary(n)).toEqual([...TRIGGERS, 'resolve:oncall', 'resolve:engineering_lead', 'resolve:cto']);
        expect(await followUpColumns(n)).toEqual([
          ['oncall', false, true],
          ['engineering_lead', false, true],
          ['cto', false, true],
        ]);
        expect(await h.escalation.reconcile()).toEqual({ steps: 0, followUps: 0 });
        await waitPastAndIdle(h.queue, Date.now(), 200);
        expect(h.pager.of(n)).toHaveLength(6);
      } finally {
        await again.close();
      }
    } finally {
      await worker.close();
    }
  });

  test('steps that fell due while no worker ran fire once when workers come back (timers kept or lost)', async () => {
    const lost = (await declareIncident(h, 'sev1', 'Down during the ladder, timers lost')).number;
    await loseRedis(); // `lost`'s timers are gone...
    const intact = (await declareIncident(h, 'sev1', 'Down during the ladder, timers intact')).number; // ...`intact`'s are still in Redis.
    const lastDue = Math.max(...(await stepsOf(h.db, intact)).map((s) => s.dueAt.getTime()));
    await waitUntil('every step to be overdue', () => Date.now() > lastDue + 200, 10_000);
    expect(h.pager.of(lost)).toEqual([]);
    expect(h.pager.of(intact)).toEqual([]);

    // Two replicas start together and each reconciles at startup, as startLifeline does.
    const workers = await Promise.all([h.startWorker({ ownPool: true }), h.startWorker({ ownPool: true })]);
    try {
      const found = await Promise.all(workers.map((w) => w.escalation.reconcile()));
      for (const f of found) expect(f.followUps).toBe(0);
      await waitUntil('six triggers', () => h.pager.of(lost).length + h.pager.of(intact).length >= 6, 10_000);
      await waitUntil('all steps to finish', async () =>
        [...(await stepsOf(h.db, lost)), ...(await stepsOf(h.db, intact))].every((s) => s.state === 'fired'),
      );
      await waitPastAndIdle(h.queue, Date.now(), 300);
      // All were overdue at once, so their order is not fixed; their number is.
      for (const n of [lost, intact]) {
        expect([...h.pager.summary(n)].sort()).toEqual([...TRIGGERS].sort());
        expect(h.pager.of(n)).toHaveLength(3);
      }
      for (const w of workers) expect(await w.escalation.reconcile()).toEqual({ steps: 0, followUps: 0 });

      await Promise.all([lost, intact].map((n) => h.incidents.resolve({ number: n }, USERS.oncall, undefined)));
      await waitUntil('six resolves', () => [lost, intact].every((n) => h.pager.of(n).length >= 6));
      await waitPastAndIdle(h.queue, Date.now(), 200);
      for (const n of [lost, intact]) expect(h.pager.of(n)).toHaveLength(6);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  test('an acknowledge follow-up lost from Redis is re-sent by reconcile, to the triggered keys only', async () => {
    const worker = await h.startWorker();
    let n = 0;
    try {
      n = (await declareIncident(h, 'sev1', 'Ack lost')).number;
      await waitUntil('step 0 to fire', async () => (await stepsOf(h.db, n))[0]!.state === 'fired');
      expect(h.pager.summary(n)).toEqual(['trigger:oncall']);
    } finally {
      await worker.close();
    }
    await h.incidents.acknowledge({ number: n }, USERS.oncall);
    expect(await pendingFollowUps(h.queue, n)).toBe(1);
    await loseRedis();

    const again = await h.startWorker();
    try {
      const steps = await stepsOf(h.db, n);
      expect(steps.map((s) => s.state)).toEqual(['fired', 'cancelled', 'cancelled']);
      await waitPastAndIdle(h.queue, Date.now(), 300);
      expect(h.pager.summary(n)).toEqual(['trigger:oncall']);
      expect(await followUpColumns(n)).toEqual([['oncall', false, false]]);

      expect(await h.escalation.reconcile()).toEqual({ steps: 0, followUps: 1 });
      await waitUntil('the acknowledge', () => h.pager.of(n).length >= 2);
      expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'acknowledge:oncall']);
      expect(await followUpColumns(n)).toEqual([['oncall', true, false]]);
      expect(await h.escalation.reconcile()).toEqual({ steps: 0, followUps: 0 });
      // The cancelled steps stay cancelled, even past their due time.
      await waitPastAndIdle(h.queue, steps[2]!.dueAt, 300);
      expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'acknowledge:oncall']);

      await h.incidents.resolve({ number: n }, USERS.oncall, undefined);
      await waitUntil('the resolve', () => h.pager.of(n).length >= 3);
      await waitPastAndIdle(h.queue, Date.now(), 200);
      expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'acknowledge:oncall', 'resolve:oncall']);
    } finally {
      await again.close();
    }
  });

  test('two replicas reconciling the same lost follow-up at once send it once', async () => {
    const worker = await h.startWorker();
    let n = 0;
    try {
      n = (await declareIncident(h, 'sev1', 'Resolve lost, two replicas')).number;
      await waitUntil('step 0 to fire', async () => (await stepsOf(h.db, n))[0]!.state === 'fired');
    } finally {
      await worker.close();
    }
    await h.incidents.resolve({ number: n }, USERS.oncall, undefined);
    await loseRedis();

    const workers = await Promise.all([
      h.startWorker({ ownPool: true }),
      h.startWorker({ ownPool: true }),
      h.startWorker({ ownPool: true }),
    ]);
    try {
      const found = await Promise.all(workers.map((w) => w.escalation.reconcile()));
      // A replica whose reconcile runs after another's job already sent the resolve finds nothing owed.
      expect(found.map((f) => f.steps)).toEqual([0, 0, 0]);
      expect(found.every((f) => f.followUps <= 1)).toBe(true);
      expect(found.some((f) => f.followUps === 1)).toBe(true);
      await waitUntil('the resolve', () => h.pager.of(n).length >= 2);
      await waitPastAndIdle(h.queue, Date.now(), 300);
      expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'resolve:oncall']);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });
});
