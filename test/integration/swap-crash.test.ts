// The swap against the real PostgreSQL when it is cut short: the worker's connection dying inside the rename
// transaction, and the swap stopped by its signal. Either way the target keeps its name, its data and, above all,
// stays connectable (its ALLOW_CONNECTIONS flag is part of the same transaction as the renames).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { createFileStore } from '../../src/adapters/backup-store/file-store.js';
import { safetyCopyFileName } from '../../src/domain/backups/names.js';
import { AbortError } from '../../src/pgtools/errors.js';
import {
  cleanup,
  namesOf,
  preflight,
  restoreIntoFresh,
  swap,
  type LogicalRestorePlan,
  type RestoreState,
} from '../../src/domain/recovery/logical-restore/index.js';
import { backupName, createAppDatabase, dumpCustom, withClient, type AppDatabase } from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 30_000 });

const ADMIN_URL = process.env.LIFELINE_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PREFIX = 'swapcrash';

let app: AppDatabase;
let folder: string;
let workDir: string;
let plan: LogicalRestorePlan;
let backupData: string;
let damagedData: string;
let state: RestoreState;

const admin = <T>(work: (c: pg.Client) => Promise<T>): Promise<T> => withClient(ADMIN_URL, work);

async function allowsConnections(database: string): Promise<boolean | undefined> {
  return admin(
    async (c) =>
      (await c.query<{ ok: boolean }>('SELECT datallowconn AS ok FROM pg_database WHERE datname = $1', [database]))
        .rows[0]?.ok,
  );
}

/**
 * Holds a lock on the target database in an open transaction (from another database; COMMENT takes a lock that
 * conflicts with RENAME's, and is rolled back), so the swap's rename waits on it: the moment the tests cut it short.
 */
async function holdTarget(): Promise<{ release(): Promise<void> }> {
  const holder = new pg.Client({ connectionString: ADMIN_URL });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query(`COMMENT ON DATABASE "${app.name}" IS 'held by a test'`);
  return {
    async release() {
      await holder.query('ROLLBACK');
      await holder.end();
    },
  };
}

/** The server process of the swap's session while its rename waits for the lock. */
async function waitingRename(): Promise<number> {
  return waitUntil('the swap to wait on the lock', () =>
    admin(async (c) => {
      const { rows } = await c.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER DATABASE%RENAME TO%' AND query LIKE $1`,
        [`%${app.name}%`],
      );
      return rows[0]?.pid;
    }),
  );
}

beforeAll(async () => {
  app = await createAppDatabase(30);
  backupData = await app.fingerprint();
  folder = mkdtempSync(join(tmpdir(), 'lltest-swapcrash-store-'));
  workDir = mkdtempSync(join(tmpdir(), 'lltest-swapcrash-work-'));
  const name = backupName(PREFIX, new Date(Date.now() - 60_000), 'dump');
  await dumpCustom(app.url, join(folder, name));
  await app.query('DELETE FROM users WHERE id > 10');
  damagedData = await app.fingerprint();
  plan = {
    targetUrl: app.url,
    store: createFileStore(pathToFileURL(folder).href),
    backupName: name,
    format: 'custom',
    safetyCopyName: safetyCopyFileName(PREFIX, new Date()),
    verify: ['SELECT COUNT(*) FROM users'],
    workDir,
    parallelJobs: 1,
  };
});

beforeEach(async () => {
  // Each test starts from a backup restored into a fresh database beside the (damaged) target.
  state = (await preflight(plan, {})).state;
  state = (await restoreIntoFresh(plan, state)).state;
});

afterAll(async () => {
  await app?.drop();
  if (folder) rmSync(folder, { recursive: true, force: true });
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('a swap cut short', () => {
  test('the worker’s connection dies inside the rename transaction: the target is unchanged, open', async () => {
    const lock = await holdTarget();
    const swapping = swap(plan, state);
    swapping.catch(() => undefined);
    const pid = await waitingRename();
    // What a kill -9 of the worker (or its network going) does to the swap's session.
    await admin((c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
    await lock.release();
    await expect(swapping).rejects.toThrow();

    expect(await allowsConnections(app.name)).toBe(true);
    expect(await app.fingerprint()).toBe(damagedData);
    const { fresh, old } = namesOf(app.name, state.runId!);
    expect(await app.leftovers()).toEqual([fresh]);
    expect(await allowsConnections(old)).toBeUndefined();
    await cleanup(plan, state);
    expect(await app.leftovers()).toEqual([]);
  });

  test('stopped by its signal before COMMIT: AbortError, nothing renamed; run again, it swaps', async () => {
    const lock = await holdTarget();
    const controller = new AbortController();
    const swapping = swap({ ...plan, signal: controller.signal }, state);
    swapping.catch(() => undefined);
    await waitingRename();
    controller.abort(new Error('Lifeline is shutting down'));
    const error = await swapping.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(AbortError);
    expect((error as Error).message).toMatch(/nothing was renamed/);
    await lock.release();
    expect(await allowsConnections(app.name)).toBe(true);
    expect(await app.fingerprint()).toBe(damagedData);
    const { fresh, old } = namesOf(app.name, state.runId!);
    expect(await app.leftovers()).toEqual([fresh]);

    const swapped = await swap(plan, state);
    expect(swapped.state.swapped).toBe(true);
    expect(await app.fingerprint()).toBe(backupData);
    expect(await allowsConnections(app.name)).toBe(true);
    expect(await allowsConnections(old)).toBe(true);
    await admin((c) => c.query(`DROP DATABASE "${old}" WITH (FORCE)`));
    await cleanup(plan, swapped.state);
    expect(await app.leftovers()).toEqual([]);
  });
});
