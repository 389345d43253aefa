// What a sandbox leaves behind, and taking it away: its two databases (and a restore's leftovers beside them), the
// backups folder, the Redis keys under its queue prefix and its config folder. `npm run sandbox -- --clean` and
// `--drop-on-exit` remove all of it; a plain stop removes what nobody looks at afterwards (queues, config).
import { readdir, rm, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { maskedUrl } from '../shared/db/connection.js';
import { dropSandboxDatabase, removeBackups } from './databases.js';
import { SetupError } from './errors.js';
import type { SandboxSettings } from './settings.js';

export async function withRedis<T>(url: string, work: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 3_000,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect().catch((err: Error) => {
      throw new SetupError(`Redis did not answer at ${maskedUrl(url)}: ${err.message} (set REDIS_URL)`);
    });
    return await work(redis);
  } finally {
    redis.disconnect();
  }
}

/** Deletes every Redis key of Lifeline's queues under the sandbox's prefix; resolves with how many there were. */
export async function clearQueues(url: string, prefix: string): Promise<number> {
  return withRedis(url, async (redis) => {
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) deleted += await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    return deleted;
  });
}

/** Removes the folder Lifeline's config is written to, and the sandbox's temp folder once nothing else is in it. */
export async function removeConfigFolder(folder: string): Promise<void> {
  await rm(folder, { recursive: true, force: true });
  const parent = dirname(folder);
  if ((await readdir(parent).catch(() => undefined))?.length === 0) await rmdir(parent).catch(() => undefined);
}

/** Sessions other than ours on the sandbox's databases: a sandbox, or its Lifeline, still running. */
async function sessionsOn(settings: SandboxSettings): Promise<number> {
  const client = new pg.Client({ connectionString: settings.adminUrl, connectionTimeoutMillis: 5_000 });
  await client.connect().catch((err: Error) => {
    throw new SetupError(`PostgreSQL did not answer at ${maskedUrl(settings.adminUrl)}: ${err.message}`);
  });
  try {
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()',
      [[settings.stateDb, settings.appDb]],
    );
    return rows[0]?.n ?? 0;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Everything the sandbox made with these settings, gone: what it did not make (no marker) is left and named.
 * `whileRunning`: the sandbox itself is stopping, so its own sessions are not a reason to refuse.
 */
export async function removeLeftovers(
  settings: SandboxSettings,
  say: (line: string) => void,
  whileRunning = false,
): Promise<void> {
  if (!whileRunning) {
    const sessions = await sessionsOn(settings);
    if (sessions > 0) {
      throw new SetupError(
        `${sessions} session(s) are connected to ${settings.stateDb} or ${settings.appDb}: a sandbox (or its Lifeline) ` +
          'still runs with these settings; stop it first (Ctrl+C), then clean',
      );
    }
  }
  for (const name of [settings.stateDb, settings.appDb]) {
    const kept = await dropSandboxDatabase(settings.adminUrl, name);
    if (kept.length > 0) say(`sandbox: left ${kept.join(', ')} in place: not made by the sandbox`);
  }
  const backups = (await removeBackups(settings.backupsDir)) ? 'removed' : 'absent or not the sandbox’s, left alone';
  const keys = await clearQueues(settings.redisUrl, settings.queuePrefix);
  await removeConfigFolder(settings.configDir);
  say(
    `sandbox: cleaned up: databases ${settings.stateDb} and ${settings.appDb} (and any restore leftovers) dropped; ` +
      `backups folder ${settings.backupsDir} ${backups}; ${keys} Redis key(s) under ${settings.queuePrefix}: ` +
      'deleted; config folder removed',
  );
}
