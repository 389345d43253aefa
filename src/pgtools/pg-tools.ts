// The PostgreSQL client programs (pg_dump, pg_restore, psql) and direct connections, for recovery jobs.
//
// Rules kept here so callers cannot get them wrong:
// - programs run through spawn with an argument array, never a shell;
// - the password never reaches a command line (ps shows those): pieces go in --host/--port/--username/--dbname and
//   the password only in the child's own PGPASSWORD;
// - the child gets a small, explicit environment (not ours: it holds Slack and AWS secrets it has no use for);
// - stderr is kept bounded (the last 4 KB) and scrubbed of the password before it is shown anywhere;
// - an abort kills the program's whole process group (pg_restore -j forks workers).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import pg from 'pg';
import { createRedactor } from '../shared/log.js';

export type PgTool = 'pg_dump' | 'pg_restore' | 'psql';

/** Where the programs live and what else their environment carries. The defaults suit Debian/Ubuntu images. */
export interface PgToolOptions {
  /** Directory of pg_dump/pg_restore/psql; unset = looked up on `path`. */
  readonly binDir?: string;
  /** PATH for the child; default /usr/local/bin:/usr/bin:/bin. */
  readonly path?: string;
  /** Extra environment for the child (PGSSLROOTCERT, say). Never put a password here. */
  readonly env?: Readonly<Record<string, string>>;
}

export const DEFAULT_TOOL_PATH = '/usr/local/bin:/usr/bin:/bin';
const STDERR_LIMIT = 4096;
const KILL_GRACE_MS = 3_000;
const CONNECT_TIMEOUT_S = 15;

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
  const decode = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  const host = hostname !== '' ? decode(hostname) : (q.get('host') ?? undefined);
  const portText = parsed.port !== '' ? parsed.port : q.get('port');
  const port = portText ? Number(portText) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new Error('the database URL has an invalid port');
  const user = parsed.username !== '' ? decode(parsed.username) : (q.get('user') ?? undefined);
  const password = parsed.password !== '' ? decode(parsed.password) : (q.get('password') ?? undefined);
  const path = parsed.pathname.replace(/^\//, '');
  const database = path !== '' ? decode(path) : (q.get('dbname') ?? user ?? 'postgres');
  const timeout = q.get('connect_timeout');
  return {
    host,
    port,
    user,
    password,
    database,
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
  const where = conn.host ? `${conn.host.includes(':') ? `[${conn.host}]` : conn.host}:${conn.port ?? 5432}` : 'the local server';
  return `${quoteIdent(conn.database)} on ${where}`;
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

/** A SQL identifier, always double-quoted: database names from URLs may hold capitals, dashes or quotes. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A SQL string literal (standard_conforming_strings on, which every supported server has). */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** The --dbname value: a plain name, unless libpq would read it as a connection string (then dbname='...'). */
function dbnameArg(database: string): string {
  if (database.includes('=') || /^postgres(ql)?:\/\//.test(database)) {
    return `dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  }
  return database;
}

/** Connection arguments for pg_dump/pg_restore/psql. Never the password. */
export function toolConnectionArgs(conn: PgConnection): string[] {
  const args: string[] = [];
  if (conn.host) args.push('--host', conn.host);
  if (conn.port !== undefined) args.push('--port', String(conn.port));
  if (conn.user) args.push('--username', conn.user);
  args.push('--no-password', '--dbname', dbnameArg(conn.database));
  return args;
}

/** The child's whole environment: PATH, a fixed locale, and libpq settings (password included) for this connection. */
export function toolEnv(conn: PgConnection, tools: PgToolOptions = {}, serverOptions?: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: tools.path ?? DEFAULT_TOOL_PATH,
    LC_ALL: 'C',
    LANG: 'C',
    PGCONNECT_TIMEOUT: String(conn.connectTimeout ?? CONNECT_TIMEOUT_S),
    ...tools.env,
  };
  if (conn.password !== undefined) env.PGPASSWORD = conn.password;
  if (conn.sslmode) env.PGSSLMODE = conn.sslmode;
  if (conn.sslrootcert) env.PGSSLROOTCERT = conn.sslrootcert;
  if (conn.sslcert) env.PGSSLCERT = conn.sslcert;
  if (conn.sslkey) env.PGSSLKEY = conn.sslkey;
  const options = [conn.options, serverOptions].filter((o): o is string => Boolean(o)).join(' ');
  if (options !== '') env.PGOPTIONS = options;
  return env;
}

/** Cancellation: the error every step throws when its AbortSignal fires. */
export class AbortError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'AbortError';
  }
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortError(`${what} was cancelled`);
}

/** A client program that exited non-zero (or could not start). `stderr` is scrubbed and at most 4 KB. */
export class ToolFailedError extends Error {
  constructor(
    readonly tool: PgTool,
    readonly exitCode: number | null,
    readonly exitSignal: NodeJS.Signals | null,
    readonly stderr: string,
    message: string,
  ) {
    super(message);
    this.name = 'ToolFailedError';
  }

  /** Worth trying again later: the server was unreachable or went away, not a problem with the data or rights. */
  get transient(): boolean {
    return isTransientText(this.stderr);
  }
}

const PERMANENT_TEXT =
  /password authentication failed|no pg_hba\.conf entry|role "[^"]*" does not exist|database "[^"]*" does not exist|permission denied|server version mismatch|must be (owner|superuser|a member)/i;
const TRANSIENT_TEXT =
  /could not connect|connection refused|connection to server .* failed|server closed the connection unexpectedly|could not translate host name|timeout expired|the database system is (starting up|shutting down|in recovery mode|not yet accepting)|too many clients|remaining connection slots|terminating connection due to administrator command|no route to host|network is unreachable|SSL SYSCALL error|could not receive data from server|could not send data to server|could not obtain lock/i;

export function isTransientText(text: string): boolean {
  return !PERMANENT_TEXT.test(text) && TRANSIENT_TEXT.test(text);
}

const TRANSIENT_NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'EPIPE']);
const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01', '55P03']);

/** For errors from `pg`: the server could not be reached or went away (retry later) rather than said no. */
export function isTransientPgError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (TRANSIENT_NET_CODES.has(code) || TRANSIENT_SQLSTATES.has(code) || code.startsWith('08')) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return false;
  }
  return /Connection terminated|timeout expired|timeout exceeded|connection timeout|Query read timeout|ECONNREFUSED|ECONNRESET/i.test(err.message);
}

/** SQLSTATE of a `pg` error, if any. */
export function sqlState(err: unknown): string | undefined {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export interface RunningTool {
  readonly child: ChildProcess;
  /** Present when started with stdin: 'pipe'. */
  readonly stdin: Writable | null;
  /** Present when started with stdout: 'pipe'; the caller must consume it. */
  readonly stdout: Readable | null;
  /** Resolves on exit 0; rejects with ToolFailedError, or AbortError when the signal fired. */
  readonly done: Promise<void>;
  /** Ends the program (and its workers) now: SIGTERM to the group, SIGKILL after a grace period. */
  kill(): void;
}

export interface RunToolOptions {
  readonly conn: PgConnection;
  readonly tools?: PgToolOptions;
  readonly signal?: AbortSignal;
  readonly stdin?: 'pipe' | 'ignore';
  readonly stdout?: 'pipe' | 'ignore';
  /** Extra server settings (-c name=value ...) for the program's sessions, via PGOPTIONS. */
  readonly serverOptions?: string;
  readonly scrub: (text: string) => string;
}

function executable(tool: PgTool, tools: PgToolOptions | undefined): string {
  return tools?.binDir ? join(tools.binDir, tool) : tool;
}

/** Starts a client program with `args` (connection arguments included by the caller) and watches it. */
export function runTool(tool: PgTool, args: readonly string[], options: RunToolOptions): RunningTool {
  const { signal, scrub } = options;
  const child = spawn(executable(tool, options.tools), [...args], {
    env: toolEnv(options.conn, options.tools, options.serverOptions),
    stdio: [options.stdin ?? 'ignore', options.stdout ?? 'ignore', 'pipe'],
    // Its own process group, so a kill reaches pg_restore's forked workers too.
    detached: true,
  });

  let tail = Buffer.alloc(0);
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > STDERR_LIMIT) tail = tail.subarray(tail.length - STDERR_LIMIT);
  });

  let aborted = false;
  let exited = false;
  let killTimer: NodeJS.Timeout | undefined;
  const signalGroup = (sig: NodeJS.Signals): void => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      try {
        child.kill(sig);
      } catch {
        // already gone
      }
    }
  };
  const kill = (): void => {
    if (exited || killTimer) return;
    signalGroup('SIGTERM');
    killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS);
    killTimer.unref();
  };
  const onAbort = (): void => {
    aborted = true;
    kill();
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });

  const done = new Promise<void>((resolve, reject) => {
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
    });
    child.on('close', (code, sig) => {
      exited = true;
      if (killTimer) clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      // pg_restore's workers may outlive a killed leader for a moment; make sure none is left behind.
      if (sig !== null && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the group is empty
        }
      }
      if (aborted) {
        reject(new AbortError(`${tool} was cancelled`));
        return;
      }
      if (spawnError) {
        const missing = (spawnError as NodeJS.ErrnoException).code === 'ENOENT';
        const text = missing ? `${tool} is not installed (not found on the tool PATH)` : `${tool} could not start: ${scrub(spawnError.message)}`;
        reject(new ToolFailedError(tool, null, null, '', text));
        return;
      }
      if (code === 0) {
        resolve();
        return;
      }
      const stderr = scrub(tail.toString('utf8')).trim();
      const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
      reject(new ToolFailedError(tool, code, sig, stderr, `${tool} ${how}${stderr ? `: ${stderr}` : ''}`));
    });
  });
  // Callers attach their handlers later; never let an early rejection count as unhandled.
  done.catch(() => undefined);

  return { child, stdin: child.stdin, stdout: child.stdout, done, kill };
}

/** Runs a program to completion, discarding stdout. */
export async function runToCompletion(tool: PgTool, args: readonly string[], options: RunToolOptions): Promise<void> {
  await runTool(tool, args, { ...options, stdout: 'ignore', stdin: 'ignore' }).done;
}

export interface ToolVersion {
  readonly major: number;
  readonly minor: number;
  readonly text: string;
}

const versions = new Map<string, Promise<ToolVersion>>();

/** `pg_dump --version` and friends, asked once per process. */
export function toolVersion(tool: PgTool, tools?: PgToolOptions): Promise<ToolVersion> {
  const key = `${tools?.binDir ?? ''}|${tools?.path ?? ''}|${tool}`;
  let found = versions.get(key);
  if (!found) {
    found = new Promise<ToolVersion>((resolve, reject) => {
      const child = spawn(executable(tool, tools), ['--version'], {
        env: { PATH: tools?.path ?? DEFAULT_TOOL_PATH, LC_ALL: 'C' },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
      });
      child.on('error', (err) =>
        reject(
          new ToolFailedError(
            tool,
            null,
            null,
            '',
            (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${tool} is not installed (not found on the tool PATH)` : `${tool} could not start: ${err.message}`,
          ),
        ),
      );
      child.on('close', (code) => {
        const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(out);
        if (code !== 0 || !match) {
          reject(new ToolFailedError(tool, code, null, '', `${tool} --version did not answer as expected`));
          return;
        }
        resolve({ major: Number(match[1]), minor: Number(match[2] ?? 0), text: out.trim() });
      });
    });
    found.catch(() => versions.delete(key));
    versions.set(key, found);
  }
  return found;
}

/**
 * The first minor release of each major whose psql has a restricted mode a backup cannot leave: \restrict came in the
 * August 2025 releases (CVE-2025-8714), but until the August 2026 ones psql still ran backquoted shell commands in
 * \unrestrict's argument while restricted (CVE-2026-18408, fixed in 15.19 per Debian's changelog; the other branches
 * were released with it on the same day, in step since 14.23/15.18/16.14/17.10/18.4 in May 2026). 13 reached its
 * end of life before the second fix; 19 and newer have both.
 */
const SOUND_RESTRICT_SINCE: Readonly<Record<number, number>> = { 14: 24, 15: 19, 16: 15, 17: 11, 18: 5 };
const FIRST_MAJOR_AFTER_THE_FIX = 19;

/** psql's restricted mode (\restrict) is there and holds: a plain-SQL backup can then never make psql run code. */
export function psqlHasRestrict(version: ToolVersion): boolean {
  if (version.major >= FIRST_MAJOR_AFTER_THE_FIX) return true;
  const minor = SOUND_RESTRICT_SINCE[version.major];
  return minor !== undefined && version.minor >= minor;
}

/** The psql a plain-SQL restore needs, for a refusal's message: the fixed release of `major`, or the list of them. */
export function psqlRestrictNeeded(major: number): string {
  const minor = SOUND_RESTRICT_SINCE[major];
  if (minor !== undefined) return `psql ${major}.${minor} or newer`;
  const all = Object.entries(SOUND_RESTRICT_SINCE).map(([m, n]) => `${m}.${n}`);
  return `psql ${all.join(', ')} (or newer in the same major) or ${FIRST_MAJOR_AFTER_THE_FIX}+`;
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
    connectionTimeoutMillis: (conn.connectTimeout ?? CONNECT_TIMEOUT_S) * 1000,
    query_timeout: options.queryTimeoutMs && options.queryTimeoutMs > 0 ? options.queryTimeoutMs : undefined,
    application_name: options.applicationName ?? 'lifeline-recovery',
    options: conn.options,
  };
  const mode = conn.sslmode ?? 'prefer';
  const attempt = async (ssl: pg.ClientConfig['ssl']): Promise<pg.Client> => {
    const client = new pg.Client({ ...base, ssl });
    // A connection lost while idle must not crash the process; the next query reports it.
    client.on('error', () => undefined);
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  };
  if (mode === 'disable') return attempt(false);
  if (mode === 'require' || mode === 'verify-ca' || mode === 'verify-full') return attempt(sslConfig(conn, mode));
  // prefer / allow: TLS when the server offers it. Unix sockets never use TLS.
  if (conn.host?.startsWith('/')) return attempt(false);
  try {
    return await attempt(sslConfig(conn, mode));
  } catch (err) {
    if (err instanceof Error && /does not support SSL/i.test(err.message)) return attempt(false);
    throw err;
  }
}

/** Counts the entries `pg_restore --list` prints on `stdout` (comment lines left out); read the count at exit. */
export function countListEntries(stdout: Readable | null): () => number {
  let entries = 0;
  let partialLine = '';
  stdout?.on('data', (chunk: Buffer) => {
    const lines = (partialLine + chunk.toString('utf8')).split('\n');
    partialLine = lines.pop() ?? '';
    entries += lines.filter((l) => l.trim() !== '' && !l.startsWith(';')).length;
  });
  return () => entries;
}
