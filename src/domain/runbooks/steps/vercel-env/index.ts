// vercel_env: one environment variable of a project's production (the plan's "update DATABASE_URL in Vercel"), then a
// redeploy of the deployment production serves, since Vercel gives a new value only to deployments built after it.
// Values are never shown: neither the old one (Vercel keeps it encrypted) nor the new one, often a credential.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { DeploymentState, VercelDeployment, VercelPort } from '../../../../adapters/vercel/port.js';
import { defineStepKind, templated, type RunInfo } from '../../step-kind.js';
import { vercelOf, waitForProduction, type VercelStepDeps } from '../vercel.js';

/** The `meta` key Lifeline tags its redeploys with, so a resumed step finds the one it made. */
const TAG = 'lifelineRunbookStep';

const FAILED: readonly DeploymentState[] = ['ERROR', 'CANCELED'];

export const vercelEnvKind = defineStepKind<VercelStepDeps>()({
  id: 'vercel_env',
  params: z.strictObject({
    project: templated(z.string().trim().min(1, 'must name a Vercel project (its name or id)')),
    key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name (letters, digits, _)'),
    value: templated(z.string().min(1, 'must not be empty')),
    target: z.literal('production', { error: 'must be production' }).default('production'),
  }),
  state: z.object({
    projectId: z.string().optional(),
    projectName: z.string().optional(),
    envSet: z.boolean().optional(),
    /** The deployment redeployed from, and the tag its redeploy carries: stored before the redeploy is asked for. */
    from: z.string().optional(),
    tag: z.string().optional(),
    deploymentId: z.string().optional(),
    url: z.string().optional(),
  }),
  outputs: ['deployment', 'url'],
  describe: (params) => `set ${params.key} of ${params.project} (production) and redeploy it (Vercel)`,
  async plan(ctx, deps) {
    const { project, key } = ctx.params;
    const found = await vercelOf(deps).project(project);
    const does = `would set ${key} of ${project} (production, encrypted) and redeploy`;
    if (!found.production) return { does, missing: [`${project} has no production deployment to redeploy`] };
    return { does: `${does} ${found.production.url} (${found.production.id})`, missing: [] };
  },
  async run(ctx, deps) {
    const vercel = vercelOf(deps);
    const { state, params } = ctx;
    if (state.deploymentId !== undefined) {
      const made = await vercel.deployment(state.deploymentId);
      if (!FAILED.includes(made.state)) return;
      // A Retry after the redeploy failed: a new one, from what production serves now.
      state.deploymentId = state.url = state.from = state.tag = undefined;
    }
    if (state.projectId === undefined || state.projectName === undefined) {
      const project = await vercel.project(params.project);
      state.projectId = project.id;
      state.projectName = project.name;
    }
    if (state.envSet !== true) {
      // An upsert sets the same value however often it is made: a resumed step may repeat it.
      await vercel.upsertEnv(state.projectId, { key: params.key, value: params.value, target: params.target });
      state.envSet = true;
      await ctx.recordChange(`set ${params.key} of ${state.projectName} (production)`);
    }
    if (state.tag !== undefined && state.from !== undefined) {
      const made = await redeployTagged(vercel, state.projectId, state.tag);
      if (made) {
        state.deploymentId = made.id;
        state.url = made.url;
        await ctx.recordChange(`found the redeploy of ${state.projectName} an earlier attempt made: ${made.id}`);
        return;
      }
    } else {
      const production = (await vercel.project(state.projectId)).production;
      if (!production) throw new Error(`${state.projectName} has no production deployment to redeploy`);
      state.from = production.id;
      state.tag = tagOf(ctx.run);
      await ctx.recordChange(`redeploying ${state.projectName} from ${production.id}`);
    }
    const created = await vercel.redeploy(state.projectName, state.from, { [TAG]: state.tag });
    state.deploymentId = created.id;
    state.url = created.url;
    await ctx.recordChange(`redeploy of ${state.projectName} started: ${created.id}`);
  },
  async check(ctx, deps) {
    const vercel = vercelOf(deps);
    const { projectId, deploymentId, url } = ctx.state;
    if (projectId === undefined || deploymentId === undefined || url === undefined) {
      throw new Error('no redeploy was recorded');
    }
    for (;;) {
      ctx.signal.throwIfAborted();
      const deployment = await vercel.deployment(deploymentId);
      if (deployment.state === 'READY') break;
      if (FAILED.includes(deployment.state)) {
        throw new Error(`the redeploy ${deploymentId} of ${ctx.params.project} ended ${deployment.state}`);
      }
      ctx.note(`${deploymentId} is ${deployment.state}`);
      await sleep(deps.pollMs, undefined, { signal: ctx.signal });
    }
    await waitForProduction(
      deps,
      ctx.signal,
      projectId,
      deploymentId,
      // After an instant rollback Vercel promotes no new production deployment by itself until one is promoted.
      (project) =>
        project.lastRollback !== undefined
          ? `${deploymentId} is READY, but ${project.name} was rolled back earlier, so Vercel does not move its ` +
            `production domains to new deployments by itself: promote ${deploymentId} (vercel promote)`
          : undefined,
      (detail) => ctx.note(detail),
    );
    return {
      detail: `${ctx.params.key} set; ${ctx.params.project} production serves the redeploy ${url} (${deploymentId})`,
      outputs: { deployment: deploymentId, url },
    };
  },
});

function tagOf(run: RunInfo): string {
  return `${run.runbook}#${run.number}:${Date.now()}`;
}

/** The production deployment carrying `tag`, among those of the last day (a step does not wait longer). */
async function redeployTagged(
  vercel: VercelPort,
  projectId: string,
  tag: string,
): Promise<VercelDeployment | undefined> {
  const since = Date.now() - 24 * 60 * 60_000;
  const page = await vercel.productionDeployments(projectId, { since, readyOnly: false });
  return page.deployments.find((d) => d.meta[TAG] === tag);
}
