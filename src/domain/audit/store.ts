// The append-only audit trail: who asked for what, who approved, each step, each result. PostgreSQL refuses
// UPDATE, DELETE and TRUNCATE on it (migrations/002_recovery.sql).
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export type AuditAction =
  | 'requested'
  | 'refused'
  | 'planned'
  | 'approved'
  | 'rejected'
  | 'expired'
  | 'approval_refused'
  | 'not_permitted'
  | 'cancel_requested'
  | 'cancelled'
  | 'step_started'
  | 'step_succeeded'
  | 'step_failed'
  | 'step_interrupted'
  | 'succeeded'
  | 'failed'
  | 'backup_deleted'
  | 'snapshot_deleted'
  | 'drill'
  | 'api_call'
  | 'token_created'
  | 'token_revoked'
  | 'step_skipped'
  | 'step_retried'
  | 'step_done'
  | 'change'
  | 'abort_requested'
  | 'aborted'
  | 'undone'
  | 'dry_run';

export interface AuditEntry {
  readonly at: Date;
  readonly env: string | null;
  readonly job: number | null;
  /** The runbook run it is about (older rows and other entries: none). */
  readonly run?: number | null;
  readonly actor: string;
  readonly action: AuditAction;
  readonly detail: string;
}

export async function audit(
  db: Queryable,
  entry: {
    env?: string | undefined;
    job?: number | undefined;
    run?: number | undefined;
    actor: string;
    action: AuditAction;
    detail?: string;
  },
): Promise<void> {
  await db.query('INSERT INTO audit_log (env, job, run, actor, action, detail) VALUES ($1, $2, $3, $4, $5, $6)', [
    entry.env ?? null,
    entry.job ?? null,
    entry.run ?? null,
    entry.actor,
    entry.action,
    entry.detail ?? '',
  ]);
}

/** The newest entries first, optionally for one env. */
export async function latestAudit(db: Queryable, env: string | undefined, limit = 20): Promise<AuditEntry[]> {
  const { rows } = await db.query<AuditEntry>(
    `SELECT at, env, job, run, actor, action, detail FROM audit_log WHERE ($1::text IS NULL OR env = $1) ORDER BY id DESC LIMIT $2`,
    [env ?? null, limit],
  );
  return rows;
}

/** A run's entries, oldest first: its report's "what went wrong" reads them. */
export async function auditOfRun(db: Queryable, run: number): Promise<AuditEntry[]> {
  const { rows } = await db.query<AuditEntry>(
    'SELECT at, env, job, run, actor, action, detail FROM audit_log WHERE run = $1 ORDER BY id',
    [run],
  );
  return rows;
}
