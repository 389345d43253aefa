// restoreIntoFresh: the backup restored completely into a new database beside the target, which is not touched.
import { withDatabase } from '../../../shared/db/connection.js';
import { quoteIdent } from '../../../shared/db/sql.js';
import { throwIfAborted } from '../../../pgtools/errors.js';
import { existing } from '../../../pgtools/maintenance.js';
import { restoreArchive, restorePlainSql } from '../../../pgtools/restore-fresh.js';
import { createDatabaseLike, readDatabaseProperties } from '../../../pgtools/settings.js';
import { checkLocal, fetchBackup } from './local-copy.js';
import { begin, checkPlan, contextOf, dropOwn, failure, guarded, namesOf, seconds, withServer } from './plan.js';
import type { Context, LogicalRestorePlan, RestoreState, RunState, StepOutcome } from './plan.js';

/**
 * Creates the fresh database like the target (or finds that an earlier attempt got further). Returns what of the
 * target's settings could not be copied, or how far an earlier attempt already got.
 */
function prepareFresh(ctx: Context, s: RunState): Promise<string[] | 'swapped' | 'restored'> {
  const { fresh, old } = namesOf(ctx.target, s.runId);
  return guarded(ctx, `cannot prepare fresh database ${quoteIdent(fresh)}`, () =>
    withServer(ctx, async (m) => {
      const found = await existing(m.client, [fresh, old]);
      if (found.has(old) && !found.has(fresh)) return 'swapped' as const;
      if (s.restored && found.has(fresh)) return 'restored' as const;
      // A leftover of an attempt that did not finish: its contents cannot be trusted.
      if (found.has(fresh)) await dropOwn(ctx, m, fresh, s.runId);
      const properties = await readDatabaseProperties(m, ctx.target);
      return createDatabaseLike(m, fresh, properties);
    }),
  );
}

/** Fetches and checks the backup again when this worker has not got it yet, then restores it into `fresh`. */
async function fillFresh(ctx: Context, s: RunState, fresh: string): Promise<RunState> {
  const { plan } = ctx;
  // On another worker than preflight's, the file is not here yet: fetch it again (its hash must match).
  let state = (await fetchBackup(ctx, s)).state;
  if (!state.localChecked) state = (await checkLocal(ctx, state)).state;
  const file = state.localFile ?? '';
  const run = { conn: withDatabase(ctx.conn, fresh), tools: plan.tools, signal: plan.signal, scrub: ctx.scrub };
  if (plan.format === 'custom') await restoreArchive(run, file, plan.parallelJobs);
  else await restorePlainSql(run, file, plan.backupName);
  return state;
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
  const { fresh } = namesOf(ctx.target, s.runId);
  const replaced = `The restored database already replaced ${quoteIdent(ctx.target)}.`;
  if (s.swapped) return { state: s, detail: replaced };

  const skipped = await prepareFresh(ctx, s);
  if (skipped === 'swapped') return { state: s, detail: replaced };
  if (skipped === 'restored') return { state: s, detail: `The backup was already restored into ${quoteIdent(fresh)}.` };

  const started = Date.now();
  try {
    s = await fillFresh(ctx, s, fresh);
  } catch (err) {
    const runId = s.runId;
    const dropped = await withServer(ctx, (m) => dropOwn(ctx, m, fresh, runId)).then(
      () => true,
      () => false,
    );
    const leftover = dropped ? '' : ` (${quoteIdent(fresh)} could not be dropped yet; cleanup will retry)`;
    const untouched = `${quoteIdent(ctx.target)} was not touched`;
    const what = `restore of ${plan.backupName} into a fresh database failed; ${untouched}`;
    throw failure(ctx, `${what}${leftover}`, err);
  }
  const took = seconds(Date.now() - started);
  const how = plan.format === 'custom' ? `pg_restore -j ${plan.parallelJobs}` : 'gunzip | psql';
  const notes = skipped.length > 0 ? ` Not copied from the target (no right to): ${skipped.join(', ')}.` : '';
  return {
    state: { ...s, restored: true },
    detail: `Restored ${plan.backupName} into ${quoteIdent(fresh)} with ${how} in ${took}.${notes}`,
  };
}
