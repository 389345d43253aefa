// Who may do what, through the real process (node dist/main.js) and Slack's wire format: a user
// in no role (USERS.other) may declare, update and read, but acknowledging, resolving, changing a severity (by command
// or by the card's buttons), requesting or cancelling another's job and the logs and audit lookups are refused to
// them alone, and nothing changes: no row, no page, no post, no AWS call. Every role is a responder (the default).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, stillAfter, World, type Sent } from '../support/e2e.js';
import { USERS } from '../support/lifeline-process.js';
import { auditCount, AwsTripwire, backupName, jobCount, jobNumberIn, jobRow, planPost } from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const RESPONDERS = 'oncall, engineering_lead, cto, ceo';
let w: World;
let aws: AwsTripwire;
let store: string;

beforeAll(async () => {
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-permissions-'));
  // Something to plan a restore on; it is never restored (restores wait for an approver here).
  writeFileSync(join(store, backupName('staging', new Date(Date.now() - 3_600_000), 'dump')), randomBytes(1024));
  aws = await new AwsTripwire().start();
  const environmentsYaml = `  staging:
    database: { url: "postgres://127.0.0.1:5432/lifeline_no_such_app_db", verify: [SELECT 1] }
    backups: { store: "file://${store}", prefix: staging, retention_days: 7, rpo_minutes: 1440 }
    ecs: { cluster: staging-cluster, services: [api], log_group: /ecs/staging/api }
    require_approval: [restore, scale, redeploy]`;
  // oncall at once, the engineering lead 2.4 s later: long enough to try to stop the ladder first.
  const steps = [
    { after_minutes: 0, notify: 'oncall' },
    { after_minutes: 0.04, notify: 'engineering_lead' },
  ];
  w = await World.create({ config: { steps, environmentsYaml }, extraEnv: aws.env() });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
  await aws?.stop();
  if (store) rmSync(store, { recursive: true, force: true });
});

/** The sum of a Prometheus metric's samples whose labels contain every one of `labels`. */
async function metricSum(name: string, labels: string[]): Promise<number> {
  const text = await (await fetch(`${w.lifeline.baseUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** The one reply the sender of `sent` saw; asserts nobody else was told anything since. */
async function onlyReply(sent: Sent): Promise<string> {
  const reply = await w.reply(sent);
  const nobodyElse = () => w.slack.ephemerals().every((e) => e.at < sent.sentAt || e.body.user === sent.user);
  await stillAfter('one private reply, nothing for others', () => w.replies(sent).length === 1 && nobodyElse(), 300);
  return reply;
}

describe('incidents', () => {
  // Refused to them alone, by command and by the card's buttons; the ladder goes on.
  test('a user in no role declares a SEV1 and updates it, but may not acknowledge, regrade or resolve it', async () => {
    const inc = await w.declare('sev1', 'Payments failing', { user: USERS.other });
    await waitUntil('the on-call page', () => w.triggersOf(inc.number).length === 1);
    const update = await w.command(`update ${inc.id} card processor answers 502`, { user: USERS.other });
    expect(await w.reply(update)).toContain(`Update added to *${inc.id}*`);
    const refusedBefore = await metricSum('lifeline_commands_refused_total', ['code="not_permitted"']);
    const row = async () => JSON.stringify(await w.incidentRow(inc.number));
    const kinds = async () => (await w.timeline(inc.number)).map((e) => e.kind);
    const before = { row: await row(), kinds: await kinds(), updates: w.cardUpdates(inc.card).length };
    expect(before.kinds).toEqual(['declared', 'ladder_started', 'paged', 'update']);

    for (const [text, verb] of [
      [`ack ${inc.id}`, 'acknowledge'],
      [`severity ${inc.id} sev4`, 'change the severity of'],
      [`resolve ${inc.id} not ours`, 'resolve'],
    ] as const) {
      const reply = await onlyReply(await w.command(text, { user: USERS.other }));
      expect(reply, text).toContain(`Only responders (${RESPONDERS}) may ${verb} ${inc.id}.`);
    }
    for (const label of ['Acknowledge', 'Resolve'] as const) {
      const mine = w.ephemeralsTo(USERS.other).length;
      const click = await w.click(inc.card, label, { user: USERS.other });
      expect(click.status).toBe(200);
      await waitUntil(`the answer to the ${label} click`, () => w.ephemeralsTo(USERS.other).length > mine);
      const answer = allText(w.ephemeralsTo(USERS.other).at(-1)!.body);
      expect(answer).toContain(`Only responders (${RESPONDERS}) may ${label.toLowerCase()} ${inc.id}.`);
    }

    // Nothing changed: not the incident, its timeline, its card, nor PagerDuty; and the refused lowering did not
    // stop the ladder: the engineering lead is paged at their minute.
    await waitUntil('the engineering lead page', () => w.triggersOf(inc.number).length === 2, 15_000);
    // The timeline row is written once PagerDuty has answered, a moment after the fake counted the trigger.
    await waitUntil('the lead page on the timeline', async () => (await kinds()).length > before.kinds.length);
    expect(await row()).toBe(before.row);
    expect(await kinds()).toEqual([...before.kinds, 'paged']);
    expect(w.cardUpdates(inc.card)).toHaveLength(before.updates);
    expect(w.eventsOf(inc.number).map((e) => e.event_action)).toEqual(['trigger', 'trigger']);
    expect(await metricSum('lifeline_commands_refused_total', ['code="not_permitted"'])).toBe(refusedBefore + 5);
    const ackClick = ['command="incident_acknowledge"', 'code="not_permitted"'];
    expect(await metricSum('lifeline_commands_refused_total', ackClick)).toBe(1);

    // A responder's click works as ever.
    await w.click(inc.card, 'Resolve', { user: USERS.oncall });
    await waitUntil('the resolve events', () => w.followUpsOf(inc.number, 'resolve').length === 2);
    expect((await w.incidentRow(inc.number))?.resolved_by).toBe(USERS.oncall);
  });
});

describe('/dr', () => {
  test('no role: may read; restore, scale, backup, drill, logs, audit are refused, audited, run nothing', async () => {
    for (const text of ['jobs', 'backups staging', 'restore staging list', 'help']) {
      const reply = await onlyReply(await w.command(text, { user: USERS.other }, '/dr'));
      expect(reply, text).not.toMatch(/Only responders/);
    }
    const jobs = await jobCount(w);
    const audits = await auditCount(w);
    const posts = w.slack.posts().length;
    const refusals = [
      ['restore staging latest', 'request a job (restore staging database from the latest backup)'],
      ['scale staging api 2', 'request a job (scale staging api to 2)'],
      ['backup staging', 'request a job (backup of staging)'],
      ['drill staging', 'request a job (restore drill of staging)'],
      ['logs staging api --since 5m', 'read the logs of staging api'],
      ['audit staging', 'read the audit trail'],
    ] as const;
    for (const [text, what] of refusals) {
      const reply = await onlyReply(await w.command(text, { user: USERS.other }, '/dr'));
      expect(reply, text).toContain(`Only responders (${RESPONDERS}) may ${what}.`);
    }
    const nothingStarted = async () =>
      (await jobCount(w)) === jobs && w.slack.posts().length === posts && aws.calls.length === 0;
    await stillAfter('no job, no post, no AWS call', nothingStarted, 1_000);
    const { rows } = await w.sql.query<{ actor: string; action: string; env: string }>(
      'SELECT actor, action, env FROM audit_log ORDER BY id OFFSET $1',
      [audits],
    );
    expect(rows).toEqual(refusals.map(() => ({ actor: USERS.other, action: 'not_permitted', env: 'staging' })));
  });

  test("another user's job: a user in no role may not cancel it; a responder who is not an approver may", async () => {
    const requested = await w.command('restore staging latest', { user: USERS.oncall }, '/dr');
    const job = jobNumberIn(await w.reply(requested))!;
    expect(job).toBeDefined();
    await waitUntil('the plan', () => planPost(w, job));
    await waitUntil('the job to await approval', async () => (await jobRow(w, job))?.state === 'awaiting_approval');

    const foreign = await onlyReply(await w.command(`cancel JOB-${job}`, { user: USERS.other }, '/dr'));
    expect(foreign).toContain(`Only responders (${RESPONDERS}) may cancel JOB-${job}, which <@${USERS.oncall}>`);
    await stillAfter('the job to keep waiting', async () => (await jobRow(w, job))?.state === 'awaiting_approval', 500);

    expect(await w.reply(await w.command(`cancel JOB-${job}`, { user: USERS.ceo }, '/dr'))).toMatch(/cancelled/);
    const outcome = `cancelled by <@${USERS.ceo}> before it started`;
    expect(await jobRow(w, job)).toMatchObject({ state: 'cancelled', outcome });
    expect(aws.calls).toEqual([]);
  });
});
