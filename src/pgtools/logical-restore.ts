// Logical restore of an env's database from a backup in its store, one resumable step at a time.
//
// The job runner calls preflight → restoreIntoFresh → swap → verify → analyzeTarget → safetyBackup → cleanup
// (putBack instead when verify fails), persisting the JSON `state` each step returns. A worker that dies mid-step leaves the
// job resumable: every step may be called again with the last state it returned, and reads the server's own truth
// (which databases exist) rather than trusting that the previous attempt got as far as it meant to.
//
// The target is only ever replaced by a rename inside one transaction (swap), after the backup was restored
// completely into a fresh database beside it. Until then the target is untouched; after it, the previous
// database stays beside it (<target>_old_<run>), so putBack can return it, until its safety copy is in the store.
import { formatSize } from '../shared/format.js';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type pg from 'pg';
import { assertPlainName } from '../adapters/backup-store/names.js';
import { NotFoundError, type BackupStore } from '../adapters/backup-store/port.js';
import { publishBackup, removeBackupLeftovers, takeBackupOf, type TakenBackup } from '../domain/backups/take.js';
import { PermanentError, TransientError } from '../shared/errors.js';
import {
  AbortError,
  connectClient,
  countListEntries,
  describeConnection,
  isTransientPgError,
  parsePostgresUrl,
  psqlHasRestrict,
  psqlRestrictNeeded,
  quoteIdent,
  quoteLiteral,
  runTool,
  scrubberFor,
  sqlState,
  throwIfAborted,
  toolConnectionArgs,
  ToolFailedError,
  toolVersion,
  withDatabase,
  type PgConnection,
  type PgToolOptions,
  type ToolVersion,
} from './pg-tools.js';
import { codeSpan } from '../shared/text.js';
import { PlainSqlClassifier, PlainSqlRefusal, restrictedFeed, type PlainSqlSummary } from './plain-sql-guard.js';

export { AbortError } from './pg-tools.js';
export type { PgToolOptions } from './pg-tools.js';

export interface LogicalRestorePlan {
  /** The env's database.url (may contain a password; it never appears in a detail or error). */
  readonly targetUrl: string;
  readonly store: BackupStore;
  /** Validated against the env prefix by the caller (names.ts). */
  readonly backupName: string;
  /**
   * The catalogue's SHA-256 of a backup Lifeline made: preflight refuses a file that no longer matches it. Undefined
   * for a backup made elsewhere, whose checksum nobody recorded (the plan says it cannot be checked).
   */
  readonly expectedSha256?: string;
  readonly format: 'custom' | 'sql.gz';
  /** <prefix>_pre-restore_<YYYYMMDD>_<HHMMSS>.dump */
  readonly safetyCopyName: string;
  /** SQL queries; each result's first row's first column is reported. */
  readonly verify: readonly string[];
  /** For downloads and temp files: each run works in its own sub-folder and cleanup removes it. */
  readonly workDir: string;
  /** pg_restore -j */
  readonly parallelJobs: number;
  /** Aborting kills the running external program and fails the step with AbortError. */
  readonly signal?: AbortSignal;
  /** Where pg_dump/pg_restore/psql live; the defaults suit Debian images. */
  readonly tools?: PgToolOptions;
}

/** Everything a step needs from the ones before it. JSON-serialisable; `{}` is the state before preflight. */
export type RestoreState = {
  readonly version?: 1;
  /** <UTC yyyymmddhhmmss>_<4 hex>: names this run's databases and work folder. */
  readonly runId?: string;
  /** The target's database name when the run began (a state for another target is refused). */
  readonly targetDb?: string;
  /** Names derived from runId, kept for the reader (steps recompute them, never trust these). */
  readonly freshDb?: string;
  readonly oldDb?: string;
  readonly localDir?: string;
  readonly localFile?: string;
  readonly localSize?: number;
  /** Of the local file: hashed on the way for a download, read once more for a linked file with an expected hash. */
  readonly localSha256?: string;
  /** The local file passed the integrity check. */
  readonly localChecked?: boolean;
  /** In the store under its name, checked, with its sidecar: a backup like the ones the backup job takes. */
  readonly safetyCopy?: {
    readonly name: string;
    readonly size: number;
    readonly sha256: string;
    /** schema.table → rows of the previous database, counted in its dump's own snapshot. */
    readonly tableRows: Readonly<Record<string, number>>;
    readonly durationMs: number;
  };
  /** The backup is completely restored into freshDb. */
  readonly restored?: boolean;
  /** freshDb now carries the target's name; the previous target is oldDb. */
  readonly swapped?: boolean;
  /** verify passed on the swapped-in database. cleanup drops oldDb only then. */
  readonly verified?: boolean;
  readonly putBack?: boolean;
  readonly cleanedUp?: boolean;
};

export type StepOutcome = { state: RestoreState; detail: string };

export interface VerifyResult {
  readonly query: string;
  readonly value: string;
}

/** A failure retrying cannot fix: the backup is missing or corrupt, pg_restore refused it, rights are missing. */
export class RestoreFailedError extends PermanentError {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreFailedError';
  }
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
export const VERIFY_TIMEOUT_MS = 30_000;
/** Server settings for the restore's own sessions. Asynchronous commit is safe here: the fresh database is only
 * used after swap, whose own (synchronous) commit flushes every WAL record before it. */
const RESTORE_SERVER_OPTIONS = '-c synchronous_commit=off';
const MAINTENANCE_QUERY_TIMEOUT_MS = 10 * 60_000;
/** Reading and inflating a .sql.gz in big pieces: Node's defaults (64 KB reads, 16 KB inflated chunks) were measured
 * here at 2.3x the time of 1 MB reads and 256 KB chunks for the same 300 MB, slower than the gunzip program. */
const INFLATE_READ_BYTES = 1024 * 1024;
const INFLATE_CHUNK_BYTES = 256 * 1024;
const inflating = (file: string): [Readable, Transform] => [
  createReadStream(file, { highWaterMark: INFLATE_READ_BYTES }),
  createGunzip({ chunkSize: INFLATE_CHUNK_BYTES }),
];
const MAX_IDENTIFIER_BYTES = 63;
const RUN_ID = /^\d{14}_[0-9a-f]{4}$/;

export const initialRestoreState = (): RestoreState => ({});

// ---------------------------------------------------------------------------------------------------------------
// Context shared by the steps

interface Context {
  readonly plan: LogicalRestorePlan;
  readonly conn: PgConnection;
  readonly target: string;
  readonly scrub: (text: string) => string;
  readonly where: string;
}

function contextOf(plan: LogicalRestorePlan): Context {
  const scrub = scrubberFor(plan.targetUrl);
  let conn: PgConnection;
  try {
    conn = parsePostgresUrl(plan.targetUrl);
  } catch (err) {
    throw new RestoreFailedError(scrub((err as Error).message));
  }
  return { plan, conn, target: conn.database, scrub, where: describeConnection(conn) };
}

function checkPlan(plan: LogicalRestorePlan): void {
  try {
    assertPlainName(plan.backupName);
    assertPlainName(plan.safetyCopyName);
  } catch (err) {
    throw new RestoreFailedError((err as Error).message);
  }
  const suffix = plan.format === 'custom' ? '.dump' : '.sql.gz';
  if (!plan.backupName.endsWith(suffix)) {
    throw new RestoreFailedError(`${plan.backupName} does not look like a ${plan.format === 'custom' ? 'custom-format .dump' : '.sql.gz'} backup`);
  }
  if (!Number.isInteger(plan.parallelJobs) || plan.parallelJobs < 1 || plan.parallelJobs > 64) {
    throw new RestoreFailedError(`parallelJobs must be a whole number from 1 to 64, not ${plan.parallelJobs}`);
  }
}

function newRunId(now = new Date()): string {
  const digits = now.toISOString().replace(/[^0-9]/g, '').slice(0, 14);
  return `${digits}_${randomBytes(2).toString('hex')}`;
}

/** Validates a state handed back by the runner and fills in the run's identity if it has none yet. */
function begin(ctx: Context, state: RestoreState | undefined): RestoreState & { runId: string } {
  const s = state ?? {};
  if (s.targetDb !== undefined && s.targetDb !== ctx.target) {
    throw new RestoreFailedError(`this job's state belongs to database ${quoteIdent(s.targetDb)}, not ${quoteIdent(ctx.target)}`);
  }
  if (s.runId !== undefined && !RUN_ID.test(s.runId)) throw new RestoreFailedError('this job\'s state has an invalid run id');
  const runId = s.runId ?? newRunId();
  const names = namesOf(ctx.target, runId);
  return {
    ...s,
    version: 1,
    runId,
    targetDb: ctx.target,
    freshDb: names.fresh,
    oldDb: names.old,
    localDir: localDirOf(ctx.plan, runId),
  };
}

function localDirOf(plan: LogicalRestorePlan, runId: string): string {
  return join(resolve(plan.workDir), `lifeline-restore-${runId}`);
}

/** `<base>_<kind>_<runId>` within PostgreSQL's 63-byte limit (a longer name would be silently cut by the server). */
function derivedName(base: string, kind: string, runId: string): string {
  const suffix = `_${kind}_${runId}`;
  const room = MAX_IDENTIFIER_BYTES - Buffer.byteLength(suffix);
  let kept = '';
  let bytes = 0;
  for (const ch of base) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > room) break;
    kept += ch;
    bytes += size;
  }
  return `${kept}${suffix}`;
}

export function namesOf(target: string, runId: string): { fresh: string; old: string; failed: string } {
  return { fresh: derivedName(target, 'restore', runId), old: derivedName(target, 'old', runId), failed: derivedName(target, 'failed', runId) };
}

/** Turns anything thrown into one of: AbortError, RestoreFailedError (permanent), TransientError, or a plain Error. */
function failure(ctx: Context, what: string, err: unknown): Error {
  if (err instanceof AbortError || err instanceof RestoreFailedError || err instanceof TransientError) return err;
  if (err instanceof Error && err.name === 'AbortError') return new AbortError(`${what} was cancelled`);
  const message = ctx.scrub(err instanceof Error ? err.message : String(err));
  if (err instanceof ToolFailedError) return err.transient ? new TransientError(`${what}: ${message}`) : new RestoreFailedError(`${what}: ${message}`);
  if (err instanceof NotFoundError) return new RestoreFailedError(`${what}: ${message}`);
  if (isTransientPgError(err)) return new TransientError(`${what}: ${message}`);
  if (err instanceof PermanentError || sqlState(err) !== undefined) return new RestoreFailedError(`${what}: ${message}`);
  return new Error(`${what}: ${message}`);
}

async function guarded<T>(ctx: Context, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw failure(ctx, what, err);
  }
}

async function connectTo(ctx: Context, database: string, queryTimeoutMs = MAINTENANCE_QUERY_TIMEOUT_MS): Promise<pg.Client> {
  return connectClient(withDatabase(ctx.conn, database), { queryTimeoutMs });
}

interface Maintenance {
  readonly client: pg.Client;
  readonly serverVersionNum: number;
  /** The server process of `client`, so a statement of it can be cancelled from another session. */
  readonly pid: number;
}

/** A connection to the server's `postgres` database (or template1 where there is none), for CREATE/DROP/RENAME. */
async function maintenance(ctx: Context): Promise<Maintenance> {
  // Never the target itself: a database cannot be renamed by a session connected to it.
  const preferred = ctx.target === 'postgres' ? 'template1' : 'postgres';
  let client: pg.Client;
  try {
    client = await connectTo(ctx, preferred);
  } catch (err) {
    if (sqlState(err) !== '3D000' || preferred === 'template1') throw err;
    client = await connectTo(ctx, 'template1');
  }
  try {
    const { rows } = await client.query<{ num: string; pid: number }>(
      "SELECT current_setting('server_version_num') AS num, pg_backend_pid() AS pid",
    );
    return { client, serverVersionNum: Number(rows[0]?.num ?? 0), pid: rows[0]?.pid ?? 0 };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

async function withMaintenance<T>(ctx: Context, work: (m: Maintenance) => Promise<T>): Promise<T> {
  const m = await maintenance(ctx);
  try {
    return await work(m);
  } finally {
    await m.client.end().catch(() => undefined);
  }
}

async function existing(client: pg.Client, names: readonly string[]): Promise<Set<string>> {
  const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1::text[])', [names]);
  return new Set(rows.map((r) => r.datname));
}

/** Drops one of this run's own databases. Refuses anything else, the target above all. */
async function dropOwn(ctx: Context, m: Maintenance, name: string, runId: string): Promise<void> {
  const own = Object.values(namesOf(ctx.target, runId));
  if (name === ctx.target || !own.includes(name)) throw new Error(`refusing to drop ${quoteIdent(name)}: not a database of this run`);
  if (m.serverVersionNum >= 130000) {
    await m.client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } else {
    await endSessions(m, name);
    await m.client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
  }
}

/** Ends every other session on a database; sessions we may not end are left (the rename then reports them). */
async function endSessions(m: Maintenance, database: string): Promise<number> {
  const { rows } = await m.client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
  let ended = 0;
  for (const { pid } of rows) {
    try {
      const sql = m.serverVersionNum >= 140000 ? 'SELECT pg_terminate_backend($1, 5000) AS ok' : 'SELECT pg_terminate_backend($1) AS ok';
      const result = await m.client.query<{ ok: boolean }>(sql, [pid]);
      if (result.rows[0]?.ok) ended += 1;
    } catch {
      // Not ours to end (another role's session without pg_signal_backend): the rename will say the db is busy.
    }
  }
  return ended;
}

/** Re-opens a database that an interrupted swap of an older Lifeline (which closed it first) may have left closed. */
async function allowConnections(m: Maintenance, database: string): Promise<void> {
  await m.client.query(`ALTER DATABASE ${quoteIdent(database)} WITH ALLOW_CONNECTIONS true`);
}

/** Runs `work` but gives up (running `onAbort`) as soon as the signal fires. */
async function abortable<T>(signal: AbortSignal | undefined, what: string, work: Promise<T>, onAbort: () => void): Promise<T> {
  if (!signal) return work;
  throwIfAborted(signal, what);
  let listener: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    listener = () => {
      onAbort();
      reject(new AbortError(`${what} was cancelled`));
    };
    signal.addEventListener('abort', listener, { once: true });
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (listener) signal.removeEventListener('abort', listener);
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------------------------
// Streams

/** Counts and hashes what flows through; with `untilExit`, the stream ends only once that promise resolves and
 * fails if it rejects, so a consumer (a store's atomic write) never commits the output of a program that failed. */
function meter(untilExit?: Promise<void>): Transform & { readonly bytes: () => number; readonly sha256: () => string } {
  const hash = createHash('sha256');
  let bytes = 0;
  let digest: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      if (!untilExit) {
        callback();
        return;
      }
      untilExit.then(
        () => callback(),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    },
  });
  return Object.assign(stream, {
    bytes: () => bytes,
    sha256: () => (digest ??= hash.digest('hex')),
  });
}

/** A sink that runs the plain-SQL classifier over everything written to it. */
function classifying(): Writable & { readonly summary: () => PlainSqlSummary } {
  const classifier = new PlainSqlClassifier();
  let summary: PlainSqlSummary | undefined;
  const sink = new Writable({
    highWaterMark: INFLATE_READ_BYTES,
    write(chunk: Buffer, _encoding, callback) {
      try {
        classifier.scan(chunk);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    final(callback) {
      try {
        summary = classifier.end();
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
  return Object.assign(sink, {
    summary: () => {
      if (!summary) throw new Error('the classifier has not seen the end of the backup');
      return summary;
    },
  });
}

/** Why a plain-SQL backup is refused, in the words a restore or drill reports. */
function refusedBackup(name: string, refusal: PlainSqlRefusal): RestoreFailedError {
  return new RestoreFailedError(
    `backup ${name} is refused: ${refusal.message}. A restore never runs a psql meta-command from a backup ` +
      `(only pg_dump's own leading \\restrict and trailing \\unrestrict lines are allowed, and replaced); ` +
      'nothing was restored',
  );
}

/** A plain-SQL restore needs a psql whose restricted mode holds; anything older is refused before anything is done. */
function checkPsql(version: ToolVersion): void {
  if (psqlHasRestrict(version)) return;
  throw new RestoreFailedError(
    `psql ${version.major}.${version.minor} (${version.text}) cannot restore a plain-SQL backup safely: ` +
      'its restricted mode (\\restrict), which keeps a backup from running shell commands, is missing or can be ' +
      `escaped. Install ${psqlRestrictNeeded(version.major)}`,
  );
}

function isPipeClosed(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

// ---------------------------------------------------------------------------------------------------------------
// dumpToStore

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
): Promise<{ size: number; sha256: string }> {
  const scrub = scrubberFor(url);
  let conn: PgConnection;
  try {
    conn = parsePostgresUrl(url);
  } catch (err) {
    throw new PermanentError(scrub((err as Error).message));
  }
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
): Promise<{ size: number; sha256: string }> {
  assertPlainName(name);
  throwIfAborted(signal, 'the backup');
  const what = `pg_dump of ${describeConnection(conn)}`;
  const dump = runTool('pg_dump', ['--format=custom', '--lock-wait-timeout=120000', ...extraArgs, ...toolConnectionArgs(conn)], {
    conn,
    tools,
    signal,
    stdout: 'pipe',
    scrub,
  });
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
    // pg_dump failed first (its stderr tells why), or the store failed under a running pg_dump (stop it).
    const killed = !exited;
    if (killed) dump.kill();
    const own = await dump.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    const cause = own instanceof AbortError || !killed ? (own ?? err) : err;
    if (cause instanceof AbortError) throw cause;
    const message = scrub(cause instanceof Error ? cause.message : String(cause));
    if (cause instanceof ToolFailedError) {
      throw cause.transient ? new TransientError(`${what} failed: ${message}`) : new PermanentError(`${what} failed: ${message}`);
    }
    // The store's own error (no database password can be in it) stays attached for the logs.
    throw new Error(`${what} could not be written to ${store.location}: ${message}`, { cause: err });
  }
  await dump.done;
  const size = hashing.bytes();
  if (stored.size !== size) throw new Error(`${name}: the store holds ${stored.size} bytes but pg_dump wrote ${size}`);
  return { size, sha256: hashing.sha256() };
}

// ---------------------------------------------------------------------------------------------------------------
// preflight

interface TargetInfo {
  readonly version: string;
  readonly versionNum: number;
  readonly size: number;
}

async function probeTarget(ctx: Context): Promise<TargetInfo> {
  const client = await connectTo(ctx, ctx.target, 30_000);
  let row: { version: string; num: string; can_create: boolean; owns: boolean; size: string } | undefined;
  try {
    await client.query('SELECT 1');
    const { rows } = await client.query<{ version: string; num: string; can_create: boolean; owns: boolean; size: string }>(
      `SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num,
              (r.rolsuper OR r.rolcreatedb) AS can_create, pg_has_role(current_user, d.datdba, 'MEMBER') AS owns,
              pg_database_size(d.oid)::text AS size
         FROM pg_database d, pg_roles r
        WHERE d.datname = current_database() AND r.rolname = current_user`,
    );
    row = rows[0];
  } finally {
    await client.end().catch(() => undefined);
  }
  if (!row) throw new RestoreFailedError(`cannot read the catalog of ${ctx.where}`);
  if (!row.can_create) {
    throw new RestoreFailedError(`the database user may not CREATE DATABASE on ${ctx.where}'s server (it needs CREATEDB): the restore builds a fresh database beside the target`);
  }
  if (!row.owns) {
    throw new RestoreFailedError(`the database user does not own ${ctx.where} (nor is a member of its owner), so it cannot rename it during the swap`);
  }
  // The swap runs from the maintenance database: make sure there is one we can reach.
  await withMaintenance(ctx, async () => undefined);
  return { version: row.version.split(' ')[0] ?? row.version, versionNum: Number(row.num), size: Number(row.size) };
}

type Fetched = { state: RestoreState & { runId: string }; how: 'already here' | 'linked from the store' | 'read in place' | 'downloaded' };

/**
 * Makes the backup a local file pg_restore can seek in. A store on this machine is not copied (a copy of a 1 GB dump
 * cost 3-5 s of every restore's RTO): the file is hard-linked into the run's folder, which keeps it readable even if
 * retention deletes it from the store meanwhile, or read in place where a link is impossible (another file system).
 * Any other store is streamed into the run's folder (never held in memory) and hashed on the way.
 */
async function fetchBackup(ctx: Context, s: RestoreState & { runId: string }): Promise<Fetched> {
  const { plan } = ctx;
  const dir = localDirOf(plan, s.runId);
  const file = join(dir, plan.backupName);
  if (s.localFile !== undefined && s.localSize !== undefined) {
    const info = await stat(s.localFile).catch(() => undefined);
    if (info?.isFile() && info.size === s.localSize) return { state: s, how: 'already here' };
  }
  await mkdir(dir, { recursive: true });
  if (plan.store.localPath) {
    let source: string;
    try {
      source = await plan.store.localPath(plan.backupName);
    } catch (err) {
      if (err instanceof NotFoundError) throw new RestoreFailedError(`backup ${plan.backupName} is not in ${plan.store.location}`);
      throw err;
    }
    await rm(file, { force: true });
    const linked = await link(source, file).then(
      () => true,
      () => false,
    );
    const used = linked ? file : source;
    const { size } = await stat(used);
    if (s.localSize !== undefined && s.localSize !== size) {
      throw new RestoreFailedError(`backup ${plan.backupName} changed in ${plan.store.location} since this restore began`);
    }
    return {
      state: { ...s, localDir: dir, localFile: used, localSize: size, localSha256: undefined, localChecked: false },
      how: linked ? 'linked from the store' : 'read in place',
    };
  }
  const partial = join(dir, `.${plan.backupName}.partial`);
  const hashing = meter();
  try {
    const source: Readable = await plan.store.read(plan.backupName);
    await pipeline(source, hashing, createWriteStream(partial), plan.signal ? { signal: plan.signal } : {});
    await rename(partial, file);
  } catch (err) {
    await rm(partial, { force: true });
    if (err instanceof NotFoundError) throw new RestoreFailedError(`backup ${plan.backupName} is not in ${plan.store.location}`);
    throw err;
  }
  const sha256 = hashing.sha256();
  if (s.localSha256 !== undefined && s.localSha256 !== sha256) {
    await rm(file, { force: true });
    throw new RestoreFailedError(`backup ${plan.backupName} changed in ${plan.store.location} since this restore began`);
  }
  return {
    state: { ...s, localDir: dir, localFile: file, localSize: hashing.bytes(), localSha256: sha256, localChecked: s.localSha256 === sha256 && s.localChecked === true },
    how: 'downloaded',
  };
}

async function readMagic(file: string, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Custom format: the header and table of contents read (pg_restore --list). Reading every data block as well
 * (pg_restore -f /dev/null) was measured at about a third of the restore's own time, added to every restore's RTO
 * to catch a rare truncated archive a little earlier; restoreIntoFresh catches it anyway, before the target is
 * touched. .sql.gz: the whole gzip stream inflates (it is cheap, and the only check a plain dump gets).
 */
async function checkIntegrity(ctx: Context, file: string, size: number): Promise<string> {
  const { plan } = ctx;
  const name = plan.backupName;
  if (size === 0) throw new RestoreFailedError(`backup ${name} is empty`);
  if (plan.format === 'custom') {
    const magic = await readMagic(file, 5);
    if (magic.toString('latin1') !== 'PGDMP') throw new RestoreFailedError(`backup ${name} is not a pg_dump custom-format archive`);
    const listing = runTool('pg_restore', ['--list', file], { conn: ctx.conn, tools: plan.tools, signal: plan.signal, stdout: 'pipe', scrub: ctx.scrub });
    const entries = countListEntries(listing.stdout);
    try {
      await listing.done;
    } catch (err) {
      if (err instanceof ToolFailedError) throw new RestoreFailedError(`backup ${name} is unreadable: ${err.message}`);
      throw err;
    }
    return `custom format, table of contents reads (${entries()} entries)`;
  }
  const magic = await readMagic(file, 2);
  if (magic.length < 2 || magic[0] !== 0x1f || magic[1] !== 0x8b) throw new RestoreFailedError(`backup ${name} is not gzip-compressed`);
  // The same classifier the restore feeds psql through (restorePlain), over the whole inflated stream.
  const sink = classifying();
  try {
    await pipeline(...inflating(file), sink, plan.signal ? { signal: plan.signal } : {});
  } catch (err) {
    if (err instanceof Error && err.name === 'AbortError') throw err;
    if (err instanceof PlainSqlRefusal) throw refusedBackup(name, err);
    throw new RestoreFailedError(`backup ${name} is damaged: ${(err as Error).message}`);
  }
  const seen = sink.summary();
  const copies = `${seen.copyBlocks} COPY block${seen.copyBlocks === 1 ? '' : 's'}`;
  const own = seen.ownRestrict ? "; pg_dump's own \\restrict pair replaced by Lifeline's key" : '';
  const lines = `${seen.lines.toLocaleString('en-US')} lines`;
  return `gzip intact, ${formatSize(seen.bytes)} of SQL (${lines}, ${copies}), no psql meta-command${own}`;
}

async function sha256Of(file: string, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash, signal ? { signal } : {});
  return hash.digest('hex');
}

/**
 * The catalogue's SHA-256 against the local file. A download was hashed on its way; a linked file is read once more
 * (measured: 1.4-1.8 s more for an 822 MB dump in the page cache), beside the integrity check. No expected hash: a
 * backup made elsewhere.
 */
async function checkChecksum(ctx: Context, s: RestoreState): Promise<{ sha256: string | undefined; detail: string }> {
  const { plan } = ctx;
  const expected = plan.expectedSha256;
  if (expected === undefined) {
    const detail = 'no catalogue entry (not made by Lifeline), so its checksum could not be checked';
    return { sha256: s.localSha256, detail };
  }
  const actual = s.localSha256 ?? (await sha256Of(s.localFile ?? '', plan.signal));
  if (actual !== expected) {
    throw new RestoreFailedError(
      `backup ${plan.backupName} is not the file Lifeline made: ` +
        `its sha256 is ${actual.slice(0, 12)}…, the catalogue's is ${expected.slice(0, 12)}…`,
    );
  }
  return { sha256: actual, detail: "its sha256 matches Lifeline's catalogue" };
}

/** The integrity check and the checksum check of the local file, at once; a checksum mismatch is reported first. */
async function checkLocal(ctx: Context, s: RestoreState): Promise<{ state: RestoreState; detail: string }> {
  const [integrity, checksum] = await Promise.allSettled([
    checkIntegrity(ctx, s.localFile ?? '', s.localSize ?? 0),
    checkChecksum(ctx, s),
  ]);
  if (checksum.status === 'rejected') throw checksum.reason;
  if (integrity.status === 'rejected') throw integrity.reason;
  return {
    state: { ...s, localSha256: checksum.value.sha256, localChecked: true },
    detail: `${integrity.value}; ${checksum.value.detail}`,
  };
}

/**
 * The target answers and the user may CREATE DATABASE and rename the target; the client tools fit the server; the
 * backup is a local file (see fetchBackup; reused when already there), reads whole, and is the file the catalogue
 * says Lifeline made.
 */
export async function preflight(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  checkPlan(plan);
  throwIfAborted(plan.signal, 'preflight');
  let s = begin(ctx, state);

  // The server's answer and the client tools are independent: ask both at once (this is on the recovery's clock).
  const probing = guarded(ctx, `cannot reach ${ctx.where}`, () => probeTarget(ctx));
  const versions = guarded(ctx, 'checking the PostgreSQL client tools', () =>
    Promise.all([toolVersion('pg_dump', plan.tools), toolVersion(plan.format === 'custom' ? 'pg_restore' : 'psql', plan.tools)]),
  );
  versions.catch(() => undefined);
  const info = await probing;
  const [dump, client] = await versions;
  if (plan.format === 'sql.gz') checkPsql(client);
  const serverMajor = Math.floor(info.versionNum / 10000);
  if (dump.major < serverMajor) {
    throw new RestoreFailedError(`pg_dump ${dump.major} cannot back up PostgreSQL ${serverMajor} (it refuses newer servers): install the PostgreSQL ${serverMajor} client tools`);
  }

  let fetched: Fetched;
  let integrity = 'checked before';
  try {
    fetched = await guarded(ctx, `cannot fetch backup ${plan.backupName}`, () => fetchBackup(ctx, s));
    s = fetched.state;
    if (!s.localChecked) {
      const what = `backup ${plan.backupName} failed its integrity check`;
      const checked = await guarded(ctx, what, () => checkLocal(ctx, s));
      integrity = checked.detail;
      s = { ...checked.state, runId: s.runId };
    }
  } catch (err) {
    // A failing step returns no state, so nobody else would know to remove what it fetched.
    await rm(localDirOf(plan, s.runId), { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  const detail =
    `${ctx.where} answers (PostgreSQL ${info.version}, ${formatSize(info.size)}; the restore needs room for a second copy). ` +
    `Backup ${plan.backupName} ${fetched.how} (${formatSize(s.localSize ?? 0)}${s.localSha256 ? `, sha256 ${s.localSha256.slice(0, 12)}` : ''}): ${integrity}.`;
  return { state: s, detail };
}

// ---------------------------------------------------------------------------------------------------------------
// safetyBackup

/**
 * pg_dump -Fc of the previous database (<target>_old_<run>, set aside by swap) into the store as safetyCopyName, the
 * way the backup job takes a backup (take.ts): each table's rows counted in the dump's own snapshot, written under a
 * pending name, read back and checked, renamed, then its sidecar. The caller records it in the catalogue.
 * It runs after verify, not before the restore: until the swap the target is untouched, and from the swap on the
 * previous database itself is the way back (putBack renames it), so a copy taken first would only have delayed the
 * recovery (46-54 s for 1 GB, measured) and loaded the live database during an outage. The copy makes the way back
 * durable; cleanup drops the previous database only once it is in the store.
 */
export async function safetyBackup(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  checkPlan(plan);
  const s = begin(ctx, state);
  if (s.safetyCopy?.name === plan.safetyCopyName) {
    return { state: s, detail: `Safety copy ${s.safetyCopy.name} was already taken (${formatSize(s.safetyCopy.size)}).` };
  }
  const { old } = namesOf(ctx.target, s.runId);
  if (!s.swapped || !s.verified) {
    throw new RestoreFailedError(`no safety copy yet: ${quoteIdent(ctx.target)} has not been replaced by a verified restore, so the previous database is not set aside`);
  }
  const started = Date.now();
  const copy = await guarded(ctx, `safety copy of the previous database ${quoteIdent(old)}`, async () => {
    let taken: TakenBackup | undefined;
    try {
      const options = { signal: plan.signal, tools: plan.tools };
      taken = await takeBackupOf(withDatabase(ctx.conn, old), ctx.scrub, plan.store, plan.safetyCopyName, options);
      const checked = await publishBackup(plan.store, taken, plan.targetUrl, options);
      return { taken, checked };
    } catch (err) {
      // Whatever stopped it, no unchecked copy stays under a backup name.
      if (taken) await removeBackupLeftovers(plan.store, taken).catch(() => undefined);
      if (err instanceof PermanentError && !(err instanceof RestoreFailedError)) throw new RestoreFailedError(err.message);
      throw err;
    }
  });
  const { taken } = copy;
  const tables = Object.keys(taken.tableRows).length;
  const rows = Object.values(taken.tableRows).reduce((a, b) => a + b, 0);
  return {
    state: {
      ...s,
      safetyCopy: {
        name: taken.name,
        size: taken.size,
        sha256: taken.sha256,
        tableRows: taken.tableRows,
        durationMs: taken.durationMs,
      },
    },
    detail:
      `Safety copy of the database as it was before the restore: ${taken.name} written to ${plan.store.location} ` +
      `and read back (${formatSize(taken.size)}, sha256 ${taken.sha256.slice(0, 12)}, ` +
      `${tables} table${tables === 1 ? '' : 's'}, ${rows.toLocaleString('en-US')} rows counted; ` +
      `pg_restore --list reads ${copy.checked.entries} entries) in ${seconds(Date.now() - started)}.`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// restoreIntoFresh

interface DatabaseProperties {
  readonly encoding: string;
  readonly collate: string;
  readonly ctype: string;
  readonly provider: string;
  readonly locale: string | null;
  readonly icuRules: string | null;
  readonly owner: string;
  readonly connLimit: number;
  readonly acl: { grantee: string | null; privilege: string; grantable: boolean }[] | null;
  readonly settings: string[];
  readonly comment: string | null;
}

/** What pg_dump without --create leaves out: the database's own encoding, locale, owner, settings, grants, comment. */
async function readDatabaseProperties(m: Maintenance, database: string): Promise<DatabaseProperties> {
  const { rows } = await m.client.query<{ d: Record<string, unknown>; encoding: string; owner: string; comment: string | null }>(
    `SELECT to_jsonb(d) AS d, pg_encoding_to_char(d.encoding) AS encoding, pg_get_userbyid(d.datdba) AS owner,
            shobj_description(d.oid, 'pg_database') AS comment
       FROM pg_database d WHERE d.datname = $1`,
    [database],
  );
  const row = rows[0];
  if (!row) throw new RestoreFailedError(`database ${quoteIdent(database)} does not exist`);
  const d = row.d;
  const text = (key: string): string | null => (typeof d[key] === 'string' ? (d[key] as string) : null);
  let acl: DatabaseProperties['acl'] = null;
  if (d.datacl !== null && d.datacl !== undefined) {
    const grants = await m.client.query<{ grantee: string | null; privilege: string; grantable: boolean; is_owner: boolean }>(
      `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege,
              a.is_grantable AS grantable, a.grantee = d.datdba AS is_owner
         FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1`,
      [database],
    );
    acl = grants.rows.filter((g) => !g.is_owner).map(({ grantee, privilege, grantable }) => ({ grantee, privilege, grantable }));
  }
  const settings = await m.client.query<{ setconfig: string[] }>(
    'SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1 AND s.setrole = 0',
    [database],
  );
  return {
    encoding: row.encoding,
    collate: text('datcollate') ?? 'C',
    ctype: text('datctype') ?? 'C',
    provider: text('datlocprovider') ?? 'c',
    locale: text('daticulocale') ?? text('datlocale'),
    icuRules: text('daticurules'),
    owner: row.owner,
    connLimit: typeof d.datconnlimit === 'number' ? d.datconnlimit : -1,
    acl,
    settings: settings.rows.flatMap((r) => r.setconfig ?? []),
    comment: row.comment,
  };
}

/** GUCs whose value is a list of separately quoted items (pg_dump's variable_is_guc_list_quote). */
const LIST_GUCS = new Set(['local_preload_libraries', 'search_path', 'session_preload_libraries', 'shared_preload_libraries', 'temp_tablespaces', 'unix_socket_directories']);

/** Splits `"$user", public` the way the server's SplitGUCList does (double quotes group, "" is a quote). */
function splitGucList(value: string): string[] {
  const items: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /\s/.test(value[i] ?? '')) i += 1;
    let item = '';
    if (value[i] === '"') {
      i += 1;
      while (i < value.length) {
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            item += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        item += value[i];
        i += 1;
      }
      while (i < value.length && value[i] !== ',') i += 1;
    } else {
      while (i < value.length && value[i] !== ',') {
        item += value[i];
        i += 1;
      }
      item = item.trim();
    }
    items.push(item);
    i += 1; // the comma
  }
  return items;
}

function settingStatement(database: string, setting: string): string | undefined {
  const eq = setting.indexOf('=');
  if (eq <= 0) return undefined;
  const name = setting.slice(0, eq);
  const value = setting.slice(eq + 1);
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) return undefined;
  const rendered = LIST_GUCS.has(name.toLowerCase()) ? splitGucList(value).map(quoteLiteral).join(', ') : quoteLiteral(value);
  return `ALTER DATABASE ${quoteIdent(database)} SET ${name} = ${rendered}`;
}

async function createFresh(m: Maintenance, fresh: string, p: DatabaseProperties): Promise<string[]> {
  const parts = [`CREATE DATABASE ${quoteIdent(fresh)} TEMPLATE template0 ENCODING ${quoteLiteral(p.encoding)}`];
  parts.push(`LC_COLLATE ${quoteLiteral(p.collate)} LC_CTYPE ${quoteLiteral(p.ctype)}`);
  if (p.provider === 'i' && p.locale) {
    parts.push(`LOCALE_PROVIDER icu ICU_LOCALE ${quoteLiteral(p.locale)}`);
    if (p.icuRules) parts.push(`ICU_RULES ${quoteLiteral(p.icuRules)}`);
  } else if (p.provider === 'b' && p.locale) {
    parts.push(`LOCALE_PROVIDER builtin BUILTIN_LOCALE ${quoteLiteral(p.locale)}`);
  }
  parts.push(`OWNER ${quoteIdent(p.owner)}`);
  if (p.connLimit !== -1) parts.push(`CONNECTION LIMIT ${p.connLimit}`);
  await m.client.query(parts.join(' '));

  const skipped: string[] = [];
  const apply = async (sql: string, what: string): Promise<void> => {
    try {
      await m.client.query(sql);
    } catch {
      skipped.push(what);
    }
  };
  for (const setting of p.settings) {
    const sql = settingStatement(fresh, setting);
    if (sql) await apply(sql, `setting ${setting.split('=')[0] ?? ''}`);
  }
  if (p.acl) {
    await apply(`REVOKE ALL ON DATABASE ${quoteIdent(fresh)} FROM PUBLIC`, 'grants');
    for (const g of p.acl) {
      const who = g.grantee === null ? 'PUBLIC' : quoteIdent(g.grantee);
      await apply(`GRANT ${g.privilege} ON DATABASE ${quoteIdent(fresh)} TO ${who}${g.grantable ? ' WITH GRANT OPTION' : ''}`, `grant of ${g.privilege} to ${g.grantee ?? 'PUBLIC'}`);
    }
  }
  if (p.comment !== null) await apply(`COMMENT ON DATABASE ${quoteIdent(fresh)} IS ${quoteLiteral(p.comment)}`, 'comment');
  return skipped;
}

async function restoreCustom(ctx: Context, fresh: PgConnection, file: string): Promise<void> {
  const { plan } = ctx;
  const args = ['--no-owner', '--no-privileges', '--exit-on-error', `--jobs=${plan.parallelJobs}`, ...toolConnectionArgs(fresh), file];
  await runTool('pg_restore', args, { conn: fresh, tools: plan.tools, signal: plan.signal, serverOptions: RESTORE_SERVER_OPTIONS, scrub: ctx.scrub }).done;
}

/**
 * gunzip | psql, with the two defences of plain-sql-guard.ts: the classifier between them (what preflight accepted is
 * exactly what psql gets, but for the dump's own \restrict pair), and psql restricted under a key of our own that
 * nothing in its input can know. --no-psqlrc: no file of the host's adds to what psql runs; ON_ERROR_STOP: the first
 * error (a refused meta-command included) ends it with a failure. Its environment is runTool's: PATH, locale and
 * libpq settings, nothing else.
 */
async function restorePlain(ctx: Context, fresh: PgConnection, file: string): Promise<void> {
  const { plan } = ctx;
  // Again here: preflight may have run on another worker, with other client tools.
  checkPsql(await toolVersion('psql', plan.tools));
  const key = randomBytes(32).toString('hex');
  const psql = runTool('psql', ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', ...toolConnectionArgs(fresh)], {
    conn: fresh,
    tools: plan.tools,
    signal: plan.signal,
    stdin: 'pipe',
    stdout: 'ignore',
    serverOptions: RESTORE_SERVER_OPTIONS,
    scrub: ctx.scrub,
  });
  const stdin = psql.stdin;
  if (!stdin) throw new Error('psql started without a stdin pipe');
  // A refused line stops psql before its input closes (psql runs what is left unfinished at the end of its input).
  const feeding = pipeline(...inflating(file), restrictedFeed(key, () => psql.kill()), stdin);
  // A damaged stream must not let psql run what it has so far and exit 0.
  feeding.catch((err: unknown) => {
    if (!isPipeClosed(err)) psql.kill();
  });
  const [fed, exited] = await Promise.allSettled([feeding, psql.done]);
  if (exited.status === 'rejected' && exited.reason instanceof AbortError) throw exited.reason;
  if (fed.status === 'rejected' && fed.reason instanceof PlainSqlRefusal) {
    throw refusedBackup(plan.backupName, fed.reason);
  }
  if (fed.status === 'rejected' && !isPipeClosed(fed.reason)) {
    throw new RestoreFailedError(`backup ${plan.backupName} is damaged: ${ctx.scrub((fed.reason as Error).message)}`);
  }
  if (exited.status === 'rejected') throw exited.reason;
  if (fed.status === 'rejected') throw new RestoreFailedError(`psql stopped reading ${plan.backupName} early`);
}

/** Fresh planner statistics: one ANALYZE per table, biggest first, over as many sessions as pg_restore used. */
async function analyze(ctx: Context, fresh: PgConnection): Promise<number> {
  const clients: pg.Client[] = [];
  const endAll = (): void => {
    for (const c of clients) void c.end().catch(() => undefined);
  };
  try {
    const run = async (): Promise<number> => {
      const first = await connectClient(fresh, { queryTimeoutMs: 0 });
      clients.push(first);
      const { rows } = await first.query<{ name: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS name
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'm', 'p') AND NOT c.relispartition
            AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
          ORDER BY c.relpages DESC, 1`,
      );
      const queue = rows.map((r) => r.name);
      const sessions = Math.max(1, Math.min(ctx.plan.parallelJobs, queue.length));
      while (clients.length < sessions) clients.push(await connectClient(fresh, { queryTimeoutMs: 0 }));
      await Promise.all(
        clients.map(async (client) => {
          for (let table = queue.shift(); table !== undefined; table = queue.shift()) await client.query(`ANALYZE ${table}`);
        }),
      );
      return rows.length;
    };
    // On abort the sessions are closed; dropping the fresh database WITH (FORCE) afterwards ends the server side.
    return await abortable(ctx.plan.signal, 'ANALYZE of the restored database', run(), endAll);
  } finally {
    endAll();
  }
}

/**
 * CREATE DATABASE <target>_restore_<run> beside the target (same encoding, locale, owner, settings and grants) and
 * restore the backup into it: pg_restore -j N for custom format, gunzip | psql for .sql.gz. On any failure the fresh
 * database is dropped and the step throws; the target is never touched here.
 */
export async function restoreIntoFresh(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  checkPlan(plan);
  throwIfAborted(plan.signal, 'the restore');
  let s = begin(ctx, state);
  const { fresh, old } = namesOf(ctx.target, s.runId);
  if (s.swapped) return { state: s, detail: `The restored database already replaced ${quoteIdent(ctx.target)}.` };

  const skipped = await guarded(ctx, `cannot prepare fresh database ${quoteIdent(fresh)}`, () =>
    withMaintenance(ctx, async (m) => {
      const found = await existing(m.client, [fresh, old]);
      if (found.has(old) && !found.has(fresh)) return 'swapped' as const;
      if (s.restored && found.has(fresh)) return 'restored' as const;
      // A leftover of an attempt that did not finish: its contents cannot be trusted.
      if (found.has(fresh)) await dropOwn(ctx, m, fresh, s.runId);
      const properties = await readDatabaseProperties(m, ctx.target);
      return createFresh(m, fresh, properties);
    }),
  );
  if (skipped === 'swapped') return { state: s, detail: `The restored database already replaced ${quoteIdent(ctx.target)}.` };
  if (skipped === 'restored') return { state: s, detail: `The backup was already restored into ${quoteIdent(fresh)}.` };

  const freshConn = withDatabase(ctx.conn, fresh);
  const started = Date.now();
  let restoredAt: number | undefined;
  try {
    // On another worker than preflight's, the file is not here yet: fetch it again (its hash must match).
    const fetched = await fetchBackup(ctx, s);
    s = fetched.state;
    if (!s.localChecked) s = { ...(await checkLocal(ctx, s)).state, runId: s.runId };
    const file = s.localFile ?? '';
    if (plan.format === 'custom') await restoreCustom(ctx, freshConn, file);
    else await restorePlain(ctx, freshConn, file);
    restoredAt = Date.now();
  } catch (err) {
    const dropped = await withMaintenance(ctx, (m) => dropOwn(ctx, m, fresh, s.runId)).then(
      () => true,
      () => false,
    );
    const leftover = dropped ? '' : ` (${quoteIdent(fresh)} could not be dropped yet; cleanup will retry)`;
    const cause = failure(ctx, `restore of ${plan.backupName} into a fresh database failed; ${quoteIdent(ctx.target)} was not touched${leftover}`, err);
    throw cause;
  }
  const how = plan.format === 'custom' ? `pg_restore -j ${plan.parallelJobs}` : 'gunzip | psql';
  const notes = skipped.length > 0 ? ` Not copied from the target (no right to): ${skipped.join(', ')}.` : '';
  return {
    state: { ...s, restored: true },
    detail: `Restored ${plan.backupName} into ${quoteIdent(fresh)} with ${how} in ${seconds((restoredAt ?? started) - started)}.${notes}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// swap / putBack

/**
 * Renames `from` → `aside` and `into` → `from`, and opens both to connections, in ONE transaction, so a crash at any
 * point leaves the name `from` connectable: before COMMIT everything rolls back (nothing was closed), after it both
 * flags are set. Nothing is closed to connections beforehand either: once the first rename holds its lock, a new
 * session on `from` waits for the COMMIT and then finds the restored database under that name; one that slipped in
 * between ending the sessions and the rename makes it fail with 55006 (in use), and it is tried again.
 *
 * The signal stops it only before COMMIT is sent (a waiting statement is cancelled from another session): it then
 * throws AbortError, and that means the transaction rolled back and nothing was renamed.
 */
async function exchange(
  ctx: Context,
  m: Maintenance,
  from: string,
  aside: string,
  into: string,
  signal: AbortSignal | undefined,
): Promise<number> {
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
    const stopWatching = cancelStatementsOnAbort(ctx, m, signal);
    try {
      await m.client.query('BEGIN');
      await m.client.query("SET LOCAL lock_timeout = '15s'");
      for (const sql of statements) {
        throwIfAborted(signal, 'the swap');
        await m.client.query(sql);
      }
      // The last moment the swap can still be stopped with certainty that nothing changed.
      throwIfAborted(signal, 'the swap');
      await m.client.query('COMMIT');
      return ended;
    } catch (err) {
      await m.client.query('ROLLBACK').catch(() => undefined);
      // The server answered with an error (or COMMIT was never sent): the transaction rolled back.
      if (err instanceof AbortError || (signal?.aborted && sqlState(err) !== undefined)) {
        throw new AbortError('the swap was stopped before it committed; nothing was renamed');
      }
      // 55006: still in use (a session reconnected before the rename, or one we may not end). Try again briefly.
      if (sqlState(err) === '55006' && attempt < 3) continue;
      throw err;
    } finally {
      stopWatching();
    }
  }
}

/** While it is watched, an abort cancels the statement `m` is running (pg_cancel_backend from another session). */
function cancelStatementsOnAbort(ctx: Context, m: Maintenance, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => undefined;
  const cancel = (): void => {
    void withMaintenance(ctx, (other) => other.client.query('SELECT pg_cancel_backend($1)', [m.pid])).catch(
      () => undefined,
    );
  };
  signal.addEventListener('abort', cancel, { once: true });
  return () => signal.removeEventListener('abort', cancel);
}

/**
 * Ends the other sessions on the target and, in one transaction, renames the target to <target>_old_<run> and the
 * fresh database to the target's name. Run from the server's maintenance database.
 */
export async function swap(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  throwIfAborted(plan.signal, 'the swap');
  const s = begin(ctx, state);
  const { fresh, old } = namesOf(ctx.target, s.runId);
  return guarded(ctx, `cannot swap the restored database into place`, () =>
    withMaintenance(ctx, async (m) => {
      const found = await existing(m.client, [ctx.target, fresh, old]);
      if (!found.has(fresh) && found.has(old) && found.has(ctx.target)) {
        return { state: { ...s, swapped: true }, detail: `${quoteIdent(ctx.target)} is already the restored database (the previous one is ${quoteIdent(old)}).` };
      }
      if (!found.has(fresh)) throw new RestoreFailedError(`there is no restored database ${quoteIdent(fresh)} to swap in; run the restore step first`);
      if (!s.restored) throw new RestoreFailedError(`${quoteIdent(fresh)} exists but its restore did not finish; run the restore step again`);
      if (found.has(old)) throw new RestoreFailedError(`${quoteIdent(old)} already exists; refusing to overwrite it`);
      if (!found.has(ctx.target)) throw new RestoreFailedError(`the target ${quoteIdent(ctx.target)} no longer exists`);
      const ended = await exchange(ctx, m, ctx.target, old, fresh, plan.signal);
      return {
        state: { ...s, swapped: true, putBack: false },
        detail:
          `${quoteIdent(ctx.target)} is now the restored database; the previous one is kept as ${quoteIdent(old)} until cleanup` +
          `${ended > 0 ? ` (${ended} open session${ended === 1 ? '' : 's'} ended)` : ''}.`,
      };
    }),
  );
}

/** Undoes swap: the restored database becomes <target>_failed_<run> and is dropped; the previous one is the target again. */
export async function putBack(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  const s = begin(ctx, state);
  const { fresh, old, failed } = namesOf(ctx.target, s.runId);
  return guarded(ctx, `cannot put the previous database back`, () =>
    withMaintenance(ctx, async (m) => {
      const found = await existing(m.client, [ctx.target, fresh, old, failed]);
      let action: string;
      if (found.has(old)) {
        if (!found.has(ctx.target)) {
          // Only the old one is left (the restored one was dropped by hand, say): just rename it back.
          await m.client.query(`ALTER DATABASE ${quoteIdent(old)} RENAME TO ${quoteIdent(ctx.target)}`);
        } else {
          if (found.has(failed)) await dropOwn(ctx, m, failed, s.runId);
          await m.client.query(`ALTER DATABASE ${quoteIdent(old)} WITH ALLOW_CONNECTIONS true`);
          // Here `from` is the restored database under the target's name; `into` is the previous one.
          await exchange(ctx, m, ctx.target, failed, old, plan.signal);
        }
        action = `${quoteIdent(ctx.target)} is the database from before the restore again`;
      } else if (s.swapped && !found.has(failed)) {
        throw new RestoreFailedError(`the previous database ${quoteIdent(old)} is gone; ${quoteIdent(ctx.target)} stays the restored one`);
      } else {
        action = s.swapped || s.putBack || found.has(failed) ? `${quoteIdent(ctx.target)} was already put back` : `${quoteIdent(ctx.target)} was never replaced`;
      }
      // Whatever happened before, leave the target open to connections.
      await allowConnections(m, ctx.target).catch(() => undefined);
      const leftovers: string[] = [];
      for (const name of [failed, fresh]) {
        try {
          await dropOwn(ctx, m, name, s.runId);
        } catch {
          leftovers.push(quoteIdent(name));
        }
      }
      const tail = leftovers.length > 0 ? `; ${leftovers.join(', ')} could not be dropped yet (cleanup retries)` : '; the restored copy was dropped';
      return { state: { ...s, swapped: false, verified: false, putBack: true }, detail: `${action}${tail}.` };
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// verify

function show(value: unknown): string {
  let text: string;
  if (value === null || value === undefined) text = 'NULL';
  else if (value instanceof Date) text = Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  else if (Buffer.isBuffer(value)) text = `\\x${value.toString('hex')}`;
  else if (typeof value === 'object') text = JSON.stringify(value);
  else text = String(value);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

/** Runs queries on one database, each in its own read-only transaction with a statement timeout. A query that
 * fails is reported as `error: ...` (and counted); losing the server throws (TransientError). */
async function runQueries(
  conn: PgConnection,
  queries: readonly string[],
  scrub: (text: string) => string,
  signal: AbortSignal | undefined,
): Promise<{ results: VerifyResult[]; failures: number }> {
  const where = describeConnection(conn);
  let client: pg.Client;
  try {
    client = await connectClient(conn, { queryTimeoutMs: VERIFY_TIMEOUT_MS + 5_000 });
  } catch (err) {
    const message = `cannot reach ${where} to verify it: ${scrub(err instanceof Error ? err.message : String(err))}`;
    throw isTransientPgError(err) ? new TransientError(message) : new RestoreFailedError(message);
  }
  const results: VerifyResult[] = [];
  let failures = 0;
  try {
    for (const query of queries) {
      throwIfAborted(signal, 'verification');
      try {
        await client.query('BEGIN TRANSACTION READ ONLY');
        await client.query(`SET LOCAL statement_timeout = ${VERIFY_TIMEOUT_MS}`);
        // A stop (cancel, deadline, shutdown) must not wait for a slow query: closing the session ends it.
        const running = client.query({ text: query, rowMode: 'array' });
        const result = await abortable(signal, 'verification', running, () => void client.end().catch(() => undefined));
        await client.query('ROLLBACK');
        const first = (result.rows as unknown[][])[0];
        results.push({ query, value: first === undefined ? '(no rows)' : show(first[0]) });
      } catch (err) {
        if (err instanceof AbortError) throw err;
        if (isTransientPgError(err)) throw new TransientError(`lost ${where} while verifying: ${scrub((err as Error).message)}`);
        await client.query('ROLLBACK').catch(() => undefined);
        failures += 1;
        results.push({ query, value: `error: ${scrub(err instanceof Error ? err.message : String(err))}` });
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
  const scrub = scrubberFor(targetUrl);
  let conn: PgConnection;
  try {
    conn = parsePostgresUrl(targetUrl);
  } catch (err) {
    throw new RestoreFailedError(scrub((err as Error).message));
  }
  return runQueries(withDatabase(conn, database), queries, scrub, signal);
}

/**
 * "`SELECT COUNT(*) FROM users` → `42`": the query and its value marked as code, so that no message formats the
 * query (`COUNT(*)`) or turns a value from the database into markup.
 */
export function verifiedLine(result: VerifyResult): string {
  return `${codeSpan(result.query)} → ${codeSpan(result.value)}`;
}

/** Runs each verify query on the (new) target; throws VerifyFailedError (with every result) when any fails. */
export async function verify(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome & { results: VerifyResult[] }> {
  const ctx = contextOf(plan);
  throwIfAborted(plan.signal, 'verification');
  const s = begin(ctx, state);
  if (!s.swapped) throw new RestoreFailedError(`nothing to verify: the restored database has not replaced ${quoteIdent(ctx.target)}`);
  const { results, failures } = await runQueries(ctx.conn, plan.verify, ctx.scrub, plan.signal);
  const lines = results.map(verifiedLine).join('; ');
  if (failures > 0) {
    throw new VerifyFailedError(`verification of ${quoteIdent(ctx.target)} failed (${failures} of ${results.length} queries): ${lines}`, results);
  }
  return {
    state: { ...s, verified: true },
    detail: results.length > 0 ? `Verified ${quoteIdent(ctx.target)}: ${lines}.` : `No verify queries are configured for ${quoteIdent(ctx.target)}.`,
    results,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// statistics

/**
 * ANALYZE of the swapped-in database. It runs after verify, not before the swap: a restore gets no statistics from
 * the dump, but the queries right after the swap plan well enough on defaults, autovacuum would analyze within a
 * minute anyway, and the 0.6 s per GB it took before the swap was 5% of the time to recovery. It never fails the
 * job (the restore stands without statistics): a failure is reported in the detail.
 */
export async function analyzeTarget(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  const s = begin(ctx, state);
  if (!s.swapped) return { state: s, detail: `Nothing to analyze: the restored database has not replaced ${quoteIdent(ctx.target)}.` };
  const started = Date.now();
  try {
    const tables = await analyze(ctx, ctx.conn);
    return { state: s, detail: `${tables} table${tables === 1 ? '' : 's'} of ${quoteIdent(ctx.target)} analyzed in ${seconds(Date.now() - started)}.` };
  } catch (err) {
    if (err instanceof AbortError) throw err;
    return { state: s, detail: `ANALYZE failed (${ctx.scrub((err as Error).message)}); autovacuum will gather the statistics instead.` };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// cleanup

/**
 * Drops this run's leftovers: the fresh database if it never got swapped in, a failed one putBack could not drop,
 * and the previous target (<target>_old_<run>), but that one only after verify passed and its safety copy is in the
 * store. Removes the local files.
 */
export async function cleanup(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  const s = begin(ctx, state);
  const { fresh, old, failed } = namesOf(ctx.target, s.runId);
  const done: string[] = [];
  const kept: string[] = [];

  const dir = localDirOf(plan, s.runId);
  const local = await stat(dir).then(
    () => true,
    () => false,
  );
  if (local) {
    await rm(dir, { recursive: true, force: true });
    done.push('removed the local files');
  }

  await guarded(ctx, 'cleanup', () =>
    withMaintenance(ctx, async (m) => {
      const found = await existing(m.client, [ctx.target, fresh, old, failed]);
      // A swap of an older Lifeline, cut short, may have left the target closed to connections.
      if (found.has(ctx.target)) await allowConnections(m, ctx.target).catch(() => undefined);
      for (const name of [fresh, failed]) {
        if (!found.has(name)) continue;
        await dropOwn(ctx, m, name, s.runId);
        done.push(`dropped ${quoteIdent(name)}`);
      }
      if (found.has(old)) {
        if (!(s.swapped && s.verified)) {
          kept.push(`kept ${quoteIdent(old)} (the restore was not verified: put it back or drop it by hand)`);
        } else if (s.safetyCopy === undefined) {
          kept.push(`kept the previous database ${quoteIdent(old)} (it has no safety copy in the store yet: copy it, then drop it by hand)`);
        } else {
          await dropOwn(ctx, m, old, s.runId);
          done.push(`dropped the previous database ${quoteIdent(old)} (its copy is ${s.safetyCopy.name})`);
        }
      }
    }),
  );
  const all = [...done, ...kept];
  return {
    state: { ...s, cleanedUp: true },
    detail: all.length > 0 ? `Cleanup: ${all.join('; ')}.` : 'Cleanup: nothing was left over.',
  };
}
