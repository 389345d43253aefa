// The real PostgreSQL and Redis: a fresh database and a fresh queue prefix per benchmark, removed afterwards.
import { randomBytes } from 'node:crypto';
import { URL } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { onCleanup } from './cleanup.mjs';

export const ADMIN_URL = process.env.LIFELINE_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.LIFELINE_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function admin(sql) {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates an empty database; its drop is registered as a cleanup and also returned. */
export async function createDatabase(label) {
  const name = `lifeline_bench_${label}_${process.pid}_${randomBytes(3).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const drop = onCleanup(`drop database ${name}`, () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  return { name, url: url.toString(), drop };
}

/** A queue prefix of our own; every key under it is deleted at cleanup. */
export function createQueuePrefix(label) {
  const prefix = `llbench-${label}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const drop = onCleanup(`delete Redis keys ${prefix}:*`, () => deleteKeys(prefix));
  return { prefix, drop };
}

export async function deleteKeys(prefix) {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3, connectTimeout: 5_000 });
  redis.on('error', () => undefined);
  let deleted = 0;
  try {
    let cursor = '0';
    for (let round = 0; round < 100_000; round++) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) deleted += await redis.del(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
  return deleted;
}

/** A short-lived pg pool for reading results. */
export function openPool(url) {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined);
  return pool;
}
