// One page per step however often a step is delivered: concurrent fireStep calls, several workers on one prefix,
// duplicate deliveries, and retries after PagerDuty or Slack failures.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EscalationService, type StepOutcome } from '../../src/domain/incidents/escalation.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import { TransientError } from '../../src/shared/errors.js';
import { waitUntil } from '../support/wait.js';
import {
  countRows,
  createHarness,
  declareIncident,
  pagedNotes,
  queueIdle,
  stepsOf,
  timelineKinds,
  USERS,
  waitPastAndIdle,
  type Harness,
  SHORT_LADDER,
} from './harness.js';

let h: Harness;
const extraPools: Db[] = [];

beforeAll(async () => {
  // No worker yet: the first tests call fireStep() themselves.
  h = await createHarness(SHORT_LADDER);
});

afterAll(async () => {
  await Promise.allSettled(extraPools.map((p) => p.end()));
  await h?.close();
});

/** A replica's EscalationService: its own pool, the shared doubles and queue. */
function replica(): EscalationService {
  const db = createPool(h.testDb.url, h.log);
  extraPools.push(db);
  const notifier = createSlackIncidentNotifier(h.chat, h.file);
  return new EscalationService({
    db,
    file: h.file,
    pager: h.pager,
    notifier,
    timers: h.timers,
    metrics: h.metrics,
    log: h.log,
  });
}

async function failedCount(action: 'trigger' | 'acknowledge' | 'resolve'): Promise<number> {
  const metric = await h.metrics.pagesFailed.get();
  return metric.values.find((v) => v.labels.action === action)?.value ?? 0;
}

describe('fireStep called directly', () => {
  test('many concurrent calls for the same steps, from three replicas: one trigger and one mention per step', async () => {
    const n = (await declareIncident(h, 'sev1', 'Concurrent fire')).number;
    const steps = await stepsOf(h.db, n);
    expect(steps).toHaveLength(3);
    const services = [h.escalation, replica(), replica()];
    // 3 steps x 10 calls each, interleaved across the replicas, all started at once.
    const calls = Array.from({ length: 30 }, (_, i) => ({
      step: steps[i % 3]!,
      service: services[i % services.length]!,
    }));
    const results = await Promise.allSettled(calls.map(({ step, service }) => service.fireStep(step.id)));

    for (const step of steps) {
      const mine = results.filter((_, i) => calls[i]!.step.id === step.id);
      const fired = mine.filter((r) => r.status === 'fulfilled' && r.value === 'fired');
      expect(fired).toHaveLength(1);
      // Every other call either saw the step busy (the queue would retry it) or already finished.
      for (const r of mine) {
        if (r.status === 'fulfilled') expect(['fired', 'already-finished']).toContain(r.value);
        else {
          expect(r.reason).toBeInstanceOf(TransientError);
          expect(String((r.reason as Error).message)).toContain('being fired by another worker');
        }
      }
    }
    expect(h.pager.summary(n)).toEqual(
      expect.arrayContaining(['trigger:oncall', 'trigger:engineering_lead', 'trigger:cto']),
    );
    expect(h.pager.of(n)).toHaveLength(3);
    expect(pagedNotes(h.chat, n, 'oncall')).toHaveLength(1);
    expect(pagedNotes(h.chat, n, 'engineering_lead')).toHaveLength(1);
    expect(pagedNotes(h.chat, n, 'cto')).toHaveLength(1);
    expect(await countRows(h.db, 'page_keys', n)).toBe(3);
    expect((await timelineKinds(h.db, n)).filter((k) => k === 'paged')).toHaveLength(3);
    expect((await stepsOf(h.db, n)).map((s) => s.state)).toEqual(['fired', 'fired', 'fired']);

    // Later deliveries are no-ops.
    const again = await Promise.all(steps.map((s) => h.escalation.fireStep(s.id)));
    expect(again).toEqual<StepOutcome[]>(['already-finished', 'already-finished', 'already-finished']);
    expect(h.pager.of(n)).toHaveLength(3);
  });

  test('a PagerDuty failure: fireStep throws, the step stays pending, the retry pages once', async () => {
    const n = (await declareIncident(h, 'sev1', 'Pager flaky')).number;
    const [step] = await stepsOf(h.db, n);
    const failedBefore = await failedCount('trigger');

    h.pager.failNext(new TransientError('PagerDuty answered 503'));
    await expect(h.escalation.fireStep(step!.id)).rejects.toThrow('PagerDuty answered 503');
    const afterFailure = (await stepsOf(h.db, n))[0]!;
    expect(afterFailure.state).toBe('pending');
    expect(afterFailure.pagedAt).toBeNull();
    expect(afterFailure.mentionedAt).toBeNull();
    expect(afterFailure.claimedUntil).toBeNull(); // the lease was handed back, so the retry need not wait 90 s
    expect(h.pager.of(n)).toEqual([]);
    expect(pagedNotes(h.chat, n)).toEqual([]);
    expect(await countRows(h.db, 'page_keys', n)).toBe(0);
    expect(await timelineKinds(h.db, n)).toEqual(['declared', 'ladder_started']);
    expect(await failedCount('trigger')).toBe(failedBefore + 1);

    expect(await h.escalation.fireStep(step!.id)).toBe('fired');
    expect(h.pager.summary(n)).toEqual(['trigger:oncall']);
    expect(pagedNotes(h.chat, n, 'oncall')).toHaveLength(1);
    expect(await h.escalation.fireStep(step!.id)).toBe('already-finished');
    expect(h.pager.summary(n)).toEqual(['trigger:oncall']);
    expect(await timelineKinds(h.db, n)).toEqual(['declared', 'ladder_started', 'paged']);
    // Stop the rest of the ladder so a later worker has nothing of this incident to fire.
    await h.incidents.resolve({ number: n }, USERS.oncall, undefined);
  });

  test('a Slack failure after the page went out: the retry mentions but does not page again', async () => {
    const n = (await declareIncident(h, 'sev1', 'Slack flaky')).number;
    const [step] = await stepsOf(h.db, n);
    const posts = h.chat.calls.length;

    h.chat.failNext(new TransientError('Slack chat.postMessage failed: socket hang up'));
    await expect(h.escalation.fireStep(step!.id)).rejects.toThrow('Slack chat.postMessage failed');
    const afterFailure = (await stepsOf(h.db, n))[0]!;
    expect(afterFailure.state).toBe('pending');
    expect(afterFailure.pagedAt).toBeInstanceOf(Date);
    expect(afterFailure.mentionedAt).toBeNull();
    expect(afterFailure.claimedUntil).toBeNull();
    expect(h.pager.summary(n)).toEqual(['trigger:oncall']);
    expect(h.chat.calls.length).toBe(posts);
    expect(await countRows(h.db, 'page_keys', n)).toBe(1);

    expect(await h.escalation.fireStep(step!.id)).toBe('fired');
    expect(h.pager.summary(n)).toEqual(['trigger:oncall']);
    const notes = pagedNotes(h.chat, n, 'oncall');
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain(`<@${USERS.oncall}>`);
    const done = (await stepsOf(h.db, n))[0]!;
    expect(done.state).toBe('fired');
    expect(done.mentionedAt).toBeInstanceOf(Date);
    expect(done.pagedAt?.getTime()).toBe(afterFailure.pagedAt!.getTime());
    expect((await timelineKinds(h.db, n)).filter((k) => k === 'paged')).toHaveLength(1);
    await h.incidents.resolve({ number: n }, USERS.oncall, undefined);
  });
});

describe('through the queue', () => {
  test('a failed page is retried by the worker: exactly one trigger, and the ladder goes on', async () => {
    const worker = await h.startWorker();
    try {
      // Leftovers of the direct tests (their timers and follow-ups) run first and page nothing new.
      await waitUntil('leftover jobs to finish', () => queueIdle(h.queue), 15_000);
      const eventsBefore = h.pager.events.length;
      const failedBefore = await failedCount('trigger');

      h.pager.failNext(new TransientError('PagerDuty answered 429'));
      const n = (await declareIncident(h, 'sev1', 'Retried by the worker')).number;
      await waitUntil('three triggers', () => h.pager.of(n).length >= 3, 10_000);
      const steps = await stepsOf(h.db, n);
      await waitPastAndIdle(h.queue, steps[2]!.dueAt);
      expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'trigger:engineering_lead', 'trigger:cto']);
      expect(h.pager.events.length - eventsBefore).toBe(3);
      expect(await failedCount('trigger')).toBe(failedBefore + 1);
      expect(pagedNotes(h.chat, n)).toHaveLength(3);
      expect((await stepsOf(h.db, n)).map((s) => s.state)).toEqual(['fired', 'fired', 'fired']);
    } finally {
      await worker.close();
    }
  });

  test('three workers with separate Redis connections on one prefix, duplicate deliveries and a busy reconciler: one trigger per step', async () => {
    const workers = await Promise.all([
      h.startWorker({ ownPool: true }),
      h.startWorker({ ownPool: true }),
      h.startWorker({ ownPool: true }),
    ]);
    expect(new Set(workers.map((w) => w.redis)).size).toBe(3);
    const completions: { stepId: number; outcome: unknown }[] = [];
    for (const w of workers) {
      w.worker.on('completed', (job, result) => {
        if (job.data.kind === 'step') completions.push({ stepId: job.data.stepId, outcome: result });
      });
    }
    let hammering = true;
    // Every worker's reconciler re-adds timers all the time: jobs that already finished come back as duplicates.
    const hammer = Promise.all(
      workers.map(async (w) => {
        while (hammering) {
          await w.escalation.reconcile();
          await new Promise((r) => setTimeout(r, 40));
        }
      }),
    );
    try {
      const numbers = await Promise.all(
        [1, 2, 3, 4].map(async (i) => (await declareIncident(h, 'sev1', `Fleet ${i}`)).number),
      );
      // At-least-once delivery made explicit: a second, differently named job for every step, due at the same time.
      for (const n of numbers) {
        for (const s of await stepsOf(h.db, n)) {
          await h.queue.add(
            'step',
            { kind: 'step', stepId: s.id },
            {
              jobId: `dup-${s.id}`,
              delay: Math.max(0, s.dueAt.getTime() - Date.now()),
              attempts: 8,
              backoff: { type: 'fixed', delay: 200 },
              removeOnComplete: true,
              removeOnFail: true,
            },
          );
        }
      }
      const lastDue = Math.max(
        ...(await Promise.all(numbers.map(async (n) => (await stepsOf(h.db, n))[2]!.dueAt.getTime()))),
      );
      await waitUntil(
        'all 12 steps to finish',
        async () => {
          const all = await Promise.all(numbers.map((n) => stepsOf(h.db, n)));
          return all.flat().every((s) => s.state === 'fired');
        },
        15_000,
      );
      // Let the duplicates and the busy retries run out.
      await waitUntil(
        'the duplicates to drain',
        async () => Date.now() > lastDue + 500 && (await queueIdle(h.queue)),
        15_000,
      );
      hammering = false;
      await hammer;
      await waitPastAndIdle(h.queue, Date.now(), 300);

      // The duplicates really were delivered: every step ran at least twice, and fired exactly once.
      const ids = new Set((await Promise.all(numbers.map((n) => stepsOf(h.db, n)))).flat().map((s) => s.id));
      const ours = completions.filter((c) => ids.has(c.stepId));
      for (const id of ids) {
        expect(ours.filter((c) => c.stepId === id && c.outcome === 'fired')).toHaveLength(1);
        expect(ours.filter((c) => c.stepId === id).length).toBeGreaterThanOrEqual(2);
      }
      expect(ours.every((c) => c.outcome === 'fired' || c.outcome === 'already-finished')).toBe(true);
      for (const n of numbers) {
        expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'trigger:engineering_lead', 'trigger:cto']);
        expect(pagedNotes(h.chat, n)).toHaveLength(3);
        expect(await countRows(h.db, 'page_keys', n)).toBe(3);
        expect((await timelineKinds(h.db, n)).filter((k) => k === 'paged')).toHaveLength(3);
      }

      // Resolving all four: one resolve per alert, however many workers.
      await Promise.all(numbers.map((n) => h.incidents.resolve({ number: n }, USERS.oncall, undefined)));
      await waitUntil(
        '12 resolves',
        () => numbers.every((n) => h.pager.of(n).filter((e) => e.action === 'resolve').length >= 3),
        10_000,
      );
      await waitPastAndIdle(h.queue, Date.now(), 300);
      for (const n of numbers) {
        expect(h.pager.summary(n).slice(3).sort()).toEqual([
          'resolve:cto',
          'resolve:engineering_lead',
          'resolve:oncall',
        ]);
        expect(h.pager.of(n)).toHaveLength(6);
      }
    } finally {
      hammering = false;
      await hammer.catch(() => undefined);
      await Promise.all(workers.map((w) => w.close()));
    }
  });
});
