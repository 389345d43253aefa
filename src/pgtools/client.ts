// Direct connections (`pg`) to the servers recovery jobs work on, and how to read their errors.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { DEFAULT_CONNECT_TIMEOUT_S, type PgConnection } from '../shared/db/connection.js';

const TRANSIENT_NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EPIPE',
]);
const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01', '55P03']);
const TRANSIENT_MESSAGE = new RegExp(
  'Connection terminated|timeout expired|timeout exceeded|connection timeout|Query read timeout|ECONNREFUSED|ECONNRESET',
  'i',
);

function codeOf(err: unknown): unknown {
  return err instanceof Error && 'code' in err ? err.code : undefined;
}

/** For errors from `pg`: the server could not be reached or went away (retry later) rather than said no. */
export function isTransientPgError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = codeOf(err);
  if (typeof code === 'string') {
    if (TRANSIENT_NET_CODES.has(code) || TRANSIENT_SQLSTATES.has(code) || code.startsWith('08')) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return false;
  }
  return TRANSIENT_MESSAGE.test(err.message);
}

/** SQLSTATE of a `pg` error, if any. */
export function sqlState(err: unknown): string | undefined {
  const code = codeOf(err);
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function sslConfig(conn: PgConnection, mode: string): pg.ClientConfig['ssl'] {
  const read = (path: string | undefined): string | undefined => (path ? readFileSync(path, 'utf8') : undefined);
  const files = { ca: read(conn.sslrootcert), cert: read(conn.sslcert), key: read(conn.sslkey) };
  const present = Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined));
  if (mode === 'verify-full') return { rejectUnauthorized: true, ...present };
  if (mode === 'verify-ca') return { rejectUnauthorized: true, checkServerIdentity: () => undefined, ...present };
  return { rejectUnauthorized: false, ...present };
}

export interface ConnectOptions {
  /** Client-side bound on each query, in ms (0 = none). */
  readonly queryTimeoutMs?: number;
  readonly applicationName?: string;
}

async function attempt(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  // A connection lost while idle must not crash the process; the next query reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

/**
 * A `pg` client with libpq's sslmode meaning (not pg-connection-string's): disable = plain, require = encrypted
 * without verification, verify-ca/verify-full = verified, and prefer/allow/unset = try TLS, fall back to plain.
 */
export async function connectClient(conn: PgConnection, options: ConnectOptions = {}): Promise<pg.Client> {
  const base: pg.ClientConfig = {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database: conn.database,
    connectionTimeoutMillis: (conn.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_S) * 1000,
    query_timeout: options.queryTimeoutMs && options.queryTimeoutMs > 0 ? options.queryTimeoutMs : undefined,
    application_name: options.applicationName ?? 'lifeline-recovery',
    options: conn.options,
  };
  const mode = conn.sslmode ?? 'prefer';
  if (mode === 'disable') return attempt({ ...base, ssl: false });
  if (mode === 'require' || mode === 'verify-ca' || mode === 'verify-full') {
    return attempt({ ...base, ssl: sslConfig(conn, mode) });
  }
  // prefer / allow: TLS when the server offers it. Unix sockets never use TLS.
  if (conn.host?.startsWith('/')) return attempt({ ...base, ssl: false });
  try {
    return await attempt({ ...base, ssl: sslConfig(conn, mode) });
  } catch (err) {
    if (err instanceof Error && /does not support SSL/i.test(err.message)) return attempt({ ...base, ssl: false });
    throw err;
  }
}
