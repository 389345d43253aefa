// The `lifeline` CLI end to end: the built dist/delivery/cli/main.js run as a child process with nothing but
// LIFELINE_URL and LIFELINE_TOKEN, against a real Lifeline process (node dist/main.js) with fake Slack and PagerDuty.
// Tokens from lifeline-admin and from /dr token; every token refusal (exit 2, nothing changed); the same refusals in
// the same words as Slack; jobs followed in the terminal; approvals across Slack and the terminal; and Slack being
// down: the CLI still works, and the card, the notes and the plan (with its buttons) land when Slack is back.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { toTerminal } from '../../src/delivery/cli/terminal.js';
import {
  adminToken,
  describeRun,
  killCliChildren,
  runAdmin,
  runCli,
  startCli,
  type CliResult,
} from '../support/cli.js';
import { allText, EMERGENCY, stillAfter, type Sent, type World } from '../support/e2e.js';
import type { SlackCall } from '../../src/adapters/slack/stand-in.js';
import { USERS, type LifelineProcess } from '../support/lifeline-process.js';
import {
  auditOf,
  AwsTripwire,
  backupName,
  buttonsOf,
  clickButton,
  closeAll,
  createAppDatabase,
  dumpCustom,
  fileStoreWorld,
  jobNumberIn,
  jobRow,
  RESTORE_STEP_NAMES,
  type AppDatabase,
} from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const ENV = 'prod';
const PREFIX = 'shop';
const ROWS = 200;
const DR_SUBCOMMANDS = [
  'restore',
  'backup',
  'backups',
  'scale',
  'redeploy',
  'logs',
  'status',
  'jobs',
  'cancel',
  'drill',
  'audit',
  'token',
  'help',
];
const TOKEN_PATTERN = /llt_[A-Za-z0-9_-]{43}/;

let w: World;
let lifeline: LifelineProcess;
let app: AppDatabase;
let aws: AwsTripwire;
let store: string;
let scratch: string;
let original: string;
/** U0LEAD's token from lifeline-admin; U0OTHER's (in no role) and U0CTO's from /dr token in Slack. */
const tokens = { lead: '', other: '', cto: '' };

beforeAll(async () => {
  app = await createAppDatabase(ROWS);
  original = await app.fingerprint();
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-cli-store-'));
  await dumpCustom(app.url, join(store, backupName(PREFIX, new Date(Date.now() - 60 * 60_000), 'dump')));
  aws = await new AwsTripwire().start();
  scratch = mkdtempSync(join(tmpdir(), 'lifeline-e2e-cli-tmp-'));
  w = await fileStoreWorld({ env: ENV, app, store, prefix: PREFIX, aws, extraEnv: { TMPDIR: scratch } });
  lifeline = await w.process().start();
  tokens.lead = await adminToken(USERS.lead, lifeline.env());
  tokens.other = await slackToken(USERS.other);
  tokens.cto = await slackToken(USERS.cto);
});

afterAll(async () => {
  killCliChildren();
  await closeAll({ w, aws, app, folders: [store, scratch] });
});

// ---- helpers -------------------------------------------------------------------------------------------------------

/** `/dr token` in Slack: the token in the reply its sender alone sees. */
async function slackToken(user: string): Promise<string> {
  const reply = await w.reply(await w.command('token', { user }, '/dr'));
  const token = TOKEN_PATTERN.exec(reply)?.[0];
  if (!token) throw new Error(`no token in the reply: ${reply}`);
  return token;
}

/** The CLI's whole environment: where Lifeline is and whose token. Nothing else (no config, no database, no Redis). */
function cliEnv(token: string | null = tokens.lead): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    LIFELINE_URL: lifeline.baseUrl,
    ...(token === null ? {} : { LIFELINE_TOKEN: token }),
  };
}

/** `lifeline <args…>` as U0LEAD, as whoever owns `token`, or (null) with no token. */
function cli(args: readonly string[], token?: string | null, timeoutMs = 30_000): Promise<CliResult> {
  return runCli(args, cliEnv(token), timeoutMs);
}

function dr(text: string, user: string): Promise<Sent> {
  return w.command(text, { user }, '/dr');
}

/** INC-n from "Declared *INC-n*". */
function declaredIn(run: CliResult): number {
  const match = /Declared \*?INC-(\d+)\b/.exec(run.stdout);
  if (!match) throw new Error(`the CLI declared nothing:\n${describeRun(run)}`);
  return Number(match[1]);
}

/** Every row the CLI could change (the API's own audit lines aside), and what Slack and PagerDuty were sent. */
async function everything(): Promise<Record<string, unknown>> {
  const { rows } = await w.sql.query<Record<string, unknown>>(
    `SELECT (SELECT count(*) FROM incidents)::int AS incidents, (SELECT count(*) FROM incident_events)::int AS events,
            (SELECT count(*) FROM escalation_steps)::int AS steps, (SELECT count(*) FROM recovery_jobs)::int AS jobs,
            (SELECT string_agg(number || ':' || state, ',' ORDER BY number) FROM recovery_jobs) AS job_states,
            (SELECT count(*) FROM audit_log WHERE action <> 'api_call')::int AS audit,
            (SELECT count(*) FROM slack_outbox)::int AS outbox, (SELECT count(*) FROM api_tokens)::int AS tokens,
            (SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL)::int AS revoked`,
  );
  return {
    ...rows[0],
    posts: w.slack.posts().filter((c) => !String(c.body.text ?? '').startsWith(':pager:')).length,
    updates: w.slack.updates().length,
    pages: w.pd.events.length,
  };
}

async function apiCalls(): Promise<number> {
  const { rows } = await w.sql.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM audit_log WHERE action = 'api_call'",
  );
  return rows[0]!.n;
}

const isCliNote = (c: SlackCall): boolean =>
  String(c.body.text ?? '').startsWith(':computer: Through the Lifeline API');

/** The card of INC-n: a top-level post in #emergency that Slack took, naming it, that is not a CLI note. */
function cardsOf(number: number): SlackCall[] {
  const re = new RegExp(`\\bINC-${number}\\b`);
  return w.slack
    .delivered(EMERGENCY)
    .filter((c) => c.body.thread_ts === undefined && !isCliNote(c) && re.test(allText(c.body)));
}

function cliNotesIn(card: SlackCall): string[] {
  return w
    .threadOf(card)
    .filter((c) => isCliNote(c) && c.result !== undefined)
    .map((c) => String(c.body.text));
}

/** The job's plan with Approve/Reject (its buttons carry the job's number), as Slack took it. */
async function planWithButtons(job: number, timeoutMs = 20_000): Promise<SlackCall> {
  return waitUntil(
    `the plan of JOB-${job} in Slack`,
    () =>
      w.slack
        .delivered()
        .find(
          (c) =>
            c.body.thread_ts === undefined &&
            buttonsOf(c.body).some((b) => b.actionId === 'job_approve' && b.value === String(job)),
        ),
    timeoutMs,
  );
}

function expectStepList(stdout: string, job: number): void {
  for (const step of RESTORE_STEP_NAMES)
    expect(stdout, `step ${step.source}`).toMatch(new RegExp(`✓ [^\\n]*${step.source}`));
  expect(stdout).toMatch(new RegExp(`^JOB-${job} succeeded\\b`, 'm'));
  expect(stdout).not.toContain('✗');
}

// ---- the tests -----------------------------------------------------------------------------------------------------

describe('the lifeline CLI', () => {
  test('help needs no settings at all: `help` and `dr help` / `incident help` (the same text as Slack) exit 0; no command is a refusal (2)', async () => {
    const empty = { PATH: process.env.PATH ?? '' };
    const [none, help, drHelp, incidentHelp] = await Promise.all([
      runCli([], empty),
      runCli(['help'], empty),
      runCli(['dr', 'help'], empty),
      runCli(['incident', 'help'], empty),
    ]);
    expect(none.code, describeRun(none)).toBe(2);
    expect(none.stderr).toMatch(/Usage: lifeline/);
    expect(help.code, describeRun(help)).toBe(0);
    for (const word of ['incident', 'dr', 'approve', 'reject', '--no-wait', 'LIFELINE_URL', 'LIFELINE_TOKEN'])
      expect(help.stdout).toContain(word);
    expect(drHelp.code, describeRun(drHelp)).toBe(0);
    for (const sub of DR_SUBCOMMANDS) expect(drHelp.stdout).toContain(`/dr ${sub}`);
    // The same text as the help in Slack (there, mrkdwn with its <env> escaped; here, as the terminal shows it).
    expect(drHelp.stdout).toContain(toTerminal(await w.reply(await dr('help', USERS.lead))));
    expect(incidentHelp.code, describeRun(incidentHelp)).toBe(0);
    expect(incidentHelp.stdout).toContain(toTerminal(await w.reply(await w.command('help', { user: USERS.lead }))));
  });

  test('lifeline-admin prints one token (its SHA-256 alone is stored) and refuses a bad user ID or --days, creating nothing', async () => {
    const before = await everything();
    for (const args of [
      ['token', 'create', 'lead'],
      ['token', 'create', USERS.lead, '--days', '0'],
      ['token', 'create'],
    ]) {
      const run = await runAdmin(args, lifeline.env());
      expect(run.code, describeRun(run)).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/Slack user ID|--days takes a whole number/);
    }
    expect(await everything()).toEqual(before);
    const made = await runAdmin(['token', 'create', USERS.oncall, '--days', '3'], lifeline.env());
    expect(made.code, describeRun(made)).toBe(0);
    const token = made.stdout.trim();
    expect(made.stdout).toBe(`${token}\n`);
    expect(token).toMatch(/^llt_[A-Za-z0-9_-]{43}$/);
    expect(made.stderr).toContain(`for ${USERS.oncall}, valid until`);
    const { rows } = await w.sql.query<{
      slack_user: string;
      created_via: string;
      days: number;
      hash_matches: boolean;
    }>(
      `SELECT slack_user, created_via, round(extract(epoch FROM expires_at - created_at) / 86400)::int AS days,
              token_hash = $1 AS hash_matches
         FROM api_tokens ORDER BY id DESC LIMIT 1`,
      [createHash('sha256').update(token).digest()],
    );
    expect(rows).toEqual([{ slack_user: USERS.oncall, created_via: 'lifeline-admin', days: 3, hash_matches: true }]);
    const { rows: trail } = await w.sql.query<{ actor: string; detail: string }>(
      "SELECT actor, detail FROM audit_log WHERE action = 'token_created' ORDER BY id DESC LIMIT 1",
    );
    expect(trail[0]?.actor).toMatch(/^lifeline-admin \(.+\)$/);
    expect(trail[0]?.detail).toContain(`API token for ${USERS.oncall} by lifeline-admin`);
    expect(trail[0]?.detail).not.toContain(token);
  });

  test('no token, a bad token, an expired one, a revoked one: refused (2), said why, and nothing changed', async () => {
    await w.settled();
    const expired = await adminToken(USERS.lead, lifeline.env(), 1);
    await w.sql.query(
      `UPDATE api_tokens SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day'
        WHERE token_hash = $1`,
      [createHash('sha256').update(expired).digest()],
    );
    const revoked = await adminToken(USERS.ceo, lifeline.env());
    expect(await w.reply(await dr('token revoke', USERS.ceo))).toContain('Revoked your API token');
    const before = await everything();
    const callsBefore = await apiCalls();
    const cases: [string, string | null, RegExp][] = [
      ['no token', null, /set LIFELINE_TOKEN/],
      ['a malformed token', 'not-a-token', /not a Lifeline API token/],
      ['an unknown token', `llt_${'Q'.repeat(43)}`, /does not know that API token/],
      ['an expired token', expired, /has expired/],
      ['a revoked token', revoked, /was revoked/],
    ];
    for (const [what, token, said] of cases) {
      for (const args of [
        ['incident', 'sev1', 'Must not be declared'],
        ['approve', 'JOB-1'],
        ['dr', 'restore', ENV, 'latest'],
      ]) {
        const run = await cli(args, token);
        expect(run.code, `${what}, lifeline ${args.join(' ')}: ${describeRun(run)}`).toBe(2);
        expect(run.stderr, what).toMatch(said);
        expect(run.stdout, what).toBe('');
      }
    }
    await stillAfter(
      'nothing to change',
      async () => JSON.stringify(await everything()) === JSON.stringify(before),
      500,
    );
    expect(await apiCalls()).toBe(callsBefore);
  });

  test('Lifeline unreachable is a failure (1)', async () => {
    const run = await runCli(['incident', 'list'], {
      PATH: process.env.PATH ?? '',
      LIFELINE_URL: 'http://127.0.0.1:1',
      LIFELINE_TOKEN: tokens.lead,
    });
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/cannot reach Lifeline at http:\/\/127\.0\.0\.1:1/);
  });

  test('`incident sev1 "Database unreachable"` with a token from lifeline-admin: declared as its user, the card, one page, the note in the thread', async () => {
    const run = await cli(['incident', 'sev1', 'Database unreachable']);
    expect(run.code, describeRun(run)).toBe(0);
    const number = declaredIn(run);
    expect(await w.incidentRow(number)).toMatchObject({
      severity: 'sev1',
      title: 'Database unreachable',
      declared_by: USERS.lead,
    });
    const [card, ...more] = cardsOf(number);
    expect(more).toEqual([]);
    expect(buttonsOf(card!.body).map((b) => b.label)).toEqual(['Acknowledge', 'Resolve']);
    await waitUntil('on-call to be paged', () => w.triggersOf(number).length > 0);
    await stillAfter('one page only', () => w.triggersOf(number).length === 1, 1_000);
    const notes = await waitUntil('the CLI note in the thread', () =>
      cliNotesIn(card!).length > 0 ? cliNotesIn(card!) : undefined,
    );
    expect(notes).toEqual([
      `:computer: Through the Lifeline API (\`lifeline\` CLI), <@${USERS.lead}> ` +
        'ran `/incident sev1 Database unreachable`: ' +
        `Declared *INC-${number}* (SEV1); its card is in <#${EMERGENCY}>. Paging has started.`,
    ]);
    // A read changes nothing, so it is not told in Slack.
    const status = await cli(['incident', 'status', `INC-${number}`]);
    expect(status.code, describeRun(status)).toBe(0);
    expect(status.stdout).toContain(`INC-${number}`);
    await stillAfter('no note for a read', () => cliNotesIn(card!).length === 1, 1_000);
    // The mention of the worker's page is in the same thread (so later tests see a quiet Slack).
    await waitUntil('the on-call mention', () =>
      w.threadOf(card!).some((c) => String(c.body.text ?? '').startsWith(':pager:')),
    );
    expect((await cli(['incident', 'resolve', `INC-${number}`])).code).toBe(0);
  });

  test('malformed commands are refused (2) with the words Slack uses for the same command, and change nothing', async () => {
    await w.settled();
    const cases: { args: string[]; slack: () => Promise<Sent> }[] = [
      { args: ['incident', 'sev9', 'x'], slack: () => w.command('sev9 x', { user: USERS.lead }) },
      { args: ['incident'], slack: () => w.command('', { user: USERS.lead }) },
      { args: ['incident', 'nonsense'], slack: () => w.command('nonsense', { user: USERS.lead }) },
      { args: ['dr', 'restore', 'nosuchenv', 'latest'], slack: () => dr('restore nosuchenv latest', USERS.lead) },
      { args: ['dr', 'scale', ENV], slack: () => dr(`scale ${ENV}`, USERS.lead) },
    ];
    const before = await everything();
    const runs = await Promise.all(cases.map((c) => cli(c.args)));
    const nonsense = await cli(['approve', 'nonsense']);
    const unknownJob = await cli(['approve', 'JOB-999']);
    for (const [i, c] of cases.entries()) {
      const run = runs[i]!;
      expect(run.code, `lifeline ${c.args.join(' ')}: ${describeRun(run)}`).toBe(2);
      const slack = toTerminal((await w.reply(await c.slack())).replace(/^:warning: /, ''));
      expect(slack.length).toBeGreaterThan(10);
      expect(run.stderr, `lifeline ${c.args.join(' ')}`).toContain(slack);
      expect(run.stdout).toBe('');
    }
    expect(nonsense.code, describeRun(nonsense)).toBe(2);
    expect(nonsense.stderr).toContain(
      'Name the job or run, for example `lifeline approve JOB-7` or `lifeline approve RUN-3`.',
    );
    expect(unknownJob.code, describeRun(unknownJob)).toBe(2);
    expect(unknownJob.stderr).toContain('There is no job JOB-999.');
    await stillAfter(
      'nothing to change',
      async () => JSON.stringify(await everything()) === JSON.stringify(before),
      500,
    );
  });

  test('a restore requested from the CLI waits with its plan; self-approval and a non-approver are refused; Approve in Slack lets it run to its end', async () => {
    await app.query('DELETE FROM users WHERE id > 30');
    const child = startCli(['dr', 'restore', ENV, 'latest'], cliEnv(), 55_000);
    const job = Number(
      (await waitUntil('the CLI to name its job', () => /^JOB-(\d+): restore/m.exec(child.stdout()), 15_000))[1],
    );
    await waitUntil(
      'the plan and the wait printed',
      () => child.stdout().includes(`JOB-${job} plan:`) && child.stdout().includes(`JOB-${job} waits for an approver`),
      20_000,
    );
    expect(child.stdout()).toMatch(/preflight/);
    const plan = await planWithButtons(job);
    const waiting = await jobRow(w, job);
    expect(waiting).toMatchObject({ state: 'awaiting_approval', requested_by: USERS.lead, decided_by: null });

    const auditBefore = await auditOf(w, job);
    const self = await cli(['approve', `JOB-${job}`]);
    expect(self.code, describeRun(self)).toBe(2);
    expect(self.stderr).toContain(`You requested JOB-${job}; another approver has to approve it.`);
    const other = await cli(['approve', `JOB-${job}`], tokens.other);
    expect(other.code, describeRun(other)).toBe(2);
    expect(other.stderr).toContain(`Only engineering_lead or cto may approve JOB-${job}.`);
    const otherReject = await cli(['reject', `JOB-${job}`], tokens.other);
    expect(otherReject.code, describeRun(otherReject)).toBe(2);
    expect(otherReject.stderr).toContain(`Only the requester or an approver may reject JOB-${job}.`);
    // Nothing changed but the refusals on the record (and the API calls), as in Slack.
    expect(await jobRow(w, job)).toEqual(waiting);
    expect(await app.count()).toBe(30);
    const refusals = (await auditOf(w, job)).slice(auditBefore.length).filter((e) => e.action !== 'api_call');
    expect(refusals.map((e) => [e.action, e.actor])).toEqual([
      ['approval_refused', USERS.lead],
      ['approval_refused', USERS.other],
      ['approval_refused', USERS.other],
    ]);
    expect(child.running).toBe(true);

    const click = await clickButton(w, plan, 'Approve', USERS.cto);
    expect(click.status).toBe(200);
    const end = await child.done;
    expect(end.code, describeRun(end)).toBe(0);
    expect(end.stdout).toContain(`approved by @${USERS.cto}`);
    expectStepList(end.stdout, job);
    expect(await app.count()).toBe(ROWS);
    expect(await app.fingerprint()).toBe(original);
    expect(await jobRow(w, job)).toMatchObject({ state: 'succeeded', decided_by: USERS.cto });
    const apiAudit = (await auditOf(w, job)).filter((e) => e.action === 'api_call');
    expect(new Set(apiAudit.map((e) => e.actor))).toEqual(new Set([USERS.lead, USERS.other]));
  });

  test('a restore requested in Slack, approved from the CLI with a token from /dr token: followed to its end, the audit says who', async () => {
    await app.query('DELETE FROM users WHERE id > 20');
    const sent = await dr(`restore ${ENV} latest`, USERS.lead);
    const job = jobNumberIn(await w.reply(sent))!;
    const plan = await planWithButtons(job);
    await waitUntil(`JOB-${job} to await approval`, async () => (await jobRow(w, job))?.state === 'awaiting_approval');

    const run = await cli(['approve', `JOB-${job}`], tokens.cto, 50_000);
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.stdout).toContain(`JOB-${job} approved.`);
    expect(run.stdout).toContain(`JOB-${job} plan:`);
    expect(run.stdout).toContain(`approved by @${USERS.cto}`);
    expectStepList(run.stdout, job);
    expect(await app.fingerprint()).toBe(original);
    const audit = await auditOf(w, job);
    expect(audit.filter((e) => e.action === 'approved').map((e) => e.actor)).toEqual([USERS.cto]);
    await waitUntil('the plan updated as approved', () =>
      w.slack
        .updates()
        .some(
          (u) =>
            u.body.ts === plan.result?.ts &&
            allText(u.body).includes(`<@${USERS.cto}>`) &&
            /approved/i.test(allText(u.body)),
        ),
    );
    const note = await waitUntil('the CLI note', () =>
      w.slack
        .delivered(EMERGENCY)
        .find((c) => isCliNote(c) && String(c.body.text).includes(`ran \`approve JOB-${job}\``)),
    );
    expect(String(note.body.text)).toContain(`<@${USERS.cto}>`);
  });

  test('--no-wait returns at once; `reject` from the CLI by the requester ends the job', async () => {
    const run = await cli(['--no-wait', 'dr', 'restore', ENV, 'latest']);
    expect(run.code, describeRun(run)).toBe(0);
    const job = jobNumberIn(run.stdout)!;
    expect(run.stdout).toMatch(new RegExp(`^JOB-${job}: restore`, 'm'));
    expect(run.stdout).not.toContain(`JOB-${job} plan:`);
    const plan = await planWithButtons(job);
    await waitUntil(`JOB-${job} to await approval`, async () => (await jobRow(w, job))?.state === 'awaiting_approval');

    const reject = await cli(['reject', `JOB-${job}`]);
    expect(reject.code, describeRun(reject)).toBe(0);
    expect(reject.stdout).toBe(`JOB-${job} rejected.\n`);
    expect(await jobRow(w, job)).toMatchObject({ state: 'rejected', decided_by: USERS.lead });
    await waitUntil('the plan updated as rejected', () =>
      w.slack
        .updates()
        .some(
          (u) => u.body.ts === plan.result?.ts && /rejected/i.test(allText(u.body)) && buttonsOf(u.body).length === 0,
        ),
    );
    expect(await app.count()).toBe(ROWS);
  });

  test('Slack down: the CLI declares and requests (exit 0); when Slack is back the card, the notes and the plan with its buttons land, and Approve works', async () => {
    await app.query('DELETE FROM users WHERE id > 10');
    w.slack.down = true;
    try {
      const declared = await cli(['incident', 'sev2', 'Slack is down']);
      expect(declared.code, describeRun(declared)).toBe(0);
      const number = declaredIn(declared);
      expect(declared.stdout).toMatch(/card could not be posted/);
      // Paging does not need Slack.
      await waitUntil(`on-call paged for INC-${number}`, () => w.triggersOf(number).length === 1, 15_000);
      const ack = await cli(['incident', 'ack', `INC-${number}`], tokens.cto);
      expect(ack.code, describeRun(ack)).toBe(0);
      await waitUntil('PagerDuty acknowledge', () => w.followUpsOf(number, 'acknowledge').length === 1, 15_000);

      const requested = await cli(['--no-wait', 'dr', 'restore', ENV, 'latest']);
      expect(requested.code, describeRun(requested)).toBe(0);
      const job = jobNumberIn(requested.stdout)!;
      await waitUntil(
        `JOB-${job} to await approval`,
        async () => (await jobRow(w, job))?.state === 'awaiting_approval',
        20_000,
      );
      const waitingPlan = await waitUntil(
        'the plan in the outbox',
        async () =>
          (await w.sql.query('SELECT id FROM slack_outbox WHERE plan_of = $1 AND sent_at IS NULL', [job])).rows[0],
      );
      expect(waitingPlan).toBeDefined();
      expect((await w.sql.query('SELECT approval_ts FROM recovery_jobs WHERE number = $1', [job])).rows[0]).toEqual({
        approval_ts: null,
      });
      expect(cardsOf(number)).toEqual([]);
      expect(
        w.slack.delivered().filter((c) => new RegExp(`\\b(INC-${number}|JOB-${job})\\b`).test(allText(c.body))),
      ).toEqual([]);
      // The two notes about the incident, the request's note and the plan.
      expect(await w.pendingOutbox()).toBeGreaterThanOrEqual(4);

      w.slack.down = false;
      // Slack answers again; the next API command (once the late-card grace of 5 s has passed) delivers it all.
      const declaredAt = ((await w.incidentRow(number))!.declared_at as Date).getTime();
      await waitUntil('the late-card grace to pass', () => Date.now() > declaredAt + 5_500, 15_000);
      const status = await cli(['incident', 'status', `INC-${number}`]);
      expect(status.code, describeRun(status)).toBe(0);
      expect(status.stdout).toContain(`INC-${number}`);
      await waitUntil('the outbox to empty', async () => (await w.pendingOutbox()) === 0, 20_000);

      const cards = cardsOf(number);
      expect(cards, JSON.stringify(cards.map((c) => [c.at, allText(c.body)]))).toHaveLength(1);
      expect(String((await w.incidentRow(number))?.card_ts)).toBe(String(cards[0]!.result?.ts));
      const notes = cliNotesIn(cards[0]!);
      // (The request's note too: this is the one open incident.)
      expect(notes.map((n) => /ran `([^`]+)`/.exec(n)?.[1])).toEqual([
        '/incident sev2 Slack is down',
        `/incident ack INC-${number}`,
        `/dr restore ${ENV} latest`,
      ]);

      // The plan is the real plan message, with its buttons, recorded as the job's approval message.
      const plan = await planWithButtons(job, 1_000);
      expect(buttonsOf(plan.body).map((b) => b.label)).toEqual(['Approve', 'Reject']);
      expect(plan.body.channel).toBe(EMERGENCY);
      expect(
        (await w.sql.query('SELECT approval_channel, approval_ts FROM recovery_jobs WHERE number = $1', [job])).rows[0],
      ).toEqual({
        approval_channel: EMERGENCY,
        approval_ts: String(plan.result?.ts),
      });
      expect(
        w.slack
          .delivered()
          .filter(
            (c) =>
              c.body.thread_ts === undefined &&
              buttonsOf(c.body).some((b) => b.actionId === 'job_approve' && b.value === String(job)),
          ),
      ).toHaveLength(1);

      const click = await clickButton(w, plan, 'Approve', USERS.cto);
      expect(click.status).toBe(200);
      await waitUntil(`JOB-${job} to succeed`, async () => (await jobRow(w, job))?.state === 'succeeded', 40_000);
      expect(await app.count()).toBe(ROWS);
      // Its progress and result are in the late plan's thread, and the plan says how it ended.
      await waitUntil("the result in the late plan's thread", () =>
        w
          .threadOf(plan)
          .some((c) => c.result !== undefined && new RegExp(`JOB-${job} succeeded`).test(allText(c.body))),
      );
      await waitUntil('the late plan updated', () =>
        w.slack.updates().some((u) => u.body.ts === plan.result?.ts && /succeeded/.test(allText(u.body))),
      );
    } finally {
      w.slack.down = false;
    }
  });

  test('no AWS call was made, and no token reached a log line', () => {
    expect(aws.calls).toEqual([]);
    expect(w.output().filter((l) => Object.values(tokens).some((t) => l.includes(t)))).toEqual([]);
  });
});
