// /api/v1 on PORT, beside /healthz and /metrics: the slash commands and approvals for the `lifeline` CLI (or any
// client), as the personal token's user. The same command tables, dispatcher, services and refusal words as Slack;
// calls are treated as made in emergency_channel (the caller is in no channel). Every call with a valid token lands
// in the audit trail; a missing, unknown, expired or revoked token gets 401 and changes nothing.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { audit } from '../../domain/audit/store.js';
import { planCommand, runHandled, type DispatchDeps } from '../commands/dispatch.js';
import type { SlashCommand } from '../commands/registry.js';
import type { Reply } from '../slack/reply.js';
import type { Db } from '../../shared/db/pool.js';
import { UserError, type UserErrorCode } from '../../shared/errors.js';
import type { Route } from '../http/health.js';
import { readJsonBody, sendJson } from '../http/body.js';
import { incidentId } from '../../domain/incidents/model.js';
import type { Logger } from '../../shared/log.js';
import { jobId, parseJobId } from '../../domain/recovery/model.js';
import type { RecoveryService } from '../../domain/recovery/service.js';
import * as jobs from '../../domain/recovery/store.js';
import { FINAL_RUN_STATES, parseRunId, runId } from '../../domain/runbooks/model.js';
import type { RunbookService } from '../../domain/runbooks/service.js';
import * as runs from '../../domain/runbooks/store.js';
import { runView } from './run-view.js';
import { line, md } from '../slack/blocks.js';
import { FINAL_STATES, jobView, type JobView } from './job-view.js';
import { authenticate, refusalText } from '../../domain/access/tokens.js';

export const API_COMMANDS = ['/incident', '/dr'] as const;
export type ApiCommand = (typeof API_COMMANDS)[number];

/** Request bodies are a command line or nothing: 64 KB is far more than any of them needs. */
const BODY_LIMIT = { maxBytes: 64 * 1024, overflow: 'drain' } as const;
/** The longest a GET /api/v1/jobs/JOB-n?wait= may hold the request open waiting for a change. */
const MAX_WAIT_SECONDS = 25;
const WAIT_POLL_MS = 250;

export interface ApiDeps {
  readonly db: Db;
  readonly tables: Readonly<Record<ApiCommand, SlashCommand>>;
  readonly recovery: Pick<RecoveryService, 'approve' | 'reject'>;
  readonly runbooks: Pick<RunbookService, 'approve' | 'reject' | 'act'>;
  readonly dispatch: DispatchDeps;
  /** Where API calls count as made: the caller is in no channel. */
  readonly emergencyChannel: string;
  /** Tells Slack what an API call changed: queues it in the outbox (Slack may be down). */
  readonly note: (note: ApiNote) => Promise<void>;
  /**
   * Sends what waits in the outbox, in the background, after each command: like the old CLI's every run, a command
   * through the API is also what brings out what waited while Slack was down.
   */
  readonly deliverOutbox: () => void;
  readonly log: Logger;
}

/** A state-changing API command, for the record in Slack. */
export interface ApiNote {
  readonly userId: string;
  /** What was run, as it would be typed in Slack: `/dr restore production latest`, `approve JOB-7`. */
  readonly what: string;
  readonly reply: Reply;
}

export interface Api {
  readonly routes: readonly Route[];
  /** Answers every request still waiting for a job to change, so a shutdown is not held up by them. */
  close(): void;
}

const commandBody = z.strictObject({
  command: z.enum(API_COMMANDS),
  text: z.string().max(4_000),
});

/** The API's JSON answer to a command or an approval. */
export interface CommandResponse {
  readonly ok: boolean;
  readonly reply: string;
  readonly job?: string;
  /** True when the command set the job going (a request, an approval): something to follow to its end. */
  readonly job_started?: boolean;
  readonly incident?: string;
  readonly run?: string;
  /** True when the command set the run going (a request, an approval, Done, Retry, Skip, Abort). */
  readonly run_started?: boolean;
  /** Why ok is false: a refusal's code (`not_permitted`, `bad_command`, …), `error`, or `unauthorized`. */
  readonly code?: string;
}

export function createApi(deps: ApiDeps): Api {
  const stopping = new AbortController();
  const handle = (work: (exchange: Exchange) => Promise<void>) => (req: IncomingMessage, res: ServerResponse) => {
    void withUser(deps, req, res, work).catch((err: Error) => {
      deps.log.error({ err: err.message, path: pathOf(req) }, 'API request failed');
      sendJson(res, 500, { ok: false, reply: 'Lifeline hit an unexpected error; it is logged.', code: 'error' });
    });
  };

  const routes: Route[] = [
    { path: '/api/v1/commands', method: ['POST'], handler: handle((exchange) => runCommand(deps, exchange)) },
    { path: '/api/v1/jobs/:job/:decision', method: ['POST'], handler: handle((exchange) => decide(deps, exchange)) },
    {
      path: '/api/v1/jobs/:job',
      method: ['GET'],
      handler: handle((exchange) => showJob(deps, exchange, stopping.signal)),
    },
    { path: '/api/v1/runs/:run/:action', method: ['POST'], handler: handle((exchange) => actOnRun(deps, exchange)) },
    {
      path: '/api/v1/runs/:run',
      method: ['GET'],
      handler: handle((exchange) => showRun(deps, exchange, stopping.signal)),
    },
  ];
  return { routes, close: () => stopping.abort() };
}

/** The worker role takes no commands: it says so, in the API's own shape, instead of a bare 404. */
export function workerApiRoutes(): Route[] {
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    sendJson(res, 503, {
      ok: false,
      reply:
        'This Lifeline process runs with LIFELINE_ROLE=worker: it runs jobs and timers and takes no commands. ' +
        'Point LIFELINE_URL at a process with LIFELINE_ROLE=bot or all.',
      code: 'not_here',
    });
  };
  return [{ path: '/api/v1/*rest', method: ['GET', 'POST'], handler: answer }];
}

/** One authenticated API call. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly userId: string;
  /** Puts the call on the audit trail under the token's user (`outcome`: how it came out), then answers it. */
  answer(status: number, body: object, outcome: string, job?: number): Promise<void>;
}

async function withUser(
  deps: ApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  work: (exchange: Exchange) => Promise<void>,
): Promise<void> {
  const auth = await authenticate(deps.db, req.headers.authorization);
  if (!auth.ok) {
    // Never the token: only why it was refused. The body is not read at all.
    deps.log.info({ method: req.method, path: pathOf(req), reason: auth.reason }, 'API call refused: no valid token');
    req.resume();
    res.setHeader(
      'www-authenticate',
      `Bearer realm="lifeline"${auth.reason === 'missing' ? '' : ', error="invalid_token"'}`,
    );
    sendJson(res, 401, { ok: false, reply: refusalText(auth.reason), code: 'unauthorized', reason: auth.reason });
    return;
  }
  const call = `${req.method ?? 'GET'} ${pathOf(req)}`;
  await work({
    req,
    res,
    userId: auth.userId,
    async answer(status, body, outcome, job) {
      // Tokens pasted into a command are scrubbed: `/dr audit` shows this line in Slack.
      const detail = deps.dispatch.redact(`${call}: ${outcome}`);
      await audit(deps.db, { actor: auth.userId, action: 'api_call', job, detail }).catch((err: Error) =>
        deps.log.error({ err: err.message, user: auth.userId }, 'API call could not be written to the audit trail'),
      );
      sendJson(res, status, body);
    },
  });
}

async function runCommand(deps: ApiDeps, ex: Exchange): Promise<void> {
  const receivedAt = new Date();
  const body = await readJsonBody(ex.req, BODY_LIMIT);
  if (!body.ok) return ex.answer(body.status, body.answer, `refused (HTTP ${body.status})`);
  const parsed = commandBody.safeParse(body.value);
  if (!parsed.success) {
    const reply =
      'The body must be JSON like {"command": "/incident" or "/dr", "text": "…"} (text up to 4000 characters).';
    return ex.answer(400, { ok: false, reply, code: 'bad_request' }, 'refused (HTTP 400)');
  }
  const { command, text } = parsed.data;
  const what = `${command} ${text}`.trim();
  const plan = await planCommand(
    deps.tables[command],
    {
      text,
      userId: ex.userId,
      channelId: deps.emergencyChannel,
      requestKey: `api:${randomUUID()}`,
      viaApi: true,
      receivedAt,
    },
    deps.dispatch,
  );
  const reply: Reply = 'ackWith' in plan ? plan.ackWith : ((await plan.later()) ?? line(md``));
  if ('later' in plan && plan.effect === 'write' && reply.failure === undefined)
    await deps.note({ userId: ex.userId, what, reply });
  deps.deliverOutbox();
  await answerReply(ex, what, reply);
}

async function decide(deps: ApiDeps, ex: Exchange): Promise<void> {
  const [, id = '', decision] = /^\/api\/v1\/jobs\/([^/]+)\/([^/]+)$/.exec(pathOf(ex.req)) ?? [];
  if (decision !== 'approve' && decision !== 'reject') {
    ex.req.resume();
    return ex.answer(
      404,
      {
        ok: false,
        reply: 'There is no such endpoint: POST /api/v1/jobs/JOB-<n>/approve or /reject.',
        code: 'not_found',
      },
      'refused (HTTP 404)',
    );
  }
  // Nothing is read from the body, but the rule for POSTs holds: JSON only.
  const body = await readJsonBody(ex.req, BODY_LIMIT);
  if (!body.ok) return ex.answer(body.status, body.answer, `refused (HTTP ${body.status})`);
  const number = parseJobId(decoded(id));
  const what = `${decision} ${decoded(id)}`;
  const about = { command: decision, user: ex.userId, channel: deps.emergencyChannel };
  const reply = (await runHandled(deps.dispatch, about, async () => {
    if (number === undefined) throw badJob(decoded(id));
    const job =
      decision === 'approve'
        ? await deps.recovery.approve(number, ex.userId)
        : await deps.recovery.reject(number, ex.userId);
    return {
      ...line(md`${jobId(job.number)} ${decision === 'approve' ? 'approved' : 'rejected'}.`),
      job: { number: job.number, started: decision === 'approve' },
    };
  }))!;
  if (reply.failure === undefined) await deps.note({ userId: ex.userId, what, reply });
  deps.deliverOutbox();
  await answerReply(ex, what, reply, number);
}

const RUN_ACTIONS = ['approve', 'reject', 'done', 'retry', 'skip', 'abort'] as const;
type RunApiAction = (typeof RUN_ACTIONS)[number];
const RUN_DONE_WORD: Record<RunApiAction, string> = {
  approve: 'approved',
  reject: 'rejected',
  done: 'goes on: its step is marked done',
  retry: 'goes on: its failed step runs again',
  skip: 'goes on: its failed step is skipped',
  abort: 'is being aborted: what its steps changed is put back where they can',
};

async function actOnRun(deps: ApiDeps, ex: Exchange): Promise<void> {
  const [, id = '', action = ''] = /^\/api\/v1\/runs\/([^/]+)\/([^/]+)$/.exec(pathOf(ex.req)) ?? [];
  if (!(RUN_ACTIONS as readonly string[]).includes(action)) {
    ex.req.resume();
    const reply = `There is no such endpoint: POST /api/v1/runs/RUN-<n>/${RUN_ACTIONS.join('|')}.`;
    return ex.answer(404, { ok: false, reply, code: 'not_found' }, 'refused (HTTP 404)');
  }
  const body = await readJsonBody(ex.req, BODY_LIMIT);
  if (!body.ok) return ex.answer(body.status, body.answer, `refused (HTTP ${body.status})`);
  const act = action as RunApiAction;
  const number = parseRunId(decoded(id));
  const what = `${act} ${decoded(id)}`;
  const about = { command: act, user: ex.userId, channel: deps.emergencyChannel };
  const reply = (await runHandled(deps.dispatch, about, async () => {
    if (number === undefined) throw badRun(decoded(id));
    const run =
      act === 'approve'
        ? await deps.runbooks.approve(number, ex.userId)
        : act === 'reject'
          ? await deps.runbooks.reject(number, ex.userId)
          : await deps.runbooks.act(number, ex.userId, act);
    return {
      ...line(md`${runId(run.number)} ${RUN_DONE_WORD[act]}.`),
      run: { number: run.number, started: act !== 'reject' },
    };
  }))!;
  if (reply.failure === undefined) await deps.note({ userId: ex.userId, what, reply });
  deps.deliverOutbox();
  await answerReply(ex, what, reply);
}

async function showJob(deps: ApiDeps, ex: Exchange, stopping: AbortSignal): Promise<void> {
  const url = new URL(ex.req.url ?? '/', 'http://localhost');
  const id = decoded(url.pathname.slice('/api/v1/jobs/'.length));
  const number = parseJobId(id);
  if (number === undefined)
    return ex.answer(400, { ok: false, reply: badJob(id).message, code: 'bad_command' }, 'refused (bad_command)');
  await longPoll(ex, stopping, {
    load: () => loadView(deps.db, number),
    version: (view) => view.version,
    ended: (view) => FINAL_STATES.includes(view.state),
    missing: `There is no job ${jobId(number)}.`,
    job: number,
  });
}

async function showRun(deps: ApiDeps, ex: Exchange, stopping: AbortSignal): Promise<void> {
  const url = new URL(ex.req.url ?? '/', 'http://localhost');
  const id = decoded(url.pathname.slice('/api/v1/runs/'.length));
  const number = parseRunId(id);
  if (number === undefined)
    return ex.answer(400, { ok: false, reply: badRun(id).message, code: 'bad_command' }, 'refused (bad_command)');
  await longPoll(ex, stopping, {
    load: async () => {
      const run = await runs.getRun(deps.db, number);
      return run ? runView(run, await runs.steps(deps.db, number)) : undefined;
    },
    version: (view) => view.version_tag,
    // A run that waits for a person has nothing more to say until someone acts: the follower is told at once.
    ended: (view) => FINAL_RUN_STATES.includes(view.state) || view.state === 'stopped',
    missing: `There is no run ${runId(number)}.`,
  });
}

/**
 * Long polling: a follower sends the version it has and hears back when the job or run changed (or after `wait`), so
 * following one costs a request (and an audit line) per change, not several a second.
 */
async function longPoll<V extends { readonly state: string }>(
  ex: Exchange,
  stopping: AbortSignal,
  what: {
    load: () => Promise<V | undefined>;
    version: (view: V) => string;
    ended: (view: V) => boolean;
    missing: string;
    job?: number;
  },
): Promise<void> {
  const url = new URL(ex.req.url ?? '/', 'http://localhost');
  const waitSeconds = Math.min(MAX_WAIT_SECONDS, Math.max(0, Number(url.searchParams.get('wait') ?? 0) || 0));
  const known = url.searchParams.get('version');
  const deadline = Date.now() + waitSeconds * 1000;
  const gone = new AbortController();
  ex.res.once('close', () => gone.abort());
  let view: V | undefined;
  for (;;) {
    view = await what.load();
    if (!view || what.version(view) !== known || what.ended(view) || Date.now() >= deadline) break;
    if (stopping.aborted || gone.signal.aborted) break;
    await sleep(WAIT_POLL_MS, undefined, { signal: AbortSignal.any([stopping, gone.signal]) }).catch(() => undefined);
  }
  if (gone.signal.aborted) return;
  if (!view)
    return ex.answer(404, { ok: false, reply: what.missing, code: 'not_found' }, 'refused (not_found)', what.job);
  await ex.answer(200, { ok: true, ...view }, `ok, ${view.state}`, what.job);
}

async function loadView(db: Db, number: number): Promise<JobView | undefined> {
  const job = await jobs.getJob(db, number);
  return job ? jobView(job, await jobs.steps(db, number)) : undefined;
}

function badRun(id: string): UserError {
  return new UserError('bad_command', `"${id}" is not a run ID (they look like RUN-3).`);
}

function badJob(id: string): UserError {
  return new UserError('bad_command', `"${id}" is not a job ID (they look like JOB-7).`);
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const REFUSAL_STATUS: Record<UserErrorCode, number> = {
  bad_command: 400,
  channel_not_allowed: 403,
  not_permitted: 403,
  unknown_incident: 404,
  incident_ambiguous: 409,
  incident_resolved: 409,
  already_done: 409,
  not_available: 409,
};

/** A command's reply as the API answers it: the words, what it acted on, and whether it did what was asked. */
async function answerReply(ex: Exchange, what: string, reply: Reply, job = reply.job?.number): Promise<void> {
  const body: CommandResponse = {
    ok: reply.failure === undefined,
    reply: reply.text,
    ...(reply.job ? { job: jobId(reply.job.number), job_started: reply.job.started } : {}),
    ...(reply.incident ? { incident: incidentId(reply.incident) } : {}),
    ...(reply.run ? { run: runId(reply.run.number), run_started: reply.run.started } : {}),
    ...(reply.failure ? { code: reply.failure.kind === 'refused' ? reply.failure.code : 'error' } : {}),
  };
  const status = !reply.failure ? 200 : reply.failure.kind === 'refused' ? REFUSAL_STATUS[reply.failure.code] : 500;
  const outcome = !reply.failure
    ? 'ok'
    : reply.failure.kind === 'refused'
      ? `refused (${reply.failure.code})`
      : 'failed';
  const acted = [
    ...(reply.job ? [jobId(reply.job.number)] : []),
    ...(reply.incident ? [incidentId(reply.incident)] : []),
    ...(reply.run ? [runId(reply.run.number)] : []),
  ];
  await ex.answer(status, body, `${what} → ${outcome}${acted.length > 0 ? ` ${acted.join(' ')}` : ''}`, job);
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://localhost').pathname;
}
