// The runbook engine against the real PostgreSQL and Redis (its BullMQ queue and worker), with the in-memory Slack
// double and a local HTTP target: approvals (once, each_step) and who may give them, Done, a failing http_check then
// Retry, Skip (and an output of a skipped step), Abort with undo, a worker that died inside a step, dry runs, one
// open run per runbook, approval expiry, and the report.
import type { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { MemoryAwsRegions } from '../../src/adapters/aws/memory.js';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import type { RecoveryJobsPort } from '../../src/domain/runbooks/steps/recovery-jobs.js';
import {
  createRunbookQueue,
  runbookTriggers,
  startRunbookWorker,
  type RunbookJobData,
} from '../../src/delivery/jobs/runbook-queue.js';
import { auditOfRun } from '../../src/domain/audit/store.js';
import { loadRunbooks } from '../../src/domain/runbooks/definitions.js';
import type { RunbookEngine } from '../../src/domain/runbooks/engine.js';
import type { Run } from '../../src/domain/runbooks/model.js';
import { reportMarkdown } from '../../src/domain/runbooks/report.js';
import type { RunbookService } from '../../src/domain/runbooks/service.js';
import { defineStepKind, type StepKind } from '../../src/domain/runbooks/step-kind.js';
import { STEP_KINDS, type StepDeps } from '../../src/domain/runbooks/steps/index.js';
import * as runs from '../../src/domain/runbooks/store.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { UserError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/log.js';
import { createRunbooks, createStepDeps } from '../../src/wiring/services.js';
import {
  createTestDatabase,
  dropQueuePrefix,
  TEST_REDIS_URL,
  uniqueQueuePrefix,
  type TestDatabase,
} from '../support/db.js';
import { startHealthTarget, type HealthTarget } from '../support/health-target.js';
import { testConfigYaml, USERS } from '../support/test-config.js';
import { waitUntil } from '../support/wait.js';

const EMERGENCY = 'C0EMERGENCY';
const REQUESTER = USERS.lead;
const APPROVER = USERS.cto;

/** What the test kind `flag` did, by flag name: set (with its value), put back by undo, runs of its `run`. */
const flags = new Map<string, string>();
const flagRuns: string[] = [];
/** While set, a `flag` step's check waits for it (a step in flight). */
let holdCheck: Promise<void> | undefined;

/** A test kind with an outside change (a flag), recorded before it is waited on, an output and an undo. */
const flagKind = defineStepKind<object>()({
  id: 'flag',
  params: z.strictObject({ name: z.string(), value: z.string() }),
  state: z.object({ previous: z.string().optional(), set: z.boolean().optional() }),
  outputs: ['value'],
  describe: (p) => `set ${p.name} to ${p.value}`,
  plan: async (ctx) => ({ does: `would set ${ctx.params.name}`, missing: [] }),
  async run(ctx) {
    if (ctx.state.set) return;
    flagRuns.push(ctx.params.name);
    ctx.state.previous = flags.get(ctx.params.name) ?? '(none)';
    flags.set(ctx.params.name, ctx.params.value);
    ctx.state.set = true;
    await ctx.recordChange(`set ${ctx.params.name}`);
  },
  async check(ctx) {
    if (holdCheck) await holdCheck;
    return { detail: `${ctx.params.name} is ${ctx.params.value}`, outputs: { value: ctx.params.value } };
  },
  async undo(ctx) {
    flags.set(ctx.params.name, ctx.state.previous ?? '(none)');
    return `${ctx.params.name} back to ${ctx.state.previous ?? '(none)'}`;
  },
});
const KINDS: readonly StepKind<StepDeps>[] = [...STEP_KINDS, flagKind as StepKind<StepDeps>];

let testDb: TestDatabase;
let db: Db;
let target: HealthTarget;
let prefix: string;
let redis: Redis;
let workerRedis: Redis;
let queue: Queue<RunbookJobData>;
let worker: Worker<RunbookJobData>;
let chat: MemoryChat;
let service: RunbookService;
let engine: RunbookEngine;
let file: FileConfig;

function runbooksYaml(url: string): string {
  return `runbooks:
  happy:
    title: Notify, a hand step, then the health check
    steps:
      - notify: { channel: ${EMERGENCY}, text: "failover <!channel> started" }
      - confirm: "flip the switch"
      - http_check: { url: "${url}", expect_status: 200, within_minutes: 0.01 }
        id: health
  stepwise:
    title: One approval per step
    approval: each_step
    steps:
      - flag: { name: stepwise, value: "on" }
      - confirm: "look at it"
      - http_check: { url: "${url}", within_minutes: 0.01 }
  chain:
    title: Outputs, skip and abort
    steps:
      - flag: { name: first, value: "one" }
        id: first
      - http_check: { url: "${url}", within_minutes: 0.01 }
      - flag: { name: second, value: "{{steps.first.value}}-two" }
  broken:
    title: A dry run that finds a gap
    steps:
      - notify: { channel: ${EMERGENCY}, text: "never posted" }
      - http_check: { url: "http://127.0.0.1:9/nothing-listens", within_minutes: 0.01 }
  slow:
    title: A step in flight
    steps:
      - flag: { name: slow, value: "set" }
  shown:
    title: Only a hand step
    steps:
      - confirm: "look at the message"
  halt:
    title: A health check that fails at once
    steps:
      - http_check: { url: "${url}", within_minutes: 0.0001 }
`;
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = createPool(testDb.url, createLogger('silent', []));
  await migrate(db);
  target = await startHealthTarget(200);
  const yaml = testConfigYaml({
    backupsFolder: '/tmp/lifeline-itest-backups',
    approvalsYaml: '  approver_roles: [engineering_lead, cto]\n  expire_minutes: 0.02\n  allow_self_approval: false',
    extraYaml: runbooksYaml(target.url),
  });
  file = parseConfigText(yaml, {
    PD_KEY_ONCALL: 'k1-000',
    PD_KEY_LEAD: 'k2-000',
    PD_KEY_CTO: 'k3-000',
    PD_KEY_CEO: 'k4-000',
  });
  prefix = uniqueQueuePrefix();
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  workerRedis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  queue = createRunbookQueue(redis, prefix);
  chat = new MemoryChat();
  const log = createLogger('silent', []);
  const config = { file, recovery: { pollSeconds: 0.05, jobLeaseMs: 2_000, stepDeadlineMs: 60_000 } } as const;
  ({ service, engine } = createRunbooks({
    db,
    config: config as never,
    runbooks: loadRunbooks(file, KINDS),
    chat,
    // These runbooks call neither AWS, Vercel, a status page nor recovery jobs: any such call fails the test.
    stepDeps: createStepDeps(
      config as never,
      { chat, regions: new MemoryAwsRegions(), vercel: undefined, statuspage: undefined },
      new Proxy({} as RecoveryJobsPort, {
        get: (_target, call) => () => Promise.reject(new Error(`unexpected recovery jobs call ${String(call)}`)),
      }),
    ),
    queue: runbookTriggers(queue),
    kinds: KINDS,
    log,
  }));
  worker = startRunbookWorker(workerRedis, prefix, { engine, service }, log);
});

afterAll(async () => {
  engine?.stop();
  await worker?.close();
  await queue?.close();
  redis?.disconnect();
  workerRedis?.disconnect();
  await target?.close();
  await db?.end();
  await testDb?.drop();
  await dropQueuePrefix(prefix);
});

beforeEach(() => {
  target.mode = 200;
  holdCheck = undefined;
});

async function runOf(number: number): Promise<Run> {
  return (await runs.getRun(db, number))!;
}

async function until(
  number: number,
  state: Run['state'] | ((run: Run) => boolean | Promise<boolean>),
  timeoutMs = 10_000,
): Promise<Run> {
  const ok = typeof state === 'string' ? (r: Run) => r.state === state : state;
  return waitUntil(
    `RUN-${number} ${String(state)}`,
    async () => {
      const run = await runOf(number);
      return (await ok(run)) ? run : undefined;
    },
    timeoutMs,
  );
}

async function stepStates(number: number): Promise<string[]> {
  return (await runs.steps(db, number)).map((s) => `${s.id}:${s.state}`);
}

async function refusal(work: Promise<unknown>): Promise<string> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof UserError)) throw new Error(`expected a refusal, got ${String(err)}`);
  return err.message;
}

/** The run's message as Slack has it now (its latest post or update). */
function messageOf(run: Run): { text: string; buttons: string[] } {
  const calls = chat.calls.filter((c) => (c.kind === 'post' || c.kind === 'update') && c.ts === run.progress?.ts);
  const last = calls.at(-1)!.message;
  const text = JSON.stringify(last.blocks ?? last.text);
  const buttons = (last.blocks ?? []).flatMap((b) =>
    b.type === 'actions' ? b.elements.map((e) => ('text' in e && e.text ? e.text.text : '')) : [],
  );
  return { text, buttons };
}

function request(runbook: string, dryRun = false): Promise<Run> {
  return service.request({ runbook, dryRun, actor: REQUESTER, channel: EMERGENCY });
}

describe('a run with one approval', () => {
  test('Approve (not by the requester, not by a non-approver), the steps, Done, and the report with the RTO', async () => {
    const run = await request('happy');
    expect(run.state).toBe('awaiting_approval');
    const posted = await until(run.number, (r) => r.progress !== undefined);
    expect(messageOf(posted).buttons).toEqual(['Approve', 'Reject']);
    expect(await refusal(service.approve(run.number, REQUESTER))).toMatch(/You requested RUN-\d+; another approver/);
    expect(await refusal(service.approve(run.number, USERS.other))).toMatch(/Only engineering_lead or cto may approve/);
    expect(await refusal(request('happy'))).toMatch(/is awaiting approval; one run of a runbook at a time/);
    expect((await runOf(run.number)).state).toBe('awaiting_approval');

    await service.approve(run.number, APPROVER);
    await until(run.number, async () => (await stepStates(run.number)).includes('step-2:awaiting_done'));
    // The runbook's text is shown as written: its <!channel> is not a mention.
    const notice = chat.calls.find((c) => c.kind === 'post' && c.message.text.includes('failover'));
    expect(notice?.message.text).toBe('failover &lt;!channel&gt; started');
    await waitUntil('Done', async () => messageOf(await runOf(run.number)).buttons.join() === 'Done,Abort');
    expect(await refusal(service.act(run.number, USERS.other, 'done'))).toMatch(/Only the requester or an approver/);

    await service.act(run.number, REQUESTER, 'done');
    const ended = await until(run.number, 'succeeded');
    expect(await stepStates(run.number)).toEqual(['step-1:succeeded', 'step-2:succeeded', 'health:succeeded']);
    expect(ended.recoveredAt).toBeDefined();
    const steps = await runs.steps(db, run.number);
    expect(steps.map((s) => s.attempts)).toEqual([1, 1, 1]);
    const report = reportMarkdown(ended, steps, await auditOfRun(db, run.number)).join('\n');
    expect(report).toContain('## What went wrong');
    expect(report).toContain('## Lessons learned');
    expect(report).toMatch(/RTO achieved: \d+ s \(first approval/);
    expect(report).toContain(`${APPROVER} approved the run`);
    const actions = (await auditOfRun(db, run.number)).map((e) => `${e.actor} ${e.action}`);
    expect(actions).toEqual([
      `${REQUESTER} requested`,
      `${REQUESTER} approval_refused`,
      `${USERS.other} approval_refused`,
      `${APPROVER} approved`,
      'lifeline step_started',
      'lifeline change',
      'lifeline step_succeeded',
      `${USERS.other} approval_refused`,
      `${REQUESTER} step_done`,
      'lifeline step_started',
      'lifeline step_succeeded',
      'lifeline step_started',
      'lifeline step_succeeded',
      'lifeline succeeded',
    ]);
  });

  test('an unanswered approval expires and can no longer be approved', async () => {
    const run = await request('happy');
    await until(run.number, 'expired', 10_000);
    expect(await refusal(service.approve(run.number, APPROVER))).toMatch(/is expired; it waits for no approval/);
  });
});

describe("the run's message", () => {
  test('an update that read the run earlier never lands after a newer one', async () => {
    const run = await request('shown');
    await until(run.number, (r) => r.progress !== undefined);
    // Slack answers the next update slowly: it is still in flight while the run moves on.
    const update = chat.update.bind(chat);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    chat.update = async (at, message) => {
      if (!held) {
        held = true;
        await gate;
      }
      return update(at, message);
    };
    try {
      const stale = engine.showProgress(run.number);
      await waitUntil('the slow update in flight', () => held);
      const approving = service.approve(run.number, APPROVER);
      await until(run.number, async () => (await stepStates(run.number)).includes('step-1:awaiting_done'));
      // Longer than the worker's throttle, so its last update would have been sent by now.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      release();
      await Promise.all([stale, approving]);
      await waitUntil('Done', async () => messageOf(await runOf(run.number)).buttons.join() === 'Done,Abort');
    } finally {
      release();
      chat.update = update;
    }
    await service.act(run.number, REQUESTER, 'done');
    await until(run.number, 'succeeded');
  });

  test('a run that stopped shows Retry, Skip and Abort even when its reply in the thread is slow', async () => {
    target.mode = 503;
    // Slack takes longer over the thread reply than the lease's heartbeat, and than the message's throttle.
    const post = chat.post.bind(chat);
    chat.post = async (channel, message, threadTs) => {
      if (threadTs !== undefined) await new Promise((resolve) => setTimeout(resolve, 1_500));
      return post(channel, message, threadTs);
    };
    try {
      const run = await request('halt');
      await service.approve(run.number, APPROVER);
      await until(run.number, 'stopped');
      await waitUntil(
        'Retry, Skip, Abort',
        async () => messageOf(await runOf(run.number)).buttons.join() === 'Retry,Skip,Abort',
        5_000,
      );
      await service.act(run.number, APPROVER, 'abort');
      await until(run.number, 'aborted');
    } finally {
      chat.post = post;
    }
  });
});

describe('approval: each_step', () => {
  test('an approval before each step but the one done by hand', async () => {
    const run = await request('stepwise');
    await until(run.number, async () => (await stepStates(run.number))[0] === 'step-1:awaiting_approval');
    expect((await runOf(run.number)).state).toBe('awaiting_approval');
    await service.approve(run.number, APPROVER);
    await until(run.number, async () => (await stepStates(run.number))[1] === 'step-2:awaiting_done');
    expect(flags.get('stepwise')).toBe('on');
    await service.act(run.number, APPROVER, 'done');
    await until(run.number, async () => (await stepStates(run.number))[2] === 'step-3:awaiting_approval');
    await service.approve(run.number, APPROVER);
    const ended = await until(run.number, 'succeeded');
    expect(ended.approvals.map((a) => a.step)).toEqual([0, 2]);
  });
});

describe('a failed step stops the run', () => {
  test('a failing http_check, then Retry (approvers only) once the target answers', async () => {
    target.mode = 503;
    const run = await request('chain');
    await service.approve(run.number, APPROVER);
    const stopped = await until(run.number, 'stopped');
    expect(await stepStates(run.number)).toEqual(['first:succeeded', 'step-2:failed', 'step-3:pending']);
    // The message shows the buttons within its throttle of one update a second.
    await waitUntil('Retry, Skip, Abort', () => messageOf(stopped).buttons.join() === 'Retry,Skip,Abort');
    expect(await refusal(service.act(run.number, USERS.oncall, 'retry'))).toMatch(
      /Only engineering_lead or cto may retry/,
    );
    target.mode = 200;
    await service.act(run.number, APPROVER, 'retry');
    await until(run.number, 'succeeded');
    const steps = await runs.steps(db, run.number);
    expect(steps.map((s) => s.attempts)).toEqual([1, 2, 1]);
    // The later step got the earlier one's output; the earlier one never ran again.
    expect(flags.get('second')).toBe('one-two');
    expect(flagRuns.filter((f) => f === 'first')).toHaveLength(1);
  });

  test('Skip goes on; Abort puts back what the steps changed, last first', async () => {
    flags.set('first', 'before');
    target.mode = 503;
    const run = await request('chain');
    await service.approve(run.number, APPROVER);
    await until(run.number, 'stopped');
    await service.act(run.number, APPROVER, 'skip');
    const ended = await until(run.number, 'succeeded');
    expect(await stepStates(ended.number)).toEqual(['first:succeeded', 'step-2:skipped', 'step-3:succeeded']);

    const again = await request('chain');
    await service.approve(again.number, APPROVER);
    await until(again.number, 'stopped');
    expect(await refusal(service.act(again.number, USERS.other, 'abort'))).toMatch(/Only engineering_lead or cto/);
    await service.act(again.number, APPROVER, 'abort');
    const aborted = await until(again.number, 'aborted');
    expect(flags.get('first')).toBe('one');
    const steps = await runs.steps(db, aborted.number);
    expect(steps[0]!.undone).toBe('first back to one');
    expect(await stepStates(aborted.number)).toEqual(['first:succeeded', 'step-2:failed', 'step-3:pending']);
    expect(await refusal(service.act(aborted.number, APPROVER, 'retry'))).toMatch(/no failed step to retry/);
  });

  test("a skipped step's output makes the step that uses it fail, naming it", async () => {
    const run = await request('chain');
    await service.approve(run.number, APPROVER);
    target.mode = 503;
    await until(run.number, 'stopped');
    // Make the first step the failed one: its output is then what a skip leaves unknown.
    await db.query(`UPDATE runbook_steps SET state = 'failed' WHERE run = $1 AND step_index = 0`, [run.number]);
    await db.query(`UPDATE runbook_steps SET state = 'succeeded' WHERE run = $1 AND step_index = 1`, [run.number]);
    await service.act(run.number, APPROVER, 'skip');
    await until(run.number, 'stopped');
    const third = (await runs.steps(db, run.number))[2]!;
    expect(third.state).toBe('failed');
    expect(third.detail).toBe('it uses the value of step first, which was skipped');
    await service.act(run.number, APPROVER, 'abort');
    await until(run.number, 'aborted');
  });
});

describe('a worker that dies inside a step', () => {
  test('the next worker runs the step again: its kind finds its recorded change and makes no second one', async () => {
    let release!: () => void;
    holdCheck = new Promise((resolve) => (release = resolve));
    const run = await request('slow');
    await service.approve(run.number, APPROVER);
    await until(run.number, async () => flagRuns.includes('slow'));
    // Its worker is cut off inside the step's check: its lease runs out and is no longer its own.
    await db.query(
      `UPDATE runbook_runs SET lease_owner = 'gone', lease_until = clock_timestamp() - interval '1 second'
        WHERE number = $1`,
      [run.number],
    );
    expect(await engine.reconcile()).toBeGreaterThanOrEqual(1);
    await until(run.number, async () => (await runs.steps(db, run.number))[0]!.attempts === 2);
    release();
    await until(run.number, 'succeeded');
    expect(flagRuns.filter((f) => f === 'slow')).toHaveLength(1);
    const started = (await auditOfRun(db, run.number)).filter((e) => e.action === 'step_started');
    expect(started.map((e) => e.detail)).toEqual(['step-1', 'step-1 (again: its worker stopped inside it)']);
  });
});

describe('dry runs', () => {
  test('no approval, read calls only, each gap named; the alarm goes to the emergency channel', async () => {
    const posts = chat.calls.length;
    const run = await request('broken', true);
    const ended = await until(run.number, 'failed');
    const steps = await runs.steps(db, run.number);
    expect(steps.map((s) => s.state)).toEqual(['succeeded', 'failed']);
    expect(steps[1]!.missing[0]).toMatch(/^http:\/\/127\.0\.0\.1:9\/nothing-listens does not answer/);
    expect(chat.calls.slice(posts).some((c) => c.message.text.includes('never posted'))).toBe(false);
    const alarm = chat.calls.find((c) => c.kind === 'post' && c.message.text.includes('Dry run RUN-'));
    expect(alarm?.channel).toBe(EMERGENCY);
    expect(JSON.stringify(alarm?.message.blocks)).toContain('<!here>');
    expect(ended.approvals).toEqual([]);
    // It was open only while it ran: a real run may start now.
    const real = await request('broken');
    await service.reject(real.number, REQUESTER);
  });
});
