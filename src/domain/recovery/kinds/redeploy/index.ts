// /dr redeploy: the plan's "Force New Deployment" against ECS, and its "Check Logs" when the rollout fails.
import { z } from 'zod';
import { formatDuration } from '../../../../shared/format.js';
import { defineKind } from '../../kind.js';
import {
  counts,
  describe,
  followedDeployment,
  lastErrorLines,
  pollService,
  rolloutProgress,
  rolloutVerdict,
  serviceOf,
  waitDeadline,
  type EcsKindDeps,
} from '../ecs-service.js';

const redeployState = z.object({
  /** The deployment the job started; null when ECS did not say which it was. */
  deployment: z.string().nullable().optional(),
  rollout: z.string().optional(),
  errorLines: z.array(z.string()).optional(),
});

export function redeployKind(deps: EcsKindDeps) {
  return defineKind({
    id: 'redeploy',
    state: redeployState,
    stepNames: { 'force-deployment': 'force new deployment', 'follow-rollout': 'follow the rollout' },
    async plan(ctx) {
      const { cluster, service } = serviceOf(ctx);
      const current = await describe(deps, cluster, service);
      return `Force a new deployment of ${service} in ${cluster} (${ctx.job.env}); now ${counts(current)}. Steps: start the deployment; follow its rollout until COMPLETED or FAILED (up to ${formatDuration(deps.maxWaitSeconds * 1000)}); on failure, show the service's last 20 error lines.`;
    },
    steps: () => [
      {
        id: 'force-deployment',
        destructive: true,
        interruptible: false,
        async run(ctx) {
          const { cluster, service } = serviceOf(ctx);
          const deployment = await deps.ecs.forceNewDeployment(cluster, service);
          ctx.state.deployment = deployment ?? null;
          return deployment ? `deployment ${deployment} started` : 'deployment started';
        },
      },
      {
        id: 'follow-rollout',
        destructive: false,
        interruptible: true,
        deadline: () => waitDeadline(deps),
        async run(ctx) {
          const wanted = ctx.state.deployment;
          try {
            const final = await pollService(
              deps,
              ctx,
              (s) => rolloutVerdict(s, wanted),
              (s) => rolloutProgress(s, wanted),
            );
            const d = followedDeployment(final, wanted);
            const rollout = `deployment ${d?.id ?? '?'}: ${d?.rolloutState ?? 'stable'}, ${counts(final)}`;
            ctx.state.rollout = rollout;
            return rollout;
          } catch (err) {
            ctx.state.errorLines = await lastErrorLines(deps, ctx.env).catch((e: Error) => [
              `(could not read the logs: ${e.message})`,
            ]);
            throw err;
          }
        },
      },
    ],
    summarise(ctx, succeeded) {
      const { service } = serviceOf(ctx);
      const errors = ctx.state.errorLines ?? [];
      return {
        headline: succeeded
          ? `Redeployed ${service} (${ctx.job.env}).`
          : `Redeploy of ${service} (${ctx.job.env}) failed.`,
        verified: [
          ...(ctx.state.rollout ? [ctx.state.rollout] : []),
          ...(errors.length > 0 ? ['Last error lines:', ...errors] : []),
        ],
      };
    },
  });
}
