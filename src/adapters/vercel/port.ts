// The Vercel REST calls Lifeline makes, in its own words: a project's production deployment, its earlier READY
// production deployments, an instant rollback, an environment variable, and a redeploy.

/** Vercel's `readyState` of a deployment. */
export const DEPLOYMENT_STATES = ['QUEUED', 'INITIALIZING', 'BUILDING', 'READY', 'ERROR', 'CANCELED'] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

export interface VercelDeployment {
  readonly id: string;
  /** `https://` and the deployment's own host. */
  readonly url: string;
  readonly state: DeploymentState;
  /** Milliseconds since the epoch, as Vercel gives it. */
  readonly createdAt: number;
  /** Vercel's `meta`: the key/values a deployment was created with (Lifeline tags its redeploys). */
  readonly meta: Readonly<Record<string, string>>;
}

/** The project's last instant rollback, as Vercel reports it (`lastRollbackTarget`). */
export interface VercelRollback {
  readonly toDeploymentId: string;
  readonly status: 'pending' | 'in-progress' | 'succeeded' | 'failed' | 'skipped';
}

export interface VercelProject {
  readonly id: string;
  readonly name: string;
  /** What the production domains serve now (`targets.production`); undefined when it never had one. */
  readonly production: VercelDeployment | undefined;
  readonly lastRollback: VercelRollback | undefined;
}

/** One page of a project's production deployments, newest first; `next` pages on to older ones. */
export interface DeploymentPage {
  readonly deployments: readonly VercelDeployment[];
  /** Pass as `until` for the next, older page; undefined on the last page. */
  readonly next: number | undefined;
}

export interface DeploymentQuery {
  /** Only deployments created before this time (ms): the timestamp pagination of `/v6/deployments`. */
  readonly until?: number;
  /** Only deployments created after this time (ms). */
  readonly since?: number;
  /** Only READY ones. */
  readonly readyOnly: boolean;
}

export interface EnvVariable {
  readonly key: string;
  readonly value: string;
  readonly target: 'production';
}

/**
 * The calls, each on the team of VERCEL_TEAM_ID when it is set. A call that may succeed later (network, timeout,
 * 429, 5xx) throws a TransientError; a refusal (403, 404, 400) a PermanentError naming what Vercel said.
 */
export interface VercelPort {
  /** By id or name. */
  project(idOrName: string): Promise<VercelProject>;
  productionDeployments(projectId: string, query: DeploymentQuery): Promise<DeploymentPage>;
  deployment(id: string): Promise<VercelDeployment>;
  /** Points the production domains at `deploymentId` (asynchronous: the project's production changes later). */
  rollback(projectId: string, deploymentId: string): Promise<void>;
  /** Creates the variable or replaces its value (`upsert=true`), encrypted. */
  upsertEnv(projectId: string, variable: EnvVariable): Promise<void>;
  /** A new production deployment built from `deploymentId`'s source, tagged with `meta`. */
  redeploy(
    projectName: string,
    deploymentId: string,
    meta: Readonly<Record<string, string>>,
  ): Promise<VercelDeployment>;
}
