// Data access for runbook runs and their steps, and the lease that fences a run to one worker.
import type pg from 'pg';
import { z } from 'zod';
import type { Db, DbClient } from '../../shared/db/pool.js';
import { fencedRow, releaseRowLease } from '../../shared/db/row-lease.js';
import type { Said } from '../../shared/text.js';
import type { Renewed } from '../recovery/lease.js';
import type { Approval, Run, RunState, RunStep, RunStepState } from './model.js';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

const saidSchema: z.ZodType<Said> = z.array(z.union([z.string(), z.object({ person: z.string() })]));
const approvalsSchema: z.ZodType<Approval[]> = z.array(
  z.object({ by: z.string(), at: z.string(), step: z.number().nullable() }),
);

interface RunRow {
  number: number;
  runbook: string;
  version: string;
  title: string;
  approval: Run['approval'];
  requested_by: string;
  requested_in: string;
  response_url: string | null;
  dry_run: boolean;
  state: RunState;
  approvals: unknown;
  expires_at: Date | null;
  decided_by: string | null;
  progress_channel: string | null;
  progress_ts: string | null;
  outcome: unknown;
  created_at: Date;
  started_at: Date | null;
  recovered_at: Date | null;
  finished_at: Date | null;
}

function toRun(r: RunRow): Run {
  return {
    number: r.number,
    runbook: r.runbook,
    version: r.version,
    title: r.title,
    approval: r.approval,
    requestedBy: r.requested_by,
    requestedIn: r.requested_in,
    responseUrl: r.response_url ?? undefined,
    dryRun: r.dry_run,
    state: r.state,
    approvals: approvalsSchema.parse(r.approvals),
    expiresAt: r.expires_at ?? undefined,
    decidedBy: r.decided_by ?? undefined,
    progress: r.progress_channel && r.progress_ts ? { channel: r.progress_channel, ts: r.progress_ts } : undefined,
    outcome: r.outcome === null ? undefined : saidSchema.parse(r.outcome),
    createdAt: r.created_at,
    startedAt: r.started_at ?? undefined,
    recoveredAt: r.recovered_at ?? undefined,
    finishedAt: r.finished_at ?? undefined,
  };
}

interface StepRow {
  step_index: number;
  id: string;
  kind: string;
  params: unknown;
  state: RunStepState;
  attempts: number;
  started_at: Date | null;
  finished_at: Date | null;
  detail: string;
  missing: string[];
  kind_state: unknown;
  outputs: Record<string, string> | null;
  data_age_ms: string | null;
  acted_by: string | null;
  undone: string | null;
}

function toStep(r: StepRow): RunStep {
  return {
    index: r.step_index,
    id: r.id,
    kind: r.kind,
    params: r.params,
    state: r.state,
    attempts: r.attempts,
    startedAt: r.started_at ?? undefined,
    finishedAt: r.finished_at ?? undefined,
    detail: r.detail,
    missing: r.missing,
    kindState: r.kind_state,
    outputs: r.outputs ?? undefined,
    dataAgeMs: r.data_age_ms === null ? undefined : Number(r.data_age_ms),
    actedBy: r.acted_by ?? undefined,
    undone: r.undone ?? undefined,
  };
}

const OPEN = `state IN ('awaiting_approval', 'running', 'stopped', 'aborting')`;

/** Another run of the same runbook is open: it names that run. */
export class RunbookBusyError extends Error {
  constructor(readonly holder: Run) {
    super(`runbook ${holder.runbook} has an open run`);
  }
}

export interface NewRun {
  readonly runbook: string;
  readonly version: string;
  readonly title: string;
  readonly approval: Run['approval'];
  readonly requestedBy: string;
  readonly requestedIn: string;
  readonly responseUrl: string | undefined;
  readonly dryRun: boolean;
  readonly state: 'awaiting_approval' | 'running';
  readonly expiresAt: Date | undefined;
  readonly steps: readonly { readonly index: number; readonly id: string; readonly kind: string; params: unknown }[];
}

/** Records a run and its steps; throws RunbookBusyError when the runbook has an open run (the index decides). */
export async function insertRun(tx: Queryable, input: NewRun): Promise<Run> {
  const { rows } = await tx.query<RunRow>(
    `INSERT INTO runbook_runs (runbook, version, title, approval, requested_by, requested_in, response_url, dry_run,
        state, expires_at, started_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $8 THEN clock_timestamp() END)
     ON CONFLICT (runbook) WHERE ${OPEN} DO NOTHING
     RETURNING *`,
    [
      input.runbook,
      input.version,
      input.title,
      input.approval,
      input.requestedBy,
      input.requestedIn,
      input.responseUrl ?? null,
      input.dryRun,
      input.state,
      input.expiresAt ?? null,
    ],
  );
  const row = rows[0];
  if (!row) {
    const holder = await openRunOf(tx, input.runbook);
    if (!holder) throw new Error(`could not record a run of ${input.runbook}; try again`);
    throw new RunbookBusyError(holder);
  }
  for (const step of input.steps) {
    await tx.query(`INSERT INTO runbook_steps (run, step_index, id, kind, params) VALUES ($1, $2, $3, $4, $5)`, [
      row.number,
      step.index,
      step.id,
      step.kind,
      JSON.stringify(step.params),
    ]);
  }
  return toRun(row);
}

export async function openRunOf(db: Queryable, runbook: string): Promise<Run | undefined> {
  const { rows } = await db.query<RunRow>(`SELECT * FROM runbook_runs WHERE runbook = $1 AND ${OPEN}`, [runbook]);
  return rows[0] ? toRun(rows[0]) : undefined;
}

export async function getRun(db: Queryable, number: number): Promise<Run | undefined> {
  const { rows } = await db.query<RunRow>('SELECT * FROM runbook_runs WHERE number = $1', [number]);
  return rows[0] ? toRun(rows[0]) : undefined;
}

/** Each runbook's newest run, for `/dr runbook list`. */
export async function latestRuns(db: Queryable): Promise<Map<string, Run>> {
  const { rows } = await db.query<RunRow>(
    'SELECT DISTINCT ON (runbook) * FROM runbook_runs ORDER BY runbook, number DESC',
  );
  return new Map(rows.map((r) => [r.runbook, toRun(r)]));
}

export async function steps(db: Queryable, run: number): Promise<RunStep[]> {
  const { rows } = await db.query<StepRow>('SELECT * FROM runbook_steps WHERE run = $1 ORDER BY step_index', [run]);
  return rows.map(toStep);
}

export interface RunFields {
  readonly decidedBy?: string;
  readonly approval?: Approval;
  readonly expiresAt?: Date | null;
  readonly outcome?: Said;
  readonly started?: boolean;
  readonly recovered?: boolean;
  readonly finished?: boolean;
}

/** Moves a run between states only from the expected ones; undefined when it was in none of them. */
export async function transition(
  db: Queryable,
  number: number,
  from: readonly RunState[],
  to: RunState,
  fields: RunFields = {},
): Promise<Run | undefined> {
  const { rows } = await db.query<RunRow>(
    `UPDATE runbook_runs SET state = $3,
        decided_by = coalesce($4, decided_by),
        approvals = CASE WHEN $5::jsonb IS NULL THEN approvals ELSE approvals || $5::jsonb END,
        expires_at = CASE WHEN $6 THEN $7::timestamptz ELSE expires_at END,
        outcome = coalesce($8, outcome),
        started_at = CASE WHEN $9 THEN coalesce(started_at, clock_timestamp()) ELSE started_at END,
        recovered_at = CASE WHEN $10 THEN clock_timestamp() ELSE recovered_at END,
        finished_at = CASE WHEN $11 THEN clock_timestamp() ELSE finished_at END
      WHERE number = $1 AND state = ANY($2::text[]) RETURNING *`,
    [
      number,
      from,
      to,
      fields.decidedBy ?? null,
      fields.approval ? JSON.stringify([fields.approval]) : null,
      fields.expiresAt !== undefined,
      fields.expiresAt ?? null,
      fields.outcome ? JSON.stringify(fields.outcome) : null,
      fields.started ?? false,
      fields.recovered ?? false,
      fields.finished ?? false,
    ],
  );
  return rows[0] ? toRun(rows[0]) : undefined;
}

export async function setProgressMessage(db: Queryable, number: number, channel: string, ts: string): Promise<void> {
  await db.query('UPDATE runbook_runs SET progress_channel = $2, progress_ts = $3 WHERE number = $1', [
    number,
    channel,
    ts,
  ]);
}

export interface StepFields {
  readonly state?: RunStepState;
  /** Counts a new attempt and sets started_at (and clears finished_at, unless `finished` too: a dry run's plan). */
  readonly newAttempt?: boolean;
  readonly finished?: boolean;
  readonly detail?: string;
  readonly missing?: readonly string[];
  readonly kindState?: object;
  readonly outputs?: Readonly<Record<string, string>>;
  readonly dataAgeMs?: number;
  readonly actedBy?: string;
  readonly undone?: string;
}

/** Changes a step, only while it is in one of `from` when given; false when it was not. */
export async function updateStep(
  db: Queryable,
  run: number,
  index: number,
  fields: StepFields,
  from?: readonly RunStepState[],
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE runbook_steps SET state = coalesce($3, state),
        attempts = attempts + CASE WHEN $4 THEN 1 ELSE 0 END,
        started_at = CASE WHEN $4 THEN clock_timestamp() ELSE started_at END,
        finished_at = CASE WHEN $5 THEN clock_timestamp() WHEN $4 THEN NULL ELSE finished_at END,
        detail = coalesce($6, detail),
        missing = coalesce($7, missing),
        kind_state = coalesce($8, kind_state),
        outputs = coalesce($9, outputs),
        data_age_ms = coalesce($10, data_age_ms),
        acted_by = coalesce($11, acted_by),
        undone = coalesce($12, undone)
      WHERE run = $1 AND step_index = $2 AND ($13::text[] IS NULL OR state = ANY($13::text[]))`,
    [
      run,
      index,
      fields.state ?? null,
      fields.newAttempt ?? false,
      fields.finished ?? false,
      fields.detail ?? null,
      fields.missing ? JSON.stringify(fields.missing) : null,
      fields.kindState ? JSON.stringify(fields.kindState) : null,
      fields.outputs ? JSON.stringify(fields.outputs) : null,
      fields.dataAgeMs ?? null,
      fields.actedBy ?? null,
      fields.undone ?? null,
      from ?? null,
    ],
  );
  return rowCount === 1;
}

/** Runs whose next trigger may have been lost: the reconciler re-adds it. */
export async function runsToReconcile(
  db: Queryable,
): Promise<{ number: number; state: RunState; expiresAt: Date | undefined }[]> {
  const { rows } = await db.query<{ number: number; state: RunState; expires_at: Date | null }>(
    `SELECT number, state, expires_at FROM runbook_runs
      WHERE state = 'awaiting_approval'
         OR (state IN ('running', 'aborting') AND (lease_until IS NULL OR lease_until < clock_timestamp()))
      ORDER BY number`,
  );
  return rows.map((r) => ({ number: r.number, state: r.state, expiresAt: r.expires_at ?? undefined }));
}

// ---- leases -------------------------------------------------------------------------------------------------------

export interface RunLease {
  readonly run: number;
  readonly owner: string;
  readonly epoch: number;
}

export class RunLeaseLostError extends Error {
  constructor(lease: RunLease) {
    super(`RUN-${lease.run}: this worker no longer holds the run's lease (epoch ${lease.epoch})`);
    this.name = 'RunLeaseLostError';
  }
}

/** Takes the lease of a run a worker may carry on (running or aborting, nobody's live lease), as runner.ts does. */
export async function takeLease(
  db: Queryable,
  run: number,
  owner: string,
  leaseMs: number,
): Promise<RunLease | undefined> {
  const { rows } = await db.query<{ lease_epoch: string }>(
    `UPDATE runbook_runs SET lease_owner = $2, lease_until = clock_timestamp() + $3 * interval '1 millisecond',
        lease_epoch = lease_epoch + 1
      WHERE number = $1 AND state IN ('running', 'aborting')
        AND (lease_until IS NULL OR lease_until < clock_timestamp())
      RETURNING lease_epoch`,
    [run, owner, leaseMs],
  );
  return rows[0] ? { run, owner, epoch: Number(rows[0].lease_epoch) } : undefined;
}

export async function renewLease(db: Queryable, lease: RunLease, leaseMs: number): Promise<Renewed> {
  const { rowCount } = await db.query(
    `UPDATE runbook_runs SET lease_until = clock_timestamp() + $4 * interval '1 millisecond'
      WHERE number = $1 AND lease_owner = $2 AND lease_epoch = $3 AND lease_until > clock_timestamp()`,
    [lease.run, lease.owner, lease.epoch, leaseMs],
  );
  return rowCount === 1 ? { cancelRequestedBy: undefined } : undefined;
}

/** Gives the lease up; in the transaction that stops the run to wait, so a click's trigger finds it free. */
export async function releaseLease(db: Queryable, lease: RunLease): Promise<void> {
  await releaseRowLease(db, 'runbook_runs', { number: lease.run, owner: lease.owner, epoch: lease.epoch });
}

/** Every write the engine makes for a run goes through here (see fencedRow). */
export async function fenced<T>(db: Db, lease: RunLease, work: (tx: DbClient) => Promise<T>): Promise<T> {
  const row = { number: lease.run, owner: lease.owner, epoch: lease.epoch };
  return fencedRow(db, 'runbook_runs', row, () => new RunLeaseLostError(lease), work);
}
