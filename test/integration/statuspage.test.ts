// The status page follower on the real PostgreSQL and Redis, with its BullMQ queue and worker, talking to the
// Statuspage stand-in through the real client. Slack is the in-memory double.
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createStatuspageClient } from '../../src/adapters/statuspage/client.js';
import { StatuspageStandIn } from '../../src/adapters/statuspage/stand-in.js';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import {
  createEscalationQueue,
  createEscalationTimers,
  type EscalationJob,
} from '../../src/delivery/jobs/escalation-queue.js';
import {
  createStatusPageQueue,
  createStatusPageTriggers,
  startStatusPageWorker,
  type StatusPageJob,
} from '../../src/delivery/jobs/statuspage-queue.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import { StatusPageService } from '../../src/domain/incidents/statuspage.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { UserError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/log.js';
import { createMetrics } from '../../src/shared/metrics.js';
import { createTestDatabase, dropQueuePrefix, uniqueQueuePrefix, type TestDatabase } from '../support/db.js';
import { testConfigYaml, USERS } from '../support/test-config.js';
import { waitUntil } from '../support/wait.js';
import { declareIncident, newRedis } from './harness.js';

const PAGE = 'itestpage';
const KEY = 'sp-itest-key-0123456789';
const COMPONENT = 'cmpstaging';

function fileWith(statuspage: string | undefined): FileConfig {
  const extraYaml = statuspage === undefined ? '' : `statuspage:\n${statuspage}`;
  return parseConfigText(
    testConfigYaml({ steps: [{ after_minutes: 0, notify: 'oncall' }], backupsFolder: '/tmp/x', extraYaml }),
    { PD_KEY_ONCALL: 'rk1-0000', PD_KEY_LEAD: 'rk2-0000', PD_KEY_CTO: 'rk3-0000', PD_KEY_CEO: 'rk4-0000' },
  );
}

const CONFIGURED = fileWith(
  `  page_id: ${PAGE}\n  api_key: ${KEY}\n  components: { staging: ${COMPONENT} }\n  auto_for: [sev1]`,
);

let testDb: TestDatabase;
let db: Db;
let prefix: string;
let standIn: StatuspageStandIn;
const redises: Redis[] = [];
const workers: Worker<StatusPageJob>[] = [];
const queues: Queue<StatusPageJob | EscalationJob>[] = [];
const log = createLogger('silent', []);

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = createPool(testDb.url, log);
  await migrate(db);
  prefix = uniqueQueuePrefix();
  standIn = await new StatuspageStandIn({ pageId: PAGE, apiKey: KEY, components: [COMPONENT] }).start();
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close()));
});

afterAll(async () => {
  await Promise.all(queues.map((q) => q.close()));
  await Promise.all(redises.map((r) => r.quit().catch(() => r.disconnect())));
  await standIn.stop();
  await db.end();
  await testDb.drop();
  await dropQueuePrefix(prefix);
});

function redis(): Redis {
  const r = newRedis();
  redises.push(r);
  return r;
}

/** The services as the wiring builds them, on this file's database, prefix and stand-in. */
function world(file: FileConfig = CONFIGURED) {
  const chat = new MemoryChat();
  const notifier = createSlackIncidentNotifier(chat, file);
  const escalationQueue = createEscalationQueue(redis(), prefix);
  const queue = createStatusPageQueue(redis(), prefix, { attempts: 6, delayMs: 100 });
  queues.push(escalationQueue, queue);
  const port = file.statuspage
    ? createStatuspageClient({ baseUrl: standIn.url, pageId: PAGE, apiKey: KEY, attempts: 1, timeoutMs: 2_000 })
    : undefined;
  const metrics = createMetrics();
  const statusPage: StatusPageService = new StatusPageService({
    db,
    file,
    port,
    triggers: createStatusPageTriggers(queue),
    notifier,
    incidents: { find: (ref) => incidents.find(ref) },
    log,
  });
  const timers = createEscalationTimers(escalationQueue);
  const incidents: IncidentService = new IncidentService({
    db,
    file,
    notifier,
    timers,
    metrics,
    log,
    followers: [statusPage],
  });
  const startWorker = () => {
    const worker = startStatusPageWorker(redis(), prefix, statusPage, log);
    workers.push(worker);
    return worker;
  };
  return { chat, queue, statusPage, incidents, startWorker };
}

type World = ReturnType<typeof world>;

function threadTexts(w: World, cardTs: string | undefined): string[] {
  return w.chat.calls.filter((c) => c.kind === 'post' && c.threadTs === cardTs).map((c) => c.message.text);
}

async function timeline(number: number): Promise<{ kind: string; detail: string }[]> {
  const { rows } = await db.query<{ kind: string; detail: string }>(
    `SELECT kind, detail FROM incident_events WHERE incident = $1 AND kind LIKE 'statuspage%' ORDER BY id`,
    [number],
  );
  return rows;
}

async function callRows(number: number): Promise<{ action: string; done: boolean; gave_up: boolean }[]> {
  const { rows } = await db.query<{ action: string; done: boolean; gave_up: boolean }>(
    `SELECT action, done_at IS NOT NULL AS done, gave_up_at IS NOT NULL AS gave_up FROM statuspage_calls
      WHERE incident = $1 ORDER BY id`,
    [number],
  );
  return rows;
}

function incidentsNamed(title: string) {
  return standIn.incidents.filter((i) => i.name === title);
}

describe('status page follower', () => {
  it('auto_for creates one status page incident even when its job runs twice, and puts its link on the card', async () => {
    const w = world();
    const title = 'Database unreachable (auto once)';
    const incident = await declareIncident(w, 'sev1', title);
    // The job is queued; two workers' runs race for it, and then the queued job itself runs too.
    await Promise.all([
      w.statusPage.drain(incident.number, { finalAttempt: false }),
      w.statusPage.drain(incident.number, { finalAttempt: false }),
    ]);
    w.startWorker();
    await waitUntil('the queued job to run', async () => {
      const counts = await w.queue.getJobCounts('waiting', 'active', 'delayed');
      return Object.values(counts).every((n) => n === 0);
    });
    await w.statusPage.drain(incident.number, { finalAttempt: false });
    // Telling the follower again (a retried declaration) owes nothing new.
    await w.statusPage.declared(incident);
    await w.statusPage.drain(incident.number, { finalAttempt: false });

    expect(incidentsNamed(title)).toHaveLength(1);
    const created = incidentsNamed(title)[0]!;
    expect(created.status).toBe('investigating');
    expect(created.components).toEqual({ [COMPONENT]: 'major_outage' });
    expect(standIn.calls.filter((c) => c.method === 'POST' && c.status === 201)).toHaveLength(1);
    expect(await callRows(incident.number)).toEqual([{ action: 'declare', done: true, gave_up: false }]);

    const row = (await w.incidents.find({ number: incident.number })).statusPage;
    expect(row).toEqual({ id: created.id, link: created.shortlink, status: 'investigating' });
    const cardUpdates = w.chat.calls.filter((c) => c.kind === 'update' && c.ts === incident.card?.ts);
    expect(JSON.stringify(cardUpdates.at(-1)?.message)).toContain(created.shortlink);
    expect(threadTexts(w, incident.card?.ts)).toEqual([expect.stringContaining('status page incident created')]);
    expect(await timeline(incident.number)).toEqual([
      { kind: 'statuspage', detail: `created (investigating) ${created.shortlink}` },
    ]);
  });

  it('a severity not in auto_for creates nothing at declaration', async () => {
    const w = world();
    const title = 'Reports are slow (sev2)';
    const incident = await declareIncident(w, 'sev2', title);
    await w.statusPage.drain(incident.number, { finalAttempt: false });
    expect(incidentsNamed(title)).toHaveLength(0);
    expect(await callRows(incident.number)).toEqual([]);
  });

  it('a 500 on create is reported in the thread within 30 s and retried until it succeeds', async () => {
    const w = world();
    w.startWorker();
    const title = 'Payments failing (500 on create)';
    standIn.failNext(3, 500);
    const started = Date.now();
    const incident = await declareIncident(w, 'sev1', title);
    const failure = await waitUntil('the failure in the thread', () =>
      w.chat.calls.find((c) => c.threadTs === incident.card?.ts && c.message.text.includes('failed')),
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(failure.message.text).toContain('Statuspage answered 500');
    expect(failure.message.text).toContain('keeps retrying');

    await waitUntil('the status page incident', () => incidentsNamed(title).length === 1, 15_000);
    await waitUntil('the success in the thread', () =>
      threadTexts(w, incident.card?.ts).some((t) => t.includes('status page incident created')),
    );
    expect(incidentsNamed(title)).toHaveLength(1);
    // One failure note for the call, however many retries; then the success, saying it took retries.
    expect(threadTexts(w, incident.card?.ts)).toEqual([
      expect.stringContaining('failed'),
      expect.stringContaining('after 3 failed tries'),
    ]);
    const kinds = (await timeline(incident.number)).map((e) => e.kind);
    expect(kinds).toEqual(['statuspage_failed', 'statuspage_failed', 'statuspage_failed', 'statuspage']);
    expect(await callRows(incident.number)).toEqual([{ action: 'declare', done: true, gave_up: false }]);
  });

  it('resolving the incident resolves the status page incident and sets its components back to operational', async () => {
    const w = world();
    w.startWorker();
    const title = 'Search down (resolve)';
    const incident = await declareIncident(w, 'sev1', title);
    await waitUntil('the status page incident', () => incidentsNamed(title).length === 1);
    expect(standIn.components[COMPONENT]).toBe('major_outage');
    await waitUntil('its record', async () => (await w.incidents.find({ number: incident.number })).statusPage);

    await w.incidents.resolve({ number: incident.number }, USERS.oncall, 'index rebuilt');
    const created = incidentsNamed(title)[0]!;
    await waitUntil('the resolve', () => created.status === 'resolved');
    expect(created.components).toEqual({ [COMPONENT]: 'operational' });
    expect(standIn.components[COMPONENT]).toBe('operational');
    await waitUntil('the resolve recorded', async () => (await callRows(incident.number)).every((c) => c.done));
    expect((await w.incidents.find({ number: incident.number })).statusPage?.status).toBe('resolved');
    expect((await timeline(incident.number)).map((e) => e.detail)).toEqual([
      `created (investigating) ${created.shortlink}`,
      `resolved; components operational ${created.shortlink}`,
    ]);
  });

  it('/incident statuspage creates with the outage of the severity, then updates; resolved sets components operational', async () => {
    const w = world();
    w.startWorker();
    const title = 'Login slow (manual)';
    const incident = await declareIncident(w, 'sev2', title);
    await w.statusPage.post({ number: incident.number }, USERS.oncall, 'identified', 'We found the cause.');
    await waitUntil('the creation', () => incidentsNamed(title).length === 1);
    const created = incidentsNamed(title)[0]!;
    expect(created.components).toEqual({ [COMPONENT]: 'partial_outage' });
    expect(created.status).toBe('identified');
    await w.statusPage.post({ number: incident.number }, USERS.lead, 'monitoring', 'A fix is out.');
    await w.statusPage.post({ number: incident.number }, USERS.lead, 'resolved', 'All good.');
    await waitUntil('the updates', () => created.updates.length === 3);
    expect(created.updates.map((u) => [u.status, u.body])).toEqual([
      ['identified', 'We found the cause.'],
      ['monitoring', 'A fix is out.'],
      ['resolved', 'All good.'],
    ]);
    expect(created.components).toEqual({ [COMPONENT]: 'operational' });
    expect(incidentsNamed(title)).toHaveLength(1);
  });

  it('an incident resolved before its status page incident could be created gets none', async () => {
    const w = world();
    const title = 'Blip (resolved before create)';
    standIn.failNext(1, 500);
    const incident = await declareIncident(w, 'sev1', title);
    await expect(w.statusPage.drain(incident.number, { finalAttempt: false })).rejects.toThrow(/500/);
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
    await w.statusPage.drain(incident.number, { finalAttempt: false });
    expect(incidentsNamed(title)).toHaveLength(0);
    expect(await callRows(incident.number)).toEqual([
      { action: 'declare', done: true, gave_up: false },
      { action: 'resolve', done: true, gave_up: false },
    ]);
  });

  it('a refusal from Statuspage (4xx) is given up at once and said in the thread', async () => {
    const w = world();
    const title = 'Refused (422)';
    const incident = await declareIncident(w, 'sev2', title);
    // The page's key was revoked: every call is a 401.
    const revoked = new StatusPageService({
      db,
      file: CONFIGURED,
      port: createStatuspageClient({ baseUrl: standIn.url, pageId: PAGE, apiKey: 'revoked-key' }),
      triggers: { trigger: async () => undefined },
      notifier: createSlackIncidentNotifier(w.chat, CONFIGURED),
      incidents: w.incidents,
      log,
    });
    await revoked.post({ number: incident.number }, USERS.oncall, 'investigating', 'Looking.');
    await revoked.drain(incident.number, { finalAttempt: false });
    expect(await callRows(incident.number)).toEqual([{ action: 'post', done: false, gave_up: true }]);
    expect(threadTexts(w, incident.card?.ts)).toEqual([
      expect.stringMatching(/failed: Statuspage answered 401: Could not authenticate\. Lifeline has given up on it\./),
    ]);
    expect(threadTexts(w, incident.card?.ts).join()).not.toContain('revoked-key');
  });

  it('the reconciler gives an owed call its job again after Redis lost it', async () => {
    const w = world();
    const title = 'Queue lost (reconcile)';
    const incident = await declareIncident(w, 'sev1', title);
    await w.queue.obliterate({ force: true });
    w.startWorker();
    expect(await w.statusPage.reconcile()).toBeGreaterThanOrEqual(1);
    await waitUntil('the status page incident', () => incidentsNamed(title).length === 1);
    await waitUntil('nothing owed', async () => (await callRows(incident.number)).every((c) => c.done));
    expect(incidentsNamed(title)).toHaveLength(1);
  });

  describe('refusals change nothing', () => {
    it('non-responder, unknown incident, a resolved incident, and no statuspage configured', async () => {
      const w = world();
      const incident = await declareIncident(w, 'sev3', 'Refusals');
      const before = standIn.calls.length;
      const refusal = async (work: Promise<unknown>) => {
        const err = await work.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(UserError);
        return err as UserError;
      };
      expect((await refusal(w.statusPage.post({ number: incident.number }, USERS.other, 'identified', 'x'))).code).toBe(
        'not_permitted',
      );
      expect((await refusal(w.statusPage.post({ number: 99_999 }, USERS.oncall, 'identified', 'x'))).code).toBe(
        'unknown_incident',
      );
      await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
      expect(
        (await refusal(w.statusPage.post({ number: incident.number }, USERS.oncall, 'monitoring', 'x'))).code,
      ).toBe('incident_resolved');
      const bare = world(fileWith(undefined));
      expect(
        (await refusal(bare.statusPage.post({ number: incident.number }, USERS.oncall, 'resolved', 'x'))).code,
      ).toBe('not_available');
      expect(await callRows(incident.number)).toEqual([]);
      expect(standIn.calls.length).toBe(before);
    });
  });
});
