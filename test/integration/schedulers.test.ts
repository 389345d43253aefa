// Job schedulers (backups, drills, the RPO watch) survive Redis losing them: syncSchedulers, which
// the reconciler runs every pass, re-creates what is missing and leaves healthy schedulers alone, so running it
// every pass never drops, shifts or doubles a slot. The real BullMQ on the real Redis, under a prefix of its own.
import { Worker, type Job, type Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import {
  createSchedulesQueue,
  SCHEDULES_QUEUE,
  syncSchedulers,
  type ScheduledWork,
} from '../../src/delivery/jobs/schedules.js';
import { dropQueuePrefix, TEST_REDIS_URL, uniqueQueuePrefix } from '../support/db.js';
import { testConfigYaml } from '../support/test-config.js';

const KEYS = { PD_KEY_ONCALL: 'rk-1', PD_KEY_LEAD: 'rk-2', PD_KEY_CTO: 'rk-3', PD_KEY_CEO: 'rk-4' };

function fileWith(schedule: string, drill: string): FileConfig {
  return parseConfigText(
    testConfigYaml({
      environmentsYaml: `  shop:
    database: { url: "postgres://127.0.0.1:5432/shop_unused" }
    backups: { store: "file:///tmp/lifeline-schedulers-itest", prefix: shop, retention_days: 7, rpo_minutes: 60, schedule: "${schedule}", drill_schedule: "${drill}" }`,
    }),
    KEYS,
  );
}

let redis: Redis;
let prefix: string;
let queue: Queue<ScheduledWork>;

beforeAll(async () => {
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  prefix = uniqueQueuePrefix();
  queue = createSchedulesQueue(redis, prefix);
  await queue.waitUntilReady();
});

afterAll(async () => {
  await queue?.close();
  await redis?.quit();
  await dropQueuePrefix(prefix);
});

afterEach(async () => {
  await dropQueuePrefix(prefix);
});

/** Each scheduler's next slot, and whether the job for that slot exists. */
async function schedulers(): Promise<
  Record<string, { next: number | undefined; pattern?: string; every?: number; job: boolean }>
> {
  const out: Record<string, { next: number | undefined; pattern?: string; every?: number; job: boolean }> = {};
  for (const s of await queue.getJobSchedulers(0, -1)) {
    const job = s.next !== undefined && (await queue.getJob(`repeat:${s.key}:${s.next}`)) !== undefined;
    out[s.key] = {
      next: s.next,
      ...(s.pattern ? { pattern: s.pattern } : {}),
      ...(s.every ? { every: s.every } : {}),
      job,
    };
  }
  return out;
}

describe('syncSchedulers', () => {
  test('the first sync creates each scheduler with a job for its next slot; a second one changes nothing', async () => {
    const file = fileWith('0 */6 * * *', '0 3 * * 1');
    expect(await syncSchedulers(queue, file, 60)).toEqual(['backup-shop', 'drill-shop', 'rpo-watch']);
    const created = await schedulers();
    expect(created).toEqual({
      'backup-shop': { next: expect.any(Number), pattern: '0 */6 * * *', job: true },
      'drill-shop': { next: expect.any(Number), pattern: '0 3 * * 1', job: true },
      'rpo-watch': { next: expect.any(Number), every: 60_000, job: true },
    });
    const jobsBefore = await queue.getJobCounts('delayed', 'wait');

    expect(await syncSchedulers(queue, file, 60)).toEqual([]);
    expect(await schedulers()).toEqual(created);
    expect(await queue.getJobCounts('delayed', 'wait')).toEqual(jobsBefore);
  });

  test('after Redis lost the queue (a flush, a failover to an empty replica), the next sync re-creates every scheduler', async () => {
    const file = fileWith('0 */6 * * *', '0 3 * * 1');
    await syncSchedulers(queue, file, 60);
    await dropQueuePrefix(prefix);
    expect(await schedulers()).toEqual({});

    expect(await syncSchedulers(queue, file, 60)).toEqual(['backup-shop', 'drill-shop', 'rpo-watch']);
    const back = await schedulers();
    expect(Object.keys(back).sort()).toEqual(['backup-shop', 'drill-shop', 'rpo-watch']);
    expect(Object.values(back).every((s) => s.job)).toBe(true);
  });

  test('a scheduler whose next job alone was lost (an eviction, a half-replicated failover) is re-created', async () => {
    const file = fileWith('0 */6 * * *', 'off');
    await syncSchedulers(queue, file, 60);
    const { next } = (await schedulers())['backup-shop']!;
    const jobId = `repeat:backup-shop:${next}`;
    await redis.del(`${prefix}:${SCHEDULES_QUEUE}:${jobId}`);
    await redis.zrem(`${prefix}:${SCHEDULES_QUEUE}:delayed`, jobId);
    expect((await schedulers())['backup-shop']!.job).toBe(false);

    expect(await syncSchedulers(queue, file, 60)).toEqual(['backup-shop']);
    expect((await schedulers())['backup-shop']).toEqual({ next, pattern: '0 */6 * * *', job: true });
  });

  test('a changed schedule is applied, one no longer wanted is removed, an unchanged one is left alone', async () => {
    await syncSchedulers(queue, fileWith('0 */6 * * *', '0 3 * * 1'), 60);
    const before = await schedulers();

    expect(await syncSchedulers(queue, fileWith('30 */2 * * *', 'off'), 60)).toEqual(['backup-shop']);
    const after = await schedulers();
    expect(Object.keys(after).sort()).toEqual(['backup-shop', 'rpo-watch']);
    expect(after['backup-shop']).toMatchObject({ pattern: '30 */2 * * *', job: true });
    expect(after['rpo-watch']).toEqual(before['rpo-watch']);
  });

  test('syncing every 100 ms while the schedules run never drops, shifts or doubles a slot (cron and every)', async () => {
    // A 2 s cron backup and a 1.5 s RPO watch. A plain upsert of an unchanged cron scheduler drops the slot whose
    // job fell due but was not taken yet; at this rate it lost more than half of them (see syncSchedulers).
    const file = fileWith('*/2 * * * * *', 'off');
    const slots: Record<string, number[]> = { backup: [], 'rpo-watch': [] };
    const workerRedis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker<ScheduledWork>(
      SCHEDULES_QUEUE,
      async (job: Job<ScheduledWork>) => void slots[job.data.kind]!.push(Number(String(job.id).split(':').pop())),
      { connection: workerRedis, prefix, concurrency: 4 },
    );
    await syncSchedulers(queue, file, 1.5);
    let syncs = 0;
    const timer = setInterval(() => {
      syncs++;
      void syncSchedulers(queue, file, 1.5);
    }, 100);
    await new Promise((r) => setTimeout(r, 12_000));
    clearInterval(timer);
    await worker.close();
    await workerRedis.quit();

    expect(syncs).toBeGreaterThanOrEqual(80);
    const gaps = (list: number[]) => list.slice(1).map((slot, i) => slot - list[i]!);
    expect(slots.backup!.length).toBeGreaterThanOrEqual(5);
    expect(new Set(gaps(slots.backup!))).toEqual(new Set([2_000]));
    expect(slots['rpo-watch']!.length).toBeGreaterThanOrEqual(7);
    expect(new Set(gaps(slots['rpo-watch']!))).toEqual(new Set([1_500]));
  });
});
