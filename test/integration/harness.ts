// Shared wiring for the integration tests: the real PostgreSQL and Redis, the real services and BullMQ queue/worker,
// and in-memory Slack/PagerDuty doubles. Not a test file itself (no .test.ts suffix).
import { Redis } from 'ioredis';
import type { Queue, Worker } from 'bullmq';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import type { PagerEvent } from '../../src/adapters/pagerduty/port.js';
import { MemoryPager } from '../../src/adapters/pagerduty/memory.js';
import { parseConfigText, type FileConfig, type Severity } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { EscalationService } from '../../src/domain/incidents/escalation.js';
import type { EscalationTimers } from '../../src/domain/incidents/timers.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import type { Incident } from '../../src/domain/incidents/model.js';
import {
  createEscalationQueue,
  createEscalationTimers,
  startEscalationWorker,
  type EscalationJob,
} from '../../src/delivery/jobs/escalation-queue.js';
import { createLogger, type Logger } from '../../src/shared/log.js';
import { createMetrics, type Metrics } from '../../src/shared/metrics.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import {
  createTestDatabase,
  dropQueuePrefix,
  TEST_REDIS_URL,
  uniqueQueuePrefix,
  type TestDatabase,
} from '../support/db.js';
import { SHORT_LADDER, testConfigYaml, USERS } from '../support/test-config.js';
import { waitUntil } from '../support/wait.js';

export const EMERGENCY = 'C0EMERGENCY';
export { SHORT_LADDER, USERS };
export const ROUTING = {
  oncall: 'rk-oncall-itest-000000',
  engineering_lead: 'rk-lead-itest-0000000',
  cto: 'rk-cto-itest-00000000',
  ceo: 'rk-ceo-itest-00000000',
} as const;
export type RoleName = keyof typeof ROUTING;

export interface LadderStep {
  readonly after_minutes: number;
  readonly notify: RoleName;
}

/** A FileConfig built by the real parser, with `${PD_KEY_*}` interpolated from an env map as in production. */
export function testFileConfig(steps: readonly LadderStep[]): FileConfig {
  return parseConfigText(testConfigYaml({ steps, backupsFolder: '/tmp/lifeline-itest-backups' }), {
    PD_KEY_ONCALL: ROUTING.oncall,
    PD_KEY_LEAD: ROUTING.engineering_lead,
    PD_KEY_CTO: ROUTING.cto,
    PD_KEY_CEO: ROUTING.ceo,
  });
}

/** Declares an incident in #emergency as the declarer. */
export async function declareIncident(
  h: Pick<Harness, 'incidents'>,
  severity: Severity,
  title: string,
): Promise<Incident> {
  return (await h.incidents.declare({ severity, title, actor: USERS.declarer, channel: EMERGENCY })).incident;
}

export function dedupKeyOf(incident: number, role: RoleName): string {
  return `lifeline-INC-${incident}-${role}`;
}

/** Sends matching `match` wait here until the test releases them, with success or with a failure. */
export class Gate {
  /** Sends currently waiting at this gate. */
  held = 0;
  released = false;
  private open!: (failure: Error | undefined) => void;
  readonly opened: Promise<Error | undefined>;

  constructor(readonly match: (event: PagerEvent) => boolean) {
    this.opened = new Promise((resolve) => (this.open = resolve));
  }

  release(failure?: Error): void {
    this.released = true;
    this.open(failure);
  }
}

/**
 * MemoryPager plus the time each accepted event arrived, and gates that hold sends "in flight" (a slow
 * PagerDuty) until the test releases them, with success or with a failure.
 */
export class TestPager extends MemoryPager {
  readonly acceptedAt: number[] = [];
  private gates: Gate[] = [];

  /** Sends currently waiting at any gate. */
  get held(): number {
    return this.gates.reduce((sum, g) => sum + g.held, 0);
  }

  /** Holds every later send that matches (all of them by default) until the gate is released. */
  hold(match: (event: PagerEvent) => boolean = () => true): Gate {
    this.prune();
    const gate = new Gate(match);
    this.gates.push(gate);
    return gate;
  }

  /** Releases every gate. */
  release(failure?: Error): void {
    const gates = this.gates;
    this.gates = [];
    for (const gate of gates) gate.release(failure);
  }

  /** Forgets released gates (call between tests). */
  private prune(): void {
    this.gates = this.gates.filter((g) => !g.released);
  }

  override async send(event: PagerEvent): Promise<void> {
    const gate = this.gates.find((g) => !g.released && g.match(event));
    if (gate) {
      gate.held++;
      const failure = await gate.opened;
      gate.held--;
      if (failure) throw failure;
    }
    await super.send(event);
    this.acceptedAt.push(Date.now());
  }

  /** Accepted events of one incident, in order. */
  of(incident: number): PagerEvent[] {
    return this.events.filter((e) => e.dedupKey.startsWith(`lifeline-INC-${incident}-`));
  }

  /** `action:role` strings of one incident's accepted events, in order. */
  summary(incident: number): string[] {
    return this.of(incident).map((e) => `${e.action}:${e.dedupKey.slice(`lifeline-INC-${incident}-`.length)}`);
  }
}

export interface WorkerHandle {
  readonly worker: Worker<EscalationJob>;
  readonly escalation: EscalationService;
  readonly redis: Redis;
  close(): Promise<void>;
}

export interface Harness {
  readonly testDb: TestDatabase;
  readonly prefix: string;
  readonly db: Db;
  readonly file: FileConfig;
  readonly chat: MemoryChat;
  readonly pager: TestPager;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly redis: Redis;
  readonly queue: Queue<EscalationJob>;
  readonly timers: EscalationTimers;
  readonly incidents: IncidentService;
  /** An EscalationService not attached to any worker: for direct fireStep()/reconcile() calls. */
  readonly escalation: EscalationService;
  /** Starts a worker on the harness prefix with its own Redis connection (and, if asked, its own pg pool). */
  startWorker(options?: { ownPool?: boolean }): Promise<WorkerHandle>;
  /** Closes every worker started so far. */
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

export function newRedis(): Redis {
  return new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
}

export async function createHarness(steps: readonly LadderStep[]): Promise<Harness> {
  const testDb = await createTestDatabase();
  const prefix = uniqueQueuePrefix();
  const log = createLogger('silent', []);
  const metrics = createMetrics();
  const db = createPool(testDb.url, log);
  await migrate(db);
  const file = testFileConfig(steps);
  const chat = new MemoryChat();
  const pager = new TestPager();
  const notifier = createSlackIncidentNotifier(chat, file);
  const redis = newRedis();
  const queue = createEscalationQueue(redis, prefix);
  await queue.waitUntilReady();
  const timers = createEscalationTimers(queue);
  const incidents = new IncidentService({ db, file, notifier, timers, metrics, log });
  const escalation = new EscalationService({ db, file, pager, notifier, timers, metrics, log });
  const workers = new Set<WorkerHandle>();

  async function startWorker(options: { ownPool?: boolean } = {}): Promise<WorkerHandle> {
    const workerRedis = newRedis();
    const pool = options.ownPool ? createPool(testDb.url, log) : db;
    const service = options.ownPool
      ? new EscalationService({ db: pool, file, pager, notifier, timers, metrics, log })
      : new EscalationService({ db, file, pager, notifier, timers, metrics, log });
    const worker = startEscalationWorker(workerRedis, prefix, service, log);
    await worker.waitUntilReady();
    const handle: WorkerHandle = {
      worker,
      escalation: service,
      redis: workerRedis,
      async close() {
        workers.delete(handle);
        await worker.close();
        await workerRedis.quit().catch(() => workerRedis.disconnect());
        if (pool !== db) await pool.end();
      },
    };
    workers.add(handle);
    return handle;
  }

  async function stopWorkers(): Promise<void> {
    await Promise.all([...workers].map((w) => w.close()));
  }

  return {
    testDb,
    prefix,
    db,
    file,
    chat,
    pager,
    log,
    metrics,
    redis,
    queue,
    timers,
    incidents,
    escalation,
    startWorker,
    stopWorkers,
    async close() {
      await stopWorkers();
      await queue.close();
      await redis.quit().catch(() => redis.disconnect());
      await db.end();
      await testDb.drop();
      await dropQueuePrefix(prefix);
    },
  };
}

/** No job waiting, delayed, running or being retried in the escalation queue. */
export async function queueIdle(queue: Queue<EscalationJob>): Promise<boolean> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
  return Object.values(counts).every((n) => n === 0);
}

/** Waits until `at` has passed (plus `marginMs`) and the queue has nothing left to do. */
export async function waitPastAndIdle(
  queue: Queue<EscalationJob>,
  at: Date | number,
  marginMs = 300,
  timeoutMs = 15_000,
): Promise<void> {
  const until = (typeof at === 'number' ? at : at.getTime()) + marginMs;
  await waitUntil(
    'the due time to pass and the queue to drain',
    async () => Date.now() >= until && (await queueIdle(queue)),
    timeoutMs,
  );
}

export interface DbStep {
  readonly id: number;
  readonly generation: number;
  readonly stepIndex: number;
  readonly role: string;
  readonly dueAt: Date;
  readonly state: string;
  readonly pagedAt: Date | null;
  readonly mentionedAt: Date | null;
  readonly claimedUntil: Date | null;
}

export async function stepsOf(db: Db, incident: number): Promise<DbStep[]> {
  const { rows } = await db.query<{
    id: string;
    generation: number;
    step_index: number;
    role: string;
    due_at: Date;
    state: string;
    paged_at: Date | null;
    mentioned_at: Date | null;
    claimed_until: Date | null;
  }>('SELECT * FROM escalation_steps WHERE incident = $1 ORDER BY generation, step_index', [incident]);
  return rows.map((r) => ({
    id: Number(r.id),
    generation: r.generation,
    stepIndex: r.step_index,
    role: r.role,
    dueAt: r.due_at,
    state: r.state,
    pagedAt: r.paged_at,
    mentionedAt: r.mentioned_at,
    claimedUntil: r.claimed_until,
  }));
}

export async function timelineKinds(db: Db, incident: number): Promise<string[]> {
  const { rows } = await db.query<{ kind: string }>(
    'SELECT kind FROM incident_events WHERE incident = $1 ORDER BY id',
    [incident],
  );
  return rows.map((r) => r.kind);
}

export async function countRows(
  db: Db,
  table: 'incident_events' | 'escalation_steps' | 'page_keys',
  incident: number,
): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE incident = $1`, [incident]);
  return Number(rows[0]!.n);
}

/** Thread notes posted by the notifier that page a role of this incident (":pager: INC-n: paging *role*"). */
export function pagedNotes(chat: MemoryChat, incident: number, role?: RoleName): string[] {
  return chat.calls
    .filter((c) => c.kind === 'post' && c.message.text.startsWith(`:pager: INC-${incident}: paging *${role ?? ''}`))
    .map((c) => c.message.text);
}

/** Resolves every open incident so that tests relying on "the only open incident" start from a known state. */
export async function resolveAllOpen(h: Harness): Promise<void> {
  for (const incident of (await h.incidents.listOpen()).incidents) {
    await h.incidents.resolve({ number: incident.number }, USERS.oncall, 'test cleanup');
  }
}

/** Follow-up jobs (acknowledge/resolve) of one incident still waiting, delayed or running in the queue. */
export async function pendingFollowUps(queue: Queue<EscalationJob>, incident: number): Promise<number> {
  const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized']);
  return jobs.filter((j) => j?.data.kind === 'follow-up' && j.data.incident === incident).length;
}

/** A test file's own database (migrated) and queue prefix, with the Redis connections, queues and workers it opens. */
export interface Bench {
  readonly db: Db;
  readonly prefix: string;
  readonly log: Logger;
  /** A new Redis connection, closed after the file. */
  redis(): Redis;
  /** A queue closed after the file. */
  queue<Q extends Pick<Queue, 'close'>>(queue: Q): Q;
  /** A worker closed after each test. */
  worker<W extends Pick<Worker, 'close'>>(worker: W): W;
}

/** Registers the hooks that open a Bench before the file's tests and close it after them. */
export function useBench(): Bench {
  const log = createLogger('silent', []);
  const redises: Redis[] = [];
  const queues: Pick<Queue, 'close'>[] = [];
  const workers: Pick<Worker, 'close'>[] = [];
  let testDb: TestDatabase | undefined;
  let db: Db | undefined;
  let prefix: string | undefined;
  beforeAll(async () => {
    testDb = await createTestDatabase();
    db = createPool(testDb.url, log);
    await migrate(db);
    prefix = uniqueQueuePrefix();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close()));
  });
  afterAll(async () => {
    await Promise.all(queues.map((q) => q.close()));
    await Promise.all(redises.map((r) => r.quit().catch(() => r.disconnect())));
    await db?.end();
    await testDb?.drop();
    if (prefix) await dropQueuePrefix(prefix);
  });
  const opened = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the bench's ${what} is opened in beforeAll`);
    return value;
  };
  return {
    get db() {
      return opened(db, 'database');
    },
    get prefix() {
      return opened(prefix, 'queue prefix');
    },
    log,
    redis() {
      const r = newRedis();
      redises.push(r);
      return r;
    },
    queue(queue) {
      queues.push(queue);
      return queue;
    },
    worker(worker) {
      workers.push(worker);
      return worker;
    },
  };
}
