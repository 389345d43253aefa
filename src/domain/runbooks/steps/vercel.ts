// What the two Vercel step kinds share: their deps (Vercel's client, absent without VERCEL_TOKEN), the startup check
// that a runbook using one has the token, and the wait until a project's production domains serve a deployment.
import { setTimeout as sleep } from 'node:timers/promises';
import type { VercelPort, VercelProject } from '../../../adapters/vercel/port.js';
import { ConfigError, formatPath } from '../../../shared/config.js';

export interface VercelStepDeps {
  /** Undefined when VERCEL_TOKEN is not set: startup then refuses every runbook with a Vercel step. */
  readonly vercel: VercelPort | undefined;
  readonly pollMs: number;
}

const VERCEL_KINDS: readonly string[] = ['vercel_rollback', 'vercel_env'];

/**
 * Throws a ConfigError naming each Vercel step of the runbooks when VERCEL_TOKEN is not set: startup calls it right
 * after loadRunbooks, so a runbook that could never reach Vercel stops startup instead of failing at 3 a.m.
 */
export function requireVercelToken(
  runbooks: ReadonlyMap<
    string,
    { readonly steps: readonly { readonly index: number; readonly kind: { readonly id: string } }[] }
  >,
  token: string | undefined,
): void {
  if (token !== undefined) return;
  const problems = [...runbooks].flatMap(([name, runbook]) =>
    runbook.steps
      .filter((step) => VERCEL_KINDS.includes(step.kind.id))
      .map(
        (step) =>
          `${formatPath(['runbooks', name, 'steps', step.index, step.kind.id])}: needs VERCEL_TOKEN, which is not set`,
      ),
  );
  if (problems.length > 0) throw new ConfigError(problems);
}

export function vercelOf(deps: VercelStepDeps): VercelPort {
  if (!deps.vercel) throw new Error('VERCEL_TOKEN is not set');
  return deps.vercel;
}

/**
 * Polls the project until its production domains serve `deploymentId`; `stuck` may end the wait early with the
 * reason (a failed rollback) by returning it. Stops when the step's signal fires.
 */
export async function waitForProduction(
  deps: VercelStepDeps,
  signal: AbortSignal,
  projectId: string,
  deploymentId: string,
  stuck: (project: VercelProject) => string | undefined,
  note: (detail: string) => void,
): Promise<VercelProject> {
  const vercel = vercelOf(deps);
  for (;;) {
    signal.throwIfAborted();
    const project = await vercel.project(projectId);
    if (project.production?.id === deploymentId) return project;
    const reason = stuck(project);
    if (reason !== undefined) throw new Error(reason);
    note(`production still serves ${project.production?.url ?? 'nothing'}; waiting for ${deploymentId}`);
    await sleep(deps.pollMs, undefined, { signal });
  }
}
