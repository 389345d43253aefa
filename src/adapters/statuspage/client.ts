import { PermanentError, TransientError } from '../../shared/errors.js';
import { retryAfterMs, withRetries, type RetryOptions } from '../../shared/retry.js';
import {
  STATUSPAGE_STATUSES,
  type StatuspageChange,
  type StatuspageIncident,
  type StatuspagePort,
  type StatuspageStatus,
} from './port.js';

export interface StatuspageClientOptions extends RetryOptions {
  /** `STATUSPAGE_API_URL`: https://api.statuspage.io/v1 in production. */
  readonly baseUrl: string;
  readonly pageId: string;
  readonly apiKey: string;
  /** A 429's Retry-After longer than this is not waited for here: the call fails and the job retries later. */
  readonly maxRetryAfterMs?: number;
}

/**
 * Statuspage's REST API, by hand (two calls do not need an SDK). Each attempt has a hard timeout; 429 (after its
 * Retry-After) and 5xx are tried again with backoff, never a 4xx. With the defaults a call gives up within about
 * 25 s, so a failure can be reported in the incident's thread within 30 s.
 */
export function createStatuspageClient(options: StatuspageClientOptions): StatuspagePort {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const attempts = options.attempts ?? 3;
  const backoffMs = options.backoffMs ?? 500;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 5_000;
  const base = options.baseUrl.replace(/\/+$/, '');
  const incidents = `${base}/pages/${encodeURIComponent(options.pageId)}/incidents`;

  async function attempt(method: 'POST' | 'PATCH', url: string, body: string): Promise<StatuspageIncident> {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { 'content-type': 'application/json', authorization: `OAuth ${options.apiKey}` },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new TransientError(`Statuspage unreachable: ${(err as Error).message}`, { cause: err });
    }
    const text = await response.text().catch(() => '');
    if (response.ok) return parseIncident(text);
    const detail = `Statuspage answered ${response.status}${errorOf(text)}`;
    if (response.status === 429 || response.status >= 500) {
      throw new RetryLater(detail, retryAfterMs(response.headers.get('retry-after')));
    }
    throw new PermanentError(detail);
  }

  async function call(method: 'POST' | 'PATCH', url: string, payload: unknown): Promise<StatuspageIncident> {
    const body = JSON.stringify(payload);
    const retry = { attempts, backoffMs, maxWaitMs: maxRetryAfterMs };
    const retryAfter = (err: TransientError) => (err instanceof RetryLater ? err.afterMs : undefined);
    return withRetries(retry, () => attempt(method, url, body), retryAfter).catch((err: unknown) => {
      throw plain(err);
    });
  }

  return {
    createIncident(incident) {
      return call('POST', incidents, {
        incident: {
          name: incident.name,
          status: incident.status,
          body: incident.body,
          components: incident.components,
          component_ids: Object.keys(incident.components),
          deliver_notifications: true,
        },
      });
    },
    updateIncident(id, change: StatuspageChange) {
      const components = change.components
        ? { components: change.components, component_ids: Object.keys(change.components) }
        : {};
      return call('PATCH', `${incidents}/${encodeURIComponent(id)}`, {
        incident: { status: change.status, body: change.body, ...components },
      });
    },
  };
}

class RetryLater extends TransientError {
  constructor(
    message: string,
    readonly afterMs: number | undefined,
  ) {
    super(message);
  }
}

/** RetryLater is this module's own: callers see a plain TransientError. */
function plain(err: unknown): unknown {
  return err instanceof RetryLater ? new TransientError(err.message) : err;
}

function errorOf(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    const said = body.error ?? body.message;
    if (typeof said === 'string' && said !== '') return `: ${said.slice(0, 200)}`;
    if (Array.isArray(said)) return `: ${said.map(String).join('; ').slice(0, 200)}`;
  } catch {
    // Not JSON (a proxy's page): its status says enough.
  }
  return '';
}

function parseIncident(text: string): StatuspageIncident {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new TransientError('Statuspage answered with something that is not JSON');
  }
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const status = STATUSPAGE_STATUSES.find((s) => s === record.status);
  if (typeof record.id !== 'string' || record.id === '' || status === undefined) {
    throw new TransientError('Statuspage answered without an incident id and status');
  }
  const shortlink = typeof record.shortlink === 'string' && record.shortlink !== '' ? record.shortlink : undefined;
  return { id: record.id, shortlink, status: status satisfies StatuspageStatus };
}
