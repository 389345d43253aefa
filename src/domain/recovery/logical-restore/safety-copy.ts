// safetyBackup: the database the restore replaced, copied into the store the way the backup job takes a backup.
import { withDatabase } from '../../../shared/db/connection.js';
import { quoteIdent } from '../../../shared/db/sql.js';
import { PermanentError } from '../../../shared/errors.js';
import { formatSize } from '../../../shared/format.js';
import { RestoreFailedError } from '../../../pgtools/errors.js';
import { publishBackup, removeBackupLeftovers, takeBackupOf, type TakenBackup } from '../../backups/take.js';
import { begin, checkPlan, contextOf, guarded, namesOf, seconds, type Context } from './plan.js';
import type { LogicalRestorePlan, RestoreState, StepOutcome } from './plan.js';

/** Takes, checks and names the copy; whatever stops it, no unchecked copy stays under a backup name. */
async function takeSafetyCopy(ctx: Context, old: string): Promise<{ taken: TakenBackup; entries: number }> {
  const { plan } = ctx;
  let taken: TakenBackup | undefined;
  try {
    const options = { signal: plan.signal, tools: plan.tools };
    taken = await takeBackupOf(withDatabase(ctx.conn, old), ctx.scrub, plan.store, plan.safetyCopyName, options);
    const checked = await publishBackup(plan.store, taken, plan.targetUrl, options);
    return { taken, entries: checked.entries };
  } catch (err) {
    if (taken) await removeBackupLeftovers(plan.store, taken).catch(() => undefined);
    if (err instanceof PermanentError && !(err instanceof RestoreFailedError))
      throw new RestoreFailedError(err.message);
    throw err;
  }
}

/**
 * pg_dump -Fc of the previous database (<target>_old_<run>, set aside by swap) into the store as safetyCopyName, the
 * way the backup job takes a backup (take.ts): each table's rows counted in the dump's own snapshot, written under a
 * pending name, read back and checked, renamed, then its sidecar. The caller records it in the catalogue.
 * It runs after verify, not before the restore: until the swap the target is untouched, and from the swap on the
 * previous database itself is the way back (putBack renames it), so a copy taken first would only have delayed the
 * recovery (46-54 s for 1 GB, measured) and loaded the live database during an outage. The copy makes the way back
 * durable; cleanup drops the previous database only once it is in the store.
 */
export async function safetyBackup(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  checkPlan(plan);
  const s = begin(ctx, state);
  if (s.safetyCopy?.name === plan.safetyCopyName) {
    return {
      state: s,
      detail: `Safety copy ${s.safetyCopy.name} was already taken (${formatSize(s.safetyCopy.size)}).`,
    };
  }
  const { old } = namesOf(ctx.target, s.runId);
  if (!s.swapped || !s.verified) {
    throw new RestoreFailedError(
      `no safety copy yet: ${quoteIdent(ctx.target)} has not been replaced by a verified restore, ` +
        'so the previous database is not set aside',
    );
  }
  const started = Date.now();
  const what = `safety copy of the previous database ${quoteIdent(old)}`;
  const { taken, entries } = await guarded(ctx, what, () => takeSafetyCopy(ctx, old));
  const tables = Object.keys(taken.tableRows).length;
  const rows = Object.values(taken.tableRows).reduce((a, b) => a + b, 0);
  const { name, size, sha256, tableRows, durationMs } = taken;
  return {
    state: { ...s, safetyCopy: { name, size, sha256, tableRows, durationMs } },
    detail:
      `Safety copy of the database as it was before the restore: ${name} written to ${plan.store.location} ` +
      `and read back (${formatSize(size)}, sha256 ${sha256.slice(0, 12)}, ` +
      `${tables} table${tables === 1 ? '' : 's'}, ${rows.toLocaleString('en-US')} rows counted; ` +
      `pg_restore --list reads ${entries} entries) in ${seconds(Date.now() - started)}.`,
  };
}
