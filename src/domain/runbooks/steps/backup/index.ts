// backup: a backup of the env's database now, as `/dr backup <env>` takes it (dumped, read back and checked), through
// a recovery job that the run's approval covers; e.g. before a failover, so the DR region restores fresh data.
import { z } from 'zod';
import { defineStepKind } from '../../step-kind.js';
import { jobEnd, startJobOnce, type RecoveryJobsStepDeps } from '../recovery-jobs.js';

/** The job has deadlines for each of its own steps; this only bounds how long the run waits on it. */
const WAIT_MS = 3 * 60 * 60_000;

export const backupKind = defineStepKind<RecoveryJobsStepDeps>()({
  id: 'backup',
  params: z.strictObject({ env: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'must be an environment name') }),
  state: z.object({ after: z.number().optional(), job: z.number().optional() }),
  outputs: ['job', 'backup'],
  deadlineMs: () => WAIT_MS,
  describe: (params) => `back up the ${params.env} database`,
  async plan(ctx, deps) {
    const { missing } = await deps.recoveryJobs.planBackup(ctx.params.env);
    return { does: `would back up the ${ctx.params.env} database into its backup store`, missing };
  },
  async run(ctx, deps) {
    const { env } = ctx.params;
    await startJobOnce(ctx, deps, { kind: 'backup', env }, `back up ${env}`);
  },
  async check(ctx, deps) {
    const job = await jobEnd(ctx, deps);
    return { detail: `${job.id}: ${job.outcome}`, outputs: { job: job.id, backup: job.backup?.name ?? '' } };
  },
});
