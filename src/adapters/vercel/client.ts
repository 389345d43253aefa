import { PermanentError, TransientError } from '../../shared/errors.js';
import { retryAfterMs, withRetries, type RetryOptions } from '../../shared/retry.js';
import {
  DEPLOYMENT_STATES,
  type DeploymentPage,
  type VercelDeployment,
  type VercelPort,
  type VercelProject,
  type VercelRollback,
} from './port.js';

export interface VercelClientOptions extends RetryOptions {
  /** `VERCEL_API_URL`: https://api.vercel.com in production. */
  readonly baseUrl: string;
  /** `VERCEL_TOKEN`. */
  readonly token: string;
  /** `VERCEL_TEAM_ID`: sent as `?teamId=` on every call when set (team projects need it). */
  readonly teamId?: string | undefined;
  /** A 429's Retry-After longer than this is not waited for here: the call fails and the step's retry comes later. */
  readonly maxRetryAfterMs?: number;
}

/**
 * Vercel's REST API, by hand rather than through `@vercel/sdk`. The SDK does take a base URL (`serverURL`), so
 * VERCEL_API_URL could be honoured, but it is generated for the whole API (close to 600 operations) to make the six
 * calls below, and it checks every answer against its own schemas, so a field Vercel adds or drops fails the call
 * in the middle of a failover; here each answer is read for the few fields Lifeline uses. Each attempt has a hard
 * timeout; 429 (after its Retry-After) and 5xx are tried again with backoff, never a 4xx, and a redeploy (which
 * creates a deployment each time it gets through) is tried again only after a 429, which Vercel answers before
 * doing anything.
 */
export function createVercelClient(options: VercelClientOptions): VercelPort {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const attempts = options.attempts ?? 3;
  const backoffMs = options.backoffMs ?? 500;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 10_000;
  const base = options.baseUrl.replace(/\/+$/, '');

  function urlOf(path: string, query: Record<string, string | undefined> = {}): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, value);
    if (options.teamId !== undefined) params.set('teamId', options.teamId);
    const search = params.toString();
    return `${base}${path}${search === '' ? '' : `?${search}`}`;
  }

  async function attempt(method: 'GET' | 'POST', url: string, body: string | undefined): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${options.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new Unanswered(`Vercel unreachable: ${(err as Error).message}`, { cause: err });
    }
    const text = await response.text().catch(() => '');
    if (response.ok) return parseJson(text);
    const detail = `Vercel answered ${response.status}${errorOf(text)}`;
    if (response.status === 429) throw new RetryLater(detail, retryAfterMs(response.headers.get('retry-after')));
    if (response.status >= 500) throw new Unanswered(detail);
    throw new PermanentError(detail);
  }

  async function call(
    method: 'GET' | 'POST',
    url: string,
    payload?: unknown,
    { idempotent } = { idempotent: true },
  ): Promise<unknown> {
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    const retry = { attempts, backoffMs, maxWaitMs: maxRetryAfterMs };
    const retryAfter = (err: TransientError) => (err instanceof RetryLater ? err.afterMs : undefined);
    const once = async () => {
      try {
        return await attempt(method, url, body);
      } catch (err) {
        // A call that may have got through is not repeated when repeating it would make a second change.
        if (!idempotent && err instanceof Unanswered) throw new PermanentError(`${err.message} (not repeated)`);
        throw err;
      }
    };
    return withRetries(retry, once, retryAfter).catch((err: unknown) => {
      throw err instanceof RetryLater || err instanceof Unanswered ? new TransientError(err.message) : err;
    });
  }

  const path = encodeURIComponent;
  return {
    async project(idOrName) {
      return readProject(await call('GET', urlOf(`/v9/projects/${path(idOrName)}`)));
    },
    async productionDeployments(projectId, query) {
      const answer = await call(
        'GET',
        urlOf('/v6/deployments', {
          projectId,
          target: 'production',
          state: query.readyOnly ? 'READY' : undefined,
          until: query.until === undefined ? undefined : String(query.until),
          since: query.since === undefined ? undefined : String(query.since),
          limit: '100',
        }),
      );
      return readPage(answer);
    },
    async deployment(id) {
      return readDeployment(await call('GET', urlOf(`/v13/deployments/${path(id)}`)), 'the deployment');
    },
    async rollback(projectId, deploymentId) {
      await call('POST', urlOf(`/v1/projects/${path(projectId)}/rollback/${path(deploymentId)}`));
    },
    async upsertEnv(projectId, variable) {
      await call('POST', urlOf(`/v10/projects/${path(projectId)}/env`, { upsert: 'true' }), {
        key: variable.key,
        value: variable.value,
        type: 'encrypted',
        target: [variable.target],
      });
    },
    async redeploy(projectName, deploymentId, meta) {
      const answer = await call(
        'POST',
        urlOf('/v13/deployments'),
        { name: projectName, deploymentId, target: 'production', meta },
        { idempotent: false },
      );
      return readDeployment(answer, 'the new deployment');
    },
  };
}

/** Worth another attempt, but the request may have reached Vercel (a 5xx, a timeout, a dropped connection). */
class Unanswered extends TransientError {}

/** Vercel refused it for now (429) before doing anything. */
class RetryLater extends TransientError {
  constructor(
    message: string,
    readonly afterMs: number | undefined,
  ) {
    super(message);
  }
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new TransientError('Vercel answered with something that is not JSON');
  }
}

/** Vercel's errors are `{error: {code, message}}`. */
function errorOf(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const said = body.error?.message ?? body.error?.code;
    if (typeof said === 'string' && said !== '') return `: ${said.slice(0, 200)}`;
  } catch {
    // Not JSON (a proxy's page): its status says enough.
  }
  return '';
}

type Fields = Record<string, unknown>;

function fieldsOf(value: unknown): Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {};
}

function text(fields: Fields, key: string): string | undefined {
  const value = fields[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A deployment as /v6 lists it (`uid`, `state`) or /v13 and `targets.production` give it (`id`, `readyState`). */
function readDeployment(value: unknown, what: string): VercelDeployment {
  const fields = fieldsOf(value);
  const id = text(fields, 'id') ?? text(fields, 'uid');
  const host = text(fields, 'url');
  const stateText = fields.readyState ?? fields.state;
  const state = DEPLOYMENT_STATES.find((s) => s === stateText);
  const createdAt = typeof fields.createdAt === 'number' ? fields.createdAt : fields.created;
  if (id === undefined || host === undefined || state === undefined || typeof createdAt !== 'number') {
    throw new TransientError(`Vercel answered ${what} without its id, url, state and creation time`);
  }
  const meta = Object.fromEntries(
    Object.entries(fieldsOf(fields.meta)).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
  return { id, url: host.startsWith('https://') ? host : `https://${host}`, state, createdAt, meta };
}

function readProject(value: unknown): VercelProject {
  const fields = fieldsOf(value);
  const id = text(fields, 'id');
  const name = text(fields, 'name');
  if (id === undefined || name === undefined) throw new TransientError('Vercel answered a project without its id');
  const production = fieldsOf(fields.targets).production;
  const rollback = fieldsOf(fields.lastRollbackTarget);
  const toDeploymentId = text(rollback, 'toDeploymentId');
  const status = (['pending', 'in-progress', 'succeeded', 'failed', 'skipped'] as const).find(
    (s) => s === rollback.jobStatus,
  );
  const lastRollback: VercelRollback | undefined =
    toDeploymentId !== undefined && status !== undefined ? { toDeploymentId, status } : undefined;
  return {
    id,
    name,
    production: production === undefined || production === null ? undefined : readDeployment(production, name),
    lastRollback,
  };
}

function readPage(value: unknown): DeploymentPage {
  const fields = fieldsOf(value);
  if (!Array.isArray(fields.deployments)) throw new TransientError('Vercel answered a list without deployments');
  const next = fieldsOf(fields.pagination).next;
  return {
    deployments: fields.deployments.map((d) => readDeployment(d, 'a listed deployment')),
    next: typeof next === 'number' ? next : undefined,
  };
}
