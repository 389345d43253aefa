// The runtime a Lifeline process stands on: its logger and metrics, the PostgreSQL pool and the Redis connections,
// opened once (waiting for both, naming the one that does not answer), migrated, and closed last.
import { messageOf } from '../shared/errors.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import { migrate } from '../shared/db/migrate.js';
import { createPool, type Db } from '../shared/db/pool.js';
import { createLogger, createRedactor, type Logger } from '../shared/log.js';
import { createMetrics, type Metrics } from '../shared/metrics.js';
import { within } from '../shared/timeout.js';

export class StartupError extends Error {}

/** Redis by purpose; BullMQ duplicates `workers` for each worker's blocking reads. */
export interface RedisConnections {
  /** Adding jobs, the health check: fails fast, so a Slack handler never hangs on Redis. */
  readonly queues: Redis;
  /** The workers': waits out an outage (maxRetriesPerRequest null, as BullMQ requires). */
  readonly workers: Redis;
}

export interface Runtime {
  readonly config: Config;
  readonly log: Logger;
  readonly redact: (text: string) => string;
  readonly metrics: Metrics;
  readonly db: Db;
  readonly redis: RedisConnections;
  /** Never throws: a connection that will not close is dropped. */
  close(): Promise<void>;
}

export async function openRuntime(config: Config, waitMs: number): Promise<Runtime> {
  const log = createLogger(config.logLevel, config.secrets);
  const redact = createRedactor(config.secrets);
  const db = createPool(config.databaseUrl, log);
  const redis: RedisConnections = {
    queues: new Redis(config.redisUrl, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      commandTimeout: 3_000,
      lazyConnect: true,
    }),
    workers: new Redis(config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true }),
  };
  const connections = [redis.workers, redis.queues];
  for (const connection of connections) {
    connection.on('error', (err: Error) => log.debug({ err: err.message }, 'Redis connection error'));
  }
  const close = () => closeQuietly(db, connections);
  try {
    await Promise.all([
      waitFor('PostgreSQL', redact(config.databaseUrl), waitMs, () => db.query('SELECT 1')),
      waitFor('Redis', redact(config.redisUrl), waitMs, async () => {
        for (const connection of connections) {
          if (connection.status === 'wait' || connection.status === 'end') await connection.connect();
          await connection.ping();
        }
      }),
    ]);
    await migrateLogged(db, log);
  } catch (err) {
    await close();
    throw err;
  }
  await warnUnlessNoEviction(redis.queues, log);
  return { config, log, redact, metrics: createMetrics(), db, redis, close };
}

export interface StateDatabase {
  readonly db: Db;
  close(): Promise<void>;
}

/**
 * Lifeline's PostgreSQL alone, migrated, for a tool that runs beside Lifeline with its environment. One attempt:
 * a person at a terminal is told at once (a StartupError) rather than kept waiting.
 */
export async function openStateDatabase(config: Config, log: Logger): Promise<StateDatabase> {
  const db = createPool(config.databaseUrl, log);
  const close = () => closeQuietly(db, []);
  try {
    await within(db.query('SELECT 1'), 10_000).catch((err: unknown) => {
      throw new StartupError(messageOf(err));
    });
    await migrateLogged(db, log);
  } catch (err) {
    await close();
    throw err;
  }
  return { db, close };
}

async function migrateLogged(db: Db, log: Logger): Promise<void> {
  const applied = await migrate(db);
  if (applied.length > 0) log.info({ applied }, 'database migrations applied');
}

async function waitFor(name: string, where: string, waitMs: number, probe: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      // A probe on a connection that queues commands while offline would wait forever; cap each attempt.
      await within(probe(), 2_000);
      return;
    } catch (err) {
      if (Date.now() >= deadline) {
        const seconds = Math.round(waitMs / 1000);
        throw new StartupError(`${name} did not answer within ${seconds} s at ${where}: ${messageOf(err)}`);
      }
      await sleep(500);
    }
  }
}

async function warnUnlessNoEviction(redis: Redis, log: Logger): Promise<void> {
  try {
    const reply: unknown = await redis.config('GET', 'maxmemory-policy');
    const policy: unknown = Array.isArray(reply) ? reply[1] : undefined;
    if (policy !== 'noeviction') {
      const why = 'Redis maxmemory-policy is not noeviction: under memory pressure Redis may drop queued timers';
      log.warn({ policy }, why);
    }
  } catch {
    // Managed Redis often forbids CONFIG; the reconciler still restores lost timers from PostgreSQL.
  }
}

async function closeQuietly(db: Db, connections: readonly Redis[]): Promise<void> {
  // quit() waits for Redis to answer, which a client that never connected queues forever: bound it.
  await Promise.allSettled([within(db.end(), 2_000), ...connections.map((c) => within(c.quit(), 1_000))]);
  for (const connection of connections) connection.disconnect();
}
