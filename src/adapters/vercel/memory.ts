import type {
  DeploymentPage,
  DeploymentState,
  EnvVariable,
  VercelDeployment,
  VercelPort,
  VercelProject,
  VercelRollback,
} from './port.js';

interface MemoryDeployment {
  readonly id: string;
  readonly url: string;
  state: DeploymentState;
  readonly createdAt: number;
  readonly meta: Readonly<Record<string, string>>;
  readonly projectId: string;
  readsLeft: number;
  fails: boolean;
}

interface MemoryProject {
  readonly id: string;
  readonly name: string;
  readonly env: Record<string, string>;
  production: string | undefined;
  lastRollback: VercelRollback | undefined;
}

/**
 * In-memory VercelPort for tests. A rollback takes effect after `settleAfterReads` reads of its project and a
 * redeploy is READY after as many reads of it (BUILDING until then), then serves production unless the project was
 * rolled back (as on Vercel). `calls` lists every call; `failNext` makes the next calls throw.
 */
export class MemoryVercel implements VercelPort {
  readonly projects: MemoryProject[] = [];
  readonly deployments: MemoryDeployment[] = [];
  readonly calls: { readonly call: keyof VercelPort; readonly args: readonly unknown[] }[] = [];
  settleAfterReads = 1;
  /** The next redeploy ends in ERROR. */
  failNextBuild = false;
  private pendingRollback = new Map<string, number>();
  private failures: Error[] = [];
  // An hour ago: deployments are a minute apart, and steps look back a day at most.
  private clock = Date.now() - 60 * 60_000;

  /** A project with `count` READY production deployments a minute apart; the newest serves production. */
  addProject(name: string, count = 2): MemoryProject {
    const project: MemoryProject = { id: `prj_${name}`, name, env: {}, production: undefined, lastRollback: undefined };
    this.projects.push(project);
    for (let i = 0; i < count; i++) project.production = this.add(project, 'READY', {}).id;
    return project;
  }

  failNext(error: Error, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push(error);
  }

  async project(idOrName: string): Promise<VercelProject> {
    this.record('project', [idOrName]);
    const project = this.find(idOrName);
    const left = this.pendingRollback.get(project.id);
    if (left !== undefined && project.lastRollback) {
      if (left <= 1) {
        this.pendingRollback.delete(project.id);
        project.production = project.lastRollback.toDeploymentId;
        project.lastRollback = { ...project.lastRollback, status: 'succeeded' };
      } else this.pendingRollback.set(project.id, left - 1);
    }
    const production = this.deployments.find((d) => d.id === project.production);
    return {
      id: project.id,
      name: project.name,
      production: production && plain(production),
      lastRollback: project.lastRollback,
    };
  }

  async productionDeployments(
    projectId: string,
    query: { until?: number; since?: number; readyOnly: boolean },
  ): Promise<DeploymentPage> {
    this.record('productionDeployments', [projectId, query]);
    const project = this.find(projectId);
    const deployments = this.deployments
      .filter((d) => d.projectId === project.id && (!query.readyOnly || d.state === 'READY'))
      .filter((d) => d.createdAt < (query.until ?? Infinity) && d.createdAt > (query.since ?? -Infinity))
      .sort((a, b) => b.createdAt - a.createdAt)
      .map(plain);
    return { deployments, next: undefined };
  }

  async deployment(id: string): Promise<VercelDeployment> {
    this.record('deployment', [id]);
    const found = this.deployments.find((d) => d.id === id);
    if (!found) throw new Error(`no deployment ${id}`);
    if (found.state === 'BUILDING' && --found.readsLeft <= 0) {
      const project = this.find(found.projectId);
      found.state = found.fails ? 'ERROR' : 'READY';
      if (!found.fails && !project.lastRollback) project.production = found.id;
    }
    return plain(found);
  }

  async rollback(projectId: string, deploymentId: string): Promise<void> {
    this.record('rollback', [projectId, deploymentId]);
    const project = this.find(projectId);
    project.lastRollback = { toDeploymentId: deploymentId, status: 'in-progress' };
    this.pendingRollback.set(project.id, this.settleAfterReads);
  }

  async upsertEnv(projectId: string, variable: EnvVariable): Promise<void> {
    this.record('upsertEnv', [projectId, variable.key]);
    this.find(projectId).env[variable.key] = variable.value;
  }

  async redeploy(projectName: string, deploymentId: string, meta: Readonly<Record<string, string>>) {
    this.record('redeploy', [projectName, deploymentId, meta]);
    const project = this.find(projectName);
    const created = this.add(project, 'BUILDING', meta);
    created.fails = this.failNextBuild;
    this.failNextBuild = false;
    return plain(created);
  }

  private add(
    project: MemoryProject,
    state: DeploymentState,
    meta: Readonly<Record<string, string>>,
  ): MemoryDeployment {
    this.clock += 60_000;
    const id = `dpl_${this.deployments.length + 1}`;
    const url = `https://${project.name}-${this.deployments.length + 1}.vercel.app`;
    const created = {
      id,
      url,
      state,
      createdAt: this.clock,
      meta,
      projectId: project.id,
      readsLeft: this.settleAfterReads,
      fails: false,
    };
    this.deployments.push(created);
    return created;
  }

  private find(idOrName: string): MemoryProject {
    const project = this.projects.find((p) => p.id === idOrName || p.name === idOrName);
    if (!project) throw new Error(`no Vercel project ${idOrName}`);
    return project;
  }

  private record(call: keyof VercelPort, args: readonly unknown[]): void {
    this.calls.push({ call, args });
    const failure = this.failures.shift();
    if (failure) throw failure;
  }
}

function plain(d: VercelDeployment): VercelDeployment {
  return { id: d.id, url: d.url, state: d.state, createdAt: d.createdAt, meta: d.meta };
}
