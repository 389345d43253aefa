// The CLI's side of /api/v1: plain fetch, JSON in and out, a bearer token. Nothing here interprets a reply's words.
import type { JobView } from '../api/job-view.js';
import type { RunView } from '../api/run-view.js';
import type { CommandResponse } from '../api/routes.js';

/** The server did not answer (refused connection, timeout) or answered with something that is not the API. */
export class ApiUnreachableError extends Error {}

export interface ApiAnswer<T> {
  readonly status: number;
  readonly body: T;
}

/** An answer that is not a success: every error the API gives has this shape. */
export type ApiRefusal = Pick<CommandResponse, 'ok' | 'reply' | 'code'> & { readonly ok: false };

export interface ApiClient {
  command(command: '/incident' | '/dr', text: string, signal?: AbortSignal): Promise<ApiAnswer<CommandResponse>>;
  decide(job: string, decision: 'approve' | 'reject', signal?: AbortSignal): Promise<ApiAnswer<CommandResponse>>;
  /** approve, reject, done, retry, skip or abort a runbook run. */
  actOnRun(run: string, action: string, signal?: AbortSignal): Promise<ApiAnswer<CommandResponse>>;
  /** A run's view, held by the server until it changes as `job` is. */
  run(
    run: string,
    wait: { version?: string; waitSeconds: number },
    signal?: AbortSignal,
  ): Promise<ApiAnswer<(RunView & { ok: true }) | ApiRefusal>>;
  /** A job's view; with `version`, the server holds the request until the job changes (at most `waitSeconds`). */
  job(
    job: string,
    wait: { version?: string; waitSeconds: number },
    signal?: AbortSignal,
  ): Promise<ApiAnswer<(JobView & { ok: true }) | ApiRefusal>>;
}

/** Lookups (logs, S3 listings, AWS status) can take a while; a hung server must not hang the terminal forever. */
const COMMAND_TIMEOUT_MS = 120_000;

export function createApiClient(baseUrl: string, token: string): ApiClient {
  // A base URL with a path (behind a proxy at /lifeline) keeps it: resolve relative to it with a trailing slash.
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  const call = async <T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ApiAnswer<T>> => {
    const url = new URL(path, base);
    const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
        },
        ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}),
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiUnreachableError(
        `cannot reach Lifeline at ${base.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    const text = await response.text();
    try {
      return { status: response.status, body: JSON.parse(text) as T };
    } catch {
      throw new ApiUnreachableError(
        `${base.origin} answered HTTP ${response.status} with something that is not Lifeline's API ` +
          '(is LIFELINE_URL right?)',
      );
    }
  };
  const follow = <T>(
    what: 'jobs' | 'runs',
    id: string,
    wait: { version?: string; waitSeconds: number },
    signal?: AbortSignal,
  ): Promise<ApiAnswer<T>> => {
    const query = new URLSearchParams({
      wait: String(wait.waitSeconds),
      ...(wait.version ? { version: wait.version } : {}),
    });
    const path = `api/v1/${what}/${encodeURIComponent(id)}?${query}`;
    return call('GET', path, undefined, (wait.waitSeconds + 15) * 1000, signal);
  };
  return {
    command: (command, text, signal) => call('POST', 'api/v1/commands', { command, text }, COMMAND_TIMEOUT_MS, signal),
    decide: (job, decision, signal) =>
      call('POST', `api/v1/jobs/${encodeURIComponent(job)}/${decision}`, {}, COMMAND_TIMEOUT_MS, signal),
    actOnRun: (run, action, signal) =>
      call('POST', `api/v1/runs/${encodeURIComponent(run)}/${action}`, {}, COMMAND_TIMEOUT_MS, signal),
    job: (job, wait, signal) => follow('jobs', job, wait, signal),
    run: (run, wait, signal) => follow('runs', run, wait, signal),
  };
}
