// ecs_scale: an ECS service of any region to `count` tasks, waiting until that many run (the plan's "deploy the
// backend to the DR ECS cluster", where the DR service waits at 0).
import { z } from 'zod';
import { counts, pollEcsService } from '../../../recovery/kinds/ecs-service.js';
import { defineStepKind } from '../../step-kind.js';
import { awsRegion, ecsPolling, regionName, type AwsStepDeps } from '../aws.js';
import { ecsService, lookAt, planOnService } from '../ecs.js';

const DEADLINE_MS = 30 * 60_000;

export const ecsScaleKind = defineStepKind<AwsStepDeps>()({
  id: 'ecs_scale',
  params: z.strictObject({
    region: awsRegion.optional(),
    ...ecsService,
    count: z.number().int('must be a whole number').min(0, 'must be at least 0').max(1000, 'must be at most 1,000'),
  }),
  state: z.object({ scaled: z.boolean().optional() }),
  outputs: [],
  deadlineMs: () => DEADLINE_MS,
  describe: (p) => `scale ${p.service} in ${p.cluster} (${regionName(p.region)}) to ${p.count} tasks`,

  plan: (ctx, deps) =>
    planOnService(
      ctx.params,
      deps,
      `would set ${ctx.params.service} in ${ctx.params.cluster} (${regionName(ctx.params.region)}) to ${ctx.params.count} tasks`,
    ),

  async run(ctx, deps) {
    const p = ctx.params;
    // Set once: a resumed attempt only waits.
    if (ctx.state.scaled) return;
    await deps.aws.ecs(p.region).setDesiredCount(p.cluster, p.service, p.count);
    ctx.state.scaled = true;
    await ctx.recordChange(
      `UpdateService: ${p.service} in ${p.cluster} (${regionName(p.region)}) desired count ${p.count}`,
    );
  },

  async check(ctx, deps) {
    const p = ctx.params;
    const final = await pollEcsService(
      lookAt(p, deps),
      ecsPolling(deps, ctx, DEADLINE_MS),
      (s) => s.running === p.count && s.pending === 0,
      counts,
    );
    return { detail: `${p.service} in ${p.cluster} (${regionName(p.region)}): ${counts(final)}`, outputs: {} };
  },
});
