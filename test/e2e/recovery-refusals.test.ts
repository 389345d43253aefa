// Malformed or impossible /dr commands: answered within Slack's 3 s to the sender alone, with the usage, and with
// nothing recorded or started (no job, no audit entry, no Slack post, no approval request, no AWS call).
// Also: /dr help lists the README's whole grammar, and an approval request expires (expire_minutes: 0.05 = 3 s).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { unescapeSlackText } from '../../src/delivery/slack/blocks.js';
import { allText, EMERGENCY, linesWithSecrets, stillAfter, World, type Sent } from '../support/e2e.js';
import { USERS } from '../support/lifeline-process.js';
import {
  auditCount,
  auditOf,
  AwsTripwire,
  backupName,
  buttonsOf,
  clickButton,
  jobCount,
  jobNumberIn,
  jobRow,
  planPost,
} from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const PASSWORD = `stage-pw-${randomBytes(6).toString('hex')}`;
let w: World;
let aws: AwsTripwire;
let store: string;

beforeAll(async () => {
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-store-'));
  // Something to plan a restore on (the expiry test); it is never restored.
  writeFileSync(join(store, backupName('staging', new Date(Date.now() - 3_600_000), 'dump')), randomBytes(1024));
  aws = await new AwsTripwire().start();
  const environmentsYaml = `  staging:
    database: { url: "postgres://postgres:${PASSWORD}@127.0.0.1:5432/lifeline_no_such_app_db", verify: [SELECT COUNT(*) FROM users] }
    backups: { store: "file://${store}", prefix: staging, retention_days: 7, rpo_minutes: 1440 }
    ecs: { cluster: staging-cluster, services: [api, worker], log_group: /ecs/staging/api }
    require_approval: [restore, scale, redeploy]`;
  const approvalsYaml =
    '  approver_roles: [engineering_lead, cto]\n  expire_minutes: 0.05\n  allow_self_approval: false';
  w = await World.create({
    config: { steps: [{ after_minutes: 0, notify: 'oncall' }], environmentsYaml, approvalsYaml },
    extraEnv: aws.env(),
  });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
  await aws?.stop();
  if (store) rmSync(store, { recursive: true, force: true });
});

/** A reply shows the usage when it spells out at least one form of the command. */
function showsUsage(reply: string): boolean {
  return /\/dr (restore|backup|backups|scale|redeploy|logs|status|jobs|cancel|help|drill|audit)\b/.test(reply);
}

async function state(): Promise<string> {
  return JSON.stringify({
    jobs: await jobCount(w),
    audit: await auditCount(w),
    posts: w.slack.posts().length,
    updates: w.slack.updates().length,
    ephemerals: w.slack.ephemerals().length,
    aws: aws.calls.length,
  });
}

/** Sends a /dr command that must be refused: within 3 s, to the sender alone, with the usage, changing nothing. */
async function refused(
  text: string,
  options: { user?: string; channel?: string } = {},
): Promise<{ reply: string; sent: Sent }> {
  const before = await state();
  const responses = w.slack.responses.length;
  const sent = await w.command(text, options, '/dr');
  expect(sent.status).toBe(200);
  expect(sent.elapsedMs).toBeLessThan(3_000);
  const reply = await w.reply(sent, 5_000);
  expect(w.replyDelay(sent), 'the refusal arrives within Slack’s 3 s').toBeLessThan(3_000);
  expect(showsUsage(reply), `usage in: ${reply}`).toBe(true);
  await stillAfter(`"/dr ${text}" to record and start nothing`, async () => (await state()) === before, 500);
  expect(w.replies(sent)).toHaveLength(1);
  // The only response_url post is this one's own reply (if it did not ride on the ack).
  expect(w.slack.responses.slice(responses).every((r) => r.id === sent.responseId)).toBe(true);
  return { reply, sent };
}

describe('refused /dr commands', () => {
  const cases: { name: string; text: string; says: RegExp[] }[] = [
    { name: 'an unknown environment', text: 'restore nowhere latest', says: [/nowhere/, /staging/] },
    { name: 'restore without a source', text: 'restore staging', says: [/list|latest/] },
    { name: 'a path instead of a backup name', text: 'restore staging file ../../etc/passwd', says: [/passwd/] },
    {
      name: 'a backup name of another prefix',
      text: 'restore staging file production_20240101_000000.dump',
      says: [/production_20240101_000000\.dump/, /staging_/],
    },
    {
      name: 'a name that only looks like a backup',
      text: 'restore staging file staging_20240231_000000.dump.sh',
      says: [/staging_20240231/],
    },
    {
      name: 'a snapshot restore on an env without rds_instance',
      text: 'restore staging snapshot rds:staging-2024-01-01',
      says: [/rds_instance/],
    },
    { name: 'restore with trailing words', text: 'restore staging latest please', says: [/please/] },
    { name: 'scale of an unknown service', text: 'scale staging frontend 2', says: [/frontend/, /api/] },
    { name: 'scale to -1', text: 'scale staging api -1', says: [/-1/, /\b20\b/] },
    { name: 'scale to 3.5', text: 'scale staging api 3.5', says: [/3\.5/] },
    { name: 'scale over the maximum (max_count 20)', text: 'scale staging api 21', says: [/\b21\b/, /\b20\b/] },
    { name: 'scale without a count', text: 'scale staging api', says: [/how many|count/i] },
    { name: 'redeploy of an unknown service', text: 'redeploy staging frontend', says: [/frontend/] },
    { name: 'logs --since 25h', text: 'logs staging api --since 25h', says: [/24 ?h/] },
    { name: 'logs --since abc', text: 'logs staging api --since abc', says: [/abc/] },
    { name: 'logs of an unknown service', text: 'logs staging db', says: [/"db"/] },
    { name: 'status of an unknown environment', text: 'status nowhere', says: [/nowhere/] },
    { name: 'cancel without a job id', text: 'cancel', says: [/JOB-/] },
    { name: 'cancel of a malformed job id', text: 'cancel 7', says: [/JOB-/] },
    { name: 'cancel of a job that does not exist', text: 'cancel JOB-999', says: [/JOB-999/] },
    { name: 'an unknown subcommand', text: 'frobnicate', says: [/frobnicate/] },
    { name: 'no subcommand at all', text: '', says: [] },
  ];
  for (const c of cases) {
    test(`${c.name} (/dr ${c.text})`, async () => {
      const { reply } = await refused(c.text);
      for (const pattern of c.says) expect(reply).toMatch(pattern);
      expect(reply).not.toContain(PASSWORD);
    });
  }

  test('a refusal quoting what was typed shows Slack markup as text: no broadcast, link or mention comes through', async () => {
    // Slack sends typed &, < and > as entities (Lifeline reads them back as typed).
    const service = await refused('scale staging &lt;!channel&gt; 2');
    expect(service.reply).toContain('Unknown service "&lt;!channel&gt;" in staging');
    const word = await refused('&lt;https://evil.example|docs&gt; &lt;@U0CEO&gt;');
    expect(word.reply).toContain('Unknown subcommand "&lt;https://evil.example|docs&gt;"');
    for (const reply of [service.reply, word.reply]) expect(reply).not.toMatch(/<!|<https?:|<@U0CEO>/);
  });

  test('a valid command from a channel not in allowed_channels is refused and names where to go', async () => {
    const { reply } = await refused('restore staging latest', { channel: 'C0RANDOM' });
    expect(reply).toMatch(/channel/i);
    expect(reply).toContain(`<#${EMERGENCY}>`);
    await refused('scale staging api 2', { channel: 'C0RANDOM', user: USERS.lead });
  });
});

test('/dr help lists every form of the README’s grammar, to the sender alone', async () => {
  const before = await state();
  const sent = await w.command('help', {}, '/dr');
  const wire = await w.reply(sent);
  // The forms' <env> and <service> are text, so they arrive escaped and Slack shows them as typed.
  expect(wire).toContain('`/dr scale &lt;env&gt; &lt;service&gt; &lt;count&gt;`');
  expect(wire).not.toMatch(/[<>]/);
  const reply = unescapeSlackText(wire);
  expect(w.replyDelay(sent)).toBeLessThan(3_000);
  const forms = [
    'restore <env> list|latest|file <name>|snapshot <snapshot-id>',
    'backup <env>',
    'backups <env>',
    'scale <env> <service> <count>',
    'redeploy <env> <service>',
    'logs <env> <service> [--since 15m] [--filter TEXT]',
    'status [env]',
    'jobs',
    'cancel <job-id>',
    'help',
    'drill <env>',
    'audit [env]',
  ];
  const missing = forms.filter((f) => !reply.includes(f));
  expect(missing, reply).toEqual([]);
  for (const first of ['restore', 'scale', 'redeploy', 'logs', 'status', 'jobs', 'cancel', 'help', 'audit'])
    expect(reply).toContain(`/dr ${first}`);
  expect(w.privateMessages(sent).every((m) => m.via !== 'ephemeral' || m.text === wire)).toBe(true);
  expect(await state()).toBe(before);
});

test('an approval request expires, says so, and can then no longer be approved', async () => {
  const sent = await w.command('restore staging latest', { user: USERS.oncall }, '/dr');
  const job = jobNumberIn(await w.reply(sent));
  expect(job).toBeDefined();
  const plan = await waitUntil('the plan', () => {
    const post = planPost(w, job!);
    return post && buttonsOf(post.body).length > 0 ? post : undefined;
  });
  expect((await jobRow(w, job!))?.state).toBe('awaiting_approval');
  expect(allText(plan.body)).toMatch(/until \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);

  // expire_minutes 0.05 = 3 s after the plan.
  await waitUntil('the request to expire', async () => (await jobRow(w, job!))?.state === 'expired', 12_000, 100);
  expect((await auditOf(w, job!)).map((e) => e.action)).toContain('expired');
  const updated = await waitUntil('the plan updated as expired', () =>
    w.slack.updates().find((u) => u.body.ts === plan.result?.ts && /expired/i.test(allText(u.body))),
  );
  expect(buttonsOf(updated.body)).toEqual([]);

  // A click on the old message's Approve (an approver, not the requester) is refused to the clicker alone.
  const posts = w.slack.posts().length;
  const click = await clickButton(w, plan, 'Approve', USERS.lead);
  expect(click.status).toBe(200);
  expect(await w.reply(click)).toMatch(/expired|no longer/i);
  expect(w.privateMessages(click).map((m) => m.via)).toEqual(['ephemeral']);
  await stillAfter(
    'an expired job to stay expired and run nothing',
    async () => (await jobRow(w, job!))?.state === 'expired' && w.slack.posts().length === posts,
    1_000,
  );
  const steps = await w.sql.query('SELECT 1 FROM recovery_steps WHERE job = $1', [job]);
  expect(steps.rowCount).toBe(0);
  expect(w.slack.ephemerals().filter((e) => e.body.user !== USERS.lead && e.at >= click.sentAt)).toHaveLength(0);

  // The target is free again: a new request is accepted (and cancelled by its requester).
  const again = await w.command('restore staging latest', { user: USERS.oncall }, '/dr');
  const next = jobNumberIn(await w.reply(again));
  expect(next).toBeGreaterThan(job!);
  await waitUntil('the new plan', () => planPost(w, next!));
  expect(await w.reply(await w.command(`cancel JOB-${next}`, { user: USERS.oncall }, '/dr'))).toMatch(/cancelled/i);
});

test('no AWS call was made, and no log line or Slack message carries a secret or the database password', () => {
  expect(aws.calls).toEqual([]);
  expect(linesWithSecrets(w.output())).toEqual([]);
  expect(w.output().filter((l) => l.includes(PASSWORD))).toEqual([]);
  const texts = [
    ...w.slack.calls.filter((c) => c.method.startsWith('chat.')).map((c) => JSON.stringify(c.body)),
    ...w.slack.responses.map((r) => JSON.stringify(r.body)),
  ];
  expect(texts.filter((t) => t.includes(PASSWORD))).toEqual([]);
});
