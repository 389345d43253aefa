// The verify queries: each on its own, read-only, bounded in time, and reported with its first value.
import type pg from 'pg';
import { connectionOf, describeConnection, withDatabase, type PgConnection } from '../shared/db/connection.js';
import { TransientError, messageOf } from '../shared/errors.js';
import { codeSpan } from '../shared/text.js';
import { connectClient, isTransientPgError } from './client.js';
import { abortable, AbortError, RestoreFailedError, throwIfAborted } from './errors.js';

export interface VerifyResult {
  readonly query: string;
  readonly value: string;
}

/** verify found a query that failed; `results` holds every query's outcome (failed ones as `error: ...`). */
export class VerifyFailedError extends RestoreFailedError {
  constructor(
    message: string,
    readonly results: readonly VerifyResult[],
  ) {
    super(message);
    this.name = 'VerifyFailedError';
  }
}

/** Per verify query, on the server (statement_timeout) and on the client. */
const VERIFY_TIMEOUT_MS = 30_000;

function show(value: unknown): string {
  let text: string;
  if (value === null || value === undefined) text = 'NULL';
  else if (value instanceof Date) text = Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  else if (Buffer.isBuffer(value)) text = `\\x${value.toString('hex')}`;
  else if (typeof value === 'object') text = JSON.stringify(value);
  else text = String(value);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

async function connectToVerify(conn: PgConnection, scrub: (text: string) => string): Promise<pg.Client> {
  try {
    return await connectClient(conn, { queryTimeoutMs: VERIFY_TIMEOUT_MS + 5_000 });
  } catch (err) {
    const message = `cannot reach ${describeConnection(conn)} to verify it: ${scrub(messageOf(err))}`;
    throw isTransientPgError(err) ? new TransientError(message) : new RestoreFailedError(message);
  }
}

/** One query in its own read-only transaction; its first row's first column, shown. */
async function firstValue(client: pg.Client, query: string, signal: AbortSignal | undefined): Promise<string> {
  await client.query('BEGIN TRANSACTION READ ONLY');
  await client.query(`SET LOCAL statement_timeout = ${VERIFY_TIMEOUT_MS}`);
  // A stop (cancel, deadline, shutdown) must not wait for a slow query: closing the session ends it.
  const running = client.query<unknown[]>({ text: query, rowMode: 'array' });
  const result = await abortable(signal, 'verification', running, () => void client.end().catch(() => undefined));
  await client.query('ROLLBACK');
  const first = result.rows[0];
  return first === undefined ? '(no rows)' : show(first[0]);
}

/** Runs queries on one database, each in its own read-only transaction with a statement timeout. A query that
 * fails is reported as `error: ...` (and counted); losing the server throws (TransientError). */
export async function runQueries(
  conn: PgConnection,
  queries: readonly string[],
  scrub: (text: string) => string,
  signal: AbortSignal | undefined,
): Promise<{ results: VerifyResult[]; failures: number }> {
  const client = await connectToVerify(conn, scrub);
  const results: VerifyResult[] = [];
  let failures = 0;
  try {
    for (const query of queries) {
      throwIfAborted(signal, 'verification');
      try {
        results.push({ query, value: await firstValue(client, query, signal) });
      } catch (err) {
        if (err instanceof AbortError) throw err;
        if (isTransientPgError(err)) {
          throw new TransientError(`lost ${describeConnection(conn)} while verifying: ${scrub(messageOf(err))}`);
        }
        await client.query('ROLLBACK').catch(() => undefined);
        failures += 1;
        results.push({ query, value: `error: ${scrub(messageOf(err))}` });
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return { results, failures };
}

/**
 * The verify queries against any database on the target's server (a drill's scratch database, say: pass
 * state.freshDb), with the target's credentials. Failed queries come back as `error: ...`, never thrown.
 */
export async function verifyDatabase(
  targetUrl: string,
  database: string,
  queries: readonly string[],
  signal?: AbortSignal,
): Promise<{ results: VerifyResult[]; failures: number }> {
  const { conn, scrub } = connectionOf(targetUrl, (message) => new RestoreFailedError(message));
  return runQueries(withDatabase(conn, database), queries, scrub, signal);
}

/**
 * "`SELECT COUNT(*) FROM users` → `42`": the query and its value marked as code, so that no message formats the
 * query (`COUNT(*)`) or turns a value from the database into markup.
 */
export function verifiedLine(result: VerifyResult): string {
  return `${codeSpan(result.query)} → ${codeSpan(result.value)}`;
}
