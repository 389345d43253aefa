// The `lifeline` CLI end to end: the built dist/cli/main.js run as a child process beside a real Lifeline process
// (worker + bot) on the same PostgreSQL and Redis, with fake Slack and PagerDuty. Identity from cli_users, the same
// refusals in the same words as Slack, jobs followed in the terminal, approvals across Slack and the terminal, and
// what it did told in Slack, late when Slack was down.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { toTerminal } from '../../src/cli/terminal.js';
import { describeRun, killCliChildren, runCli, startCli, type CliResult } from '../support/cli.js';
import { allText, EMERGENCY, stillAfter, waitUntilTime, World, type Sent } from '../support/e2e.js';
import type { SlackCall } from '../support/fake-slack.js';
import { USERS, writeTestConfig, type LifelineProcess, type TestConfigOptions } from '../support/lifeline-process.js';
import {
  auditOf,
  AwsTripwire,
  backupName,
  buttonsOf,
  clickButton,
  createAppDatabase,
  dumpCustom,
  jobNumberIn,
  jobRow,
  type AppDatabase,
} from '../support/recovery.js';
import { buttonBody, newTriggerId } from '../support/slack-requests.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const ENV = 'prod';
const PREFIX = 'shop';
const ROWS = 200;
const OS_USER = userInfo().username;
/** Nothing listens there: Slack is down. */
const SLACK_DOWN = 'http://127.0.0.1:1/api/';
const STEP_NAMES = [/preflight/, /restore into a fresh database/, /swap/, /verify/, /ANALYZE/, /safety backup/, /clean ?up/];
const DR_SUBCOMMANDS = ['restore', 'backup', 'backups', 'scale', 'redeploy', 'logs', 'status', 'jobs', 'cancel', 'drill', 'audit', 'help'];

let w: World;
let lifeline: LifelineProcess;
let app: AppDatabase;
let aws: AwsTripwire;
let store: string;
let scratch: string;
let original: string;
/** The OS user acts as U0OTHER (not an approver). */
let otherConfig: string;
/** The OS user is not in cli_users. */
let unmappedConfig: string;

beforeAll(async () => {
  app = await createAppDatabase(ROWS);
  original = await app.fingerprint();
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-cli-store-'));
  await dumpCustom(app.url, join(store, backupName(PREFIX, new Date(Date.now() - 60 * 60_000), 'dump')));
  aws = await new AwsTripwire().start();
  scratch = mkdtempSync(join(tmpdir(), 'lifeline-e2e-cli-tmp-'));
  const base: TestConfigOptions = {
    steps: [{ after_minutes: 0, notify: 'oncall' }],
    environmentsYaml: `  ${ENV}:
    database:
      url: "${app.configUrl}"
      verify: [SELECT COUNT(*) FROM users]
    backups: { store: "file://${store}", prefix: ${PREFIX}, retention_days: 7, rpo_minutes: 360 }
    require_approval: [restore]`,
  };
  w = await World.create({ config: { ...base, extraYaml: `cli_users:\n  ${OS_USER}: ${USERS.lead}\n` }, extraEnv: { ...aws.env(), TMPDIR: scratch } });
  otherConfig = writeTestConfig({ ...base, extraYaml: `cli_users:\n  ${OS_USER}: ${USERS.other}\n` });
  unmappedConfig = writeTestConfig({ ...base, extraYaml: `cli_users:\n  ${OS_USER === 'nobody-else' ? 'someone-else' : 'nobody-else'}: ${USERS.lead}\n` });
  lifeline = await w.process().start();
});

afterAll(async () => {
  killCliChildren();
  await w?.close();
  await aws?.stop();
  await app?.drop();
  for (const path of [store, scratch, otherConfig && dirname(otherConfig), unmappedConfig && dirname(unmappedConfig)]) {
    if (path) rmSync(path, { recursive: true, force: true });
  }
});

// ---- helpers -------------------------------------------------------------------------------------------------------

interface CliOptions {
  readonly config?: string;
  readonly slackApiUrl?: string;
}

/** The CLI's environment: Lifeline's own, with this test's config file and Slack URL. */
function cliEnv(options: CliOptions = {}): Record<string, string> {
  return { ...lifeline.env(), LIFELINE_CONFIG: options.config ?? w.configPath, SLACK_API_URL: options.slackApiUrl ?? w.slack.apiUrl };
}

function cli(args: readonly string[], options: CliOptions = {}, timeoutMs = 30_000): Promise<CliResult> {
  return runCli(args, cliEnv(options), timeoutMs);
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

/** Every row count the CLI could change. */
async function recorded(): Promise<Record<string, number>> {
  const { rows } = await w.sql.query<Record<string, number>>(
    `SELECT (SELECT count(*) FROM incidents)::int AS incidents, (SELECT count(*) FROM incident_events)::int AS events,
            (SELECT count(*) FROM escalation_steps)::int AS steps, (SELECT count(*) FROM recovery_jobs)::int AS jobs,
            (SELECT count(*) FROM audit_log)::int AS audit, (SELECT count(*) FROM slack_outbox)::int AS outbox`,
  );
  return rows[0]!;
}

/** Recorded rows plus what Slack and PagerDuty saw (escalation mentions from the worker aside). */
async function everything(): Promise<Record<string, number>> {
  return {
    ...(await recorded()),
    posts: w.slack.posts().filter((c) => !String(c.body.text ?? '').startsWith(':pager:')).length,
    updates: w.slack.updates().length,
    pages: w.pd.events.length,
  };
}

const isCliNote = (c: SlackCall): boolean => String(c.body.text ?? '').startsWith(':computer: From the `lifeline` CLI');

/** The card of INC-n: a top-level post in #emergency naming it that is not a CLI note. */
function cardsOf(number: number): SlackCall[] {
  const re = new RegExp(`\\bINC-${number}\\b`);
  return w.topLevelPosts(EMERGENCY).filter((c) => !isCliNote(c) && re.test(allText(c.body)) && c.result?.ts !== undefined);
}

function cliNotesIn(card: SlackCall): string[] {
  return w.threadOf(card).filter(isCliNote).map((c) => String(c.body.text));
}

async function pendingOutbox(incident?: number): Promise<number> {
  const { rows } = await w.sql.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM slack_outbox WHERE sent_at IS NULL AND ($1::int IS NULL OR incident = $1)',
    [incident ?? null],
  );
  return rows[0]!.n;
}

/** Clicks Approve on a job that has no message (a job number Slack could carry in a forged or stale button). */
async function approveClick(job: number, user: string): Promise<Sent> {
  const responseUrl = w.slack.newResponseUrl();
  const triggerId = newTriggerId();
  const body = buttonBody({
    actionId: 'job_approve',
    value: String(job),
    blockId: 'job_actions',
    label: 'Approve',
    user_id: user,
    channel_id: EMERGENCY,
    message_ts: '1700000000.000100',
    response_url: responseUrl,
    trigger_id: triggerId,
  });
  return w.resend({ body, responseUrl, triggerId, user, channel: EMERGENCY });
}

/** The job's plan with Approve/Reject (the CLI's own note about the request may be posted before it). */
async function planWithButtons(job: number): Promise<SlackCall> {
  return waitUntil(`the plan of JOB-${job} in Slack`, () =>
    w.slack.posts().find((c) => c.body.thread_ts === undefined && new RegExp(`\\bJOB-${job}\\b`).test(allText(c.body)) && buttonsOf(c.body).length > 0),
  20_000);
}

function expectStepList(stdout: string, job: number): void {
  for (const step of STEP_NAMES) expect(stdout, `step ${step.source}`).toMatch(new RegExp(`✓ [^\\n]*${step.source}`));
  expect(stdout).toMatch(new RegExp(`^JOB-${job} succeeded\\b`, 'm'));
  expect(stdout).not.toContain('✗');
}

// ---- the tests -----------------------------------------------------------------------------------------------------

describe('the lifeline CLI', () => {
  test('usage: no arguments is a refusal (2) with the usage; `help` is 0; `dr help` lists the /dr subcommands as Slack does', async () => {
    const [none, help, drHelp] = await Promise.all([cli([]), cli(['help']), cli(['dr', 'help'])]);
    expect(none.code, describeRun(none)).toBe(2);
    expect(none.stdout + none.stderr).toMatch(/Usage: lifeline/);
    expect(help.code, describeRun(help)).toBe(0);
    expect(help.stdout).toMatch(/Usage: lifeline/);
    // Help is what a newcomer runs first: it needs no configuration at all.
    const bare = await runCli(['help'], { PATH: process.env.PATH ?? '' });
    expect(bare.code, describeRun(bare)).toBe(0);
    expect(bare.stdout).toMatch(/Usage: lifeline/);
    for (const word of ['incident', 'dr', 'approve', 'reject', '--no-wait']) expect(help.stdout).toContain(word);

    expect(drHelp.code, describeRun(drHelp)).toBe(0);
    for (const sub of DR_SUBCOMMANDS) expect(drHelp.stdout).toContain(`/dr ${sub}`);
    // The same text as /dr help in Slack (there, mrkdwn with its <env> escaped; here, as the terminal shows it).
    const slack = await w.reply(await dr('help', USERS.lead));
    expect(drHelp.stdout).toContain(toTerminal(slack));
  });

  test('an operating-system user missing from cli_users is refused (2), named, and nothing is recorded', async () => {
    const before = await everything();
    const run = await cli(['incident', 'sev1', 'Database unreachable'], { config: unmappedConfig });
    expect(run.code, describeRun(run)).toBe(2);
    expect(run.stderr).toContain('cli_users');
    expect(run.stderr).toContain(`"${OS_USER}"`);
    expect(run.stdout).not.toMatch(/Declared/);
    await stillAfter('nothing to be recorded', async () => JSON.stringify(await everything()) === JSON.stringify(before), 500);
  });

  test('`incident sev1 "Database unreachable"`: declared, the card in #emergency, on-call paged once, the CLI note in the thread', async () => {
    const run = await cli(['incident', 'sev1', 'Database unreachable']);
    expect(run.code, describeRun(run)).toBe(0);
    const number = declaredIn(run);
    expect(run.stderr).not.toMatch(/unreachable:/);

    const row = await w.incidentRow(number);
    expect(row).toMatchObject({ severity: 'sev1', title: 'Database unreachable', declared_by: USERS.lead });
    const [card, ...more] = cardsOf(number);
    expect(more).toEqual([]);
    expect(card!.body.channel).toBe(EMERGENCY);
    expect(allText(card!.body)).toContain('Database unreachable');
    expect(buttonsOf(card!.body).map((b) => b.label)).toEqual(['Acknowledge', 'Resolve']);

    await waitUntil('on-call to be paged', () => w.triggersOf(number).length > 0);
    await stillAfter('one page only', () => w.triggersOf(number).length === 1, 1_000);
    expect(w.triggersOf(number)[0]?.routing_key).toBe(lifeline.env().PD_KEY_ONCALL);
    // The worker's mention lands in the same thread (so later tests see a quiet Slack).
    await waitUntil('the on-call mention in the thread', () => w.threadOf(card!).some((c) => String(c.body.text ?? '').startsWith(':pager:')));

    const notes = cliNotesIn(card!);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain(`<@${USERS.lead}> ran \`incident sev1 Database unreachable\``);
    expect(notes[0]).toContain(`INC-${number}`);
    expect(w.topLevelPosts(EMERGENCY).filter(isCliNote)).toEqual([]);
    expect(await pendingOutbox()).toBe(0);
  });

  test('a title that names another incident: the note goes to the thread of the incident just declared', async () => {
    const first = declaredIn(await cli(['incident', 'sev4', 'Quiet one']));
    const run = await cli(['incident', 'sev4', `Follow-up to INC-${first}`]);
    expect(run.code, describeRun(run)).toBe(0);
    const second = declaredIn(run);
    const [firstCard] = cardsOf(first);
    const [secondCard] = cardsOf(second);
    expect(cliNotesIn(secondCard!).some((n) => n.includes(`Follow-up to INC-${first}`))).toBe(true);
    expect(cliNotesIn(firstCard!).some((n) => n.includes('Follow-up'))).toBe(false);
    for (const n of [first, second]) expect((await cli(['incident', 'resolve', `INC-${n}`])).code).toBe(0);
  });

  test('a note about an incident whose card could not be posted waits for the card instead of going out unthreaded', async () => {
    // The card's chat.postMessage fails once (Slack hiccups); Slack answers again for everything after it.
    w.slack.failures.push({ method: 'chat.postMessage', status: 500 });
    const run = await cli(['incident', 'sev3', 'Card post failed once']);
    expect(run.code, describeRun(run)).toBe(0);
    const number = declaredIn(run);
    expect(run.stdout).toMatch(/card could not be posted/);
    expect(cardsOf(number)).toEqual([]);
    // The contract of the CLI: its events go to the incident's thread. There is no card (thread) yet, so the note
    // must wait in the outbox for the late card, not be posted top-level where it can never be threaded.
    const unthreaded = w.slack.posts(EMERGENCY).filter((c) => isCliNote(c) && c.body.thread_ts === undefined && String(c.body.text).includes(`INC-${number}`));
    expect(unthreaded.map((c) => String(c.body.text))).toEqual([]);
  });

  test('Slack down: declare and ack work (exit 0) and say the messages wait; the next run posts the late card, then both notes in its thread, once', async () => {
    const down = await cli(['incident', 'sev2', 'Slack is down'], { slackApiUrl: SLACK_DOWN });
    expect(down.code, describeRun(down)).toBe(0);
    const number = declaredIn(down);
    const id = `INC-${number}`;
    expect(down.stdout).toMatch(/card could not be posted/);
    expect(down.stderr).toMatch(/Slack is unreachable: \d+ messages? wait/);

    // Paging does not need Slack: the worker pages on-call; the acknowledge from the CLI reaches PagerDuty through it.
    await waitUntil(`on-call paged for ${id}`, () => w.triggersOf(number).length === 1, 15_000);
    const ack = await cli(['incident', 'ack', id], { slackApiUrl: SLACK_DOWN });
    expect(ack.code, describeRun(ack)).toBe(0);
    expect(ack.stdout).toMatch(new RegExp(`You acknowledged \\*?${id}\\b`));
    expect(ack.stderr).toMatch(/Slack is unreachable: \d+ messages? wait/);
    expect((await w.incidentRow(number))?.acknowledged_by).toBe(USERS.lead);
    await waitUntil(`PagerDuty acknowledge for ${id}`, () => w.followUpsOf(number, 'acknowledge').length === 1, 15_000);

    expect(cardsOf(number)).toEqual([]);
    expect(w.slack.posts().filter((c) => new RegExp(`\\b${id}\\b`).test(allText(c.body)))).toEqual([]);
    expect(await pendingOutbox(number)).toBe(2);
    expect((await w.incidentRow(number))?.card_ts).toBeNull();

    // Slack answers again; a read-only command, once the card is older than the CLI's 5 s grace, delivers it all.
    const declaredAt = ((await w.incidentRow(number))!.declared_at as Date).getTime();
    await waitUntilTime('the late-card grace to pass', declaredAt + 5_500);
    const status = await cli(['incident', 'status', id]);
    expect(status.code, describeRun(status)).toBe(0);
    expect(status.stdout).toContain(id);
    expect(status.stderr).not.toMatch(/unreachable:/);

    const cards = cardsOf(number);
    expect(cards).toHaveLength(1);
    expect(allText(cards[0]!.body)).toContain('Slack is down');
    expect(String((await w.incidentRow(number))?.card_ts)).toBe(String(cards[0]!.result?.ts));
    const notes = cliNotesIn(cards[0]!);
    expect(notes).toHaveLength(2);
    expect(notes[0]).toContain('ran `incident sev2 Slack is down`');
    expect(notes[1]).toContain(`ran \`incident ack ${id}\``);
    expect(w.slack.posts().filter((c) => isCliNote(c) && c.body.thread_ts === undefined && String(c.body.text).includes(id))).toEqual([]);
    expect(await pendingOutbox(number)).toBe(0);

    // Another run posts nothing twice.
    const again = await cli(['incident', 'status', id]);
    expect(again.code, describeRun(again)).toBe(0);
    expect(cardsOf(number)).toHaveLength(1);
    expect(cliNotesIn(cards[0]!)).toHaveLength(2);
    expect(w.slack.posts().filter((c) => isCliNote(c) && String(c.body.text).includes(id))).toHaveLength(2);
  });

  test('malformed commands are refused (2) with the words Slack uses for the same command, and change nothing', async () => {
    const cases: { args: string[]; slack: () => Promise<Sent> }[] = [
      { args: ['incident', 'sev9', 'x'], slack: () => w.command('sev9 x', { user: USERS.lead }) },
      { args: ['incident'], slack: () => w.command('', { user: USERS.lead }) },
      { args: ['dr', 'restore', 'nosuchenv', 'latest'], slack: () => dr('restore nosuchenv latest', USERS.lead) },
      { args: ['dr', 'scale', ENV], slack: () => dr(`scale ${ENV}`, USERS.lead) },
      // Slack's way to approve is the button; one naming a job that does not exist.
      { args: ['approve', 'JOB-999'], slack: () => approveClick(999, USERS.lead) },
    ];
    const before = await everything();
    const runs = await Promise.all(cases.map((c) => cli(c.args)));
    const nonsense = await cli(['approve', 'nonsense']);
    for (const [i, c] of cases.entries()) {
      const run = runs[i]!;
      expect(run.code, `lifeline ${c.args.join(' ')}: ${describeRun(run)}`).toBe(2);
      const slack = toTerminal((await w.reply(await c.slack())).replace(/^:warning: /, ''));
      expect(slack.length).toBeGreaterThan(10);
      expect(run.stderr, `lifeline ${c.args.join(' ')}`).toContain(slack);
      expect(run.stdout).toBe('');
    }
    expect(nonsense.code, describeRun(nonsense)).toBe(2);
    expect(nonsense.stderr).toContain('Name the job, for example `lifeline approve JOB-7`.');
    await stillAfter('nothing to change', async () => JSON.stringify(await everything()) === JSON.stringify(before), 500);
  });

  test('a restore requested in Slack, approved from the CLI: the step list, JOB-n succeeded, rows back, audit says U0LEAD', async () => {
    await app.query('DELETE FROM users WHERE id > 20');
    const sent = await dr(`restore ${ENV} latest`, USERS.oncall);
    const job = jobNumberIn(await w.reply(sent));
    expect(job, 'a job number').toBeDefined();
    const plan = await planWithButtons(job!);
    expect((await jobRow(w, job!))?.state).toBe('awaiting_approval');

    const run = await cli(['approve', `JOB-${job}`], {}, 50_000);
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.stdout).toContain(`JOB-${job} approved.`);
    expect(run.stdout).toContain(`JOB-${job} plan:`);
    expect(run.stdout).toContain(`approved by @${USERS.lead}`);
    expectStepList(run.stdout, job!);

    expect(await app.count()).toBe(ROWS);
    expect(await app.fingerprint()).toBe(original);
    expect(await jobRow(w, job!)).toMatchObject({ state: 'succeeded', requested_by: USERS.oncall, decided_by: USERS.lead });
    const audit = await auditOf(w, job!);
    expect(audit.filter((e) => e.action === 'approved').map((e) => e.actor)).toEqual([USERS.lead]);
    expect(audit.at(-1)?.action).toBe('succeeded');
    // Slack's plan says who approved it; the CLI's note is in #emergency (several incidents are open).
    await waitUntil('the plan updated as approved', () =>
      w.slack.updates().some((u) => u.body.ts === plan.result?.ts && allText(u.body).includes(`<@${USERS.lead}>`) && /approved/i.test(allText(u.body))),
    );
    const note = w.slack.posts(EMERGENCY).find((c) => isCliNote(c) && String(c.body.text).includes(`ran \`approve JOB-${job}\``));
    expect(note, 'the CLI note').toBeDefined();
    expect(String(note!.body.text)).toContain(`<@${USERS.lead}>`);
  });

  test('a restore requested from the CLI waits with its plan; self-approval and a non-approver are refused; a Slack Approve lets it run', async () => {
    await app.query('DELETE FROM users WHERE id > 30');
    const child = startCli(['dr', 'restore', ENV, 'latest'], cliEnv(), 55_000);
    const job = Number((await waitUntil('the CLI to name its job', () => /^JOB-(\d+): restore/m.exec(child.stdout()), 15_000))[1]);
    await waitUntil('the plan and the wait printed', () => child.stdout().includes(`JOB-${job} plan:`) && child.stdout().includes(`JOB-${job} waits for an approver`), 20_000);
    expect(child.stdout()).toMatch(/preflight/);
    const plan = await planWithButtons(job);
    const waiting = await jobRow(w, job);
    expect(waiting).toMatchObject({ state: 'awaiting_approval', requested_by: USERS.lead, decided_by: null });

    const auditBefore = await auditOf(w, job);
    const self = await cli(['approve', `JOB-${job}`]);
    expect(self.code, describeRun(self)).toBe(2);
    expect(self.stderr).toContain(`You requested JOB-${job}; another approver has to approve it.`);
    const other = await cli(['approve', `JOB-${job}`], { config: otherConfig });
    expect(other.code, describeRun(other)).toBe(2);
    expect(other.stderr).toContain(`Only engineering_lead or cto may approve JOB-${job}.`);
    const otherReject = await cli(['reject', `JOB-${job}`], { config: otherConfig });
    expect(otherReject.code, describeRun(otherReject)).toBe(2);
    expect(otherReject.stderr).toContain(`Only the requester or an approver may reject JOB-${job}.`);
    // Nothing changed but the refusals on the record, as in Slack.
    expect(await jobRow(w, job)).toEqual(waiting);
    expect(await app.count()).toBe(30);
    const refusals = (await auditOf(w, job)).slice(auditBefore.length);
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
    expect(reject.stdout).toContain(`JOB-${job} rejected.`);
    expect(await jobRow(w, job)).toMatchObject({ state: 'rejected', decided_by: USERS.lead });
    expect((await auditOf(w, job)).filter((e) => e.action === 'rejected').map((e) => e.actor)).toEqual([USERS.lead]);
    await waitUntil('the plan updated as rejected', () => w.slack.updates().some((u) => u.body.ts === plan.result?.ts && /rejected/i.test(allText(u.body)) && buttonsOf(u.body).length === 0));
    expect(await app.count()).toBe(ROWS);
  });

  test('no AWS call was made', () => {
    expect(aws.calls).toEqual([]);
  });
});
