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
  | 'token_revoked';

export interface AuditEntry {
  readonly at: Date;
  readonly env: string | null;
  readonly job: number | null;
  readonly actor: string;
  readonly action: AuditAction;
  readonly detail: string;
}

export async function audit(
  db: Queryable,
  entry: { env?: string | undefined; job?: number | undefined; actor: string; action: AuditAction; detail?: string },
): Promise<void> {
  await db.query('INSERT INTO audit_log (env, job, actor, action, detail) VALUES ($1, $2, $3, $4, $5)', [
    entry.env ?? null,
    entry.job ?? null,
    entry.actor,
    entry.action,
    entry.detail ?? '',
  ]);
}

/** The newest entries first, optionally for one env. */
export async function latestAudit(db: Queryable, env: string | undefined, limit = 20): Promise<AuditEntry[]> {
  const { rows } = await db.query<AuditEntry>(
    `SELECT at, env, job, actor, action, detail FROM audit_log WHERE ($1::text IS NULL OR env = $1) ORDER BY id DESC LIMIT $2`,
    [env ?? null, limit],
  );
  return rows;
}
