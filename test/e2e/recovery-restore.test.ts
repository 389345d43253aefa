// /dr restore end to end: signed Slack requests into the real process, the real PostgreSQL behind it, a file://
// store in a temp folder. An application database with 500 users is backed up (.dump and .sql.gz), damaged, and
// restored through the plan → approval → live progress → result flow; refused clicks, one job per target,
// cancel, reject, the audit trail, and failed restores that leave the data untouched.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, EMERGENCY, stillAfter, type Sent, type World } from '../support/e2e.js';
import type { SlackCall } from '../../src/adapters/slack/stand-in.js';
import { USERS } from '../support/lifeline-process.js';
import {
  approvablePlan,
  auditOf,
  AwsTripwire,
  backupName,
  buttonsOf,
  clickButton,
  closeAll,
  createAppDatabase,
  dumpCustom,
  dumpSqlGz,
  fileStoreWorld,
  finished,
  jobCount,
  jobRow,
  leaks,
  NO_LEAKS,
  pgRestoreList,
  progressOf,
  replyJob,
  RESTORE_STEP_NAMES,
  resultOf,
  storeFiles,
  updatesOf,
  writeGzip,
  type AppDatabase,
} from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const ENV = 'prod';
const PREFIX = 'shop';
const ROWS = 500;
const RPO_MINUTES = 360;
const SAFETY_COPY = new RegExp(`^${PREFIX}_pre-restore_\\d{8}_\\d{6}\\.dump$`);

let w: World;
let app: AppDatabase;
let aws: AwsTripwire;
let store: string;
let scratch: string; // the process's TMPDIR
let original: string; // fingerprint of the 500 rows
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const dumpAt = new Date(now.getTime() - 60 * 60_000);
const sqlAt = new Date(now.getTime() - 2 * 60 * 60_000);
const dumpFile = backupName(PREFIX, dumpAt, 'dump');
const sqlFile = backupName(PREFIX, sqlAt, 'sql.gz');

beforeAll(async () => {
  app = await createAppDatabase(ROWS);
  original = await app.fingerprint();
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-store-'));
  await dumpCustom(app.url, join(store, dumpFile));
  await dumpSqlGz(app.url, join(store, sqlFile));
  // Something that is not a backup may sit in the store; it must be ignored.
  writeFileSync(join(store, `${dumpFile}.sha256`), 'not a backup\n');
  await app.query('DELETE FROM users WHERE id > 20');
  aws = await new AwsTripwire().start();
  scratch = mkdtempSync(join(tmpdir(), 'lifeline-e2e-tmp-'));
  w = await fileStoreWorld({
    env: ENV,
    app,
    store,
    prefix: PREFIX,
    rpoMinutes: RPO_MINUTES,
    aws,
    extraEnv: { TMPDIR: scratch },
  });
  await w.process().start();
});

afterAll(async () => {
  await closeAll({ w, aws, app, folders: [store, scratch] });
});

// ---- helpers -------------------------------------------------------------------------------------------------------

function dr(text: string, user: string = USERS.oncall): Promise<Sent> {
  return w.command(text, { user }, '/dr');
}

/** Requests a restore and returns its job number and plan message (with buttons). */
async function requestRestore(
  source: string,
  user: string,
): Promise<{ job: number; plan: SlackCall; sent: Sent; reply: string }> {
  const sent = await dr(`restore ${ENV} ${source}`, user);
  expect(sent.status).toBe(200);
  const { job, reply } = await replyJob(w, sent);
  return { job, plan: await approvablePlan(w, job), sent, reply };
}

function threadReplies(parentTs: string): SlackCall[] {
  return w.slack.posts().filter((c) => c.body.thread_ts === parentTs);
}

/** Everything a refused click must leave alone. */
async function world(job: number): Promise<string> {
  const row = await jobRow(w, job);
  return JSON.stringify({
    row,
    posts: w.slack.posts().length,
    updates: w.slack.updates().length,
    files: await storeFiles(store),
    data: await app.fingerprint(),
    leftovers: await app.leftovers(),
  });
}

/** A click that must be refused to the clicker alone and change nothing. */
async function refusedClick(
  job: number,
  plan: SlackCall,
  label: 'Approve' | 'Reject',
  user: string,
  says: RegExp,
): Promise<string> {
  const before = await world(job);
  const othersEphemerals = w.slack.ephemerals().filter((e) => e.body.user !== user).length;
  const click = await clickButton(w, plan, label, user);
  expect(click.status).toBe(200);
  const reply = await w.reply(click);
  expect(reply).toMatch(says);
  expect(w.privateMessages(click).map((m) => m.via)).toEqual(['ephemeral']);
  await stillAfter(`${label} by ${user} to change nothing`, async () => (await world(job)) === before, 800);
  expect(w.slack.ephemerals().filter((e) => e.body.user !== user)).toHaveLength(othersEphemerals);
  expect(w.replies(click)).toHaveLength(1);
  return reply;
}

// ---- the tests -----------------------------------------------------------------------------------------------------

describe('/dr restore', () => {
  let mainJob = 0;

  test('`list` answers privately with both backups, newest first, with time, size and RPO standing', async () => {
    const posts = w.slack.posts().length;
    const sent = await dr(`restore ${ENV} list`, USERS.other);
    expect(sent.status).toBe(200);
    const reply = await w.reply(sent);
    expect(w.replyDelay(sent)).toBeLessThan(3_000);
    expect(reply).toContain(dumpFile);
    expect(reply).toContain(sqlFile);
    expect(reply.indexOf(dumpFile)).toBeLessThan(reply.indexOf(sqlFile));
    expect(reply).not.toContain('.sha256');
    expect(reply).toContain(`${dumpAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
    expect(reply).toMatch(/inside RPO/i);
    expect(reply).toMatch(/\d+(\.\d+)? KB/);
    expect(w.slack.posts()).toHaveLength(posts);
    expect(await jobCount(w)).toBe(0);
  });

  test('`latest` from a non-approver posts the plan with Approve/Reject; refused clicks, cancel and a second request change nothing', async () => {
    const { job, plan, reply } = await requestRestore('latest', USERS.oncall);
    expect(reply).toContain(`JOB-${job}`);
    expect(plan.body.channel).toBe(EMERGENCY);
    const text = allText(plan.body);
    // target, source and its time, data-loss window against the RPO, the steps, who may approve.
    expect(text).toContain(`127.0.0.1:5432/${app.name}`);
    expect(text).toContain(dumpFile);
    expect(text).toContain(`${dumpAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
    expect(text).toMatch(/data-loss window 1 h\b/);
    expect(text).toMatch(/inside the RPO of 6 h/);
    for (const step of RESTORE_STEP_NAMES) expect(text).toMatch(step);
    expect(text).toMatch(new RegExp(`Needs approval by one of <@${USERS.lead}>, <@${USERS.cto}>, until `));
    expect(text).toContain(`<@${USERS.oncall}>`);
    const buttons = buttonsOf(plan.body);
    expect(buttons.map((b) => [b.label, b.actionId, b.value])).toEqual([
      ['Approve', 'job_approve', String(job)],
      ['Reject', 'job_reject', String(job)],
    ]);
    expect((await jobRow(w, job))?.state).toBe('awaiting_approval');

    // Clicks by people who may not: refused to the clicker alone, nothing changes.
    await refusedClick(job, plan, 'Approve', USERS.other, /may approve/i);
    await refusedClick(job, plan, 'Approve', USERS.oncall, /may approve|requested/i);
    await refusedClick(job, plan, 'Reject', USERS.other, /requester or an approver/i);
    expect(await app.count()).toBe(20);

    // One job at a time per target: a second restore (any source, by another responder) is refused naming the
    // first, creating nothing.
    for (const source of ['latest', `file ${sqlFile}`]) {
      const jobs = await jobCount(w);
      const posts = w.slack.posts().length;
      const second = await dr(`restore ${ENV} ${source}`, USERS.ceo);
      const refusal = await w.reply(second);
      expect(refusal).toContain(`JOB-${job}`);
      expect(refusal).toMatch(/one job at a time|same target/i);
      await stillAfter(
        'no second job or plan',
        async () => (await jobCount(w)) === jobs && w.slack.posts().length === posts,
        700,
      );
    }

    // `/dr jobs` shows it waiting.
    const jobs = await w.reply(await dr('jobs', USERS.other));
    expect(jobs).toContain(`JOB-${job}`);
    expect(jobs).toMatch(/waiting for approval/);

    // Cancel by someone who is neither the requester nor a responder: refused, nothing changes.
    const before = await world(job);
    const foreign = await dr(`cancel JOB-${job}`, USERS.other);
    const notPermitted = new RegExp(
      `Only responders \\(.*\\) may cancel JOB-${job}, which <@${USERS.oncall}> requested`,
    );
    expect(await w.reply(foreign)).toMatch(notPermitted);
    await stillAfter('a refused cancel to change nothing', async () => (await world(job)) === before, 500);

    // Cancel by the requester while it awaits approval: cancelled, the plan loses its buttons.
    const cancel = await dr(`cancel JOB-${job}`, USERS.oncall);
    expect(await w.reply(cancel)).toMatch(/cancelled/i);
    expect((await jobRow(w, job))?.state).toBe('cancelled');
    const updated = await waitUntil('the plan updated as cancelled', () => updatesOf(w, plan).at(-1));
    expect(allText(updated.body)).toMatch(/cancelled/i);
    expect(buttonsOf(updated.body)).toEqual([]);
    // An approver clicking the old message's Approve now is refused.
    await refusedClick(job, plan, 'Approve', USERS.lead, /cancelled|no longer/i);
    expect(await app.count()).toBe(20);
    expect(threadReplies(String(plan.result?.ts))).toEqual([]);
  });

  test('self-approval is refused; a second approver runs it: live progress, result with the verify query, rows back, safety copy', async () => {
    const { job, plan } = await requestRestore('latest', USERS.lead);
    mainJob = job;
    // The plan names who may approve: the CTO, not the lead who asked; its verify query is code.
    const planText = allText(plan.body);
    expect(planText).toMatch(
      new RegExp(`Needs approval by <@${USERS.cto}>, until \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC\\.`),
    );
    expect(planText).toContain('Verify queries: `SELECT COUNT(*) FROM users`.');
    await refusedClick(job, plan, 'Approve', USERS.lead, /another approver/i);
    expect((await jobRow(w, job))?.state).toBe('awaiting_approval');

    const approve = await clickButton(w, plan, 'Approve', USERS.cto);
    expect(approve.status).toBe(200);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');

    // The plan now says who approved it, without buttons.
    const planNow = await waitUntil('the plan updated as approved', () =>
      updatesOf(w, plan).find((u) => allText(u.body).includes(`<@${USERS.cto}>`) && /approved/i.test(allText(u.body))),
    );
    expect(buttonsOf(planNow.body)).toEqual([]);
    expect((await jobRow(w, job))?.decided_by).toBe(USERS.cto);

    // The result: a new thread reply with the verify query's result and the durations.
    const result = await waitUntil('the result', () => resultOf(w, job));
    const resultText = allText(result.body);
    expect(resultText).toMatch(/succeeded|restored/i);
    expect(resultText).toContain(`\`SELECT COUNT(*) FROM users\` → \`${ROWS}\``);
    // Times to a tenth of a second below a minute: a 2 s restore no longer reads "0 s" for every step.
    expect(resultText).toMatch(/Took \d+\.\d s in all/);
    for (const step of RESTORE_STEP_NAMES)
      expect(resultText).toMatch(new RegExp(`${step.source}[^\\n]*: \\d+\\.\\d s`));

    // One live progress message, updated in place, in the plan's thread; the result in that same thread.
    const progress = progressOf(w, job);
    expect(progress, 'a progress message').toBeDefined();
    expect(progress!.body.thread_ts).toBe(plan.result?.ts);
    const updates = updatesOf(w, progress!);
    expect(updates.length).toBeGreaterThanOrEqual(1);
    const last = allText(updates.at(-1)!.body);
    expect(last).toMatch(/succeeded/);
    for (const step of RESTORE_STEP_NAMES)
      expect(last).toMatch(new RegExp(`${step.source}[^\\n]*started [^\\n]*ended [^\\n]*\\(\\d+\\.\\d s\\)`));
    // The verify query is code in the progress message too: its COUNT(*) is never bold.
    expect(last).toContain(`\`SELECT COUNT(*) FROM users\` → \`${ROWS}\``);
    expect(
      w.slack
        .posts()
        .filter((c) => c.body.thread_ts !== undefined && new RegExp(`\\bJOB-${job}\\b`).test(allText(c.body))),
    ).toHaveLength(2);
    expect.soft(result.body.thread_ts, 'the result is a reply in the plan’s thread').toBe(plan.result?.ts);
    expect(await app.count()).toBe(ROWS);
    expect(await app.fingerprint()).toBe(original);
    expect(await app.leftovers()).toEqual([]);

    // The safety copy of the damaged database is in the store, a real custom-format dump.
    const safety = (await storeFiles(store)).filter((n) => SAFETY_COPY.test(n));
    expect(safety).toHaveLength(1);
    expect(statSync(join(store, safety[0]!)).size).toBeGreaterThan(0);
    expect(await pgRestoreList(join(store, safety[0]!))).toMatch(/TABLE DATA public users/);
    expect(resultText + allText(updates.at(-1)!.body)).toContain(safety[0]!);
    expect.soft(readdirSync(scratch), 'a finished restore leaves nothing in the temp folder').toEqual([]);
  });

  test('progress updates come at most once a second', () => {
    const progress = progressOf(w, mainJob)!;
    const times = [progress.at, ...updatesOf(w, progress).map((u) => u.at)];
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // 100 ms of slack for timer and network jitter.
    expect(
      gaps.filter((g) => g < 900),
      `gaps between progress messages: ${gaps.join(', ')} ms`,
    ).toEqual([]);
  });

  test('the audit trail has the request, plan, approval (who), each step and the result', async () => {
    const entries = await auditOf(w, mainJob);
    const actions = entries.map((e) => e.action);
    expect(entries[0]).toMatchObject({ action: 'requested', actor: USERS.lead });
    expect(actions).toContain('planned');
    expect(entries.find((e) => e.action === 'approval_refused')?.actor).toBe(USERS.lead);
    expect(entries.find((e) => e.action === 'approved')?.actor).toBe(USERS.cto);
    for (const step of RESTORE_STEP_NAMES) {
      expect(
        entries.some((e) => e.action === 'step_started' && step.test(e.detail)),
        `step_started ${step}`,
      ).toBe(true);
      expect(
        entries.some((e) => e.action === 'step_succeeded' && step.test(e.detail)),
        `step_succeeded ${step}`,
      ).toBe(true);
    }
    expect(actions.at(-1)).toBe('succeeded');
    expect(actions.indexOf('approved')).toBeLessThan(actions.indexOf('step_started'));

    // Append-only: PostgreSQL refuses to change or remove an entry.
    await expect(w.sql.query(`UPDATE audit_log SET actor = 'someone' WHERE job = $1`, [mainJob])).rejects.toThrow();
    await expect(w.sql.query('DELETE FROM audit_log WHERE job = $1', [mainJob])).rejects.toThrow();

    const sent = await dr(`audit ${ENV}`, USERS.ceo);
    const reply = await w.reply(sent);
    expect(w.privateMessages(sent).every((m) => m.via !== 'ephemeral' || m.text === reply)).toBe(true);
    const id = `JOB-${mainJob}`;
    expect(reply).toMatch(new RegExp(`${id} \\[${ENV}\\] <@${USERS.lead}> requested`));
    expect(reply).toMatch(new RegExp(`${id} \\[${ENV}\\] lifeline planned`));
    expect(reply).toMatch(new RegExp(`${id} \\[${ENV}\\] <@${USERS.cto}> approved`));
    expect(reply).toMatch(new RegExp(`${id} \\[${ENV}\\] lifeline step_succeeded: swap`));
    expect(reply).toMatch(new RegExp(`${id} \\[${ENV}\\] lifeline succeeded`));
  });

  test('`latest` never picks the safety copy; a reject by the requester ends the job and a later Approve is refused', async () => {
    const list = await w.reply(await dr(`restore ${ENV} list`, USERS.other));
    const safety = (await storeFiles(store)).find((n) => SAFETY_COPY.test(n))!;
    expect(list).toContain(safety);
    expect(list).toMatch(/safety copy/i);
    expect(list.indexOf(safety)).toBeLessThan(list.indexOf(dumpFile)); // newest first

    const { job, plan } = await requestRestore('latest', USERS.oncall);
    const text = allText(plan.body);
    expect(text).toContain(dumpFile);
    expect(text).not.toContain(safety);

    const reject = await clickButton(w, plan, 'Reject', USERS.oncall);
    expect(reject.status).toBe(200);
    await waitUntil('rejected', async () => (await jobRow(w, job))?.state === 'rejected');
    expect((await jobRow(w, job))?.decided_by).toBe(USERS.oncall);
    const updated = await waitUntil('the plan updated as rejected', () =>
      updatesOf(w, plan).find((u) => /rejected/i.test(allText(u.body))),
    );
    expect(buttonsOf(updated.body)).toEqual([]);

    await refusedClick(job, plan, 'Approve', USERS.cto, /rejected|no longer/i);
    expect((await jobRow(w, job))?.state).toBe('rejected');
    expect(threadReplies(String(plan.result?.ts))).toEqual([]);
    expect(await app.count()).toBe(ROWS);
  });

  test('restoring the .sql.gz backup by `file <name>` works too', async () => {
    await app.query(
      `DELETE FROM users WHERE id > 100; UPDATE users SET email = 'changed-' || id || '@example.com' WHERE id <= 5`,
    );
    const { job, plan } = await requestRestore(`file ${sqlFile}`, USERS.oncall);
    expect(allText(plan.body)).toContain(sqlFile);
    expect(allText(plan.body)).toMatch(/data-loss window 2 h\b/);
    // Two approvers click at the same moment: one approval, one run.
    const clicks = await Promise.all([
      clickButton(w, plan, 'Approve', USERS.lead),
      clickButton(w, plan, 'Approve', USERS.cto),
    ]);
    expect(clicks.map((c) => c.status)).toEqual([200, 200]);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    const result = allText((await waitUntil('the result', () => resultOf(w, job))).body);
    const audit = await auditOf(w, job);
    expect(audit.filter((e) => e.action === 'approved')).toHaveLength(1);
    expect(audit.filter((e) => e.action === 'step_started' && /swap/.test(e.detail))).toHaveLength(1);
    const winner = (await jobRow(w, job))?.decided_by;
    expect([USERS.lead, USERS.cto]).toContain(winner);
    const loser = clicks.find((c) => c.user !== winner)!;
    expect(await w.reply(loser)).toMatch(/no longer|already|a moment ago|queued|running|succeeded/i);
    expect(
      w.slack
        .posts()
        .filter((c) => String(c.body.text ?? '').startsWith(`JOB-${job} `) && c.body.thread_ts !== undefined),
    ).toHaveLength(2);
    expect(result).toContain(sqlFile);
    expect(result).toContain(`\`SELECT COUNT(*) FROM users\` → \`${ROWS}\``);
    expect(await app.count()).toBe(ROWS);
    expect(await app.fingerprint()).toBe(original);
    expect(await app.leftovers()).toEqual([]);
    expect((await storeFiles(store)).filter((n) => SAFETY_COPY.test(n))).toHaveLength(2);
  });

  test('`file <safety copy>` undoes a restore (as the README says: a safety copy can be restored by name)', async () => {
    const first = (await storeFiles(store)).filter((n) => SAFETY_COPY.test(n))[0]!; // taken before the first restore
    const { job, plan } = await requestRestore(`file ${first}`, USERS.oncall);
    expect(allText(plan.body)).toContain(first);
    expect(allText(plan.body)).toMatch(/safety copy/i);
    await clickButton(w, plan, 'Approve', USERS.cto);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    expect(allText((await waitUntil('the result', () => resultOf(w, job))).body)).toContain(
      '`SELECT COUNT(*) FROM users` → `20`',
    );
    expect(await app.count()).toBe(20); // the damaged state the first restore replaced
    expect(await app.leftovers()).toEqual([]);
  });

  test('a corrupt newest backup fails at preflight, says why, and leaves the data and the server untouched', async () => {
    await app.query('DELETE FROM users WHERE id > 15');
    const damaged = await app.fingerprint();
    const corrupt = backupName(PREFIX, new Date(Date.now() - 60_000), 'dump');
    writeFileSync(join(store, corrupt), randomBytes(64 * 1024));
    const filesBefore = await storeFiles(store);

    const { job, plan } = await requestRestore('latest', USERS.oncall);
    expect(allText(plan.body)).toContain(corrupt);
    await clickButton(w, plan, 'Approve', USERS.cto);
    const end = await finished(w, job);
    expect(end.state).toBe('failed');
    const result = allText((await waitUntil('the result', () => resultOf(w, job))).body);
    expect(result).toMatch(/failed/i);
    expect(result).toMatch(/preflight/);
    expect(result).toContain(corrupt);
    expect(result).toMatch(/damaged|corrupt|integrity|not a (valid|pg_dump)|invalid/i);
    expect
      .soft(String(resultOf(w, job)!.body.text), 'the id once')
      .not.toMatch(new RegExp(`JOB-${job} failed: JOB-${job} failed`));
    expect(end.outcome).toMatch(/preflight/);

    expect(await app.count()).toBe(15);
    expect(await app.fingerprint()).toBe(damaged);
    expect(await app.leftovers()).toEqual([]);
    expect(await storeFiles(store)).toEqual(filesBefore); // no safety copy for a restore that never started
    const steps = await w.sql.query<{ name: string; state: string }>(
      'SELECT name, state FROM recovery_steps WHERE job = $1 ORDER BY step_index',
      [job],
    );
    expect(steps.rows.map((s) => s.state)).toEqual(['failed']);
    const audit = await auditOf(w, job);
    expect(audit.some((e) => e.action === 'step_failed' && /preflight/.test(e.detail))).toBe(true);
    expect(audit.at(-1)?.action).toBe('failed');
    rmSync(join(store, corrupt));
  });

  test('a backup whose SQL fails half-way fails in the restore step; the target is unchanged and no scratch database is left', async () => {
    const before = await app.fingerprint();
    const broken = backupName(PREFIX, new Date(Date.now() - 30_000), 'sql.gz');
    await writeGzip(
      join(store, broken),
      [
        'CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL);',
        `INSERT INTO users VALUES (1, 'only@example.com', now());`,
        'THIS IS NOT SQL AT ALL;',
        `INSERT INTO users VALUES (2, 'after-the-error@example.com', now());`,
        '',
      ].join('\n'),
    );
    const { job, plan } = await requestRestore(`file ${broken}`, USERS.oncall);
    await clickButton(w, plan, 'Approve', USERS.lead);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('failed');
    const result = allText((await waitUntil('the result', () => resultOf(w, job))).body);
    expect(result).toMatch(/restore into a fresh database/);
    expect(result).toMatch(/not changed|put back/i);
    expect(await app.count()).toBe(15);
    expect(await app.fingerprint()).toBe(before);
    expect(await app.leftovers()).toEqual([]);
    rmSync(join(store, broken));
  });

  test('no Slack message or log line carries the database password or another secret; no AWS call was made', () => {
    expect(leaks(w, app, aws)).toEqual(NO_LEAKS);
  });
});
