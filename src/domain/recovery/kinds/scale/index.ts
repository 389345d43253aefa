// /dr scale: the plan's "Scale Up if Needed" against ECS.
import { z } from 'zod';
import { formatDuration } from '../../../../shared/format.js';
import { defineKind, type StepContext } from '../../kind.js';
import { counts, describe, pollService, serviceOf, waitDeadline, type EcsKindDeps } from '../ecs-service.js';

const counted = z.object({ desired: z.number(), running: z.number() });
const scaleState = z.object({ before: counted.optional(), after: counted.optional() });

export function scaleKind(deps: EcsKindDeps) {
  const desiredOf = (ctx: StepContext<unknown>) => (ctx.job.params.kind === 'scale' ? ctx.job.params.count : 0);
  return defineKind({
    id: 'scale',
    state: scaleState,
    stepNames: { 'set-desired': 'set desired count', 'wait-running': 'wait until running = desired' },
    async plan(ctx) {
      const { cluster, service } = serviceOf(ctx);
      const current = await describe(deps, cluster, service);
      ctx.state.before = { desired: current.desired, running: current.running };
      if (current.desired === desiredOf(ctx)) {
        // Nothing to approve and nothing to run: UpdateService with the same count would only start a deployment.
        const already = `is already at ${current.desired} desired (now ${counts(current)})`;
        return { nothingToChange: `${service} in ${cluster} (${ctx.job.env}) ${already}; nothing to change.` };
      }
      return `Scale ${service} in ${cluster} (${ctx.job.env}) from ${current.desired} to ${desiredOf(ctx)} tasks (now ${counts(current)}). Steps: set the desired count; wait until running equals desired (up to ${formatDuration(deps.maxWaitSeconds * 1000)}).`;
    },
    steps: () => [
      {
        id: 'set-desired',
        destructive: true,
        interruptible: false,
        async run(ctx) {
          const { cluster, service } = serviceOf(ctx);
          await deps.ecs.setDesiredCount(cluster, service, desiredOf(ctx));
          return `desired count set to ${desiredOf(ctx)}`;
        },
      },
      {
        id: 'wait-running',
        destructive: false,
        // Stopping the wait changes nothing; the new desired count stands either way.
        interruptible: true,
        deadline: () => waitDeadline(deps),
        async run(ctx) {
          const final = await pollService(deps, ctx, (s) => s.running === desiredOf(ctx) && s.pending === 0, counts);
          ctx.state.after = { desired: final.desired, running: final.running };
          return counts(final);
        },
      },
    ],
    summarise(ctx, succeeded) {
      const { after } = ctx.state;
      const { service } = serviceOf(ctx);
      return {
        headline: succeeded
          ? `Scaled ${service} (${ctx.job.env}) to ${desiredOf(ctx)}: ${after?.running ?? '?'} running.`
          : `Scaling ${service} (${ctx.job.env}) failed.`,
        verified: after ? [`running/desired: ${after.running}/${after.desired}`] : [],
      };
    },
  });
}
