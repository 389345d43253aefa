// Two databases exchange names in one transaction: how a restored database replaces its target, and how the
// previous one is put back.
import type { PgConnection } from '../shared/db/connection.js';
import { quoteIdent } from '../shared/db/sql.js';
import { sqlState } from './client.js';
import { AbortError, throwIfAborted } from './errors.js';
import { endSessions, withMaintenance, type Maintenance } from './maintenance.js';

const ATTEMPTS = 3;

/** While it is watched, an abort cancels the statement `m` is running (pg_cancel_backend from another session). */
function cancelStatementsOnAbort(server: PgConnection, m: Maintenance, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => undefined;
  const cancel = (): void => {
    void withMaintenance(server, (other) => other.client.query('SELECT pg_cancel_backend($1)', [m.pid])).catch(
      () => undefined,
    );
  };
  signal.addEventListener('abort', cancel, { once: true });
  return () => signal.removeEventListener('abort', cancel);
}

async function renameAll(
  m: Maintenance,
  statements: readonly string[],
  signal: AbortSignal | undefined,
): Promise<void> {
  await m.client.query('BEGIN');
  await m.client.query("SET LOCAL lock_timeout = '15s'");
  for (const sql of statements) {
    throwIfAborted(signal, 'the swap');
    await m.client.query(sql);
  }
  // The last moment the swap can still be stopped with certainty that nothing changed.
  throwIfAborted(signal, 'the swap');
  await m.client.query('COMMIT');
}

/**
 * Renames `from` → `aside` and `into` → `from`, and opens both to connections, in ONE transaction, so a crash at any
 * point leaves the name `from` connectable: before COMMIT everything rolls back (nothing was closed), after it both
 * flags are set. Nothing is closed to connections beforehand either: once the first rename holds its lock, a new
 * session on `from` waits for the COMMIT and then finds the restored database under that name; one that slipped in
 * between ending the sessions and the rename makes it fail with 55006 (in use), and it is tried again.
 *
 * The signal stops it only before COMMIT is sent (a waiting statement is cancelled from another session, opened
 * like `m` to `server`'s server): it then throws AbortError, and that means the transaction rolled back and nothing
 * was renamed. Returns how many other sessions were ended.
 */
export async function exchange(
  server: PgConnection,
  m: Maintenance,
  names: { readonly from: string; readonly aside: string; readonly into: string },
  signal: AbortSignal | undefined,
): Promise<number> {
  const { from, aside, into } = names;
  const statements = [
    `ALTER DATABASE ${quoteIdent(from)} RENAME TO ${quoteIdent(aside)}`,
    `ALTER DATABASE ${quoteIdent(aside)} WITH ALLOW_CONNECTIONS true`,
    `ALTER DATABASE ${quoteIdent(into)} RENAME TO ${quoteIdent(from)}`,
    `ALTER DATABASE ${quoteIdent(from)} WITH ALLOW_CONNECTIONS true`,
  ];
  let ended = 0;
  for (let attempt = 1; ; attempt += 1) {
    throwIfAborted(signal, 'the swap');
    ended += await endSessions(m, from);
    ended += await endSessions(m, into);
    const stopWatching = cancelStatementsOnAbort(server, m, signal);
    try {
      await renameAll(m, statements, signal);
      return ended;
    } catch (err) {
      await m.client.query('ROLLBACK').catch(() => undefined);
      // The server answered with an error (or COMMIT was never sent): the transaction rolled back.
      if (err instanceof AbortError || (signal?.aborted && sqlState(err) !== undefined)) {
        throw new AbortError('the swap was stopped before it committed; nothing was renamed');
      }
      // 55006: still in use (a session reconnected before the rename, or one we may not end). Try again briefly.
      if (sqlState(err) === '55006' && attempt < ATTEMPTS) continue;
      throw err;
    } finally {
      stopWatching();
    }
  }
}
