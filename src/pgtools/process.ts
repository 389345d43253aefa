// Running the PostgreSQL client programs (pg_dump, pg_restore, psql) as child processes.
//
// Rules kept here so callers cannot get them wrong:
// - programs run through spawn with an argument array, never a shell;
// - the password never reaches a command line (ps shows those): pieces go in --host/--port/--username/--dbname and
//   the password only in the child's own PGPASSWORD;
// - the child gets a small, explicit environment (not ours: it holds Slack and AWS secrets it has no use for);
// - stderr is kept bounded (the last 4 KB) and scrubbed of the password before it is shown anywhere;
// - an abort kills the program's whole process group (pg_restore -j forks workers).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { DEFAULT_CONNECT_TIMEOUT_S, type PgConnection } from '../shared/db/connection.js';
import { AbortError } from './errors.js';

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

const DEFAULT_TOOL_PATH = '/usr/local/bin:/usr/bin:/bin';
const STDERR_LIMIT = 4096;
const KILL_GRACE_MS = 3_000;

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
    PGCONNECT_TIMEOUT: String(conn.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_S),
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

const PERMANENT_TEXT = new RegExp(
  [
    'password authentication failed',
    'no pg_hba\\.conf entry',
    'role "[^"]*" does not exist',
    'database "[^"]*" does not exist',
    'permission denied',
    'server version mismatch',
    'must be (owner|superuser|a member)',
  ].join('|'),
  'i',
);
const TRANSIENT_TEXT = new RegExp(
  [
    'could not connect',
    'connection refused',
    'connection to server .* failed',
    'server closed the connection unexpectedly',
    'could not translate host name',
    'timeout expired',
    'the database system is (starting up|shutting down|in recovery mode|not yet accepting)',
    'too many clients',
    'remaining connection slots',
    'terminating connection due to administrator command',
    'no route to host',
    'network is unreachable',
    'SSL SYSCALL error',
    'could not receive data from server',
    'could not send data to server',
    'could not obtain lock',
  ].join('|'),
  'i',
);

function isTransientText(text: string): boolean {
  return !PERMANENT_TEXT.test(text) && TRANSIENT_TEXT.test(text);
}

/** The error for a program that could not start at all (not installed, say). */
function startFailure(tool: PgTool, err: Error, scrub: (text: string) => string): ToolFailedError {
  const missing = 'code' in err && err.code === 'ENOENT';
  const text = missing
    ? `${tool} is not installed (not found on the tool PATH)`
    : `${tool} could not start: ${scrub(err.message)}`;
  return new ToolFailedError(tool, null, null, '', text);
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

/** The last STDERR_LIMIT bytes the child wrote to stderr. */
function stderrTail(child: ChildProcess): () => string {
  let tail = Buffer.alloc(0);
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > STDERR_LIMIT) tail = tail.subarray(tail.length - STDERR_LIMIT);
  });
  return () => tail.toString('utf8');
}

/** Signals the child's whole process group: `kill` asks, and insists after a grace period. */
function groupKiller(child: ChildProcess): { kill(): void; exited(sig: NodeJS.Signals | null): void } {
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
  return {
    kill: () => {
      if (exited || killTimer) return;
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    },
    exited: (sig) => {
      exited = true;
      if (killTimer) clearTimeout(killTimer);
      // pg_restore's workers may outlive a killed leader for a moment; make sure none is left behind.
      if (sig === null || child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is empty
      }
    },
  };
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
  const stderr = stderrTail(child);
  const group = groupKiller(child);
  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
    group.kill();
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });

  const done = new Promise<void>((resolve, reject) => {
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
    });
    child.on('close', (code, sig) => {
      group.exited(sig);
      signal?.removeEventListener('abort', onAbort);
      if (aborted) reject(new AbortError(`${tool} was cancelled`));
      else if (spawnError) reject(startFailure(tool, spawnError, scrub));
      else if (code === 0) resolve();
      else reject(exitFailure(tool, code, sig, scrub(stderr()).trim()));
    });
  });
  // Callers attach their handlers later; never let an early rejection count as unhandled.
  done.catch(() => undefined);

  return { child, stdin: child.stdin, stdout: child.stdout, done, kill: group.kill };
}

function exitFailure(tool: PgTool, code: number | null, sig: NodeJS.Signals | null, stderr: string): ToolFailedError {
  const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
  return new ToolFailedError(tool, code, sig, stderr, `${tool} ${how}${stderr ? `: ${stderr}` : ''}`);
}

export interface ToolVersion {
  readonly major: number;
  readonly minor: number;
  readonly text: string;
}

const versions = new Map<string, Promise<ToolVersion>>();

function askVersion(tool: PgTool, tools: PgToolOptions | undefined): Promise<ToolVersion> {
  return new Promise<ToolVersion>((resolve, reject) => {
    const child = spawn(executable(tool, tools), ['--version'], {
      env: { PATH: tools?.path ?? DEFAULT_TOOL_PATH, LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('error', (err) => reject(startFailure(tool, err, (text) => text)));
    child.on('close', (code) => {
      const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(out);
      if (code !== 0 || !match) {
        reject(new ToolFailedError(tool, code, null, '', `${tool} --version did not answer as expected`));
        return;
      }
      resolve({ major: Number(match[1]), minor: Number(match[2] ?? 0), text: out.trim() });
    });
  });
}

/** `pg_dump --version` and friends, asked once per process. */
export function toolVersion(tool: PgTool, tools?: PgToolOptions): Promise<ToolVersion> {
  const key = `${tools?.binDir ?? ''}|${tools?.path ?? ''}|${tool}`;
  let found = versions.get(key);
  if (!found) {
    found = askVersion(tool, tools);
    found.catch(() => versions.delete(key));
    versions.set(key, found);
  }
  return found;
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
