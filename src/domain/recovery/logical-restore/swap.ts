// swap and putBack: the restored database takes the target's name, and the previous one can take it back.
import { quoteIdent } from '../../../shared/db/sql.js';
import { RestoreFailedError, throwIfAborted } from '../../../pgtools/errors.js';
import { allowConnections, existing, type Maintenance } from '../../../pgtools/maintenance.js';
import { exchange } from '../../../pgtools/swap.js';
import { begin, contextOf, dropOwn, guarded, namesOf, withServer } from './plan.js';
import type { Context, LogicalRestorePlan, RestoreState, RunState, StepOutcome } from './plan.js';

/**
 * Ends the other sessions on the target and, in one transaction, renames the target to <target>_old_<run> and the
 * fresh database to the target's name. Run from the server's maintenance database.
 */
export async function swap(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  throwIfAborted(plan.signal, 'the swap');
  const s = begin(ctx, state);
  const { fresh, old } = namesOf(ctx.target, s.runId);
  const target = quoteIdent(ctx.target);
  return guarded(ctx, `cannot swap the restored database into place`, () =>
    withServer(ctx, async (m) => {
      const found = await existing(m.client, [ctx.target, fresh, old]);
      if (!found.has(fresh) && found.has(old) && found.has(ctx.target)) {
        const detail = `${target} is already the restored database (the previous one is ${quoteIdent(old)}).`;
        return { state: { ...s, swapped: true }, detail };
      }
      if (!found.has(fresh)) {
        throw new RestoreFailedError(
          `there is no restored database ${quoteIdent(fresh)} to swap in; run the restore step first`,
        );
      }
      if (!s.restored) {
        throw new RestoreFailedError(
          `${quoteIdent(fresh)} exists but its restore did not finish; run the restore step again`,
        );
      }
      if (found.has(old)) throw new RestoreFailedError(`${quoteIdent(old)} already exists; refusing to overwrite it`);
      if (!found.has(ctx.target)) throw new RestoreFailedError(`the target ${target} no longer exists`);
      const ended = await exchange(ctx.conn, m, { from: ctx.target, aside: old, into: fresh }, plan.signal);
      const sessions = ended > 0 ? ` (${ended} open session${ended === 1 ? '' : 's'} ended)` : '';
      return {
        state: { ...s, swapped: true, putBack: false },
        detail:
          `${target} is now the restored database; ` +
          `the previous one is kept as ${quoteIdent(old)} until cleanup${sessions}.`,
      };
    }),
  );
}

/** The previous database gets the target's name back; returns what happened, for the detail. */
async function returnPrevious(ctx: Context, m: Maintenance, s: RunState, found: Set<string>): Promise<string> {
  const { old, failed } = namesOf(ctx.target, s.runId);
  const target = quoteIdent(ctx.target);
  if (found.has(old)) {
    if (!found.has(ctx.target)) {
      // Only the old one is left (the restored one was dropped by hand, say): just rename it back.
      await m.client.query(`ALTER DATABASE ${quoteIdent(old)} RENAME TO ${target}`);
    } else {
      if (found.has(failed)) await dropOwn(ctx, m, failed, s.runId);
      await allowConnections(m, old);
      // Here `from` is the restored database under the target's name; `into` is the previous one.
      await exchange(ctx.conn, m, { from: ctx.target, aside: failed, into: old }, ctx.plan.signal);
    }
    return `${target} is the database from before the restore again`;
  }
  if (s.swapped && !found.has(failed)) {
    throw new RestoreFailedError(`the previous database ${quoteIdent(old)} is gone; ${target} stays the restored one`);
  }
  return s.swapped || s.putBack || found.has(failed)
    ? `${target} was already put back`
    : `${target} was never replaced`;
}

/** Undoes swap: the restored database becomes <target>_failed_<run> and is dropped; the previous one is the target. */
export async function putBack(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  const s = begin(ctx, state);
  const { fresh, old, failed } = namesOf(ctx.target, s.runId);
  return guarded(ctx, `cannot put the previous database back`, () =>
    withServer(ctx, async (m) => {
      const found = await existing(m.client, [ctx.target, fresh, old, failed]);
      const action = await returnPrevious(ctx, m, s, found);
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
      const tail =
        leftovers.length > 0
          ? `; ${leftovers.join(', ')} could not be dropped yet (cleanup retries)`
          : '; the restored copy was dropped';
      return { state: { ...s, swapped: false, verified: false, putBack: true }, detail: `${action}${tail}.` };
    }),
  );
}
