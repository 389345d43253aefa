// /dr scale and /dr redeploy: the plan's "Scale Up if Needed" and "Force New Deployment" against ECS.
import { setTimeout as sleep } from 'node:timers/promises';
import type { EcsPort, EcsService, LogsPort } from '../../../adapters/aws/port.js';
import type { EnvironmentConfig } from '../../../shared/config.js';
import { TransientError, UserError } from '../../../shared/errors.js';
import { formatDuration } from '../../../shared/format.js';
import type { KindDefinition, StepContext } from '../kind.js';
import { codeSpan } from '../../../shared/text.js';

export interface EcsKindDeps {
  readonly ecs: EcsPort;
  readonly logs: LogsPort;
  readonly pollSeconds: number;
  readonly maxWaitSeconds: number;
}

function serviceOf(ctx: StepContext): { cluster: string; service: string } {
  const params = ctx.job.params;
  if (params.kind !== 'scale' && params.kind !== 'redeploy') throw new Error(`not an ECS job: ${params.kind}`);
  if (!ctx.env.ecs) throw new UserError('bad_command', `Environment ${ctx.job.env} has no ECS configuration.`);
  return { cluster: ctx.env.ecs.cluster, service: params.service };
}

async function describe(deps: EcsKindDeps, cluster: string, service: string): Promise<EcsService> {
  const found = await deps.ecs.describeService(cluster, service);
  if (!found) throw new UserError('bad_command', `ECS service ${service} was not found in cluster ${cluster}.`);
  return found;
}

function counts(s: EcsService): string {
  return `running ${s.running}/${s.desired} desired${s.pending > 0 ? `, ${s.pending} pending` : ''}`;
}

/** Polls until `done` says so or the wait runs out; every poll goes to the live progress message. */
async function pollService(
  deps: EcsKindDeps,
  ctx: StepContext,
  done: (s: EcsService) => boolean | string,
  describeProgress: (s: EcsService) => string,
): Promise<EcsService> {
  const { cluster, service } = serviceOf(ctx);
  const deadline = Date.now() + deps.maxWaitSeconds * 1000;
  for (;;) {
    let current: EcsService;
    try {
      current = await describe(deps, cluster, service);
    } catch (err) {
      // The change is made; a throttled or failed poll says nothing about it. Keep waiting; refusals still end it.
      if (!(err instanceof TransientError) || Date.now() >= deadline) throw err;
      ctx.note(`status not readable this time (${err.message}); still waiting`);
      await sleep(deps.pollSeconds * 1000, undefined, { signal: ctx.signal });
      continue;
    }
    ctx.note(describeProgress(current));
    const verdict = done(current);
    if (typeof verdict === 'string') throw new Error(verdict);
    if (verdict) return current;
    if (Date.now() >= deadline) throw new Error(`not done after ${formatDuration(deps.maxWaitSeconds * 1000)}: ${describeProgress(current)}`);
    await sleep(deps.pollSeconds * 1000, undefined, { signal: ctx.signal });
  }
}

/** The waits end by themselves after maxWaitSeconds (a last poll may follow); the deadline is only a backstop. */
function waitDeadline(deps: EcsKindDeps): number {
  return (deps.maxWaitSeconds + 2 * deps.pollSeconds) * 1000 + 60_000;
}

export function scaleKind(deps: EcsKindDeps): KindDefinition {
  const desiredOf = (ctx: StepContext) => (ctx.job.params.kind === 'scale' ? ctx.job.params.count : 0);
  return {
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
        name: 'set desired count',
        destructive: true,
        interruptible: false,
        async run(ctx) {
          const { cluster, service } = serviceOf(ctx);
          await deps.ecs.setDesiredCount(cluster, service, desiredOf(ctx));
          return `desired count set to ${desiredOf(ctx)}`;
        },
      },
      {
        name: 'wait until running = desired',
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
      const after = ctx.state.after as { desired: number; running: number } | undefined;
      const { service } = serviceOf(ctx);
      return {
        headline: succeeded ? `Scaled ${service} (${ctx.job.env}) to ${desiredOf(ctx)}: ${after?.running ?? '?'} running.` : `Scaling ${service} (${ctx.job.env}) failed.`,
        verified: after ? [`running/desired: ${after.running}/${after.desired}`] : [],
      };
    },
  };
}

export function redeployKind(deps: EcsKindDeps): KindDefinition {
  return {
    async plan(ctx) {
      const { cluster, service } = serviceOf(ctx);
      const current = await describe(deps, cluster, service);
      return `Force a new deployment of ${service} in ${cluster} (${ctx.job.env}); now ${counts(current)}. Steps: start the deployment; follow its rollout until COMPLETED or FAILED (up to ${formatDuration(deps.maxWaitSeconds * 1000)}); on failure, show the service's last 20 error lines.`;
    },
    steps: () => [
      {
        name: 'force new deployment',
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
        name: 'follow the rollout',
        destructive: false,
        interruptible: true,
        deadline: () => waitDeadline(deps),
        async run(ctx) {
          const wanted = ctx.state.deployment as string | null | undefined;
          const primary = (s: EcsService) => s.deployments.find((d) => (wanted ? d.id === wanted : d.status === 'PRIMARY'));
          try {
            const final = await pollService(
              deps,
              ctx,
              (s) => {
                const d = primary(s);
                if (!d) return false;
                if (d.rolloutState === 'FAILED') return `rollout FAILED${d.rolloutStateReason ? `: ${d.rolloutStateReason}` : ''}`;
                // Without the circuit breaker ECS reports no rolloutState: stable is one deployment, running == desired.
                return d.rolloutState === 'COMPLETED' || (d.rolloutState === undefined && s.deployments.length === 1 && s.running === s.desired);
              },
              (s) => `deployment ${primary(s)?.id ?? '?'}: ${primary(s)?.rolloutState ?? 'state unknown'}, ${counts(s)}`,
            );
            const d = primary(final);
            ctx.state.rollout = `deployment ${d?.id ?? '?'}: ${d?.rolloutState ?? 'stable'}, ${counts(final)}`;
            return ctx.state.rollout as string;
          } catch (err) {
            ctx.state.errorLines = await lastErrorLines(deps, ctx.env).catch((e: Error) => [`(could not read the logs: ${e.message})`]);
            throw err;
          }
        },
      },
    ],
    summarise(ctx, succeeded) {
      const { service } = serviceOf(ctx);
      const errors = (ctx.state.errorLines as string[] | undefined) ?? [];
      return {
        headline: succeeded ? `Redeployed ${service} (${ctx.job.env}).` : `Redeploy of ${service} (${ctx.job.env}) failed.`,
        verified: [
          ...(ctx.state.rollout ? [String(ctx.state.rollout)] : []),
          ...(errors.length > 0 ? ['Last error lines:', ...errors] : []),
        ],
      };
    },
  };
}

/** The plan's "Check Logs" for a failed rollout: the last 20 lines that look like errors, from the last hour. */
async function lastErrorLines(deps: EcsKindDeps, env: EnvironmentConfig): Promise<string[]> {
  if (!env.ecs?.log_group) return ['(no log_group configured)'];
  const events = await deps.logs.filter(env.ecs.log_group, { since: new Date(Date.now() - 3_600_000), pattern: '?ERROR ?Error ?error ?FATAL ?Exception', limit: 1_000 });
  // Log lines are data: as code, nothing in them can become markup (a mention, a link) wherever they are shown.
  return events.slice(-20).map((e) => `${e.at.toISOString().slice(11, 19)} ${codeSpan(e.message.trimEnd())}`);
}
