// /api/v1 end to end: the real process (node dist/main.js, HTTP mode, LOG_LEVEL=debug) with fake Slack and PagerDuty,
// tokens from lifeline-admin and from /dr token in Slack. Each endpoint, each 401 (missing, malformed, unknown,
// expired, revoked) and each 4xx, with "nothing changed" after every refusal; Slack's words for the same refusals;
// lookups answered in the response; every call on the audit trail under the token's user; a worker's answer; and no
// token in any log line or Slack message but the one reply that hands it over.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { adminToken } from '../support/cli.js';
import { allText, EMERGENCY, stillAfter, type Sent, type World } from '../support/e2e.js';
import { USERS, type LifelineProcess } from '../support/lifeline-process.js';
import {
  AwsTripwire,
  backupName,
  closeAll,
  createAppDatabase,
  dumpCustom,
  fileStoreWorld,
  jobRow,
  type AppDatabase,
} from '../support/recovery.js';
import { buttonBody, newTriggerId } from '../support/slack-requests.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const ENV = 'prod';
const PREFIX = 'shop';
const TOKEN_PATTERN = /llt_[A-Za-z0-9_-]{43}/;

let w: World;
let lifeline: LifelineProcess;
let worker: LifelineProcess;
let app: AppDatabase;
let aws: AwsTripwire;
let store: string;
let backup: string;
/** Every token made in this file: none may show up where it must not. */
const minted: string[] = [];
const tokens: Record<'lead' | 'cto' | 'other' | 'expired' | 'revoked', string> = {
  lead: '',
  cto: '',
  other: '',
  expired: '',
  revoked: '',
};

beforeAll(async () => {
  app = await createAppDatabase(50);
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-api-store-'));
  backup = backupName(PREFIX, new Date(Date.now() - 30 * 60_000), 'dump');
  await dumpCustom(app.url, join(store, backup));
  aws = await new AwsTripwire().start();
  w = await fileStoreWorld({ env: ENV, app, store, prefix: PREFIX, aws, extraEnv: { LOG_LEVEL: 'debug' } });
  lifeline = await w.process().start();
  worker = await w.process({ role: 'worker' }).start();
  const env = lifeline.env();
  tokens.lead = await adminToken(USERS.lead, env);
  tokens.cto = await adminToken(USERS.cto, env);
  tokens.other = await adminToken(USERS.other, env);
  tokens.expired = await adminToken(USERS.oncall, env, 1);
  await w.sql.query(
    `UPDATE api_tokens SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day'
        WHERE token_hash = $1`,
    [sha256(tokens.expired)],
  );
  tokens.revoked = await adminToken(USERS.ceo, env);
  minted.push(...Object.values(tokens));
  // /dr token revoke in Slack revokes every token of its sender.
  const revoke = await w.command('token revoke', { user: USERS.ceo }, '/dr');
  expect(await w.reply(revoke)).toContain('Revoked your API token');
});

afterAll(async () => {
  await closeAll({ w, aws, app, folders: [store] });
});

// ---- helpers -------------------------------------------------------------------------------------------------------

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Headers;
}

interface CallOptions {
  /** The token to send; null sends no Authorization header at all. */
  readonly token?: string | null;
  readonly authorization?: string;
  readonly body?: unknown;
  /** A body sent as it stands (instead of JSON of `body`). */
  readonly raw?: string;
  /** null sends no content type. */
  readonly contentType?: string | null;
  readonly via?: LifelineProcess;
}

async function call(method: 'GET' | 'POST', path: string, options: CallOptions = {}): Promise<Answer> {
  const token = options.token === undefined ? tokens.lead : options.token;
  const headers: Record<string, string> = {};
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  else if (token !== null) headers.authorization = `Bearer ${token}`;
  const contentType =
    options.contentType === undefined ? (method === 'POST' ? 'application/json' : null) : options.contentType;
  if (contentType !== null) headers['content-type'] = contentType;
  const body = options.raw ?? (method === 'POST' ? JSON.stringify(options.body ?? {}) : undefined);
  const res = await fetch(`${(options.via ?? lifeline).baseUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, headers: res.headers };
}

function command(cmd: '/incident' | '/dr', text: string, options: CallOptions = {}): Promise<Answer> {
  return call('POST', '/api/v1/commands', { ...options, body: { command: cmd, text } });
}

/** Everything a call could change: rows, tokens' last use, and what Slack and PagerDuty were sent. */
async function everything(): Promise<Record<string, unknown>> {
  const { rows } = await w.sql.query<Record<string, unknown>>(
    `SELECT (SELECT count(*) FROM incidents)::int AS incidents, (SELECT count(*) FROM incident_events)::int AS events,
            (SELECT count(*) FROM recovery_jobs)::int AS jobs, (SELECT count(*) FROM audit_log)::int AS audit,
            (SELECT count(*) FROM slack_outbox)::int AS outbox, (SELECT count(*) FROM api_tokens)::int AS tokens,
            (SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL)::int AS revoked,
            (SELECT max(last_used_at)::text FROM api_tokens) AS last_used,
            (SELECT string_agg(number || ':' || state, ',' ORDER BY number) FROM recovery_jobs) AS job_states`,
  );
  return { ...rows[0], slack: w.slack.calls.length, responses: w.slack.responses.length, pages: w.pd.events.length };
}

async function expectNothingChanged(before: Record<string, unknown>, what: string): Promise<void> {
  await stillAfter(
    `nothing to change after ${what}`,
    async () => JSON.stringify(await everything()) === JSON.stringify(before),
    500,
  );
}

/** A call with a valid token that was refused: its audit line and its token's last use are all it changed. */
function expectOnlyTheCallRecorded(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  what: string,
): void {
  expect({ ...after, audit: before.audit, last_used: before.last_used }, what).toEqual(before);
  expect(after.audit, what).toBe(Number(before.audit) + 1);
}

async function auditRows(actor: string): Promise<{ action: string; detail: string; job: number | null }[]> {
  const { rows } = await w.sql.query<{ action: string; detail: string; job: number | null }>(
    "SELECT action, detail, job FROM audit_log WHERE actor = $1 AND action = 'api_call' ORDER BY id",
    [actor],
  );
  return rows;
}

/** A restore of prod requested in Slack, its plan posted: the job number. */
async function restoreRequestedInSlack(user: string): Promise<number> {
  const sent = await w.command(`restore ${ENV} latest`, { user }, '/dr');
  const reply = await w.reply(sent);
  const job = Number(/JOB-(\d+)/.exec(reply)?.[1]);
  expect(job, reply).toBeGreaterThan(0);
  await waitUntil(
    `JOB-${job} to await approval`,
    async () => (await jobRow(w, job))?.state === 'awaiting_approval',
    20_000,
  );
  return job;
}

/** What Slack answers a click on Approve/Reject of a job (the same refusal words the API must give). */
async function slackClick(job: number, action: 'job_approve' | 'job_reject', user: string): Promise<string> {
  const responseUrl = w.slack.newResponseUrl();
  const triggerId = newTriggerId();
  const body = buttonBody({
    actionId: action,
    value: String(job),
    blockId: `job_decision_${job}`,
    label: 'x',
    user_id: user,
    channel_id: EMERGENCY,
    message_ts: '1700000000.000100',
    response_url: responseUrl,
    trigger_id: triggerId,
  });
  const before = w.ephemeralsTo(user).length;
  const sent: Sent = await w.resend({ body, responseUrl, triggerId, user, channel: EMERGENCY });
  expect(sent.status).toBe(200);
  const reply = await waitUntil(`Slack's answer to ${user}`, () => w.ephemeralsTo(user)[before]);
  return allText(reply.body);
}

// ---- the tests -----------------------------------------------------------------------------------------------------

describe('401: a missing, malformed, unknown, expired or revoked token changes nothing', () => {
  const cases: [string, CallOptions, string][] = [
    ['no Authorization header', { token: null }, 'missing'],
    ['a Basic credential', { authorization: 'Basic dXNlcjpwYXNz' }, 'missing'],
    ['Bearer without a token', { authorization: 'Bearer ' }, 'missing'],
    ['a malformed token', { token: 'llt_short' }, 'malformed'],
    ['a Slack token', { token: 'xoxb-1234-5678-abcdefgh' }, 'malformed'],
    ['an unknown token', { token: `llt_${'A'.repeat(43)}` }, 'unknown'],
  ];
  const calls: [string, (o: CallOptions) => Promise<Answer>][] = [
    ['POST /api/v1/commands', (o) => command('/incident', 'sev1 Must not be declared', o)],
    ['POST /api/v1/jobs/JOB-1/approve', (o) => call('POST', '/api/v1/jobs/JOB-1/approve', o)],
    ['GET /api/v1/jobs/JOB-1', (o) => call('GET', '/api/v1/jobs/JOB-1', o)],
  ];

  test.each(calls)('%s', async (_endpoint, send) => {
    const all: [string, CallOptions, string][] = [
      ...cases,
      ['an expired token', { token: tokens.expired }, 'expired'],
      ['a revoked token', { token: tokens.revoked }, 'revoked'],
    ];
    const before = await everything();
    for (const [what, options, reason] of all) {
      const answer = await send(options);
      expect(answer.status, what).toBe(401);
      expect(answer.body, what).toMatchObject({ ok: false, code: 'unauthorized', reason });
      expect(String(answer.body.reply), what).toContain('/dr token');
      expect(answer.headers.get('www-authenticate'), what).toMatch(/^Bearer realm="lifeline"/);
    }
    await expectNothingChanged(before, 'the refused tokens');
  });
});

describe('POST /api/v1/commands', () => {
  test('a declaration: ok, the reply in Slack words, the incident, the token user as declarer, a note in its thread, one audit line', async () => {
    const answer = await command('/incident', 'sev4 Declared through the API');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ ok: true, incident: expect.stringMatching(/^INC-\d+$/) });
    const number = Number(String(answer.body.incident).slice(4));
    expect(answer.body.reply).toBe(`Declared *INC-${number}* (SEV4); its card is in <#${EMERGENCY}>.`);
    expect(answer.body).not.toHaveProperty('job');
    expect(await w.incidentRow(number)).toMatchObject({
      declared_by: USERS.lead,
      title: 'Declared through the API',
      declared_in: EMERGENCY,
    });
    const card = await waitUntil('the card', () => w.cardOf(number));
    const note = await waitUntil('the note in the thread', () =>
      w.threadOf(card).find((c) => String(c.body.text).includes('Through the Lifeline API')),
    );
    expect(String(note.body.text)).toBe(
      `:computer: Through the Lifeline API (\`lifeline\` CLI), <@${USERS.lead}> ran ` +
        `\`/incident sev4 Declared through the API\`: Declared *INC-${number}* (SEV4); its card is in <#${EMERGENCY}>.`,
    );
    const audit = (await auditRows(USERS.lead)).filter((r) => r.detail.includes('Declared through the API'));
    expect(audit.map((r) => r.detail)).toEqual([
      `POST /api/v1/commands: /incident sev4 Declared through the API → ok INC-${number}`,
    ]);
    await command('/incident', `resolve INC-${number}`);
  });

  test('malformed commands: 400, ok false, the words Slack gives for the same command; nothing but the audit line changes', async () => {
    const cases: [string, '/incident' | '/dr'][] = [
      ['sev9 x', '/incident'],
      ['', '/incident'],
      [`restore nosuchenv latest`, '/dr'],
      [`restore ${ENV} file ../../etc/passwd`, '/dr'],
      ['token please', '/dr'],
    ];
    for (const [text, cmd] of cases) {
      const before = await everything();
      const answer = await command(cmd, text);
      expect(answer.status, text).toBe(400);
      expect(answer.body, text).toMatchObject({ ok: false, code: 'bad_command' });
      const slack = await w.reply(await w.command(text, { user: USERS.lead }, cmd));
      expect(answer.body.reply, text).toBe(slack);
      const after = await everything();
      expectOnlyTheCallRecorded({ ...before, slack: after.slack, responses: after.responses }, after, text);
    }
  });

  test('refusals by the services: 404 unknown incident, 403 a token cannot make a token, 409 a target already busy', async () => {
    await w.settled();
    const unknown = await command('/incident', 'ack INC-9999');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({
      ok: false,
      code: 'unknown_incident',
      reply: ':warning: There is no incident INC-9999.\nUsage: `/incident ack [ID]`',
    });

    const before = await everything();
    const mint = await command('/dr', 'token');
    expect(mint.status).toBe(403);
    expect(mint.body).toMatchObject({ ok: false, code: 'not_permitted' });
    expect(String(mint.body.reply)).toContain('A token cannot make another one');
    expect(JSON.stringify(mint.body)).not.toMatch(TOKEN_PATTERN);
    expectOnlyTheCallRecorded(before, await everything(), '/dr token');

    const job = await restoreRequestedInSlack(USERS.oncall);
    const busy = await command('/dr', `restore ${ENV} latest`);
    expect(busy.status).toBe(409);
    expect(busy.body).toMatchObject({ ok: false, code: 'already_done' });
    expect(String(busy.body.reply)).toContain(`JOB-${job}`);
    expect((await command('/dr', `cancel JOB-${job}`, { token: tokens.cto })).body).toMatchObject({
      ok: true,
      job: `JOB-${job}`,
      job_started: false,
    });
  });

  test('read-only lookups are answered in the response itself; nothing is posted in Slack or sent to a response_url', async () => {
    await w.settled();
    const slackBefore = w.slack.calls.length;
    const responsesBefore = w.slack.responses.length;
    const list = await command('/dr', `restore ${ENV} list`);
    expect(list.status).toBe(200);
    expect(list.body.ok).toBe(true);
    expect(String(list.body.reply)).toContain(`*Backups of ${ENV}*`);
    expect(String(list.body.reply)).toContain(backup);
    const backups = await command('/dr', `backups ${ENV}`);
    expect(String(backups.body.reply)).toContain(backup);
    expect(String(backups.body.reply)).toContain('no checksum (not taken by Lifeline)');
    const jobs = await command('/dr', 'jobs');
    expect(jobs.body).toMatchObject({ ok: true });
    const help = await command('/dr', 'help');
    expect(String(help.body.reply)).toContain('/dr token [revoke]');
    const list2 = await command('/incident', 'list');
    expect(list2.body.ok).toBe(true);
    await stillAfter(
      'no Slack call for lookups',
      () => w.slack.calls.length === slackBefore && w.slack.responses.length === responsesBefore,
      1_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(w.slack.calls.slice(slackBefore))}`);
    });
  });

  test('415 without a JSON content type, 413 over 64 KB, 400 for bad JSON or a body of the wrong shape; each changes nothing but its audit line', async () => {
    await w.settled();
    const cases: [string, CallOptions, number, string][] = [
      [
        'a form body',
        { raw: 'command=/incident&text=sev1+x', contentType: 'application/x-www-form-urlencoded' },
        415,
        'unsupported_media_type',
      ],
      [
        'text/plain',
        { raw: '{"command":"/incident","text":"sev1 x"}', contentType: 'text/plain' },
        415,
        'unsupported_media_type',
      ],
      ['65 KB', { body: { command: '/incident', text: `sev1 ${'x'.repeat(65 * 1024)}` } }, 413, 'too_large'],
      ['broken JSON', { raw: '{"command":"/incident",' }, 400, 'bad_request'],
      ['an unknown command', { body: { command: '/deploy', text: 'now' } }, 400, 'bad_request'],
      ['a missing text', { body: { command: '/incident' } }, 400, 'bad_request'],
      ['an extra key', { body: { command: '/incident', text: 'sev1 x', user: USERS.cto } }, 400, 'bad_request'],
      [
        'text over 4000 characters',
        { body: { command: '/incident', text: `sev1 ${'x'.repeat(4_000)}` } },
        400,
        'bad_request',
      ],
    ];
    for (const [what, options, status, code] of cases) {
      const before = await everything();
      const answer = await call('POST', '/api/v1/commands', options);
      expect(answer.status, what).toBe(status);
      expect(answer.body, what).toMatchObject({ ok: false, code });
      expectOnlyTheCallRecorded(before, await everything(), what);
    }
    const lines = (await auditRows(USERS.lead)).slice(-cases.length).map((r) => r.detail);
    expect(lines).toEqual(cases.map(([, , status]) => `POST /api/v1/commands: refused (HTTP ${status})`));
  });
});

describe('POST /api/v1/jobs/JOB-n/approve|reject', () => {
  test('the same refusals as Slack (self-approval, a non-approver, a non-requester rejecting), then an approval that runs the job', async () => {
    const job = await restoreRequestedInSlack(USERS.lead);
    const waiting = await jobRow(w, job);
    const refusals: [string, 'approve' | 'reject', string, string][] = [
      ['self-approval', 'approve', tokens.lead, USERS.lead],
      ['a non-approver approving', 'approve', tokens.other, USERS.other],
      ['a non-requester, non-approver rejecting', 'reject', tokens.other, USERS.other],
    ];
    for (const [what, decision, token, user] of refusals) {
      const answer = await call('POST', `/api/v1/jobs/JOB-${job}/${decision}`, { token });
      expect(answer.status, what).toBe(403);
      expect(answer.body, what).toMatchObject({ ok: false, code: 'not_permitted' });
      const slack = await slackClick(job, decision === 'approve' ? 'job_approve' : 'job_reject', user);
      expect(answer.body.reply, what).toBe(slack);
      expect(await jobRow(w, job), what).toEqual(waiting);
    }

    const approved = await call('POST', `/api/v1/jobs/JOB-${job}/approve`, { token: tokens.cto });
    expect(approved.status).toBe(200);
    expect(approved.body).toEqual({ ok: true, reply: `JOB-${job} approved.`, job: `JOB-${job}`, job_started: true });
    expect((await jobRow(w, job))?.decided_by).toBe(USERS.cto);
    const again = await call('POST', `/api/v1/jobs/JOB-${job}/reject`, { token: tokens.cto });
    expect(again.status).toBe(403);
    expect(String(again.body.reply)).toMatch(
      new RegExp(`JOB-${job} is (queued|running|succeeded); it can no longer be rejected\\.`),
    );
    await waitUntil(`JOB-${job} to succeed`, async () => (await jobRow(w, job))?.state === 'succeeded', 40_000);
    expect((await auditRows(USERS.cto)).map((r) => r.detail)).toContain(
      `POST /api/v1/jobs/JOB-${job}/approve: approve JOB-${job} → ok JOB-${job}`,
    );
  });

  test('an unknown job, a bad job ID, an unknown decision and a non-JSON body are refused and change nothing but their audit line', async () => {
    await w.settled();
    const cases: [string, string, CallOptions, number, string][] = [
      ['an unknown job', '/api/v1/jobs/JOB-9999/approve', {}, 400, 'There is no job JOB-9999.'],
      ['a bad job ID', '/api/v1/jobs/job-x/approve', {}, 400, '"job-x" is not a job ID (they look like JOB-7).'],
      ['an unknown decision', '/api/v1/jobs/JOB-1/launch', {}, 404, 'There is no such endpoint'],
      [
        'a form body',
        '/api/v1/jobs/JOB-1/approve',
        { raw: 'x=1', contentType: 'application/x-www-form-urlencoded' },
        415,
        'JSON',
      ],
    ];
    for (const [what, path, options, status, words] of cases) {
      const before = await everything();
      const answer = await call('POST', path, options);
      expect(answer.status, what).toBe(status);
      expect(answer.body.ok, what).toBe(false);
      expect(String(answer.body.reply), what).toContain(words);
      expectOnlyTheCallRecorded(before, await everything(), what);
    }
  });
});

describe('GET /api/v1/jobs/JOB-n', () => {
  test('state, steps and result; waiting for a change with ?version=; 400 and 404 for what is not a job', async () => {
    const job = await restoreRequestedInSlack(USERS.oncall);
    const first = await call('GET', `/api/v1/jobs/JOB-${job}`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      ok: true,
      job: `JOB-${job}`,
      kind: 'restore',
      env: ENV,
      state: 'awaiting_approval',
      requested_by: USERS.oncall,
      needs_approval: true,
      decided_by: null,
      steps: [],
      result: null,
    });
    expect(String(first.body.plan)).toContain(backup);
    const version = String(first.body.version);

    // Nothing changes: the request is held for `wait` seconds, then answered with the same version.
    const heldFrom = Date.now();
    const held = await call('GET', `/api/v1/jobs/JOB-${job}?wait=1&version=${version}`);
    expect(Date.now() - heldFrom).toBeGreaterThanOrEqual(900);
    expect(held.body.version).toBe(version);

    // A change answers a waiting request at once.
    const waiting = call('GET', `/api/v1/jobs/JOB-${job}?wait=20&version=${version}`);
    await new Promise((r) => setTimeout(r, 500));
    const rejectedAt = Date.now();
    expect((await call('POST', `/api/v1/jobs/JOB-${job}/reject`, { token: tokens.cto })).status).toBe(200);
    const changed = await waiting;
    expect(Date.now() - rejectedAt).toBeLessThan(5_000);
    expect(changed.body).toMatchObject({
      state: 'rejected',
      decided_by: USERS.cto,
      result: { succeeded: false, outcome: `rejected by <@${USERS.cto}>` },
    });
    expect(changed.body.version).not.toBe(version);

    const bad = await call('GET', '/api/v1/jobs/nonsense');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ ok: false, reply: '"nonsense" is not a job ID (they look like JOB-7).' });
    const missing = await call('GET', '/api/v1/jobs/JOB-9999');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ ok: false, code: 'not_found', reply: 'There is no job JOB-9999.' });
  });

  test('a finished job shows every step and its result', async () => {
    const { rows } = await w.sql.query<{ number: number }>(
      "SELECT number FROM recovery_jobs WHERE state = 'succeeded' ORDER BY number DESC LIMIT 1",
    );
    const job = rows[0]!.number;
    const view = await call('GET', `/api/v1/jobs/JOB-${job}`);
    expect(view.body).toMatchObject({ state: 'succeeded', decided_by: USERS.cto, result: { succeeded: true } });
    const steps = view.body.steps as { name: string; state: string; finished_at: string | null }[];
    expect(steps.length).toBeGreaterThanOrEqual(5);
    expect(steps.every((s) => s.state === 'succeeded' && s.finished_at !== null)).toBe(true);
    expect(steps[0]!.name).toMatch(/preflight/);
  });
});

describe('the rest', () => {
  test('a worker takes no commands and says so (503, JSON), for every API path', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/jobs/JOB-1'],
      ['POST', '/api/v1/commands'],
      ['POST', '/api/v1/jobs/JOB-1/approve'],
    ] as const) {
      const answer = await call(method, path, { via: worker, body: { command: '/incident', text: 'sev1 x' } });
      expect(answer.status, path).toBe(503);
      expect(answer.body, path).toMatchObject({ ok: false, code: 'not_here' });
      expect(String(answer.body.reply)).toContain('LIFELINE_ROLE=worker');
    }
    const health = await fetch(`${worker.baseUrl}/healthz`);
    expect(health.status).toBe(200);
  });

  test('/dr token in Slack: a new token, to its sender alone, that works; the database keeps only its SHA-256', async () => {
    const sent = await w.command('token', { user: USERS.cto }, '/dr');
    const replies = await waitUntil('the token reply', () =>
      w.replies(sent).length > 0 ? w.replies(sent) : undefined,
    );
    expect(replies).toHaveLength(1);
    expect(sent.ackReply).toBeUndefined(); // not in the ack (which Bolt logs at debug level): at the response_url
    const token = TOKEN_PATTERN.exec(replies[0]!)?.[0];
    expect(token, replies[0]).toBeDefined();
    minted.push(token!);
    expect(replies[0]).toContain('shown this once');
    const { rows } = await w.sql.query<{ slack_user: string; created_via: string; days: number }>(
      `SELECT slack_user, created_via, round(extract(epoch FROM expires_at - created_at) / 86400)::int AS days
         FROM api_tokens WHERE token_hash = $1`,
      [sha256(token!)],
    );
    expect(rows).toEqual([{ slack_user: USERS.cto, created_via: 'slack', days: 90 }]);
    const { rows: anywhere } = await w.sql.query(`SELECT 1 FROM api_tokens t WHERE t::text LIKE '%' || $1 || '%'`, [
      token!.slice(4, 20),
    ]);
    expect(anywhere).toEqual([]);
    const jobs = await command('/dr', 'jobs', { token });
    expect(jobs.status).toBe(200);
    const again = await w.command('token', { user: USERS.cto }, '/dr');
    const second = TOKEN_PATTERN.exec(await w.reply(again))?.[0];
    minted.push(second!);
    expect(second).not.toBe(token);
  });

  test('every API call is on the audit trail under its token user; /dr audit shows them', async () => {
    const before = (await auditRows(USERS.other)).length;
    await command('/dr', 'jobs', { token: tokens.other });
    await call('GET', '/api/v1/jobs/JOB-1', { token: tokens.other });
    await command('/incident', 'sev7 nope', { token: tokens.other });
    const rows = (await auditRows(USERS.other)).slice(before);
    expect(rows.map((r) => r.detail)).toEqual([
      'POST /api/v1/commands: /dr jobs → ok',
      expect.stringMatching(/^GET \/api\/v1\/jobs\/JOB-1: ok, \w+$/),
      'POST /api/v1/commands: /incident sev7 nope → refused (bad_command)',
    ]);
    expect(rows[1]!.job).toBe(1);
    const shown = await w.reply(await w.command('audit', { user: USERS.lead }, '/dr'));
    expect(shown).toContain(`<@${USERS.other}> api_call: POST /api/v1/commands: /incident sev7 nope`);
  });

  test('a token pasted into a command is scrubbed from the audit trail', async () => {
    await command('/incident', `sev9 ${tokens.lead}`);
    const { rows } = await w.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE detail LIKE '%' || $1 || '%'`,
      [tokens.lead.slice(4)],
    );
    expect(rows[0]!.n).toBe(0);
  });

  test('no token in any log line (LOG_LEVEL=debug) or Slack message, but the replies that handed them over', async () => {
    expect(minted.length).toBeGreaterThanOrEqual(7);
    const lines = w.output();
    expect(lines.length).toBeGreaterThan(50);
    expect(lines.some((l) => l.includes('"level":20'))).toBe(true); // debug lines are there
    expect(lines.filter((l) => minted.some((t) => l.includes(t) || l.includes(t.slice(4))))).toEqual([]);
    const messages = [
      ...w.slack.calls.map((c) => JSON.stringify(c.body)),
      ...w.slack.responses.map((r) => JSON.stringify(r.body)),
    ];
    const carrying = messages.filter((m) => minted.some((t) => m.includes(t)));
    // The two /dr token replies, each at its sender's response_url.
    expect(carrying).toHaveLength(2);
    expect(w.slack.responses.filter((r) => TOKEN_PATTERN.test(JSON.stringify(r.body)))).toHaveLength(2);
    expect(w.slack.calls.filter((c) => TOKEN_PATTERN.test(JSON.stringify(c.body)))).toEqual([]);
  });

  test('no AWS call was made', () => {
    expect(aws.calls).toEqual([]);
  });
});
