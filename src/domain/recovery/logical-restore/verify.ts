// verify and analyzeTarget: the checks and the statistics of the swapped-in database.
import { messageOf } from '../../../shared/errors.js';
import { quoteIdent } from '../../../shared/db/sql.js';
import { AbortError, RestoreFailedError, throwIfAborted } from '../../../pgtools/errors.js';
import { analyzeDatabase } from '../../../pgtools/restore-fresh.js';
import { runQueries, verifiedLine, VerifyFailedError, type VerifyResult } from '../../../pgtools/verify.js';
import { begin, contextOf, seconds, type LogicalRestorePlan, type RestoreState, type StepOutcome } from './plan.js';

/** Runs each verify query on the (new) target; throws VerifyFailedError (with every result) when any fails. */
export async function verify(
  plan: LogicalRestorePlan,
  state?: RestoreState,
): Promise<StepOutcome & { results: VerifyResult[] }> {
  const ctx = contextOf(plan);
  throwIfAborted(plan.signal, 'verification');
  const s = begin(ctx, state);
  const target = quoteIdent(ctx.target);
  if (!s.swapped) throw new RestoreFailedError(`nothing to verify: the restored database has not replaced ${target}`);
  const { results, failures } = await runQueries(ctx.conn, plan.verify, ctx.scrub, plan.signal);
  const lines = results.map(verifiedLine).join('; ');
  if (failures > 0) {
    const message = `verification of ${target} failed (${failures} of ${results.length} queries): ${lines}`;
    throw new VerifyFailedError(message, results);
  }
  return {
    state: { ...s, verified: true },
    detail: results.length > 0 ? `Verified ${target}: ${lines}.` : `No verify queries are configured for ${target}.`,
    results,
  };
}

/**
 * ANALYZE of the swapped-in database. It runs after verify, not before the swap: a restore gets no statistics from
 * the dump, but the queries right after the swap plan well enough on defaults, autovacuum would analyze within a
 * minute anyway, and the 0.6 s per GB it took before the swap was 5% of the time to recovery. It never fails the
 * job (the restore stands without statistics): a failure is reported in the detail.
 */
export async function analyzeTarget(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  const s = begin(ctx, state);
  const target = quoteIdent(ctx.target);
  if (!s.swapped) return { state: s, detail: `Nothing to analyze: the restored database has not replaced ${target}.` };
  const started = Date.now();
  try {
    const tables = await analyzeDatabase(ctx.conn, plan.parallelJobs, plan.signal);
    const took = seconds(Date.now() - started);
    return { state: s, detail: `${tables} table${tables === 1 ? '' : 's'} of ${target} analyzed in ${took}.` };
  } catch (err) {
    if (err instanceof AbortError) throw err;
    const detail = `ANALYZE failed (${ctx.scrub(messageOf(err))}); autovacuum will gather the statistics instead.`;
    return { state: s, detail };
  }
}
