// The backup catalogue in PostgreSQL: what Lifeline wrote, its checksum and row counts, drills, and the RDS
// snapshots Lifeline took (migrations/003_backups.sql).
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export interface CatalogueEntry {
  readonly name: string;
  /** The copy a restore took of the database it replaced. */
  readonly safetyCopy: boolean;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly durationMs: number;
  readonly tableRows: Readonly<Record<string, number>>;
  readonly checkedAt: Date | undefined;
}

/** A check a drill promised but could not make, and why. */
export interface SkippedCheck {
  readonly check: string;
  readonly why: string;
}

export interface DrillRecord {
  readonly backupName: string;
  readonly passed: boolean;
  /** Empty for a full drill; a pass with a skipped check is not a full pass. */
  readonly skippedChecks: readonly SkippedCheck[];
  readonly backupAgeMs: number;
  readonly restoreMs: number | undefined;
  readonly finishedAt: Date;
}

export async function recordBackup(
  db: Queryable,
  entry: {
    env: string;
    name: string;
    store: string;
    job: number | undefined;
    takenAt: Date;
    sizeBytes: number;
    sha256: string;
    durationMs: number;
    tableRows: Readonly<Record<string, number>>;
    safetyCopy?: boolean;
  },
): Promise<void> {
  // A resumed job writes the same name again: the newer facts win.
  await db.query(
    `INSERT INTO backups (env, name, store, job, taken_at, size_bytes, sha256, duration_ms, table_rows, safety_copy)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (store, name) DO UPDATE SET size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,
       duration_ms = EXCLUDED.duration_ms, table_rows = EXCLUDED.table_rows, safety_copy = EXCLUDED.safety_copy,
       checked_at = NULL, deleted_at = NULL`,
    [
      entry.env,
      entry.name,
      entry.store,
      entry.job ?? null,
      entry.takenAt,
      entry.sizeBytes,
      entry.sha256,
      entry.durationMs,
      JSON.stringify(entry.tableRows),
      entry.safetyCopy ?? false,
    ],
  );
}

export async function markChecked(db: Queryable, store: string, name: string): Promise<void> {
  await db.query('UPDATE backups SET checked_at = clock_timestamp() WHERE store = $1 AND name = $2', [store, name]);
}

export async function markDeleted(db: Queryable, store: string, name: string): Promise<void> {
  await db.query(
    'UPDATE backups SET deleted_at = clock_timestamp() WHERE store = $1 AND name = $2 AND deleted_at IS NULL',
    [store, name],
  );
}

/** The catalogue's entries for a store, by name (deleted ones left out). */
export async function catalogueOf(db: Queryable, store: string): Promise<Map<string, CatalogueEntry>> {
  const { rows } = await db.query<{
    name: string;
    safety_copy: boolean;
    size_bytes: string;
    sha256: string;
    duration_ms: number;
    table_rows: Record<string, number>;
    checked_at: Date | null;
  }>(
    `SELECT name, safety_copy, size_bytes, sha256, duration_ms, table_rows, checked_at
       FROM backups WHERE store = $1 AND deleted_at IS NULL`,
    [store],
  );
  return new Map(
    rows.map((r) => [
      r.name,
      {
        name: r.name,
        safetyCopy: r.safety_copy,
        sizeBytes: Number(r.size_bytes),
        sha256: r.sha256,
        durationMs: r.duration_ms,
        tableRows: r.table_rows,
        checkedAt: r.checked_at ?? undefined,
      },
    ]),
  );
}

export async function recordDrill(
  db: Queryable,
  drill: {
    env: string;
    job: number;
    backupName: string;
    store: string;
    passed: boolean;
    backupAgeMs: number;
    restoreMs: number | undefined;
    checks: readonly string[];
    skippedChecks: readonly SkippedCheck[];
  },
): Promise<void> {
  await db.query(
    `INSERT INTO drills (env, job, backup_name, store, passed, backup_age_ms, restore_ms, checks, skipped_checks)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      drill.env,
      drill.job,
      drill.backupName,
      drill.store,
      drill.passed,
      Math.round(drill.backupAgeMs),
      drill.restoreMs === undefined ? null : Math.round(drill.restoreMs),
      JSON.stringify(drill.checks),
      JSON.stringify(drill.skippedChecks),
    ],
  );
}

interface DrillRow {
  backup_name: string;
  passed: boolean;
  skipped_checks: SkippedCheck[];
  backup_age_ms: string;
  restore_ms: number | null;
  finished_at: Date;
}

function drillOf(r: DrillRow): DrillRecord {
  return {
    backupName: r.backup_name,
    passed: r.passed,
    skippedChecks: r.skipped_checks,
    backupAgeMs: Number(r.backup_age_ms),
    restoreMs: r.restore_ms ?? undefined,
    finishedAt: r.finished_at,
  };
}

/** The newest drill of each backup in a store. */
export async function lastDrills(db: Queryable, store: string): Promise<Map<string, DrillRecord>> {
  const { rows } = await db.query<DrillRow>(
    `SELECT DISTINCT ON (backup_name) backup_name, passed, skipped_checks, backup_age_ms, restore_ms, finished_at
       FROM drills WHERE store = $1 ORDER BY backup_name, finished_at DESC, id DESC`,
    [store],
  );
  return new Map(rows.map((r) => [r.backup_name, drillOf(r)]));
}

/** The env's newest drill, whatever its backup. */
export async function lastDrillOf(db: Queryable, env: string): Promise<DrillRecord | undefined> {
  const { rows } = await db.query<DrillRow>(
    `SELECT backup_name, passed, skipped_checks, backup_age_ms, restore_ms, finished_at
       FROM drills WHERE env = $1 ORDER BY finished_at DESC, id DESC LIMIT 1`,
    [env],
  );
  const r = rows[0];
  return r ? drillOf(r) : undefined;
}

export async function recordSnapshot(
  db: Queryable,
  snapshot: { id: string; env: string; instance: string },
): Promise<void> {
  await db.query('INSERT INTO rds_snapshots (id, env, instance) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [
    snapshot.id,
    snapshot.env,
    snapshot.instance,
  ]);
}

/** Lifeline's own RDS snapshots of an env that are not deleted, newest first. */
export async function snapshotsOf(
  db: Queryable,
  env: string,
): Promise<{ id: string; instance: string; createdAt: Date }[]> {
  const { rows } = await db.query<{ id: string; instance: string; created_at: Date }>(
    'SELECT id, instance, created_at FROM rds_snapshots WHERE env = $1 AND deleted_at IS NULL ORDER BY created_at DESC',
    [env],
  );
  return rows.map((r) => ({ id: r.id, instance: r.instance, createdAt: r.created_at }));
}

export async function markSnapshotDeleted(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE rds_snapshots SET deleted_at = clock_timestamp() WHERE id = $1', [id]);
}
