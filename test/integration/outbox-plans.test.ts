// A plan posted while Slack is down (point 15), against the real PostgreSQL: the notifier keeps it in the outbox as
// a reference to its job; delivery renders it from the job's state then (Approve/Reject while it awaits approval),
// records it as the job's approval message, and brings it up to date when a decision crossed it on its way.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { ChatMessage, ChatPort, PostedMessage } from '../../src/adapters/slack/port.js';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { parseConfigText } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { PermanentError, TransientError } from '../../src/shared/errors.js';
import { person, said } from '../../src/shared/text.js';
import { createLogger } from '../../src/shared/log.js';
import type { RecoveryJob } from '../../src/domain/recovery/model.js';
import * as jobs from '../../src/domain/recovery/store.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import { deliverOutbox, queuePlanForSlack } from '../../src/delivery/slack/outbox.js';
import { createSlackRecoveryNotifier } from '../../src/delivery/slack/recovery-notifier.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testConfigYaml } from '../support/test-config.js';

const CHANNEL = 'C0EMERGENCY';
const APPROVERS = ['U0LEAD', 'U0CTO'];
const file = parseConfigText(testConfigYaml(), {
  PD_KEY_ONCALL: 'a-key',
  PD_KEY_LEAD: 'b-key',
  PD_KEY_CTO: 'c-key',
  PD_KEY_CEO: 'd-key',
});
const log = createLogger('silent', []);

let database: TestDatabase;
let db: Db;
let target = 0;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPool(database.url, log);
  await migrate(db);
});

afterAll(async () => {
  await db?.end();
  await database?.drop();
});

beforeEach(async () => {
  // Each test starts with an empty outbox (delivery stops at the first message it cannot send, by design).
  await db.query('DELETE FROM slack_outbox');
});

/** A restore job of its own target, planned and awaiting approval. */
async function plannedJob(): Promise<RecoveryJob> {
  const job = await jobs.insertJob(db, {
    kind: 'restore',
    env: 'staging',
    target: `staging/database-${++target}`,
    params: { kind: 'restore', source: { type: 'latest' } },
    requestedBy: 'U0ONCALL',
    requestedIn: CHANNEL,
    responseUrl: undefined,
    needsApproval: true,
  });
  return (await jobs.transition(db, job.number, ['planning'], 'awaiting_approval', {
    plan: 'restore staging from staging_20240101_000000.dump',
    expiresAt: new Date(Date.now() + 60_000),
  }))!;
}

function notifierWith(chat: ChatPort) {
  return createSlackRecoveryNotifier(chat, {
    keepText: () => Promise.reject(new Error('no text expected')),
    keepPlan: (job) => queuePlanForSlack(db, job),
  });
}

function deliver(chat: ChatPort) {
  return deliverOutbox({
    db,
    chat,
    notifier: createSlackIncidentNotifier(chat, file),
    log,
    cardGraceMs: 0,
    approvers: () => APPROVERS,
  });
}

async function waitingPlans(): Promise<{ plan_of: number; channel: string; text: string | null; sent: boolean }[]> {
  const { rows } = await db.query<{ plan_of: number; channel: string; text: string | null; sent: boolean }>(
    `SELECT plan_of, channel, text, sent_at IS NOT NULL AS sent
       FROM slack_outbox WHERE plan_of IS NOT NULL ORDER BY id`,
  );
  return rows;
}

function labels(message: ChatMessage): string[] {
  return (message.blocks ?? []).flatMap((b) =>
    b.type === 'actions' ? b.elements.map((e) => (e.type === 'button' ? e.text.text : '')) : [],
  );
}

describe('a plan Slack did not take', () => {
  test('waits in the outbox as its job, then goes out as the plan with Approve/Reject and becomes the approval message', async () => {
    const job = await plannedJob();
    const down = new MemoryChat();
    down.failNext(new TransientError('Slack chat.postMessage failed: connect ECONNREFUSED'));
    expect(await notifierWith(down).postPlan(job, APPROVERS)).toBeUndefined();
    expect(down.calls).toEqual([]);
    expect(await waitingPlans()).toEqual([{ plan_of: job.number, channel: CHANNEL, text: null, sent: false }]);

    const back = new MemoryChat();
    expect(await deliver(back)).toEqual({ delivered: 1, pending: 0 });
    expect(back.calls).toHaveLength(1);
    const [posted] = back.calls;
    expect(posted).toMatchObject({ kind: 'post', channel: CHANNEL });
    expect(posted!.threadTs).toBeUndefined();
    expect(labels(posted!.message)).toEqual(['Approve', 'Reject']);
    expect(posted!.message.text).toBe(
      `JOB-${job.number}: restore staging database from the latest backup (awaiting approval)`,
    );
    expect((await jobs.getJob(db, job.number))?.approval).toEqual({ channel: CHANNEL, ts: posted!.ts });
    expect(await waitingPlans()).toEqual([{ plan_of: job.number, channel: CHANNEL, text: null, sent: true }]);

    // Delivered once: another run posts nothing.
    expect(await deliver(back)).toEqual({ delivered: 0, pending: 0 });
    expect(back.calls).toHaveLength(1);
  });

  test('a refusal from Slack (not an outage) is not kept: it would block the outbox for good', async () => {
    const job = await plannedJob();
    const refusing = new MemoryChat();
    refusing.failNext(new PermanentError('Slack chat.postMessage refused: channel_not_found'));
    await expect(notifierWith(refusing).postPlan(job, APPROVERS)).rejects.toThrow(/channel_not_found/);
    expect(await waitingPlans()).toEqual([]);
  });

  test('while Slack stays down the plan keeps its place; it goes out when Slack answers', async () => {
    const job = await plannedJob();
    await queuePlanForSlack(db, job);
    const still = new MemoryChat();
    still.failNext(new TransientError('Slack chat.postMessage failed: 503'));
    expect(await deliver(still)).toEqual({ delivered: 0, pending: 1 });
    expect((await jobs.getJob(db, job.number))?.approval).toBeUndefined();
    const back = new MemoryChat();
    expect(await deliver(back)).toEqual({ delivered: 1, pending: 0 });
    expect((await jobs.getJob(db, job.number))?.approval?.ts).toBe(back.calls[0]!.ts);
  });

  test('a job decided before its plan went out is shown as decided, without buttons', async () => {
    const job = await plannedJob();
    await queuePlanForSlack(db, job);
    await jobs.transition(db, job.number, ['awaiting_approval'], 'queued', { decided_by: 'U0CTO', decided: true });
    const back = new MemoryChat();
    await deliver(back);
    expect(back.calls).toHaveLength(1);
    expect(labels(back.calls[0]!.message)).toEqual([]);
    expect(JSON.stringify(back.calls[0]!.message.blocks)).toContain('Approved by <@U0CTO>');
  });

  test('a decision that crosses the plan on its way (after it was rendered, before it was recorded) updates it at once', async () => {
    const job = await plannedJob();
    await queuePlanForSlack(db, job);
    const recorded = new MemoryChat();
    // Slack takes the plan; at that moment, before Lifeline has recorded where it went, an approver decides (the
    // decision finds no message to update).
    const crossing: ChatPort = {
      post: async (channel, message, threadTs): Promise<PostedMessage> => {
        const posted = await recorded.post(channel, message, threadTs);
        await jobs.transition(db, job.number, ['awaiting_approval'], 'rejected', {
          decided_by: 'U0LEAD',
          decided: true,
          outcome: said`rejected by ${person('U0LEAD')}`,
          finished: true,
        });
        return posted;
      },
      update: (at, message) => recorded.update(at, message),
      postEphemeral: (channel, user, message) => recorded.postEphemeral(channel, user, message),
      respond: (url, message) => recorded.respond(url, message),
    };
    await deliver(crossing);
    expect(recorded.calls.map((c) => c.kind)).toEqual(['post', 'update']);
    const [post, update] = recorded.calls;
    expect(labels(post!.message)).toEqual(['Approve', 'Reject']);
    expect(update!.ts).toBe(post!.ts);
    expect(labels(update!.message)).toEqual([]);
    expect(JSON.stringify(update!.message.blocks)).toContain('rejected');
  });
});
