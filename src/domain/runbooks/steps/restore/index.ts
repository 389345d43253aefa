// restore: the env's database from a backup file (`latest` or its name), as `/dr restore <env> <backup>` does it,
// through a recovery job that the run's approval covers. Its result carries the restored data's age (the RPO).
import { z } from 'zod';
import { formatDuration, formatUtc } from '../../../../shared/format.js';
import { defineStepKind } from '../../step-kind.js';
import { jobEnd, startJobOnce, type JobIntent, type RecoveryJobsStepDeps } from '../recovery-jobs.js';

const envName = z.string().regex(/^[a-z][a-z0-9_-]*$/, 'must be an environment name');

/** The job has deadlines for each of its own steps; this only bounds how long the run waits on it. */
const WAIT_MS = 6 * 60 * 60_000;

export const restoreKind = defineStepKind<RecoveryJobsStepDeps>()({
  id: 'restore',
  params: z.strictObject({
    env: envName,
    backup: z.string().trim().min(1, 'must be latest or a backup file name').default('latest'),
  }),
  state: z.object({ after: z.number().optional(), job: z.number().optional() }),
  outputs: ['job', 'backup'],
  deadlineMs: () => WAIT_MS,
  describe: (params) => `restore the ${params.env} database from ${fromWhat(params.backup)}`,
  async plan(ctx, deps) {
    const { env, backup } = ctx.params;
    const planned = await deps.recoveryJobs.planRestore(env, backup);
    if (!planned.backup)
      return { does: `would restore the ${env} database from ${fromWhat(backup)}`, missing: planned.missing };
    const { name, takenAt } = planned.backup;
    const age = formatDuration(Math.max(0, Date.now() - takenAt.getTime()));
    return {
      does: `would restore the ${env} database from ${name} (taken ${formatUtc(takenAt)}, ${age} ago)`,
      missing: planned.missing,
    };
  },
  async run(ctx, deps) {
    await startJobOnce(
      ctx,
      deps,
      intentOf(ctx.params),
      `restore ${ctx.params.env} from ${fromWhat(ctx.params.backup)}`,
    );
  },
  async check(ctx, deps) {
    const job = await jobEnd(ctx, deps);
    const backup = job.backup;
    const restoredAt = job.startedAt ?? new Date();
    const dataAgeMs =
      backup?.takenAt === undefined ? undefined : Math.max(0, restoredAt.getTime() - backup.takenAt.getTime());
    return {
      detail: `${job.id}: ${job.outcome}`,
      outputs: { job: job.id, backup: backup?.name ?? '' },
      ...(dataAgeMs === undefined ? {} : { dataAgeMs }),
    };
  },
});

function intentOf(params: { env: string; backup: string }): JobIntent {
  return { kind: 'restore', env: params.env, backup: params.backup };
}

function fromWhat(backup: string): string {
  return backup === 'latest' ? 'the latest backup' : backup;
}
