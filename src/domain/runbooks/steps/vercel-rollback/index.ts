// vercel_rollback: the plan's "Frontend Recovery" (`vercel ls`, `vercel rollback`): the project's production domains
// back to the newest READY production deployment before the one they serve, through Vercel's instant rollback.
import { z } from 'zod';
import type { VercelDeployment, VercelPort, VercelProject } from '../../../../adapters/vercel/port.js';
import { formatUtc } from '../../../../shared/format.js';
import { defineStepKind, templated } from '../../step-kind.js';
import { vercelOf, waitForProduction, type VercelStepDeps } from '../vercel.js';

/** Pages of 100 looked through for the deployment before the current one: a project rarely keeps more than that. */
const MAX_PAGES = 10;

const projectName = z.string().trim().min(1, 'must name a Vercel project (its name or id)');

export const vercelRollbackKind = defineStepKind<VercelStepDeps>()({
  id: 'vercel_rollback',
  params: z.strictObject({ project: templated(projectName) }),
  state: z.object({
    projectId: z.string().optional(),
    /** The deployment rolled back to, stored before the rollback is asked for. */
    deploymentId: z.string().optional(),
    url: z.string().optional(),
  }),
  outputs: ['deployment', 'url'],
  describe: (params) => `roll ${params.project} back to the previous READY production deployment (Vercel)`,
  async plan(ctx, deps) {
    const found = await previousOf(vercelOf(deps), ctx.params.project);
    if (!found.current) {
      return {
        does: `would roll ${ctx.params.project} back`,
        missing: [`${ctx.params.project} has no production deployment`],
      };
    }
    const from = `${found.current.url} (${found.current.id}, ${formatUtc(new Date(found.current.createdAt))})`;
    if (!found.previous) {
      return {
        does: `would roll ${ctx.params.project} back from ${from}`,
        missing: [`no READY production deployment of ${ctx.params.project} before ${found.current.id}`],
      };
    }
    const to = `${found.previous.url} (${found.previous.id}, ${formatUtc(new Date(found.previous.createdAt))})`;
    return { does: `would roll ${ctx.params.project} back from ${from} to ${to}`, missing: [] };
  },
  async run(ctx, deps) {
    const vercel = vercelOf(deps);
    const { state } = ctx;
    if (state.projectId !== undefined && state.deploymentId !== undefined) {
      // An earlier attempt chose the deployment and may have asked already: never choose again (that would go back
      // one more), and ask again only when Vercel shows no rollback to it (asking twice for the same one is harmless).
      const project = await vercel.project(state.projectId);
      if (project.production?.id === state.deploymentId || rollingBackTo(project, state.deploymentId)) return;
      await vercel.rollback(state.projectId, state.deploymentId);
      return;
    }
    const found = await previousOf(vercel, ctx.params.project);
    if (!found.current || !found.previous) {
      throw new Error(`${ctx.params.project} has no READY production deployment before the one it serves`);
    }
    state.projectId = found.project.id;
    state.deploymentId = found.previous.id;
    state.url = found.previous.url;
    await ctx.recordChange(
      `rolling ${ctx.params.project} back from ${found.current.id} to ${found.previous.id} (${found.previous.url})`,
    );
    await vercel.rollback(found.project.id, found.previous.id);
  },
  async check(ctx, deps) {
    const { projectId, deploymentId, url } = ctx.state;
    if (projectId === undefined || deploymentId === undefined || url === undefined) {
      throw new Error('no rollback was recorded');
    }
    await waitForProduction(
      deps,
      ctx.signal,
      projectId,
      deploymentId,
      (project) =>
        project.lastRollback?.toDeploymentId === deploymentId && project.lastRollback.status === 'failed'
          ? `Vercel reports the rollback of ${ctx.params.project} to ${deploymentId} failed`
          : undefined,
      (detail) => ctx.note(detail),
    );
    return {
      detail: `${ctx.params.project} production serves ${url} (${deploymentId})`,
      outputs: { deployment: deploymentId, url },
    };
  },
});

function rollingBackTo(project: VercelProject, deploymentId: string): boolean {
  const last = project.lastRollback;
  return last?.toDeploymentId === deploymentId && (last.status === 'pending' || last.status === 'in-progress');
}

/** The project, the deployment its production serves, and the newest READY production deployment before it. */
async function previousOf(
  vercel: VercelPort,
  idOrName: string,
): Promise<{ project: VercelProject; current?: VercelDeployment; previous?: VercelDeployment }> {
  const project = await vercel.project(idOrName);
  const current = project.production;
  if (!current) return { project };
  let until: number | undefined = current.createdAt;
  for (let page = 0; page < MAX_PAGES && until !== undefined; page++) {
    const listed = await vercel.productionDeployments(project.id, { until, readyOnly: true });
    const previous = listed.deployments.find((d) => d.id !== current.id && d.createdAt < current.createdAt);
    if (previous) return { project, current, previous };
    until = listed.next;
  }
  return { project, current };
}
