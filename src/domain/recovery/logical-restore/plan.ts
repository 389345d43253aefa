// What every step of a logical restore shares: the plan, the state the runner persists between steps, the names of
// the run's databases, and how anything thrown becomes a failure the runner understands.
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { assertPlainName, NotFoundError, type BackupStore } from '../../../adapters/backup-store/port.js';
import { connectionOf, describeConnection, type PgConnection } from '../../../shared/db/connection.js';
import { quoteIdent } from '../../../shared/db/sql.js';
import { PermanentError, TransientError, messageOf } from '../../../shared/errors.js';
import { isTransientPgError, sqlState } from '../../../pgtools/client.js';
import { AbortError, RestoreFailedError } from '../../../pgtools/errors.js';
import { dropDatabase, withMaintenance, type Maintenance } from '../../../pgtools/maintenance.js';
import { ToolFailedError, type PgToolOptions } from '../../../pgtools/process.js';

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

/** The state once `begin` has given the run its identity. */
export type RunState = RestoreState & { readonly runId: string };

export type StepOutcome = { state: RestoreState; detail: string };

const MAX_IDENTIFIER_BYTES = 63;
const RUN_ID = /^\d{14}_[0-9a-f]{4}$/;

export interface Context {
  readonly plan: LogicalRestorePlan;
  /** The target database. */
  readonly conn: PgConnection;
  readonly target: string;
  readonly scrub: (text: string) => string;
  readonly where: string;
}

export function contextOf(plan: LogicalRestorePlan): Context {
  const { conn, scrub } = connectionOf(plan.targetUrl, (message) => new RestoreFailedError(message));
  return { plan, conn, target: conn.database, scrub, where: describeConnection(conn) };
}

export function checkPlan(plan: LogicalRestorePlan): void {
  try {
    assertPlainName(plan.backupName);
    assertPlainName(plan.safetyCopyName);
  } catch (err) {
    throw new RestoreFailedError(messageOf(err));
  }
  const suffix = plan.format === 'custom' ? '.dump' : '.sql.gz';
  if (!plan.backupName.endsWith(suffix)) {
    const kind = plan.format === 'custom' ? 'custom-format .dump' : '.sql.gz';
    throw new RestoreFailedError(`${plan.backupName} does not look like a ${kind} backup`);
  }
  if (!Number.isInteger(plan.parallelJobs) || plan.parallelJobs < 1 || plan.parallelJobs > 64) {
    throw new RestoreFailedError(`parallelJobs must be a whole number from 1 to 64, not ${plan.parallelJobs}`);
  }
}

function newRunId(now = new Date()): string {
  const digits = now
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14);
  return `${digits}_${randomBytes(2).toString('hex')}`;
}

/** Validates a state handed back by the runner and fills in the run's identity if it has none yet. */
export function begin(ctx: Context, state: RestoreState | undefined): RunState {
  const s = state ?? {};
  if (s.targetDb !== undefined && s.targetDb !== ctx.target) {
    throw new RestoreFailedError(
      `this job's state belongs to database ${quoteIdent(s.targetDb)}, not ${quoteIdent(ctx.target)}`,
    );
  }
  if (s.runId !== undefined && !RUN_ID.test(s.runId))
    throw new RestoreFailedError("this job's state has an invalid run id");
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

export function localDirOf(plan: LogicalRestorePlan, runId: string): string {
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
  return {
    fresh: derivedName(target, 'restore', runId),
    old: derivedName(target, 'old', runId),
    failed: derivedName(target, 'failed', runId),
  };
}

/** Turns anything thrown into one of: AbortError, RestoreFailedError (permanent), TransientError, or a plain Error. */
export function failure(ctx: Context, what: string, err: unknown): Error {
  if (err instanceof AbortError || err instanceof RestoreFailedError || err instanceof TransientError) return err;
  if (err instanceof Error && err.name === 'AbortError') return new AbortError(`${what} was cancelled`);
  const message = ctx.scrub(messageOf(err));
  if (err instanceof ToolFailedError) {
    return err.transient ? new TransientError(`${what}: ${message}`) : new RestoreFailedError(`${what}: ${message}`);
  }
  if (err instanceof NotFoundError) return new RestoreFailedError(`${what}: ${message}`);
  if (isTransientPgError(err)) return new TransientError(`${what}: ${message}`);
  if (err instanceof PermanentError || sqlState(err) !== undefined)
    return new RestoreFailedError(`${what}: ${message}`);
  return new Error(`${what}: ${message}`);
}

export async function guarded<T>(ctx: Context, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw failure(ctx, what, err);
  }
}

/** A session on the target's server for CREATE/DROP/RENAME (never on the target itself). */
export function withServer<T>(ctx: Context, work: (m: Maintenance) => Promise<T>): Promise<T> {
  return withMaintenance(ctx.conn, work);
}

/** Drops one of this run's own databases. Refuses anything else, the target above all. */
export async function dropOwn(ctx: Context, m: Maintenance, name: string, runId: string): Promise<void> {
  const own = Object.values(namesOf(ctx.target, runId));
  if (name === ctx.target || !own.includes(name)) {
    throw new Error(`refusing to drop ${quoteIdent(name)}: not a database of this run`);
  }
  await dropDatabase(m, name);
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
