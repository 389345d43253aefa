// The Vercel REST API stand-in, under VERCEL_API_URL, with the real service's rules and error shapes
// (`{error: {code, message}}`): 403 without a valid `Authorization: Bearer` token, `?teamId=` for the team's projects
// (404 without it, as Vercel then looks in the token owner's own account; 403 for another team), 404 for an unknown
// project or deployment, `/v6/deployments` newest first with timestamp pagination (`until`, `pagination.next`), an
// instant rollback answered 201 at once and taking effect a little later (and turning off the automatic promotion
// of new production deployments, as on Vercel), env upserts, and redeploys that build (QUEUED, BUILDING, READY) before
// the production domains move to them. It keeps every call for the tests; `failNext` makes the next calls fail.
import { randomBytes } from 'node:crypto';
import {
  isObject,
  jsonAnswer,
  parseObject,
  ScriptedFailures,
  serveOnLoopback,
  type HttpAnswer,
  type HttpRequest,
  type LoopbackServer,
} from '../../shared/loopback-server.js';
import type { DeploymentState } from './port.js';

export interface StandInDeployment {
  readonly id: string;
  readonly projectId: string;
  readonly host: string;
  readonly createdAt: number;
  readonly meta: Readonly<Record<string, string>>;
  /** When it is READY (a redeploy builds until then); ERROR instead when `fails`. */
  readonly readyAt: number;
  readonly fails: boolean;
  /** The project's env values it was built with. */
  readonly env: Readonly<Record<string, string>>;
}

export interface StandInProject {
  readonly id: string;
  readonly name: string;
  readonly env: Record<string, { value: string; type: string; target: readonly string[] }>;
  /** The deployment the production domains serve, and since when a rollback changes it. */
  production: string | undefined;
  /** The last instant rollback; once made, new production deployments are no longer promoted by themselves. */
  rollback: { toDeploymentId: string; at: number; requestedAt: number } | undefined;
}

export interface StandInCall {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly status: number;
  readonly at: number;
}

export interface VercelStandInOptions {
  readonly token: string;
  /** The team the projects belong to; undefined = the token owner's own projects (no teamId). */
  readonly teamId?: string;
  /** How long a redeploy builds (default 60 ms). */
  readonly buildMs?: number;
  /** How long an instant rollback takes to move the domains (default 60 ms). */
  readonly rollbackMs?: number;
}

export class VercelStandIn {
  readonly projects: StandInProject[] = [];
  readonly deployments: StandInDeployment[] = [];
  /** Every request, with the status it was answered with. */
  readonly calls: StandInCall[] = [];
  /** Delay before answering each request (a slow Vercel, to make a client time out). */
  delayMs = 0;
  /** The next redeploy's build fails (readyState ERROR). */
  failNextBuild = false;
  /** VERCEL_API_URL, once `start` serves the stand-in. */
  url = '';
  private readonly failures = new ScriptedFailures();
  private server: LoopbackServer | undefined;
  private clock = 0;

  constructor(private readonly options: VercelStandInOptions) {}

  async start(): Promise<this> {
    this.server = await serveOnLoopback(async (request) => {
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      return this.answer(request);
    });
    this.url = this.server.url;
    return this;
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }

  /** The next `times` requests are answered `status`, with a Retry-After (seconds) when given. */
  failNext(times: number, status: 500 | 502 | 503 | 429 = 500, retryAfterSeconds?: number): void {
    this.failures.add(times, status, retryAfterSeconds);
  }

  /** A project with `deployments` READY production deployments, a minute apart; the newest serves production. */
  addProject(name: string, deployments = 2): StandInProject {
    const project: StandInProject = {
      id: `prj_${randomBytes(8).toString('hex')}`,
      name,
      env: {},
      production: undefined,
      rollback: undefined,
    };
    this.projects.push(project);
    const start = Date.now() - deployments * 60_000;
    for (let i = 0; i < deployments; i++) this.newDeployment(project, start + i * 60_000, {}, 0);
    this.settle(project);
    return project;
  }

  /** The deployment the project's production domains serve now. */
  productionOf(name: string): StandInDeployment | undefined {
    const project = this.projects.find((p) => p.name === name);
    if (!project) return undefined;
    this.settle(project);
    return this.deployments.find((d) => d.id === project.production);
  }

  /** Calls whose path starts with `prefix` (and with that method, when given). */
  callsTo(prefix: string, method?: string): StandInCall[] {
    return this.calls.filter((c) => c.path.startsWith(prefix) && (method === undefined || c.method === method));
  }

  /** One request, answered as Vercel answers it. */
  answer(request: HttpRequest): HttpAnswer {
    const method = request.method ?? 'GET';
    const answer = this.route(method, request);
    const query = request.query?.toString() ?? '';
    this.calls.push({ method, path: request.path, query, status: answer.status, at: Date.now() });
    return answer;
  }

  private route(method: string, { path, headers, raw, query = new URLSearchParams() }: HttpRequest): HttpAnswer {
    const failure = this.failures.next((status) => ({
      error: { code: status === 429 ? 'rate_limited' : 'internal_server_error', message: 'stand-in failure' },
    }));
    if (failure) return failure;
    const auth = headers.authorization;
    if (auth === undefined || !auth.startsWith('Bearer ')) {
      return refuse(403, 'forbidden', 'The request is missing an authentication token', { missingToken: true });
    }
    if (auth !== `Bearer ${this.options.token}`) {
      return refuse(403, 'forbidden', 'Not authorized', { invalidToken: true });
    }
    const team = query.get('teamId');
    if (team !== null && team !== this.options.teamId) {
      return refuse(403, 'forbidden', "You don't have permission to access this team");
    }
    // Without teamId Vercel looks in the token owner's own account, where a team's projects are not.
    const inScope = team === this.options.teamId || (team === null && this.options.teamId === undefined);
    const route = `${method} ${path}`;
    let match: RegExpExecArray | null;
    if ((match = /^GET v9\/projects\/([^/]+)$/.exec(route))) {
      return this.withProject(inScope, match[1]!, (p) => jsonAnswer(200, this.viewProject(p)));
    }
    if (route === 'GET v6/deployments') return this.list(inScope, query);
    if ((match = /^GET v13\/deployments\/([^/]+)$/.exec(route))) {
      const deployment = this.deployments.find((d) => d.id === decodeURIComponent(match![1]!));
      const project = deployment && this.projects.find((p) => p.id === deployment.projectId);
      if (!inScope || !deployment || !project) return refuse(404, 'not_found', 'The deployment could not be found.');
      return jsonAnswer(200, this.viewDeployment(deployment, project, 'id'));
    }
    if ((match = /^POST v1\/projects\/([^/]+)\/rollback\/([^/]+)$/.exec(route))) {
      const to = decodeURIComponent(match[2]!);
      return this.withProject(inScope, match[1]!, (p) => this.rollback(p, to));
    }
    if ((match = /^POST v10\/projects\/([^/]+)\/env$/.exec(route))) {
      return this.withProject(inScope, match[1]!, (p) => this.upsertEnv(p, raw, query.get('upsert') === 'true'));
    }
    if (route === 'POST v13/deployments') return this.redeploy(inScope, raw);
    return refuse(404, 'not_found', 'The requested path was not found');
  }

  private withProject(inScope: boolean, idOrName: string, then: (p: StandInProject) => HttpAnswer): HttpAnswer {
    const key = decodeURIComponent(idOrName);
    const project = inScope ? this.projects.find((p) => p.id === key || p.name === key) : undefined;
    if (!project) return refuse(404, 'not_found', 'Project not found');
    this.settle(project);
    return then(project);
  }

  private list(inScope: boolean, query: URLSearchParams): HttpAnswer {
    const key = query.get('projectId') ?? '';
    const project = inScope ? this.projects.find((p) => p.id === key || p.name === key) : undefined;
    if (!project) return refuse(404, 'not_found', 'Project not found');
    const states = query.get('state')?.split(',');
    const until = query.has('until') ? Number(query.get('until')) : Infinity;
    const since = query.has('since') ? Number(query.get('since')) : -Infinity;
    const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 20)));
    const matching = this.deployments
      .filter((d) => d.projectId === project.id && d.createdAt < until && d.createdAt > since)
      .filter((d) => states === undefined || states.includes(this.stateOf(d)))
      .sort((a, b) => b.createdAt - a.createdAt);
    const page = matching.slice(0, limit);
    const more = matching.length > limit;
    return jsonAnswer(200, {
      deployments: page.map((d) => this.viewDeployment(d, project, 'uid')),
      pagination: { count: page.length, next: more ? page.at(-1)!.createdAt : null, prev: null },
    });
  }

  private rollback(project: StandInProject, to: string): HttpAnswer {
    const target = this.deployments.find((d) => d.id === to && d.projectId === project.id);
    if (!target) return refuse(404, 'not_found', 'The deployment could not be found.');
    if (this.stateOf(target) !== 'READY') {
      return refuse(400, 'bad_request', 'Only a READY production deployment can be rolled back to');
    }
    const now = Date.now();
    project.rollback = { toDeploymentId: to, at: now + (this.options.rollbackMs ?? 60), requestedAt: now };
    return { status: 201, headers: {}, body: '' };
  }

  private upsertEnv(project: StandInProject, raw: string, upsert: boolean): HttpAnswer {
    const body = parseObject(raw);
    const key = typeof body?.key === 'string' ? body.key : '';
    const target = Array.isArray(body?.target) ? body.target.filter((t): t is string => typeof t === 'string') : [];
    if (!body || key === '' || typeof body.value !== 'string' || typeof body.type !== 'string' || target.length === 0) {
      return refuse(400, 'bad_request', 'Invalid request: missing key, value, type or target');
    }
    if (project.env[key] && !upsert) {
      return refuse(400, 'ENV_ALREADY_EXISTS', `A variable with the name \`${key}\` already exists`);
    }
    project.env[key] = { value: body.value, type: body.type, target };
    const created = { key, type: body.type, target, id: randomBytes(8).toString('hex') };
    return jsonAnswer(201, { created, failed: [] });
  }

  private redeploy(inScope: boolean, raw: string): HttpAnswer {
    const body = parseObject(raw);
    const name = typeof body?.name === 'string' ? body.name : '';
    const from = typeof body?.deploymentId === 'string' ? body.deploymentId : undefined;
    const project = inScope ? this.projects.find((p) => p.name === name) : undefined;
    if (!project) return refuse(404, 'not_found', 'Project not found');
    const source = from === undefined ? undefined : this.deployments.find((d) => d.id === from);
    if (!source || source.projectId !== project.id) {
      return refuse(404, 'not_found', 'The deployment could not be found.');
    }
    if (body?.target !== 'production') return refuse(400, 'bad_request', 'Only production redeploys are served here');
    const meta = Object.fromEntries(
      Object.entries(isObject(body.meta) ? body.meta : {}).filter(
        (e): e is [string, string] => typeof e[1] === 'string',
      ),
    );
    const created = this.newDeployment(project, Date.now(), meta, this.options.buildMs ?? 60);
    return jsonAnswer(200, this.viewDeployment(created, project, 'id'));
  }

  private newDeployment(
    project: StandInProject,
    createdAt: number,
    meta: Record<string, string>,
    buildMs: number,
  ): StandInDeployment {
    // Creation times stay distinct and increasing, as the timestamp pagination relies on them.
    this.clock = Math.max(this.clock + 1, createdAt);
    const id = `dpl_${randomBytes(10).toString('hex')}`;
    const env = Object.fromEntries(Object.entries(project.env).map(([k, v]) => [k, v.value]));
    const deployment: StandInDeployment = {
      id,
      projectId: project.id,
      host: `${project.name}-${id.slice(4, 13)}.vercel.app`,
      createdAt: this.clock,
      meta,
      readyAt: this.clock + buildMs,
      fails: buildMs > 0 && this.failNextBuild,
      env,
    };
    if (deployment.fails) this.failNextBuild = false;
    this.deployments.push(deployment);
    return deployment;
  }

  /** QUEUED, BUILDING, READY or ERROR, as Vercel would report the deployment now. */
  stateOf(deployment: StandInDeployment): DeploymentState {
    const now = Date.now();
    if (now >= deployment.readyAt) return deployment.fails ? 'ERROR' : 'READY';
    return now - deployment.createdAt < (deployment.readyAt - deployment.createdAt) / 3 ? 'QUEUED' : 'BUILDING';
  }

  /**
   * What time has done since the last look: a rollback that took, or a redeploy that became READY and was promoted.
   * After an instant rollback nothing is promoted by itself any more (Vercel waits for a promote, which no step makes).
   */
  private settle(project: StandInProject): void {
    if (project.rollback) {
      if (Date.now() >= project.rollback.at) project.production = project.rollback.toDeploymentId;
      return;
    }
    const newestReady = this.deployments
      .filter((d) => d.projectId === project.id && this.stateOf(d) === 'READY')
      .sort((a, b) => b.createdAt - a.createdAt)[0];
    if (newestReady) project.production = newestReady.id;
  }

  private viewProject(project: StandInProject): Record<string, unknown> {
    const production = this.deployments.find((d) => d.id === project.production);
    const rollback = project.rollback;
    return {
      id: project.id,
      name: project.name,
      accountId: this.options.teamId ?? 'user_standin',
      targets: production ? { production: this.viewDeployment(production, project, 'id') } : {},
      lastRollbackTarget: rollback
        ? {
            fromDeploymentId: null,
            toDeploymentId: rollback.toDeploymentId,
            jobStatus: Date.now() >= rollback.at ? 'succeeded' : 'in-progress',
            requestedAt: rollback.requestedAt,
          }
        : null,
    };
  }

  /** As /v6 lists it (`uid`, `state`) or as /v13 and `targets` give it (`id`, `readyState`). */
  private viewDeployment(d: StandInDeployment, project: StandInProject, idKey: 'id' | 'uid'): Record<string, unknown> {
    const state = this.stateOf(d);
    return {
      [idKey]: d.id,
      name: project.name,
      url: d.host,
      created: d.createdAt,
      createdAt: d.createdAt,
      ...(idKey === 'uid' ? { state } : {}),
      readyState: state,
      target: 'production',
      meta: d.meta,
    };
  }
}

function refuse(status: number, code: string, message: string, extra: Record<string, unknown> = {}): HttpAnswer {
  return jsonAnswer(status, { error: { code, message, ...extra } });
}
