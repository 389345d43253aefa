// What /dr scale and /dr redeploy share: the ECS service a job is about, and polling it until it settles.
import { setTimeout as sleep } from 'node:timers/promises';
import type { EcsPort, EcsService, LogsPort } from '../../../adapters/aws/port.js';
import type { EnvironmentConfig } from '../../../shared/config.js';
import { TransientError, UserError } from '../../../shared/errors.js';
import { formatDuration } from '../../../shared/format.js';
import type { StepContext } from '../kind.js';
import { codeSpan } from '../../../shared/text.js';

export interface EcsKindDeps {
  readonly ecs: EcsPort;
  readonly logs: LogsPort;
  readonly pollSeconds: number;
  readonly maxWaitSeconds: number;
}

export function serviceOf(ctx: StepContext<unknown>): { cluster: string; service: string } {
  const params = ctx.job.params;
  if (params.kind !== 'scale' && params.kind !== 'redeploy') throw new Error(`not an ECS job: ${params.kind}`);
  if (!ctx.env.ecs) throw new UserError('bad_command', `Environment ${ctx.job.env} has no ECS configuration.`);
  return { cluster: ctx.env.ecs.cluster, service: params.service };
}

export async function describe(deps: EcsKindDeps, cluster: string, service: string): Promise<EcsService> {
  const found = await deps.ecs.describeService(cluster, service);
  if (!found) throw new UserError('bad_command', `ECS service ${service} was not found in cluster ${cluster}.`);
  return found;
}

export function counts(s: EcsService): string {
  return `running ${s.running}/${s.desired} desired${s.pending > 0 ? `, ${s.pending} pending` : ''}`;
}

/** Polls until `done` says so or the wait runs out; every poll goes to the live progress message. */
export async function pollService(
  deps: EcsKindDeps,
  ctx: StepContext<unknown>,
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
    if (Date.now() >= deadline)
      throw new Error(`not done after ${formatDuration(deps.maxWaitSeconds * 1000)}: ${describeProgress(current)}`);
    await sleep(deps.pollSeconds * 1000, undefined, { signal: ctx.signal });
  }
}

/** The waits end by themselves after maxWaitSeconds (a last poll may follow); the deadline is only a backstop. */
export function waitDeadline(deps: EcsKindDeps): number {
  return (deps.maxWaitSeconds + 2 * deps.pollSeconds) * 1000 + 60_000;
}

/** The plan's "Check Logs" for a failed rollout: the last 20 lines that look like errors, from the last hour. */
export async function lastErrorLines(deps: EcsKindDeps, env: EnvironmentConfig): Promise<string[]> {
  if (!env.ecs?.log_group) return ['(no log_group configured)'];
  const events = await deps.logs.filter(env.ecs.log_group, {
    since: new Date(Date.now() - 3_600_000),
    pattern: '?ERROR ?Error ?error ?FATAL ?Exception',
    limit: 1_000,
  });
  // Log lines are data: as code, nothing in them can become markup (a mention, a link) wherever they are shown.
  return events.slice(-20).map((e) => `${e.at.toISOString().slice(11, 19)} ${codeSpan(e.message.trimEnd())}`);
}
