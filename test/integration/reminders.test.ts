// Update reminders on the real PostgreSQL and Redis, with their BullMQ queue and workers. Periods are fractional
// minutes (0.02 = 1.2 s). Slack is the in-memory double.
import { describe, expect, it } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { createEscalationQueue, createEscalationTimers } from '../../src/delivery/jobs/escalation-queue.js';
import {
  createReminderTimers,
  createRemindersQueue,
  startRemindersWorker,
} from '../../src/delivery/jobs/reminders-queue.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import { SYSTEM_ACTOR } from '../../src/domain/access/permissions.js';
import { claimReminder } from '../../src/domain/incidents/reminder-store.js';
import { ReminderService } from '../../src/domain/incidents/reminders.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import { parseConfigText, type FileConfig, type Severity } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/log.js';
import { createMetrics } from '../../src/shared/metrics.js';
import { testConfigYaml, USERS } from '../support/test-config.js';
import { waitUntil } from '../support/wait.js';
import { EMERGENCY, useBench } from './harness.js';

/** sev1 every 1.2 s, sev2 every 2.4 s, sev3 and sev4 never. */
const PERIOD_MS = { sev1: 1_200, sev2: 2_400 };

const FILE: FileConfig = parseConfigText(
  testConfigYaml({
    steps: [{ after_minutes: 0, notify: 'oncall' }],
    backupsFolder: '/tmp/x',
    extraYaml: 'incidents:\n  update_every_minutes: { sev1: 0.02, sev2: 0.04 }',
  }),
  { PD_KEY_ONCALL: 'rk1-0000', PD_KEY_LEAD: 'rk2-0000', PD_KEY_CTO: 'rk3-0000', PD_KEY_CEO: 'rk4-0000' },
);

const log = createLogger('silent', []);
const bench = useBench();
function world(options: { leaseMs?: number } = {}) {
  const chat = new MemoryChat();
  const notifier = createSlackIncidentNotifier(chat, FILE);
  const escalationQueue = bench.queue(createEscalationQueue(bench.redis(), bench.prefix));
  const queue = bench.queue(createRemindersQueue(bench.redis(), bench.prefix));
  const timers = createReminderTimers(queue);
  const reminderService = (): ReminderService =>
    new ReminderService({ db: bench.db, file: FILE, notifier, timers, log, ...options });
  const reminders = reminderService();
  const incidents = new IncidentService({
    db: bench.db,
    file: FILE,
    notifier,
    timers: createEscalationTimers(escalationQueue),
    metrics: createMetrics(),
    log,
    followers: [reminders],
  });
  async function startWorker(): Promise<ReminderService> {
    const service = reminderService();
    const worker = startRemindersWorker(bench.redis(), bench.prefix, service, log);
    await worker.waitUntilReady();
    bench.worker(worker);
    return service;
  }
  /** Reminder notes of one incident, with when each was posted. */
  const posted: { incident: number; at: number; text: string }[] = [];
  const post = chat.post.bind(chat);
  chat.post = async (channel, message, threadTs) => {
    const match = /^:alarm_clock: INC-(\d+):/.exec(message.text);
    if (match) posted.push({ incident: Number(match[1]), at: Date.now(), text: message.text });
    return post(channel, message, threadTs);
  };
  const remindersOf = (incident: number) => posted.filter((p) => p.incident === incident);
  async function declare(severity: Severity, actor: string = USERS.declarer) {
    const { incident } = await incidents.declare({
      severity,
      title: `reminders ${severity}`,
      actor,
      channel: EMERGENCY,
    });
    return incident;
  }
  return { chat, queue, incidents, reminders, startWorker, remindersOf, declare };
}

async function sentCount(incident: number): Promise<number> {
  const { rows } = await bench.db.query<{ n: number }>(
    'SELECT reminders_sent AS n FROM incident_reminders WHERE incident = $1',
    [incident],
  );
  return rows[0]?.n ?? 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('update reminders', () => {
  it('reminds in the thread after the period, mentioning the declarer, then again each period; resolve stops it', async () => {
    const w = world();
    await w.startWorker();
    const declaredAt = Date.now();
    const incident = await w.declare('sev1');

    const first = await waitUntil('the first reminder', () => w.remindersOf(incident.number)[0], 10_000);
    expect(first.at - declaredAt).toBeGreaterThanOrEqual(PERIOD_MS.sev1 - 100);
    expect(first.text).toContain(`<@${USERS.declarer}>`);
    expect(first.text).toMatch(/no update for \d+ s \(since it was declared\)/);
    const note = w.chat.calls.find((c) => c.message.text === first.text);
    expect(note?.threadTs).toBe(incident.card?.ts);

    await waitUntil('the second reminder', () => w.remindersOf(incident.number)[1], 10_000);
    const [a, b] = w.remindersOf(incident.number);
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(PERIOD_MS.sev1 - 100);
    expect(b!.text).toMatch(/no update for \d+ s/);

    await w.incidents.resolve({ number: incident.number }, USERS.oncall, 'fixed');
    const afterResolve = w.remindersOf(incident.number).length;
    await sleep(PERIOD_MS.sev1 * 2.5);
    // One that was already being posted when the resolve landed may still arrive; nothing after it.
    expect(w.remindersOf(incident.number).length).toBeLessThanOrEqual(afterResolve + 1);
    const { rows } = await bench.db.query('SELECT due_at FROM incident_reminders WHERE incident = $1', [
      incident.number,
    ]);
    expect(rows[0].due_at).toBeNull();
  });

  it('mentions whoever acknowledged the incident rather than its declarer', async () => {
    const w = world();
    await w.startWorker();
    const incident = await w.declare('sev1');
    await w.incidents.acknowledge({ number: incident.number }, USERS.oncall);
    const first = await waitUntil('the reminder', () => w.remindersOf(incident.number)[0], 10_000);
    expect(first.text).toContain(`<@${USERS.oncall}>`);
    expect(first.text).not.toContain(`<@${USERS.declarer}>`);
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
  });

  it('mentions the on-call role when Lifeline declared it and nobody acknowledged', async () => {
    const w = world();
    await w.startWorker();
    const incident = await w.declare('sev1', SYSTEM_ACTOR);
    const first = await waitUntil('the reminder', () => w.remindersOf(incident.number)[0], 10_000);
    expect(first.text).toContain(`<@${USERS.oncall}>`);
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
  });

  it('an update resets the period, and the reminder counts from that update', async () => {
    const w = world();
    await w.startWorker();
    const incident = await w.declare('sev2');
    await sleep(PERIOD_MS.sev2 * 0.6);
    const updatedAt = Date.now();
    await w.incidents.update({ number: incident.number }, USERS.lead, 'rolled back the deploy');
    // Past the declaration's period: nothing, because the update moved it.
    await sleep(PERIOD_MS.sev2 * 0.6);
    expect(w.remindersOf(incident.number)).toHaveLength(0);
    const first = await waitUntil('the reminder after the update', () => w.remindersOf(incident.number)[0], 10_000);
    expect(first.at - updatedAt).toBeGreaterThanOrEqual(PERIOD_MS.sev2 - 100);
    expect(first.text).toContain('since the latest one');
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
  });

  it('a severity without update_every_minutes gets no reminders', async () => {
    const w = world();
    await w.startWorker();
    const incident = await w.declare('sev3');
    await sleep(1_500);
    expect(w.remindersOf(incident.number)).toHaveLength(0);
    const { rows } = await bench.db.query('SELECT 1 FROM incident_reminders WHERE incident = $1', [incident.number]);
    expect(rows).toHaveLength(0);
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
  });

  it('a timer that goes off before its due time (clocks apart) does not remind early, and one reminder comes when due', async () => {
    const w = world();
    await w.startWorker();
    const declaredAt = Date.now();
    const incident = await w.declare('sev1');
    const { rows } = await bench.db.query<{ generation: number }>(
      'SELECT generation FROM incident_reminders WHERE incident = $1',
      [incident.number],
    );
    // A second alarm for the same timer, going off now, 1.2 s early.
    await createReminderTimers(w.queue).schedule([
      { incident: incident.number, generation: rows[0]!.generation, dueAt: new Date() },
    ]);
    const first = await waitUntil('the reminder', () => w.remindersOf(incident.number)[0], 10_000);
    expect(first.at - declaredAt).toBeGreaterThanOrEqual(PERIOD_MS.sev1 - 100);
    await sleep(PERIOD_MS.sev1 * 0.5);
    expect(w.remindersOf(incident.number)).toHaveLength(1);
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
  });

  it('two workers, timers lost from Redis and re-added by both reconcilers: exactly one reminder per period', async () => {
    const w = world();
    const [one, two] = [await w.startWorker(), await w.startWorker()];
    const incident = await w.declare('sev1');
    const until = Date.now() + PERIOD_MS.sev1 * 4.5;
    let lost = 0;
    while (Date.now() < until) {
      // Redis loses the delayed timer now and then; both replicas' reconcilers put it back at once.
      if (Math.random() < 0.3) {
        const delayed = await w.queue.getJobs(['delayed']);
        for (const job of delayed)
          if (
            job &&
            (await job.remove().then(
              () => true,
              () => false,
            ))
          )
            lost++;
      }
      await Promise.all([one.reconcile(), two.reconcile()]);
      await sleep(100);
    }
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
    const notes = w.remindersOf(incident.number);
    expect(lost).toBeGreaterThan(0);
    expect(notes.length).toBeGreaterThanOrEqual(2);
    expect(notes.length).toBeLessThanOrEqual(4);
    expect(await sentCount(incident.number)).toBe(notes.length);
    for (let i = 1; i < notes.length; i++) {
      expect(notes[i]!.at - notes[i - 1]!.at).toBeGreaterThanOrEqual(PERIOD_MS.sev1 - 100);
    }
  });

  it('a worker that claimed the reminder and died: the lease runs out, the reconciler re-adds the timer, one reminder', async () => {
    const w = world({ leaseMs: 1_500 });
    const incident = await w.declare('sev1');
    await sleep(PERIOD_MS.sev1 + 50);
    // The dead worker: it took the lease and its job, and never posted.
    const { rows } = await bench.db.query<{ generation: number }>(
      'SELECT generation FROM incident_reminders WHERE incident = $1',
      [incident.number],
    );
    const claim = await claimReminder(bench.db, incident.number, rows[0]!.generation, 1_500, 50);
    expect(claim.kind).toBe('claimed');
    await w.queue.obliterate({ force: true });

    const survivor = await w.startWorker();
    await survivor.reconcile();
    const first = await waitUntil(
      'the reminder after the lease ran out',
      () => w.remindersOf(incident.number)[0],
      15_000,
    );
    expect(first.text).toContain(`<@${USERS.declarer}>`);
    await sleep(500);
    expect(w.remindersOf(incident.number)).toHaveLength(1);
    expect(await sentCount(incident.number)).toBe(1);
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
  });
});
