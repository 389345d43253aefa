// What /dr scale and /dr redeploy share: the ECS service a job is about, and polling it until it settles.
import { setTimeout as sleep } from 'node:timers/promises';
import type { EcsDeployment, EcsPort, EcsService, LogsPort } from '../../../adapters/aws/port.js';
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

export async function describe(deps: Pick<EcsKindDeps, 'ecs'>, cluster: string, service: string): Promise<EcsService> {
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
  return pollEcsService(
    () => describe(deps, cluster, service),
    {
      pollMs: deps.pollSeconds * 1000,
      maxWaitMs: deps.maxWaitSeconds * 1000,
      signal: ctx.signal,
      note: (d) => ctx.note(d),
    },
    done,
    describeProgress,
  );
}

/** How a wait on an ECS service polls, and where it reports what it saw. */
export interface EcsPolling {
  readonly pollMs: number;
  readonly maxWaitMs: number;
  readonly signal: AbortSignal;
  readonly note: (detail: string) => void;
}

/**
 * The wait behind /dr scale, /dr redeploy and the runbooks' ecs_scale and ecs_redeploy: `look` until `done` is true
 * (a string is the failure it found), noting each look; throws when `maxWaitMs` passed.
 */
export async function pollEcsService(
  look: () => Promise<EcsService>,
  polling: EcsPolling,
  done: (s: EcsService) => boolean | string,
  describeProgress: (s: EcsService) => string,
): Promise<EcsService> {
  const deadline = Date.now() + polling.maxWaitMs;
  for (;;) {
    let current: EcsService;
    try {
      current = await look();
    } catch (err) {
      // The change is made; a throttled or failed poll says nothing about it. Keep waiting; refusals still end it.
      if (!(err instanceof TransientError) || Date.now() >= deadline) throw err;
      polling.note(`status not readable this time (${err.message}); still waiting`);
      await sleep(polling.pollMs, undefined, { signal: polling.signal });
      continue;
    }
    polling.note(describeProgress(current));
    const verdict = done(current);
    if (typeof verdict === 'string') throw new Error(verdict);
    if (verdict) return current;
    if (Date.now() >= deadline)
      throw new Error(`not done after ${formatDuration(polling.maxWaitMs)}: ${describeProgress(current)}`);
    await sleep(polling.pollMs, undefined, { signal: polling.signal });
  }
}

/** The deployment a redeploy follows: the one it started, else the PRIMARY one (ECS did not say which it started). */
export function followedDeployment(s: EcsService, wanted: string | null | undefined): EcsDeployment | undefined {
  return s.deployments.find((d) => (wanted ? d.id === wanted : d.status === 'PRIMARY'));
}

/** Whether a redeploy's rollout is done: true when it completed, a string when it failed, false while it goes on. */
export function rolloutVerdict(s: EcsService, wanted: string | null | undefined): boolean | string {
  const d = followedDeployment(s, wanted);
  if (!d) return false;
  if (d.rolloutState === 'FAILED') return `rollout FAILED${d.rolloutStateReason ? `: ${d.rolloutStateReason}` : ''}`;
  // Without the circuit breaker ECS reports no rolloutState: stable is one deployment, running == desired.
  return (
    d.rolloutState === 'COMPLETED' ||
    (d.rolloutState === undefined && s.deployments.length === 1 && s.running === s.desired)
  );
}

/** A redeploy's rollout as the progress message shows it. */
export function rolloutProgress(s: EcsService, wanted: string | null | undefined): string {
  const d = followedDeployment(s, wanted);
  return `deployment ${d?.id ?? '?'}: ${d?.rolloutState ?? 'state unknown'}, ${counts(s)}`;
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
