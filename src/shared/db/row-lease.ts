// What leased rows share (recovery_jobs, runbook_runs): a row carries lease_owner, lease_until and lease_epoch; a
// worker holds it while lease_until is ahead of the server's clock; every write it makes is fenced on it.
import type pg from 'pg';
import { inTransaction, type Db, type DbClient } from './pool.js';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

/** The tables whose rows are leased to one worker at a time, by their `number`. */
export type LeasedTable = 'recovery_jobs' | 'runbook_runs';

export interface RowLease {
  readonly number: number;
  readonly owner: string;
  readonly epoch: number;
}

/** Gives a lease up: the next worker need not wait for it to run out. A lease no longer held changes nothing. */
export async function releaseRowLease(db: Queryable, table: LeasedTable, lease: RowLease): Promise<void> {
  await db.query(
    `UPDATE ${table} SET lease_owner = NULL, lease_until = NULL
      WHERE number = $1 AND lease_owner = $2 AND lease_epoch = $3`,
    [lease.number, lease.owner, lease.epoch],
  );
}

/**
 * Runs `work` in a transaction that first locks the row and checks that this worker still holds a live lease, else
 * throws `lost()`: a worker that lost its lease (cut off, and another took over) can no longer change the row. The row
 * lock orders the write against a concurrent take-over.
 */
export async function fencedRow<T>(
  db: Db,
  table: LeasedTable,
  lease: RowLease,
  lost: () => Error,
  work: (tx: DbClient) => Promise<T>,
): Promise<T> {
  return inTransaction(db, async (tx) => {
    const { rowCount } = await tx.query(
      `SELECT 1 FROM ${table}
        WHERE number = $1 AND lease_owner = $2 AND lease_epoch = $3 AND lease_until > clock_timestamp()
        FOR UPDATE`,
      [lease.number, lease.owner, lease.epoch],
    );
    if (rowCount === 0) throw lost();
    return work(tx);
  });
}
