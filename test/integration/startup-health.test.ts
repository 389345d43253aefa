import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readConfig } from '../../src/shared/config.js';
import { createPool } from '../../src/shared/db/pool.js';
import { createHealthCheck } from '../../src/delivery/http/health.js';
import { startLifeline } from '../../src/wiring/lifeline.js';
import { StartupError } from '../../src/wiring/runtime.js';
import { createLogger } from '../../src/shared/log.js';
import { createTestDatabase, TEST_REDIS_URL, uniqueQueuePrefix, type TestDatabase } from '../support/db.js';
import { BOT_TOKEN, freePort, ROUTING_KEYS, SIGNING_SECRET, writeTestConfig } from '../support/lifeline-process.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

async function configWith(overrides: Record<string, string>) {
  return readConfig({
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: 'http://127.0.0.1:9/api/',
    LIFELINE_CONFIG: writeTestConfig(),
    LIFELINE_QUEUE_PREFIX: uniqueQueuePrefix(),
    LOG_LEVEL: 'silent',
    PORT: String(await freePort()),
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    PD_KEY_ONCALL: ROUTING_KEYS.oncall,
    PD_KEY_LEAD: ROUTING_KEYS.engineering_lead,
    PD_KEY_CTO: ROUTING_KEYS.cto,
    PD_KEY_CEO: ROUTING_KEYS.ceo,
    ...overrides,
  });
}

/** Sessions on the test database other than this query's own. */
async function openSessions(): Promise<number> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    return rows[0]?.n ?? -1;
  } finally {
    await client.end();
  }
}

describe('startup waits for its dependencies, then names the one that did not answer', () => {
  test('Redis down: a StartupError naming Redis and its URL, after the wait', async () => {
    const port = await freePort();
    const started = Date.now();
    const attempt = startLifeline(await configWith({ REDIS_URL: `redis://127.0.0.1:${port}` }), {
      startupWaitMs: 1_500,
    });
    await expect(attempt).rejects.toBeInstanceOf(StartupError);
    await expect(attempt).rejects.toThrow(`Redis did not answer within 2 s at redis://127.0.0.1:${port}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
  });

  test('PostgreSQL down: names PostgreSQL, and the URL shows no password', async () => {
    const port = await freePort();
    const attempt = startLifeline(
      await configWith({ DATABASE_URL: `postgres://lifeline:s3cretPassw0rd@127.0.0.1:${port}/lifeline` }),
      {
        startupWaitMs: 1_000,
      },
    );
    const error = await attempt.then(
      () => new Error('started although PostgreSQL was down'),
      (err: unknown) => err as Error,
    );
    expect(error).toBeInstanceOf(StartupError);
    expect(error.message).toMatch(
      /^PostgreSQL did not answer within 1 s at postgres:\/\/lifeline:\[redacted\]@127\.0\.0\.1:\d+\/lifeline/,
    );
    expect(error.message).not.toContain('s3cretPassw0rd');
  });

  test('a start that fails once connected (port taken) stops what it started: no PostgreSQL session left', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    const address = taken.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const config = await configWith({ LIFELINE_ROLE: 'worker', PORT: String(port) });
      await expect(startLifeline(config, { startupWaitMs: 5_000 })).rejects.toThrow('EADDRINUSE');
    } finally {
      taken.close();
    }
    expect(await openSessions()).toBe(0);
  });

  test('both up: starts, migrates, and stops cleanly', async () => {
    const running = await startLifeline(await configWith({ LIFELINE_ROLE: 'worker' }), { startupWaitMs: 5_000 });
    await running.stop();
  });
});

describe('health check', () => {
  test('up when PostgreSQL and Redis answer; 503-worthy and naming each one that is down', async () => {
    const log = createLogger('silent', []);
    const goodPool = createPool(db.url, log);
    const goodRedis = new Redis(TEST_REDIS_URL, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: true,
    });
    await goodRedis.connect();
    const badPort = await freePort();
    const badPool = createPool(`postgres://postgres@127.0.0.1:${badPort}/x`, log);
    const badRedis = new Redis(`redis://127.0.0.1:${badPort}`, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: true,
    });
    badRedis.on('error', () => undefined);
    try {
      expect(await createHealthCheck(goodPool, goodRedis)()).toEqual({ ok: true, postgres: 'up', redis: 'up' });
      expect(await createHealthCheck(badPool, goodRedis)()).toEqual({
        ok: false,
        postgres: 'down',
        redis: 'up',
        down: ['postgres'],
      });
      expect(await createHealthCheck(goodPool, badRedis)()).toEqual({
        ok: false,
        postgres: 'up',
        redis: 'down',
        down: ['redis'],
      });
      expect(await createHealthCheck(badPool, badRedis)()).toEqual({
        ok: false,
        postgres: 'down',
        redis: 'down',
        down: ['postgres', 'redis'],
      });
    } finally {
      await Promise.allSettled([goodPool.end(), badPool.end(), goodRedis.quit()]);
      badRedis.disconnect();
    }
  });
});
