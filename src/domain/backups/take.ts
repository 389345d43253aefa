// A logical backup into a store, and the check that what the store now holds is that backup.
//
// pg_dump runs inside a snapshot exported by a REPEATABLE READ transaction that counts every table's rows at the
// same moment: the counts describe exactly the data in the dump, which is what a drill later compares against.
//
// The dump is written under a pending name (names.ts) that no listing, `latest` or retention ever takes for a backup;
// it gets its backup name only once it was read back and checked, and its sidecar only after that.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { connectionOf, describeConnection, type PgConnection } from '../../shared/db/connection.js';
import { PermanentError, messageOf } from '../../shared/errors.js';
import { connectClient, isTransientPgError, sqlState } from '../../pgtools/client.js';
import { dumpDatabase } from '../../pgtools/dump.js';
import { throwIfAborted } from '../../pgtools/errors.js';
import { hashingTee } from '../../pgtools/meters.js';
import { countListEntries, runTool, ToolFailedError, type PgToolOptions } from '../../pgtools/process.js';
import { parseBackupName, pendingFinalName, pendingName } from './names.js';
import { NotFoundError, type BackupStore } from '../../adapters/backup-store/port.js';

export interface TakenBackup {
  /** The backup name it gets once its check passed. */
  readonly name: string;
  /** Where it waits for its check. */
  readonly pendingName: string;
  readonly size: number;
  readonly sha256: string;
  /** schema.table → rows, counted in the dump's own snapshot. */
  readonly tableRows: Readonly<Record<string, number>>;
  readonly durationMs: number;
}

export interface StoredCheck {
  /** pg_restore --list entries read from the stored object. */
  readonly entries: number;
  readonly sha256: string;
  readonly size: number;
}

/** The checksum sidecar kept beside a backup, in `sha256sum` format (so `sha256sum -c` checks it by hand). */
export function sidecarName(backupName: string): string {
  return `${backupName}.sha256`;
}

const permanent = (message: string): Error => new PermanentError(message);

async function countRows(client: pg.Client): Promise<Record<string, number>> {
  const { rows: tables } = await client.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      ORDER BY 1`,
  );
  const counts: Record<string, number> = {};
  for (const { name } of tables) {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${name}`);
    counts[name] = Number(rows[0]?.n ?? 0);
  }
  return counts;
}

/**
 * pg_dump -Fc of `url` into `store` under a pending name for `name` (nothing under it unless pg_dump exited 0 and the
 * store took every byte; never anything under `name` itself: publishBackup gives it that), with each table's exact row
 * count from the same snapshot. Memory stays flat whatever the size.
 */
export async function takeBackup(
  url: string,
  store: BackupStore,
  name: string,
  options: { signal?: AbortSignal; tools?: PgToolOptions } = {},
): Promise<TakenBackup> {
  const { conn, scrub } = connectionOf(url, permanent);
  return takeBackupOf(conn, scrub, store, name, options);
}

async function connectForBackup(conn: PgConnection, scrub: (text: string) => string): Promise<pg.Client> {
  try {
    return await connectClient(conn, { applicationName: 'lifeline-backup' });
  } catch (err) {
    const message = `cannot connect to ${describeConnection(conn)}: ${scrub(messageOf(err))}`;
    // The server answered (no such database, a wrong password): trying again will not help.
    if (sqlState(err) !== undefined && !isTransientPgError(err)) throw new PermanentError(message);
    throw new Error(message, { cause: err });
  }
}

/** takeBackup of a connection already taken apart (the database a restore set aside, say). */
export async function takeBackupOf(
  conn: PgConnection,
  scrub: (text: string) => string,
  store: BackupStore,
  name: string,
  options: { signal?: AbortSignal; tools?: PgToolOptions } = {},
): Promise<TakenBackup> {
  throwIfAborted(options.signal, 'the backup');
  const pending = pendingName(name, randomBytes(4).toString('hex'));
  const started = Date.now();
  const client = await connectForBackup(conn, scrub);
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // One core for the counts: parallel scans would take CPU from pg_dump, which is what the backup waits on.
    await client.query('SET LOCAL max_parallel_workers_per_gather = 0');
    const { rows } = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
    const snapshot = rows[0]?.id ?? '';
    // Both run in the exported snapshot; the transaction stays open until pg_dump is done with it.
    const [dumped, counted] = await Promise.allSettled([
      dumpDatabase(conn, scrub, store, pending, options.signal, options.tools, [`--snapshot=${snapshot}`]),
      countRows(client),
    ]);
    if (dumped.status === 'rejected') throw dumped.reason;
    if (counted.status === 'rejected') {
      // The dump landed but its row counts did not: a backup a drill cannot check is not kept.
      await store.remove(pending).catch(() => undefined);
      throw new Error(`counting the rows of ${describeConnection(conn)} failed: ${scrub(messageOf(counted.reason))}`);
    }
    await client.query('COMMIT');
    return {
      name,
      pendingName: pending,
      size: dumped.value.size,
      sha256: dumped.value.sha256,
      tableRows: counted.value,
      durationMs: Date.now() - started,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Reads the stored object back once: its SHA-256 (which must equal `expectedSha256`) and, from the same stream,
 * pg_restore --list of its table of contents. Throws PermanentError when either disagrees.
 */
export async function checkStoredBackup(
  store: BackupStore,
  name: string,
  expectedSha256: string,
  databaseUrl: string,
  options: { signal?: AbortSignal; tools?: PgToolOptions } = {},
): Promise<StoredCheck> {
  const { conn, scrub } = connectionOf(databaseUrl, permanent);
  let source: Readable;
  try {
    source = await store.read(name);
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new PermanentError(`${name} is not in ${store.location} right after it was written`);
    throw err;
  }
  const listing = runTool('pg_restore', ['--list'], {
    conn,
    tools: options.tools,
    signal: options.signal,
    stdin: 'pipe',
    stdout: 'pipe',
    scrub,
  });
  const entries = countListEntries(listing.stdout);
  const stdin = listing.stdin;
  if (!stdin) throw new Error('pg_restore started without a stdin pipe');
  const sink = hashingTee(stdin);
  const [read, listed] = await Promise.allSettled([
    pipeline(source, sink, options.signal ? { signal: options.signal } : {}),
    listing.done,
  ]);
  if (read.status === 'rejected') {
    listing.kill();
    // The store's own integrity check (the SDK verifies S3's checksum of a single-part object) failed.
    if (read.reason instanceof Error && /checksum/i.test(read.reason.message)) {
      throw new PermanentError(
        `${name} as stored in ${store.location} failed the store's checksum: ${read.reason.message}`,
      );
    }
    throw read.reason;
  }
  if (listed.status === 'rejected') {
    const reason: unknown = listed.reason;
    if (reason instanceof ToolFailedError)
      throw new PermanentError(`${name} as stored in ${store.location} is unreadable: ${reason.message}`);
    throw reason;
  }
  const sha256 = sink.sha256();
  if (sha256 !== expectedSha256) {
    throw new PermanentError(
      `${name} as stored in ${store.location} has sha256 ${sha256.slice(0, 12)}…, not the ${expectedSha256.slice(0, 12)}… pg_dump wrote`,
    );
  }
  return { entries: entries(), sha256, size: sink.bytes() };
}

/** Writes `<name>.sha256` beside the backup. */
export async function writeSidecar(store: BackupStore, name: string, sha256: string): Promise<void> {
  await store.write(sidecarName(name), Readable.from([Buffer.from(`${sha256}  ${name}\n`)]));
}

export interface PublishedBackup extends StoredCheck {
  /** The backup already had its name (a resumed job found it renamed): it was checked again where it is. */
  readonly alreadyNamed: boolean;
}

/**
 * Checks the pending object (checkStoredBackup), then gives it its backup name, then writes its sidecar after the
 * rename, so a sidecar never describes a file that is not there. Resumable: a job whose worker died after the rename
 * finds the backup under its name (it can only have got there through a passed check) and checks it again in place.
 * Throws when the check fails; the caller removes what is left (removeBackupLeftovers).
 */
export async function publishBackup(
  store: BackupStore,
  taken: Pick<TakenBackup, 'name' | 'pendingName' | 'sha256'>,
  databaseUrl: string,
  options: { signal?: AbortSignal; tools?: PgToolOptions } = {},
): Promise<PublishedBackup> {
  const names = new Set((await store.list()).map((o) => o.name));
  let checked: StoredCheck;
  let alreadyNamed = false;
  if (names.has(taken.pendingName)) {
    checked = await checkStoredBackup(store, taken.pendingName, taken.sha256, databaseUrl, options);
    await store.rename(taken.pendingName, taken.name);
  } else if (names.has(taken.name)) {
    alreadyNamed = true;
    checked = await checkStoredBackup(store, taken.name, taken.sha256, databaseUrl, options);
  } else {
    throw new PermanentError(
      `neither ${taken.pendingName} nor ${taken.name} is in ${store.location} after the dump was written`,
    );
  }
  await writeSidecar(store, taken.name, taken.sha256);
  return { ...checked, alreadyNamed };
}

/** After a failed check: the pending object, and whatever of the backup and its sidecar got written. */
export async function removeBackupLeftovers(
  store: BackupStore,
  taken: Pick<TakenBackup, 'name' | 'pendingName'>,
): Promise<void> {
  await Promise.all([store.remove(taken.pendingName), store.remove(taken.name), store.remove(sidecarName(taken.name))]);
}

/** A pending object older than this was left by a job that died between writing and renaming: nobody checks it. */
export const STALE_PENDING_MS = 86_400_000;

/** Removes the env's pending objects older than a day; returns their names. Younger ones may be a running job's. */
export async function removeStalePending(
  store: BackupStore,
  prefix: string,
  now: Date = new Date(),
): Promise<string[]> {
  const stale = (await store.list()).filter((o) => {
    const final = pendingFinalName(o.name);
    const ours = final !== undefined && parseBackupName(prefix, final) !== undefined;
    return ours && now.getTime() - o.modifiedAt.getTime() > STALE_PENDING_MS;
  });
  for (const object of stale) await store.remove(object.name);
  return stale.map((o) => o.name);
}
