// A PostgreSQL connection URL: taken apart the way libpq reads it, described for messages, and every spelling of its
// password, so that no message, log line or error ever repeats it. Every part of Lifeline that reads a database URL
// or hides its password comes here (shared, so that config and the logger can use it too).
import { messageOf } from '../errors.js';
import { createRedactor } from '../log.js';
import { quoteIdent } from './sql.js';

/** libpq's connect_timeout when the URL sets none. */
export const DEFAULT_CONNECT_TIMEOUT_S = 15;

/** A database URL taken apart. `database` is decoded; everything else as libpq would use it. */
export interface PgConnection {
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database: string;
  readonly sslmode?: string;
  readonly sslrootcert?: string;
  readonly sslcert?: string;
  readonly sslkey?: string;
  readonly connectTimeout?: number;
  /** libpq `options` (server settings as -c name=value). */
  readonly options?: string;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Parses postgres:// or postgresql:// URLs. The error never repeats the URL (it may hold a password). */
export function parsePostgresUrl(url: string): PgConnection {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('the database URL cannot be parsed (expected postgres://user:password@host:port/database)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`the database URL must start with postgres:// or postgresql://, not ${parsed.protocol}//`);
  }
  const q = parsed.searchParams;
  const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  const portText = parsed.port !== '' ? parsed.port : q.get('port');
  const port = portText ? Number(portText) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new Error('the database URL has an invalid port');
  }
  const user = parsed.username !== '' ? decode(parsed.username) : (q.get('user') ?? undefined);
  const path = parsed.pathname.replace(/^\//, '');
  const timeout = q.get('connect_timeout');
  return {
    host: hostname !== '' ? decode(hostname) : (q.get('host') ?? undefined),
    port,
    user,
    password: parsed.password !== '' ? decode(parsed.password) : (q.get('password') ?? undefined),
    database: path !== '' ? decode(path) : (q.get('dbname') ?? user ?? 'postgres'),
    sslmode: q.get('sslmode') ?? undefined,
    sslrootcert: q.get('sslrootcert') ?? undefined,
    sslcert: q.get('sslcert') ?? undefined,
    sslkey: q.get('sslkey') ?? undefined,
    connectTimeout: timeout && Number(timeout) > 0 ? Number(timeout) : undefined,
    options: q.get('options') ?? undefined,
  };
}

export function withDatabase(conn: PgConnection, database: string): PgConnection {
  return { ...conn, database };
}

/** `"app" on db.example.com:5432`: for messages. No user, no password. */
export function describeConnection(conn: PgConnection): string {
  const host = conn.host?.includes(':') ? `[${conn.host}]` : conn.host;
  const where = host ? `${host}:${conn.port ?? 5432}` : 'the local server';
  return `${quoteIdent(conn.database)} on ${where}`;
}

/** The URL's password as the server sees it (decoded), if it has one: for the logger's list of secrets. */
export function urlPassword(url: string): string | undefined {
  try {
    const password = new URL(url).password;
    return password === '' ? undefined : decodeURIComponent(password);
  } catch {
    return undefined;
  }
}

/** Every spelling of the URL's password that could show up in a message. */
export function secretsOf(url: string): string[] {
  const secrets = new Set<string>();
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') {
      secrets.add(parsed.password);
      try {
        secrets.add(decodeURIComponent(parsed.password));
      } catch {
        // a malformed %-escape: the raw spelling is already in the set
      }
    }
    const inQuery = parsed.searchParams.get('password');
    if (inQuery) secrets.add(inQuery);
  } catch {
    // not a URL: nothing to pick out, the generic URL-password pattern still applies
  }
  const decoded = [...secrets];
  for (const s of decoded) secrets.add(encodeURIComponent(s));
  return [...secrets].filter((s) => s.length > 0);
}

/** Scrubs the URL's password (every spelling) and anything shaped like scheme://user:password@ from a text. */
export function scrubberFor(url: string): (text: string) => string {
  return createRedactor(secretsOf(url));
}

/** The URL taken apart with its scrubber; a URL that cannot be parsed throws `fail`'s error (the message scrubbed). */
export function connectionOf(
  url: string,
  fail: (message: string) => Error,
): { conn: PgConnection; scrub: (text: string) => string } {
  const scrub = scrubberFor(url);
  try {
    return { conn: parsePostgresUrl(url), scrub };
  } catch (err) {
    throw fail(scrub(messageOf(err)));
  }
}

/** The same server and credentials, another database. */
export function urlWithDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** Any URL with its password shown as ***, for messages. */
export function maskedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}
