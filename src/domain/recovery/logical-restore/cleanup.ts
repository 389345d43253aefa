// cleanup: the run's leftovers go, but the previous database only once the way back no longer needs it.
import { rm, stat } from 'node:fs/promises';
import { quoteIdent } from '../../../shared/db/sql.js';
import { allowConnections, existing, type Maintenance } from '../../../pgtools/maintenance.js';
import { begin, contextOf, dropOwn, guarded, localDirOf, namesOf, withServer } from './plan.js';
import type { Context, LogicalRestorePlan, RestoreState, RunState, StepOutcome } from './plan.js';

/** The run's databases that are left over, dropped or (the previous one, while still needed) kept; said in `said`. */
async function dropLeftovers(
  ctx: Context,
  m: Maintenance,
  s: RunState,
  said: { readonly done: string[]; readonly kept: string[] },
): Promise<void> {
  const { fresh, old, failed } = namesOf(ctx.target, s.runId);
  const found = await existing(m.client, [ctx.target, fresh, old, failed]);
  // A swap of an older Lifeline, cut short, may have left the target closed to connections.
  if (found.has(ctx.target)) await allowConnections(m, ctx.target).catch(() => undefined);
  for (const name of [fresh, failed]) {
    if (!found.has(name)) continue;
    await dropOwn(ctx, m, name, s.runId);
    said.done.push(`dropped ${quoteIdent(name)}`);
  }
  if (!found.has(old)) return;
  if (!(s.swapped && s.verified)) {
    said.kept.push(`kept ${quoteIdent(old)} (the restore was not verified: put it back or drop it by hand)`);
  } else if (s.safetyCopy === undefined) {
    said.kept.push(
      `kept the previous database ${quoteIdent(old)} ` +
        '(it has no safety copy in the store yet: copy it, then drop it by hand)',
    );
  } else {
    await dropOwn(ctx, m, old, s.runId);
    said.done.push(`dropped the previous database ${quoteIdent(old)} (its copy is ${s.safetyCopy.name})`);
  }
}

/**
 * Drops this run's leftovers: the fresh database if it never got swapped in, a failed one putBack could not drop,
 * and the previous target (<target>_old_<run>), but that one only after verify passed and its safety copy is in the
 * store. Removes the local files.
 */
export async function cleanup(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  const s = begin(ctx, state);
  const done: string[] = [];
  const kept: string[] = [];

  const dir = localDirOf(plan, s.runId);
  const local = await stat(dir).then(
    () => true,
    () => false,
  );
  if (local) {
    await rm(dir, { recursive: true, force: true });
    done.push('removed the local files');
  }

  await guarded(ctx, 'cleanup', () => withServer(ctx, (m) => dropLeftovers(ctx, m, s, { done, kept })));
  const all = [...done, ...kept];
  return {
    state: { ...s, cleanedUp: true },
    detail: all.length > 0 ? `Cleanup: ${all.join('; ')}.` : 'Cleanup: nothing was left over.',
  };
}
