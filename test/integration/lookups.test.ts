// Read-only /dr lookups end within their timeout: the real answerer, the real CloudWatch Logs
// adapter and SDK client against FakeAws behind a gate that holds FilterLogEvents (a slow log read), and the real
// lookups queue and worker on the real Redis.
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { boundedClientOptions } from '../../src/adapters/aws/client.js';
import { createEcsPort } from '../../src/adapters/aws/ecs.js';
import { createLogsPort } from '../../src/adapters/aws/logs.js';
import { createRdsPort } from '../../src/adapters/aws/rds.js';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { createBackupStore } from '../../src/adapters/backup-store/stores.js';
import { parseConfigText } from '../../src/shared/config.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import {
  createLookupsQueue,
  LOOKUP_CONCURRENCY,
  lookupTrigger,
  startLookupsWorker,
} from '../../src/delivery/jobs/recovery-queue.js';
import { createLogger } from '../../src/shared/log.js';
import type { QueryDeps, QueryRequest, QueryWhat } from '../../src/domain/recovery/queries.js';
import { sectionText } from '../../src/delivery/slack/blocks.js';
import { createInProcessAnswerer, createQueryAnswerer } from '../../src/delivery/slack/recovery-answers.js';
import { AwsGate } from '../support/aws-gate.js';
import {
  createTestDatabase,
  dropQueuePrefix,
  TEST_REDIS_URL,
  uniqueQueuePrefix,
  type TestDatabase,
} from '../support/db.js';
import { FakeAws } from '../support/fake-aws.js';
import { testConfigYaml } from '../support/test-config.js';
import { waitUntil } from '../support/wait.js';

const LOG_GROUP = '/ecs/prod/api';
const TIMEOUT_MS = 600;
const log = createLogger('silent', []);

let fake: FakeAws;
let gate: AwsGate;
let testDb: TestDatabase;
let db: Db;
let deps: QueryDeps;
let chat: MemoryChat;

beforeAll(async () => {
  fake = await new FakeAws().start();
  fake.ecs.setService({ cluster: 'prod', name: 'api', desired: 2 });
  fake.logs.addEvents(LOG_GROUP, [{ at: Date.now() - 60_000, message: 'GET /health 200' }]);
  gate = await new AwsGate(fake.url).start();
  testDb = await createTestDatabase();
  db = createPool(testDb.url, log);
  const file = parseConfigText(
    testConfigYaml({
      environmentsYaml: `  prod:
    database: { url: "postgres://127.0.0.1:5432/prod_unused" }
    backups: { store: "file:///tmp/lifeline-lookups-itest", prefix: prod, retention_days: 7, rpo_minutes: 60 }
    ecs: { cluster: prod, services: [api], log_group: ${LOG_GROUP} }`,
    }),
    { PD_KEY_ONCALL: 'rk-1', PD_KEY_LEAD: 'rk-2', PD_KEY_CTO: 'rk-3', PD_KEY_CEO: 'rk-4' },
  );
  const awsClient = {
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDFAKEAWS', secretAccessKey: 'fake-aws-secret-key' },
  };
  const logs = createLogsPort(
    new CloudWatchLogsClient({ ...boundedClientOptions({}, 20_000), ...awsClient, endpoint: gate.url }),
  );
  deps = { db, file, storeFor: createBackupStore, rds: createRdsPort(), ecs: createEcsPort(), logs };
});

afterAll(async () => {
  await Promise.allSettled([gate?.stop(), fake?.stop(), db?.end()]);
  await testDb?.drop();
});

beforeEach(() => {
  chat = new MemoryChat();
  gate.release();
  gate.arrived = 0;
  gate.abandoned = 0;
  gate.mostHeld = 0;
});

let asked = 0;
function logsLookup(): QueryRequest {
  asked++;
  return {
    kind: 'logs',
    env: 'prod',
    service: 'api',
    sinceMs: 15 * 60_000,
    filter: undefined,
    responseUrl: `https://hooks.example/${asked}`,
    user: 'U0ONCALL',
    channel: 'C0EMERGENCY',
  };
}

function repliesTo(request: QueryRequest): string[] {
  return chat.calls
    .filter((c) => c.kind === 'respond' && c.channel === request.responseUrl)
    .map((c) => c.message.text ?? '');
}

/** The lookup as the API asks it: no response_url, user or channel. */
function logsWhat(request: QueryRequest): QueryWhat {
  if (request.kind !== 'logs') throw new Error('a logs lookup expected');
  return { kind: 'logs', env: request.env, service: request.service, sinceMs: request.sinceMs, filter: request.filter };
}

describe('lookup timeout', () => {
  test('a log read slower than the timeout is stopped: the asker is told, nothing is posted, the AWS call is abandoned', async () => {
    gate.hold('FilterLogEvents');
    const request = logsLookup();
    const started = Date.now();
    await createQueryAnswerer(deps, chat, TIMEOUT_MS)(request);
    const elapsed = Date.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 1_500);
    expect(repliesTo(request)).toEqual([
      expect.stringMatching(/^:x: That lookup took longer than \d+ s and was stopped\./),
    ]);
    await waitUntil('the held FilterLogEvents call to be abandoned', () => gate.abandoned === 1, 5_000);
    // Let anything still running through: the stopped lookup must stay quiet (no thread, no second reply).
    gate.release();
    await new Promise((r) => setTimeout(r, 500));
    expect(chat.calls.filter((c) => c.kind !== 'respond')).toEqual([]);
    expect(repliesTo(request)).toHaveLength(1);
    expect(gate.arrived).toBe(1);
  });

  test('a log read that answers in time gets its lines at the response_url, nothing posted in the channel', async () => {
    const request = logsLookup();
    await createQueryAnswerer(deps, chat, TIMEOUT_MS)(request);
    const replies = chat.calls.filter((c) => c.kind === 'respond' && c.channel === request.responseUrl);
    expect(replies.length).toBeGreaterThanOrEqual(1);
    for (const reply of replies) expect(reply.message.text ?? '').not.toMatch(/took longer|failed/);
    expect(replies.map((c) => JSON.stringify(c.message))).toContainEqual(expect.stringContaining('GET /health 200'));
    expect(chat.calls.filter((c) => c.kind === 'post')).toEqual([]);
  });
});

describe('lookups answered in the API response', () => {
  test('a log read slower than the timeout is stopped there too: an error reply, the AWS call abandoned', async () => {
    gate.hold('FilterLogEvents');
    const what = logsWhat(logsLookup());
    const started = Date.now();
    const reply = await createInProcessAnswerer(deps, TIMEOUT_MS)(what);
    const elapsed = Date.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 1_500);
    expect(reply.failure).toEqual({ kind: 'error' });
    expect(reply.text).toMatch(/^:x: That lookup took longer than \d+ s and was stopped\./);
    await waitUntil('the held FilterLogEvents call to be abandoned', () => gate.abandoned === 1, 5_000);
  });

  test('a log read in time answers with the bounded messages Slack would get, joined; nothing to Slack', async () => {
    const request = logsLookup();
    const what = logsWhat(request);
    const reply = await createInProcessAnswerer(deps, TIMEOUT_MS)(what);
    await createQueryAnswerer(deps, chat, TIMEOUT_MS)(request);
    const inSlack = chat.calls.filter((c) => c.kind === 'respond' && c.channel === request.responseUrl);

    expect(reply.failure).toBeUndefined();
    expect(reply.text).toContain('GET /health 200');
    expect(reply.text).toBe(inSlack.map((c) => sectionText(c.message).text).join('\n'));
  });
});

describe('lookups worker', () => {
  let redis: Redis;
  let prefix: string;
  let queue: Queue<QueryRequest>;
  let worker: Worker<QueryRequest>;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    prefix = uniqueQueuePrefix();
    queue = createLookupsQueue(redis, prefix);
  });

  afterAll(async () => {
    await worker?.close();
    await queue?.close();
    await redis?.quit();
    await dropQueuePrefix(prefix);
  });

  test(`hung log reads hold at most ${LOOKUP_CONCURRENCY} slots, each only until its timeout: 10 of them all get their answer`, async () => {
    gate.hold('FilterLogEvents');
    worker = startLookupsWorker(redis, prefix, createQueryAnswerer(deps, chat, TIMEOUT_MS), log);
    await worker.waitUntilReady();
    const requests = Array.from({ length: 10 }, () => logsLookup());
    const started = Date.now();
    for (const request of requests) await lookupTrigger(queue)(request);

    await waitUntil('an answer to every lookup', () => requests.every((r) => repliesTo(r).length === 1), 15_000);
    const elapsed = Date.now() - started;
    for (const request of requests)
      expect(repliesTo(request)).toEqual([expect.stringMatching(/took longer than .* and was stopped/)]);
    // 10 lookups, 4 at a time, 0.6 s each: three rounds, not ten, and never one held past its timeout.
    expect(gate.mostHeld).toBe(LOOKUP_CONCURRENCY);
    expect(elapsed).toBeGreaterThanOrEqual(3 * TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(10 * TIMEOUT_MS);
    await waitUntil('every held call abandoned', () => gate.abandoned === 10, 5_000);
    expect(gate.arrived).toBe(10);
  });
});
