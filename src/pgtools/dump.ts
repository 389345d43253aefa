// pg_dump -Fc streamed into a backup store, hashed on the way.
import { pipeline } from 'node:stream/promises';
import { assertPlainName, type BackupStore } from '../adapters/backup-store/port.js';
import { connectionOf, describeConnection, type PgConnection } from '../shared/db/connection.js';
import { PermanentError, TransientError, messageOf } from '../shared/errors.js';
import { AbortError, throwIfAborted } from './errors.js';
import { meter } from './meters.js';
import { runTool, toolConnectionArgs, ToolFailedError, type PgToolOptions, type RunningTool } from './process.js';

export interface Dumped {
  readonly size: number;
  readonly sha256: string;
}

/**
 * pg_dump -Fc of `url` streamed into `store` under `name`, hashed on the way. The object appears only when pg_dump
 * exited 0 (a failed or cancelled dump never lands under a backup name). Memory stays flat whatever the size.
 */
export async function dumpToStore(
  url: string,
  store: BackupStore,
  name: string,
  signal?: AbortSignal,
  tools?: PgToolOptions,
): Promise<Dumped> {
  const { conn, scrub } = connectionOf(url, (message) => new PermanentError(message));
  return dumpDatabase(conn, scrub, store, name, signal, tools);
}

/** dumpToStore on a connection already taken apart; `extraArgs` go to pg_dump (`--snapshot=...`, say). */
export async function dumpDatabase(
  conn: PgConnection,
  scrub: (text: string) => string,
  store: BackupStore,
  name: string,
  signal: AbortSignal | undefined,
  tools: PgToolOptions | undefined,
  extraArgs: readonly string[] = [],
): Promise<Dumped> {
  assertPlainName(name);
  throwIfAborted(signal, 'the backup');
  const args = ['--format=custom', '--lock-wait-timeout=120000', ...extraArgs, ...toolConnectionArgs(conn)];
  const dump = runTool('pg_dump', args, { conn, tools, signal, stdout: 'pipe', scrub });
  const stdout = dump.stdout;
  if (!stdout) throw new Error('pg_dump started without a stdout pipe');
  const hashing = meter(dump.done);
  const feeding = pipeline(stdout, hashing);
  feeding.catch(() => undefined);
  let exited = false;
  dump.done.then(
    () => (exited = true),
    () => (exited = true),
  );
  let stored: { size: number };
  try {
    stored = await store.write(name, hashing);
  } catch (err) {
    throw await dumpFailure(dump, !exited, err, `pg_dump of ${describeConnection(conn)}`, store.location, scrub);
  }
  await dump.done;
  const size = hashing.bytes();
  if (stored.size !== size) throw new Error(`${name}: the store holds ${stored.size} bytes but pg_dump wrote ${size}`);
  return { size, sha256: hashing.sha256() };
}

/** Why the store's write failed: pg_dump failed first (its stderr tells why), or the store failed under a running
 * pg_dump (which is stopped). */
async function dumpFailure(
  dump: RunningTool,
  running: boolean,
  storeError: unknown,
  what: string,
  location: string,
  scrub: (text: string) => string,
): Promise<Error> {
  if (running) dump.kill();
  const own = await dump.done.then(
    () => undefined,
    (e: unknown) => e,
  );
  const cause = own instanceof AbortError || !running ? (own ?? storeError) : storeError;
  if (cause instanceof AbortError) return cause;
  const message = scrub(messageOf(cause));
  if (cause instanceof ToolFailedError) {
    return cause.transient
      ? new TransientError(`${what} failed: ${message}`)
      : new PermanentError(`${what} failed: ${message}`);
  }
  // The store's own error (no database password can be in it) stays attached for the logs.
  return new Error(`${what} could not be written to ${location}: ${message}`, { cause: storeError });
}
