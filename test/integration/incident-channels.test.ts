// Incident channels on the real PostgreSQL and Redis: the follower, its BullMQ queue and worker, and the escalation
// worker that pages; Slack is the in-memory double (its channel calls keep Slack's rules: name_taken, is_archived...).
import { describe, expect, it } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import {
  createChannelsQueue,
  createChannelTriggers,
  startChannelsWorker,
} from '../../src/delivery/jobs/channels-queue.js';
import {
  createEscalationQueue,
  createEscalationTimers,
  startEscalationWorker,
} from '../../src/delivery/jobs/escalation-queue.js';
import { incidentCard } from '../../src/delivery/slack/incident-card.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import { channelName } from '../../src/domain/incidents/channel-name.js';
import { SYSTEM_ACTOR } from '../../src/domain/access/permissions.js';
import { ChannelService } from '../../src/domain/incidents/channels.js';
import { EscalationService } from '../../src/domain/incidents/escalation.js';
import type { Incident } from '../../src/domain/incidents/model.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { createMetrics } from '../../src/shared/metrics.js';
import { testConfigYaml, USERS } from '../support/test-config.js';
import { waitUntil } from '../support/wait.js';
import { declareIncident, EMERGENCY, TestPager, useBench } from './harness.js';

/** 1.8 s. */
const ARCHIVE_HOURS = 0.0005;

function fileWith(channels: string, steps = [{ after_minutes: 0, notify: 'oncall' }]): FileConfig {
  return parseConfigText(
    testConfigYaml({ steps, backupsFolder: '/tmp/x', extraYaml: `incidents:\n  channels: ${channels}` }),
    { PD_KEY_ONCALL: 'rk1-0000', PD_KEY_LEAD: 'rk2-0000', PD_KEY_CTO: 'rk3-0000', PD_KEY_CEO: 'rk4-0000' },
  );
}

const ENABLED = fileWith(`{ enabled: true, archive_after_hours: ${ARCHIVE_HOURS} }`);

const bench = useBench();
const { log } = bench;
let worlds = 0;

/** The services as the wiring builds them, with their own queue prefix (a test may empty its queues). */
function world(file: FileConfig = ENABLED) {
  const ownPrefix = `${bench.prefix}-${++worlds}`;
  const chat = new MemoryChat();
  const pager = new TestPager();
  const notifier = createSlackIncidentNotifier(chat, file);
  const metrics = createMetrics();
  const escalationQueue = bench.queue(createEscalationQueue(bench.redis(), ownPrefix));
  const queue = bench.queue(createChannelsQueue(bench.redis(), ownPrefix, { attempts: 4, delayMs: 100 }));
  const channels = new ChannelService({
    db: bench.db,
    file,
    slack: chat,
    triggers: createChannelTriggers(queue),
    notifier,
    postCard: (incident, channel) => chat.post(channel, incidentCard(incident, file)),
    refreshCard: (incident, card) => chat.update(card, incidentCard(incident, file)),
    log,
  });
  const timers = createEscalationTimers(escalationQueue);
  const incidents = new IncidentService({ db: bench.db, file, notifier, timers, metrics, log, followers: [channels] });
  const paged = (incident: number, users: readonly string[]) => channels.paged(incident, users);
  const escalation = new EscalationService({ db: bench.db, file, pager, notifier, timers, metrics, log, paged });
  return {
    chat,
    pager,
    queue,
    channels,
    incidents,
    startChannelsWorker() {
      bench.worker(startChannelsWorker(bench.redis(), ownPrefix, channels, log));
    },
    startEscalationWorker() {
      bench.worker(startEscalationWorker(bench.redis(), ownPrefix, escalation, log));
    },
  };
}

type World = ReturnType<typeof world>;

async function channelRow(incident: number) {
  const { rows } = await bench.db.query<{
    name: string | null;
    channel_id: string | null;
    set_up: boolean;
    failed: boolean;
    last_error: string | null;
    archive_due_at: Date | null;
    archived: boolean;
  }>(
    `SELECT c.name, i.channel_id, c.set_up_at IS NOT NULL AS set_up, c.failed_at IS NOT NULL AS failed, c.last_error,
            c.archive_due_at, c.archived_at IS NOT NULL AS archived
       FROM incident_channels c JOIN incidents i ON i.number = c.incident WHERE c.incident = $1`,
    [incident],
  );
  return rows[0];
}

async function setUp(incident: number) {
  return waitUntil(
    'the channel set up',
    async () => ((await channelRow(incident))?.set_up ? channelRow(incident) : undefined),
    15_000,
  );
}

function channelOf(w: World, name: string) {
  return [...w.chat.channels.values()].find((c) => c.name === name);
}

function threadTexts(w: World, incident: Incident): string[] {
  return w.chat.calls.filter((c) => c.kind === 'post' && c.threadTs === incident.card?.ts).map((c) => c.message.text);
}

describe('incident channels', () => {
  it('a declaration gets one channel even when its job runs twice and the follower is told twice', async () => {
    const w = world();
    const title = 'Checkout API: 502s (EU)';
    const incident = await declareIncident(w, 'sev1', title);
    await Promise.all([
      w.channels.run(incident.number, 'create', { finalAttempt: false }),
      w.channels.run(incident.number, 'create', { finalAttempt: false }),
    ]);
    await w.channels.declared(incident);
    w.startChannelsWorker();
    await waitUntil('the queued job to run', async () => {
      const counts = await w.queue.getJobCounts('waiting', 'active', 'delayed');
      return Object.values(counts).every((n) => n === 0);
    });

    const name = `inc-${incident.number}-checkout-api-502s-eu`;
    expect(w.chat.channelCalls.filter((c) => c.startsWith('conversations.create'))).toEqual([
      `conversations.create ${name}`,
    ]);
    const row = await channelRow(incident.number);
    const channel = channelOf(w, name)!;
    expect(row).toMatchObject({ name, channel_id: channel.id, set_up: true, failed: false });
    expect(channel.topic).toBe(`SEV1 | investigating | ${title}`);
    expect(channel.members.has(USERS.declarer)).toBe(true);
    // The card is posted there once, and pinned.
    const cards = w.chat.calls.filter((c) => c.kind === 'post' && c.channel === channel.id);
    expect(cards).toHaveLength(1);
    expect([...channel.pins]).toEqual([cards[0]!.ts]);
    // The emergency card links the channel.
    const updates = w.chat.calls.filter((c) => c.kind === 'update' && c.ts === incident.card?.ts);
    expect(JSON.stringify(updates.at(-1)?.message.blocks)).toContain(`<#${channel.id}>`);
    // A second declaration run would find the row (the primary key) and owe nothing new.
    expect(await w.channels.reconcile()).toBe(0);
  });

  it('a name Slack says is taken gets -2', async () => {
    const w = world();
    const title = 'Name clash';
    const { rows } = await bench.db.query<{ next: number }>('SELECT last_value + 1 AS next FROM incidents_number_seq');
    const expected = channelName('inc', Number(rows[0]!.next), title);
    await w.chat.createChannel(expected);
    w.startChannelsWorker();
    const incident = await declareIncident(w, 'sev2', title);
    expect(incident.number).toBe(Number(rows[0]!.next));
    const row = await setUp(incident.number);
    expect(row?.name).toBe(`${expected}-2`);
    expect(channelOf(w, `${expected}-2`)?.id).toBe(row?.channel_id);
  });

  it('a channel Slack refuses is reported in the thread, and the page never waits for it', async () => {
    const w = world();
    w.chat.refuseCreate = 'restricted_action';
    w.startEscalationWorker();
    const incident = await declareIncident(w, 'sev1', 'Refused channel');
    // No channel worker yet: the page goes out all the same.
    await waitUntil('the page', () => w.pager.of(incident.number).length === 1, 10_000);
    w.startChannelsWorker();
    await waitUntil('the refusal in the thread', () =>
      threadTexts(w, incident).some((t) => t.includes('no incident channel') && t.includes('restricted_action')),
    );
    expect(await channelRow(incident.number)).toMatchObject({ failed: true, channel_id: null, set_up: false });
    expect(w.chat.channels.size).toBe(0);
    // Given up on: the reconciler does not try again.
    expect(await w.channels.reconcile()).toBe(0);
  });

  it('the declarer and each paged role users are invited, also those paged after the channel exists', async () => {
    const file = fileWith('{ enabled: true }', [
      { after_minutes: 0, notify: 'oncall' },
      { after_minutes: 0.05, notify: 'engineering_lead' },
    ]);
    const w = world(file);
    w.startEscalationWorker();
    w.startChannelsWorker();
    const incident = await declareIncident(w, 'sev1', 'Invite the paged');
    const row = await setUp(incident.number);
    const channel = w.chat.channels.get(row!.channel_id!)!;
    await waitUntil('oncall invited', () => channel.members.has(USERS.oncall), 10_000);
    expect(channel.members.has(USERS.declarer)).toBe(true);
    await waitUntil('the lead paged', () => w.pager.of(incident.number).length === 2, 10_000);
    await waitUntil('the lead invited', () => channel.members.has(USERS.lead), 10_000);
  });

  it('an incident an alert declared (by Lifeline) invites only the paged users', async () => {
    const w = world();
    w.startEscalationWorker();
    w.startChannelsWorker();
    const { incident } = await w.incidents.declare({
      severity: 'sev1',
      title: 'Alert declared',
      actor: SYSTEM_ACTOR,
      channel: EMERGENCY,
    });
    const row = await setUp(incident.number);
    const channel = w.chat.channels.get(row!.channel_id!)!;
    await waitUntil('oncall invited', () => channel.members.has(USERS.oncall), 10_000);
    expect([...channel.members]).toEqual([USERS.oncall]);
  });

  it('the topic follows a severity change, acknowledge and resolve; the channel is archived archive_after_hours after resolve, exactly once', async () => {
    const w = world();
    w.startChannelsWorker();
    const incident = await declareIncident(w, 'sev2', 'Archive me');
    const row = await setUp(incident.number);
    const channel = w.chat.channels.get(row!.channel_id!)!;
    expect(channel.topic).toBe('SEV2 | investigating | Archive me');
    await w.incidents.changeSeverity({ number: incident.number }, USERS.oncall, 'sev1');
    await waitUntil('the raised topic', () => channel.topic === 'SEV1 | investigating | Archive me');
    await w.incidents.changeSeverity({ number: incident.number }, USERS.oncall, 'sev2');
    await waitUntil('the lowered topic', () => channel.topic === 'SEV2 | investigating | Archive me');
    await w.incidents.acknowledge({ number: incident.number }, USERS.oncall);
    await waitUntil('the acknowledged topic', () => channel.topic === 'SEV2 | acknowledged | Archive me');
    const resolved = await w.incidents.resolve({ number: incident.number }, USERS.oncall, 'fixed');
    await waitUntil('the resolved topic', () => channel.topic === 'SEV2 | resolved | Archive me');
    const due = (await channelRow(incident.number))!.archive_due_at!;
    expect(due.getTime() - resolved.resolvedAt!.getTime()).toBe(ARCHIVE_HOURS * 3_600_000);
    expect(channel.archived).toBe(false);
    await waitUntil('archived', () => channel.archived, 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(due.getTime() - 1_000);
    await waitUntil('the archive recorded', async () => (await channelRow(incident.number))?.archived);
    // A second run and the reconciler archive nothing more.
    await w.channels.run(incident.number, 'archive', { finalAttempt: false });
    expect(await w.channels.reconcile()).toBe(0);
    expect(w.chat.channelCalls.filter((c) => c.startsWith('conversations.archive'))).toHaveLength(1);
  });

  it('an archive job Redis lost is re-added by the reconciler from PostgreSQL', async () => {
    const w = world();
    w.startChannelsWorker();
    const incident = await declareIncident(w, 'sev3', 'Lost archive');
    const row = await setUp(incident.number);
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
    await waitUntil('the delayed archive job', async () => (await w.queue.getDelayedCount()) === 1);
    await w.queue.drain(true);
    expect(await w.queue.getDelayedCount()).toBe(0);
    expect(await w.channels.reconcile()).toBe(1);
    const channel = w.chat.channels.get(row!.channel_id!)!;
    await waitUntil('archived', () => channel.archived, 15_000);
  });

  it('does nothing when channels are not enabled', async () => {
    const w = world(fileWith('{ enabled: false }'));
    w.startChannelsWorker();
    const incident = await declareIncident(w, 'sev1', 'No channel');
    expect(await channelRow(incident.number)).toBeUndefined();
    expect(w.chat.channels.size).toBe(0);
  });
});
