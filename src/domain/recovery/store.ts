// Data access for recovery jobs and their steps.
import type pg from 'pg';
import { z } from 'zod';
import type { Db, DbClient } from '../../shared/db/pool.js';
import { fencedRow, releaseRowLease } from '../../shared/db/row-lease.js';
import type { Said } from '../../shared/text.js';
import type { JobParams, JobState, RecoveryJob, StepRecord } from './model.js';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

/** Outcomes and step details are stored as their parts, people apart from the text (jsonb). */
const saidSchema: z.ZodType<Said> = z.array(z.union([z.string(), z.object({ person: z.string() })]));

interface JobRow {
  number: number;
  kind: RecoveryJob['kind'];
  env: string;
  target: string;
  params: JobParams;
  requested_by: string;
  requested_in: string;
  response_url: string | null;
  state: JobState;
  needs_approval: boolean;
  plan: string | null;
  approval_channel: string | null;
  approval_ts: string | null;
  decided_by: string | null;
  decided_at: Date | null;
  expires_at: Date | null;
  cancel_requested_by: string | null;
  progress_channel: string | null;
  progress_ts: string | null;
  step_state: unknown;
  outcome: unknown;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

function toJob(r: JobRow): RecoveryJob {
  return {
    number: r.number,
    kind: r.kind,
    env: r.env,
    target: r.target,
    params: r.params,
    requestedBy: r.requested_by,
    requestedIn: r.requested_in,
    responseUrl: r.response_url ?? undefined,
    state: r.state,
    needsApproval: r.needs_approval,
    plan: r.plan ?? undefined,
    approval: r.approval_channel && r.approval_ts ? { channel: r.approval_channel, ts: r.approval_ts } : undefined,
    decidedBy: r.decided_by ?? undefined,
    decidedAt: r.decided_at ?? undefined,
    expiresAt: r.expires_at ?? undefined,
    cancelRequestedBy: r.cancel_requested_by ?? undefined,
    progress: r.progress_channel && r.progress_ts ? { channel: r.progress_channel, ts: r.progress_ts } : undefined,
    stepState: r.step_state,
    outcome: r.outcome === null ? undefined : saidSchema.parse(r.outcome),
    createdAt: r.created_at,
    startedAt: r.started_at ?? undefined,
    finishedAt: r.finished_at ?? undefined,
  };
}

export class TargetBusyError extends Error {
  constructor(readonly holder: RecoveryJob) {
    super(`target ${holder.target} is busy`);
  }
}

/** Inserts a job in `planning`; throws TargetBusyError naming the job that already holds the target. */
export async function insertJob(
  db: Queryable,
  input: {
    kind: RecoveryJob['kind'];
    env: string;
    target: string;
    params: JobParams;
    requestedBy: string;
    requestedIn: string;
    responseUrl: string | undefined;
    needsApproval: boolean;
  },
): Promise<RecoveryJob> {
  // Looking first keeps job numbers consecutive in the common case; the unique index settles a race.
  const busy = await activeJobForTarget(db, input.target);
  if (busy) throw new TargetBusyError(busy);
  const { rows } = await db.query<JobRow>(
    `INSERT INTO recovery_jobs (kind, env, target, params, requested_by, requested_in, response_url, state, needs_approval)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'planning', $8)
     ON CONFLICT (target) WHERE state IN ('planning', 'awaiting_approval', 'queued', 'running') DO NOTHING
     RETURNING *`,
    [
      input.kind,
      input.env,
      input.target,
      JSON.stringify(input.params),
      input.requestedBy,
      input.requestedIn,
      input.responseUrl ?? null,
      input.needsApproval,
    ],
  );
  if (rows[0]) return toJob(rows[0]);
  const holder = await activeJobForTarget(db, input.target);
  if (!holder) throw new Error(`could not create a job for ${input.target}; try again`);
  throw new TargetBusyError(holder);
}

export async function activeJobForTarget(db: Queryable, target: string): Promise<RecoveryJob | undefined> {
  const { rows } = await db.query<JobRow>(
    `SELECT * FROM recovery_jobs WHERE target = $1 AND state IN ('planning', 'awaiting_approval', 'queued', 'running')`,
    [target],
  );
  return rows[0] ? toJob(rows[0]) : undefined;
}

export async function getJob(db: Queryable, number: number, forUpdate = false): Promise<RecoveryJob | undefined> {
  const { rows } = await db.query<JobRow>(
    `SELECT * FROM recovery_jobs WHERE number = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [number],
  );
  return rows[0] ? toJob(rows[0]) : undefined;
}

/** The first job of this kind and env that this person asked for from this channel after job `after` (any state). */
export async function jobRequestedAfter(
  db: Queryable,
  after: number,
  job: { kind: RecoveryJob['kind']; env: string; requestedBy: string; requestedIn: string },
): Promise<RecoveryJob | undefined> {
  const { rows } = await db.query<JobRow>(
    `SELECT * FROM recovery_jobs WHERE number > $1 AND kind = $2 AND env = $3 AND requested_by = $4 AND requested_in = $5
     ORDER BY number LIMIT 1`,
    [after, job.kind, job.env, job.requestedBy, job.requestedIn],
  );
  return rows[0] ? toJob(rows[0]) : undefined;
}

/** The newest job's number (0 when there is none). */
export async function lastJobNumber(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ number: number | null }>('SELECT max(number) AS number FROM recovery_jobs');
  return rows[0]?.number ?? 0;
}

export async function activeJobs(db: Queryable): Promise<RecoveryJob[]> {
  const { rows } = await db.query<JobRow>(
    `SELECT * FROM recovery_jobs WHERE state IN ('planning', 'awaiting_approval', 'queued', 'running') ORDER BY number`,
  );
  return rows.map(toJob);
}

/** Moves a job between states only from the expected ones; returns undefined when it was not in any of them. */
export async function transition(
  db: Queryable,
  number: number,
  from: readonly JobState[],
  to: JobState,
  fields: Partial<Record<'decided_by' | 'cancel_requested_by' | 'plan', string>> & {
    outcome?: Said;
    expiresAt?: Date;
    decided?: boolean;
    started?: boolean;
    finished?: boolean;
  } = {},
): Promise<RecoveryJob | undefined> {
  const { rows } = await db.query<JobRow>(
    `UPDATE recovery_jobs SET state = $3,
        decided_by = coalesce($4, decided_by),
        decided_at = CASE WHEN $5 THEN clock_timestamp() ELSE decided_at END,
        cancel_requested_by = coalesce($6, cancel_requested_by),
        outcome = coalesce($7, outcome),
        plan = coalesce($8, plan),
        expires_at = coalesce($9, expires_at),
        started_at = CASE WHEN $10 THEN coalesce(started_at, clock_timestamp()) ELSE started_at END,
        finished_at = CASE WHEN $11 THEN clock_timestamp() ELSE finished_at END
      WHERE number = $1 AND state = ANY($2::text[]) RETURNING *`,
    [
      number,
      from,
      to,
      fields.decided_by ?? null,
      fields.decided ?? false,
      fields.cancel_requested_by ?? null,
      fields.outcome ? JSON.stringify(fields.outcome) : null,
      fields.plan ?? null,
      fields.expiresAt ?? null,
      fields.started ?? false,
      fields.finished ?? false,
    ],
  );
  return rows[0] ? toJob(rows[0]) : undefined;
}

export async function requestCancel(db: Queryable, number: number, by: string): Promise<void> {
  await db.query('UPDATE recovery_jobs SET cancel_requested_by = $2 WHERE number = $1', [number, by]);
}

export async function setApprovalMessage(db: Queryable, number: number, channel: string, ts: string): Promise<void> {
  await db.query('UPDATE recovery_jobs SET approval_channel = $2, approval_ts = $3 WHERE number = $1', [
    number,
    channel,
    ts,
  ]);
}

export async function setProgressMessage(db: Queryable, number: number, channel: string, ts: string): Promise<void> {
  await db.query('UPDATE recovery_jobs SET progress_channel = $2, progress_ts = $3 WHERE number = $1', [
    number,
    channel,
    ts,
  ]);
}

/**
 * Stores the plan, the step state it was made from (which backup, names, counts) and the next state in ONE
 * conditional update, so a duplicate plan trigger can never change what an already posted plan said: only the first
 * plan of a job in `planning` is stored, the other finds the job planned and changes nothing.
 */
export async function savePlan(
  db: Queryable,
  number: number,
  planned: {
    plan: string;
    stepState: object;
    next: 'awaiting_approval' | 'queued' | 'succeeded';
    needsApproval: boolean;
    expiresAt: Date | undefined;
    /** Set when planning found nothing to do and the job ends here. */
    outcome: Said | undefined;
  },
): Promise<RecoveryJob | undefined> {
  const { rows } = await db.query<JobRow>(
    `UPDATE recovery_jobs SET plan = $2, step_state = $3, state = $4, needs_approval = $5, expires_at = $6,
        outcome = coalesce($7, outcome),
        finished_at = CASE WHEN $4 = 'succeeded' THEN clock_timestamp() ELSE finished_at END
      WHERE number = $1 AND state = 'planning' RETURNING *`,
    [
      number,
      planned.plan,
      JSON.stringify(planned.stepState),
      planned.next,
      planned.needsApproval,
      planned.expiresAt ?? null,
      planned.outcome ? JSON.stringify(planned.outcome) : null,
    ],
  );
  return rows[0] ? toJob(rows[0]) : undefined;
}

export async function saveStepState(db: Queryable, number: number, state: object): Promise<void> {
  await db.query('UPDATE recovery_jobs SET step_state = $2 WHERE number = $1', [number, JSON.stringify(state)]);
}

export async function steps(db: Queryable, job: number): Promise<StepRecord[]> {
  const { rows } = await db.query<{
    step_index: number;
    step: string | null;
    name: string;
    destructive: boolean;
    state: StepRecord['state'];
    started_at: Date;
    finished_at: Date | null;
    detail: unknown;
  }>('SELECT * FROM recovery_steps WHERE job = $1 ORDER BY step_index', [job]);
  return rows.map((r) => ({
    index: r.step_index,
    step: r.step ?? undefined,
    name: r.name,
    destructive: r.destructive,
    state: r.state,
    startedAt: r.started_at,
    finishedAt: r.finished_at ?? undefined,
    detail: saidSchema.parse(r.detail),
  }));
}

export async function startStep(
  db: Queryable,
  job: number,
  step: { index: number; step: string; name: string; destructive: boolean; interruptible: boolean },
): Promise<void> {
  await db.query(
    `INSERT INTO recovery_steps (job, step_index, step, name, destructive, interruptible, state)
     VALUES ($1, $2, $3, $4, $5, $6, 'running')
     ON CONFLICT (job, step_index) DO UPDATE SET state = 'running', started_at = clock_timestamp(), finished_at = NULL,
       detail = '[]', interruptible = EXCLUDED.interruptible`,
    [job, step.index, step.step, step.name, step.destructive, step.interruptible],
  );
}

/** Forgets a step that was handed back before it changed anything, so the next worker runs it as if anew. */
export async function forgetStep(db: Queryable, job: number, index: number): Promise<void> {
  await db.query(`DELETE FROM recovery_steps WHERE job = $1 AND step_index = $2 AND state = 'running'`, [job, index]);
}

/** The step a running job is inside of, if any. */
export async function runningStep(
  db: Queryable,
  job: number,
): Promise<{ name: string; interruptible: boolean } | undefined> {
  const { rows } = await db.query<{ name: string; interruptible: boolean }>(
    `SELECT name, interruptible FROM recovery_steps WHERE job = $1 AND state = 'running'
      ORDER BY step_index DESC LIMIT 1`,
    [job],
  );
  return rows[0];
}

export async function finishStep(
  db: Queryable,
  job: number,
  index: number,
  state: 'succeeded' | 'failed',
  detail: Said,
): Promise<void> {
  await db.query(
    `UPDATE recovery_steps SET state = $3, finished_at = clock_timestamp(), detail = $4 WHERE job = $1 AND step_index = $2`,
    [job, index, state, JSON.stringify(detail)],
  );
}

/** Jobs awaiting approval whose time ran out. */
export async function expiredApprovals(db: Queryable): Promise<number[]> {
  const { rows } = await db.query<{ number: number }>(
    `SELECT number FROM recovery_jobs WHERE state = 'awaiting_approval' AND expires_at < clock_timestamp()`,
  );
  return rows.map((r) => r.number);
}

/** Jobs whose next trigger may have been lost (Redis failover, every worker down): the reconciler re-adds it. */
export async function jobsToReconcile(
  db: Queryable,
): Promise<{ number: number; state: JobState; expiresAt: Date | null }[]> {
  const { rows } = await db.query<{ number: number; state: JobState; expires_at: Date | null }>(
    `SELECT number, state, expires_at FROM recovery_jobs WHERE state IN ('planning', 'awaiting_approval', 'queued', 'running')`,
  );
  return rows.map((r) => ({ number: r.number, state: r.state, expiresAt: r.expires_at }));
}

// ---- leases -------------------------------------------------------------------------------------------------------

/** Who runs a job: a worker's unique owner id and the take-over count when it took the job. */
export interface Lease {
  readonly job: number;
  readonly owner: string;
  readonly epoch: number;
}

/** The job's lease is no longer this worker's: somebody else took it, or it ran out. Nothing may be written. */
export class LeaseLostError extends Error {
  constructor(lease: Lease) {
    super(`JOB-${lease.job}: this worker no longer holds the job's lease (epoch ${lease.epoch})`);
    this.name = 'LeaseLostError';
  }
}

/**
 * Takes the lease of a job that may run (queued, or running with nobody's live lease), marking it running, in one
 * conditional update: of any number of workers trying at once, one gets it. lease_until is the server's clock plus
 * `leaseMs`; the epoch goes up, which fences out every write of the previous owner.
 */
export async function takeLease(
  db: Queryable,
  job: number,
  owner: string,
  leaseMs: number,
): Promise<Lease | undefined> {
  const { rows } = await db.query<{ lease_epoch: string }>(
    `UPDATE recovery_jobs SET lease_owner = $2, lease_until = clock_timestamp() + $3 * interval '1 millisecond',
        lease_epoch = lease_epoch + 1, state = 'running', started_at = coalesce(started_at, clock_timestamp())
      WHERE number = $1 AND state IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < clock_timestamp())
      RETURNING lease_epoch`,
    [job, owner, leaseMs],
  );
  return rows[0] ? { job, owner, epoch: Number(rows[0].lease_epoch) } : undefined;
}

/**
 * Extends a lease this worker still holds (and has not let run out); undefined when it does not. Also says whether
 * somebody asked to cancel the job, so the heartbeat is how the runner hears of a cancel.
 */
export async function renewLease(
  db: Queryable,
  lease: Lease,
  leaseMs: number,
): Promise<{ cancelRequestedBy: string | undefined } | undefined> {
  const { rows } = await db.query<{ cancel_requested_by: string | null }>(
    `UPDATE recovery_jobs SET lease_until = clock_timestamp() + $4 * interval '1 millisecond'
      WHERE number = $1 AND lease_owner = $2 AND lease_epoch = $3 AND lease_until > clock_timestamp()
      RETURNING cancel_requested_by`,
    [lease.job, lease.owner, lease.epoch, leaseMs],
  );
  return rows[0] ? { cancelRequestedBy: rows[0].cancel_requested_by ?? undefined } : undefined;
}

/** Gives a lease up (the job ended, or is handed back on shutdown): the next worker need not wait for it to run out. */
export async function releaseLease(db: Queryable, lease: Lease): Promise<void> {
  await releaseRowLease(db, 'recovery_jobs', { number: lease.job, owner: lease.owner, epoch: lease.epoch });
}

/** Every write a runner makes for a job goes through here (see fencedRow). */
export async function fenced<T>(db: Db, lease: Lease, work: (tx: DbClient) => Promise<T>): Promise<T> {
  const row = { number: lease.job, owner: lease.owner, epoch: lease.epoch };
  return fencedRow(db, 'recovery_jobs', row, () => new LeaseLostError(lease), work);
}

/** Jobs a worker may take now: queued, or running under a lease that ran out (its worker died or was cut off). */
export async function jobsWithoutLiveLease(db: Queryable): Promise<{ number: number; epoch: number }[]> {
  const { rows } = await db.query<{ number: number; lease_epoch: string }>(
    `SELECT number, lease_epoch FROM recovery_jobs
      WHERE state IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < clock_timestamp())
      ORDER BY number`,
  );
  return rows.map((r) => ({ number: r.number, epoch: Number(r.lease_epoch) }));
}
