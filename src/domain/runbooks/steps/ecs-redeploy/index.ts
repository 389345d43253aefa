// ecs_redeploy: a forced new deployment of an ECS service of any region, followed until its rollout completes (the
// plan's "update the ECS task definitions": tasks read their secrets when they start, so a changed secret needs it).
import { z } from 'zod';
import {
  counts,
  followedDeployment,
  pollEcsService,
  rolloutProgress,
  rolloutVerdict,
} from '../../../recovery/kinds/ecs-service.js';
import { defineStepKind } from '../../step-kind.js';
import { awsRegion, ecsPolling, regionName, type AwsStepDeps } from '../aws.js';
import { ecsService, lookAt, planOnService } from '../ecs.js';

const DEADLINE_MS = 30 * 60_000;

export const ecsRedeployKind = defineStepKind<AwsStepDeps>()({
  id: 'ecs_redeploy',
  params: z.strictObject({ region: awsRegion.optional(), ...ecsService }),
  state: z.object({
    /** The deployment the step started; null when ECS did not say which it was (then the PRIMARY one is followed). */
    deployment: z.string().nullable().optional(),
  }),
  outputs: [],
  deadlineMs: () => DEADLINE_MS,
  describe: (p) => `force a new deployment of ${p.service} in ${p.cluster} (${regionName(p.region)})`,

  plan: (ctx, deps) =>
    planOnService(
      ctx.params,
      deps,
      `would force a new deployment of ${ctx.params.service} in ${ctx.params.cluster} (${regionName(ctx.params.region)}) and follow it until its rollout completes`,
    ),

  async run(ctx, deps) {
    const p = ctx.params;
    // Started once: a resumed attempt follows the recorded deployment.
    if (ctx.state.deployment !== undefined) return;
    ctx.state.deployment = (await deps.aws.ecs(p.region).forceNewDeployment(p.cluster, p.service)) ?? null;
    await ctx.recordChange(
      `UpdateService: forced new deployment ${ctx.state.deployment ?? '(id not reported)'} of ${p.service} in ${p.cluster} (${regionName(p.region)})`,
    );
  },

  async check(ctx, deps) {
    const p = ctx.params;
    const wanted = ctx.state.deployment;
    const final = await pollEcsService(
      lookAt(p, deps),
      ecsPolling(deps, ctx, DEADLINE_MS),
      (s) => rolloutVerdict(s, wanted),
      (s) => rolloutProgress(s, wanted),
    );
    const d = followedDeployment(final, wanted);
    return {
      detail: `${p.service} in ${p.cluster} (${regionName(p.region)}): deployment ${d?.id ?? '?'} ${d?.rolloutState ?? 'stable'}, ${counts(final)}`,
      outputs: {},
    };
  },
});
