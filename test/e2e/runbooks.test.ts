// Runbooks through the real process (node dist/main.js), the Slack stand-in and a local HTTP target whose status the
// test flips: `/dr runbook list|show`, a run with one approval and one per step (self-approval and a non-approver's
// click refused, nothing changing), Done, a failing http_check then Retry, Skip and Abort, a dry run that makes no
// write call, a second run refused while one is open, kill -9 inside a step then a restart (it resumes at that step
// and a finished step never runs again), and bad runbook configs named by path at startup.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, EMERGENCY, stillAfter, World } from '../support/e2e.js';
import { startHealthTarget, type HealthTarget } from '../support/health-target.js';
import { USERS } from '../support/lifeline-process.js';
import { adminToken, describeRun, runCli } from '../support/cli.js';
import {
  clickRun,
  dr,
  requestRun,
  runAudit,
  runMessage,
  runState,
  stepStates,
  untilState,
  withButtons,
} from '../support/runbooks.js';
import type { SlackCall } from '../../src/adapters/slack/stand-in.js';
import { clickButton } from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 30_000 });

const REQUESTER: string = USERS.lead;
const APPROVER: string = USERS.cto;
const FAST = {
  LIFELINE_AWS_POLL_SECONDS: '0.1',
  LIFELINE_JOB_LEASE_SECONDS: '2',
  LIFELINE_RECONCILE_SECONDS: '1',
};

function runbooksYaml(url: string): string {
  return `runbooks:
  happy:
    title: Notify, a hand step, the health check
    steps:
      - notify: { channel: ${EMERGENCY}, text: "happy failover started" }
      - confirm: "flip the switch"
      - http_check: { url: "${url}", expect_status: 200, within_minutes: 0.05 }
  stepwise:
    title: One approval per step
    approval: each_step
    steps:
      - notify: { channel: ${EMERGENCY}, text: "stepwise started" }
      - confirm: "look at the dashboard"
      - http_check: { url: "${url}", within_minutes: 0.05 }
  checked:
    title: Only the health check
    steps:
      - http_check: { url: "${url}", within_minutes: 0.01 }
      - notify: { channel: ${EMERGENCY}, text: "checked done" }
  crash:
    title: A long health check to kill the process in
    steps:
      - notify: { channel: ${EMERGENCY}, text: "crash run started" }
      - http_check: { url: "${url}", within_minutes: 0.5 }
`;
}

let w: World;
let target: HealthTarget;

beforeAll(async () => {
  target = await startHealthTarget(200);
  w = await World.create({ config: { extraYaml: runbooksYaml(target.url) }, extraEnv: FAST });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
  await target?.close();
});

/** A click refused: the clicker alone is told why, and the run's state does not move. */
async function refusedClick(run: number, labels: string[], label: string, user: string, why: RegExp): Promise<void> {
  const before = `${await runState(w, run)} ${(await stepStates(w, run)).join()}`;
  const seen = w.ephemeralsTo(user).length;
  await clickRun(w, run, labels, label, user);
  const told = await waitUntil(`a refusal to ${user}`, () => w.ephemeralsTo(user).slice(seen)[0]);
  expect(allText(told.body)).toMatch(why);
  expect(`${await runState(w, run)} ${(await stepStates(w, run)).join()}`).toBe(before);
}

/** The notify steps' posts of exactly this text (the run's own message quotes it too). */
function postsWith(text: string): SlackCall[] {
  return w.slack.posts().filter((c) => c.body.text === text);
}

describe('runbooks through the real process', () => {
  test('`/dr runbook list` and `show` answer the sender alone', async () => {
    const list = await w.reply(await dr(w, 'runbook list', USERS.other));
    for (const name of ['happy', 'stepwise', 'checked', 'crash']) expect(list).toContain(name);
    const show = await w.reply(await dr(w, 'runbook show happy', USERS.other));
    expect(show).toContain('flip the switch');
    expect(show).toContain(`GET ${target.url} until it answers 200`);
  });

  test('one approval: refusals and a replayed Approve change nothing, Done, the health check, and the report', async () => {
    const run = await requestRun(w, 'happy', REQUESTER);
    await withButtons(w, run, ['Approve', 'Reject']);
    expect(await w.reply(await dr(w, 'run happy', USERS.oncall))).toMatch(/RUN-\d+ of happy .* one run of a runbook/);
    await refusedClick(run, ['Approve', 'Reject'], 'Approve', REQUESTER, /another approver has to approve it/);
    await refusedClick(run, ['Approve', 'Reject'], 'Approve', USERS.other, /Only engineering_lead or cto may approve/);
    const asked = await withButtons(w, run, ['Approve', 'Reject']);
    await clickRun(w, run, ['Approve', 'Reject'], 'Approve', APPROVER);
    await withButtons(w, run, ['Done', 'Abort']);
    expect(postsWith('happy failover started')).toHaveLength(1);
    // The same Approve clicked again (a double click, a replayed request) is refused and approves nothing twice.
    const before = `${await runState(w, run)} ${(await stepStates(w, run)).join()}`;
    const seen = w.ephemeralsTo(APPROVER).length;
    expect((await clickButton(w, asked, 'Approve', APPROVER)).status).toBe(200);
    const told = await waitUntil('the replay refused', () => w.ephemeralsTo(APPROVER).slice(seen)[0]);
    expect(allText(told.body)).toMatch(new RegExp(`RUN-${run} is running; it waits for no approval`));
    expect(`${await runState(w, run)} ${(await stepStates(w, run)).join()}`).toBe(before);
    expect((await runAudit(w, run)).filter((e) => e.action === 'approved')).toHaveLength(1);
    expect(postsWith('happy failover started')).toHaveLength(1);
    await refusedClick(run, ['Done', 'Abort'], 'Done', USERS.other, /Only the requester or an approver/);
    await clickRun(w, run, ['Done', 'Abort'], 'Done', REQUESTER);
    await untilState(w, run, 'succeeded');
    expect(await stepStates(w, run)).toEqual(['step-1:succeeded:1', 'step-2:succeeded:1', 'step-3:succeeded:1']);
    const report = await w.reply(await dr(w, `run report RUN-${run}`, REQUESTER));
    expect(report).toContain(`# RUN-${run}: happy`);
    expect(report).toMatch(/RTO achieved: \d+ s/);
    expect(report).toContain('## What went wrong');
    expect(report).toContain('## Lessons learned');
  });

  test('approval: each_step asks before each step but the hand step', async () => {
    const run = await requestRun(w, 'stepwise', REQUESTER);
    await clickRun(w, run, ['Approve', 'Reject'], 'Approve', APPROVER);
    await waitUntil('the notice', () => postsWith('stepwise started').length === 1);
    await clickRun(w, run, ['Done', 'Abort'], 'Done', APPROVER);
    await withButtons(w, run, ['Approve', 'Reject']);
    expect(await stepStates(w, run)).toEqual([
      'step-1:succeeded:1',
      'step-2:succeeded:1',
      'step-3:awaiting_approval:0',
    ]);
    await clickRun(w, run, ['Approve', 'Reject'], 'Approve', APPROVER);
    await untilState(w, run, 'succeeded');
  });

  test('a failing http_check stops the run: a second run is refused meanwhile; Retry, then Skip, then Abort', async () => {
    target.mode = 503;
    const first = await requestRun(w, 'checked', REQUESTER);
    await clickRun(w, first, ['Approve', 'Reject'], 'Approve', APPROVER);
    await untilState(w, first, 'stopped');
    // One run of a runbook at a time, and a stopped run counts: a second request is refused and records nothing.
    const runsNow = async () => (await w.sql.query('SELECT number FROM runbook_runs')).rowCount;
    const before = await runsNow();
    const busy = await w.reply(await dr(w, 'run checked', REQUESTER));
    expect(busy).toMatch(new RegExp(`RUN-${first} of checked \\(requested by .+\\) is stopped; one run of a runbook`));
    expect(await runsNow()).toBe(before);
    await refusedClick(first, ['Retry', 'Skip', 'Abort'], 'Retry', USERS.oncall, /Only engineering_lead or cto/);
    target.mode = 200;
    await clickRun(w, first, ['Retry', 'Skip', 'Abort'], 'Retry', APPROVER);
    await untilState(w, first, 'succeeded');
    expect(await stepStates(w, first)).toEqual(['step-1:succeeded:2', 'step-2:succeeded:1']);

    target.mode = 503;
    const second = await requestRun(w, 'checked', REQUESTER);
    await clickRun(w, second, ['Approve', 'Reject'], 'Approve', APPROVER);
    await clickRun(w, second, ['Retry', 'Skip', 'Abort'], 'Skip', APPROVER);
    await untilState(w, second, 'succeeded');
    expect(await stepStates(w, second)).toEqual(['step-1:skipped:1', 'step-2:succeeded:1']);

    const third = await requestRun(w, 'checked', REQUESTER);
    await clickRun(w, third, ['Approve', 'Reject'], 'Approve', APPROVER);
    await clickRun(w, third, ['Retry', 'Skip', 'Abort'], 'Abort', APPROVER);
    await untilState(w, third, 'aborted');
    expect(await stepStates(w, third)).toEqual(['step-1:failed:1', 'step-2:pending:0']);
    expect(postsWith('checked done')).toHaveLength(2);
    target.mode = 200;
  });

  test('a dry run needs no approval, makes no write call, and reports each step', async () => {
    const posts = postsWith('happy failover started').length;
    const run = await requestRun(w, 'happy --dry-run', REQUESTER);
    await untilState(w, run, 'succeeded');
    expect(await stepStates(w, run)).toEqual(['step-1:succeeded:1', 'step-2:succeeded:1', 'step-3:succeeded:1']);
    await stillAfter('no notice posted', () => postsWith('happy failover started').length === posts, 500);
    const text = allText(runMessage(w, run)!.body);
    expect(text).toContain('would post to C0EMERGENCY: happy failover started');
  });

  test('kill -9 inside a step, then a restart: it resumes at that step, and the notice is never posted again', async () => {
    target.mode = 503;
    const run = await requestRun(w, 'crash', REQUESTER);
    await clickRun(w, run, ['Approve', 'Reject'], 'Approve', APPROVER);
    await waitUntil('the health check running', async () => (await stepStates(w, run))[1] === 'step-2:running:1');
    await w.lifeline.stop('SIGKILL');
    target.mode = 200;
    await w.processes[0]!.start();
    await untilState(w, run, 'succeeded', 20_000);
    expect(await stepStates(w, run)).toEqual(['step-1:succeeded:1', 'step-2:succeeded:2']);
    expect(postsWith('crash run started')).toHaveLength(1);
  });
});

describe('the CLI and the API drive a run as Slack does', () => {
  test('request, a refused self-approval, approve and follow to the stop, retry and follow to the end', async () => {
    const env = (token: string) => ({
      PATH: process.env.PATH ?? '',
      LIFELINE_URL: w.lifeline.baseUrl,
      LIFELINE_TOKEN: token,
    });
    const lead = env(await adminToken(REQUESTER, w.lifeline.env()));
    const cto = env(await adminToken(APPROVER, w.lifeline.env()));
    target.mode = 503;
    const requested = await runCli(['--no-wait', 'dr', 'run', 'checked'], lead);
    expect(requested.code, describeRun(requested)).toBe(0);
    const run = Number(/RUN-(\d+)/.exec(requested.stdout)?.[1]);
    const self = await runCli(['approve', `RUN-${run}`], lead);
    expect(self.code, describeRun(self)).toBe(2);
    expect(self.stderr).toContain('another approver has to approve it');

    const approved = await runCli(['approve', `RUN-${run}`], cto);
    expect(approved.code, describeRun(approved)).toBe(1);
    expect(approved.stdout).toContain(
      `RUN-${run} stopped at a failed step: \`lifeline run retry|skip|abort RUN-${run}\``,
    );
    target.mode = 200;
    const retried = await runCli(['run', 'retry', `RUN-${run}`], cto);
    expect(retried.code, describeRun(retried)).toBe(0);
    expect(retried.stdout).toContain(`RUN-${run} succeeded`);
    const skip = await runCli(['run', 'skip', `RUN-${run}`], cto);
    expect(skip.code, describeRun(skip)).toBe(2);
    expect(skip.stderr).toContain('has no failed step to skip');

    const res = await fetch(`${w.lifeline.baseUrl}/api/v1/runs/RUN-${run}`, {
      headers: { authorization: `Bearer ${lead.LIFELINE_TOKEN}` },
    });
    const view = (await res.json()) as { state: string; steps: { attempts: number }[]; approvals: { by: string }[] };
    expect(view.state).toBe('succeeded');
    expect(view.steps.map((st) => st.attempts)).toEqual([2, 1]);
    expect(view.approvals.map((a) => a.by)).toEqual([APPROVER]);
  });
});

describe('bad runbook configs', () => {
  test('each mistake named by its path at startup, exit code 2', async () => {
    const bad = `runbooks:
  broken:
    title: Broken
    steps:
      - http_check: { url: "not a url", within_minutes: 1, colour: red }
      - teleport: { to: mars }
      - notify: { channel: ${EMERGENCY}, text: "{{steps.nowhere.endpoint}}" }
`;
    const world = await World.create({ config: { extraYaml: bad } });
    try {
      const p = world.process();
      expect(await p.runToExit(15_000)).toBe(2);
      const lines = p.output.join('\n');
      expect(lines).toContain('runbooks.broken.steps[0].http_check.url');
      expect(lines).toContain('runbooks.broken.steps[0].http_check.colour: unknown key');
      expect(lines).toContain('runbooks.broken.steps[1].teleport: unknown step kind');
      expect(lines).toContain('runbooks.broken.steps[2].notify.text: {{steps.nowhere.endpoint}} names no earlier step');
    } finally {
      await world.close();
    }
  });
});

describe('dry_run_schedule', () => {
  test('a runbook is dry-run by itself on its schedule, and a gap it finds is posted loudly', async () => {
    // Every 2 s (cron with seconds); the health URL's host does not resolve: a gap the dry run must find.
    const scheduled = `runbooks:
  nightly:
    title: Checked by itself
    dry_run_schedule: "*/2 * * * * *"
    steps:
      - notify: { channel: ${EMERGENCY}, text: "never posted by a dry run" }
      - http_check: { url: "http://no-such-host.invalid/health", within_minutes: 1 }
`;
    const world = await World.create({ config: { extraYaml: scheduled }, extraEnv: FAST });
    try {
      await world.process().start();
      const loud = await waitUntil(
        'the loud post of a failing dry run',
        () => world.topLevelPosts(EMERGENCY).find((c) => /<!here>/.test(allText(c.body))),
        15_000,
      );
      expect(allText(loud.body)).toContain('nightly');
      expect(allText(loud.body)).toContain('no-such-host.invalid');
      const { rows } = await world.sql.query<{ requested_by: string; dry_run: boolean; state: string }>(
        'SELECT requested_by, dry_run, state FROM runbook_runs ORDER BY number LIMIT 1',
      );
      expect(rows[0]).toMatchObject({ requested_by: 'lifeline', dry_run: true });
      // The run's own message says what the notify step would post; the notice itself is never posted.
      expect(world.topLevelPosts().filter((c) => c.body.text === 'never posted by a dry run')).toEqual([]);
    } finally {
      await world.close();
    }
  });
});
