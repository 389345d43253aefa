// IncidentService + EscalationService on the real PostgreSQL, with a real BullMQ queue and worker on the real Redis.
// Slack is MemoryChat behind the real Slack notifier; PagerDuty is a MemoryPager (with a gate, see harness.ts).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TransientError, UserError } from '../../src/shared/errors.js';
import { SYSTEM_ACTOR } from '../../src/domain/access/permissions.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import { runHandled } from '../../src/delivery/commands/dispatch.js';
import { stepJobId } from '../../src/delivery/jobs/escalation-queue.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import { waitUntil } from '../support/wait.js';
import {
  countRows,
  createHarness,
  declareIncident,
  dedupKeyOf,
  EMERGENCY,
  pagedNotes,
  pendingFollowUps,
  queueIdle,
  ROUTING,
  stepsOf,
  timelineKinds,
  USERS,
  waitPastAndIdle,
  type Harness,
} from './harness.js';

// oncall at once, engineering_lead after 2.4 s, cto after 3.6 s; ceo is configured but not on the ladder.
// The gap before engineering_lead leaves room to act between steps even when step 0's mention is retried once.
const LADDER = [
  { after_minutes: 0, notify: 'oncall' },
  { after_minutes: 0.04, notify: 'engineering_lead' },
  { after_minutes: 0.06, notify: 'cto' },
] as const;
const STEP_MS = [0, 2_400, 3_600];
/** How far apart the database clock puts steps of one ladder from their nominal offsets. */
const DUE_SLACK_MS = 60;
/** A step must never fire before it is due (same host clock for Node and PostgreSQL). */
const EARLY_TOLERANCE_MS = 50;

let h: Harness;

beforeAll(async () => {
  h = await createHarness(LADDER);
  await h.startWorker();
});

afterAll(async () => {
  h?.pager.release();
  await h?.close();
});

async function refusal(work: Promise<unknown>): Promise<UserError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

/** Waits until the incident has at least `expected.length` pager events, then checks them exactly. */
async function expectPagerSummary(incident: number, expected: string[], timeoutMs = 10_000): Promise<void> {
  await waitUntil(
    `${expected.length} pager events for INC-${incident}`,
    () => h.pager.of(incident).length >= expected.length,
    timeoutMs,
  );
  expect(h.pager.summary(incident)).toEqual(expected);
}

function acceptedAt(incident: number, action: string, role: string): number {
  const index = h.pager.events.findIndex(
    (e) => e.action === action && e.dedupKey === dedupKeyOf(incident, role as 'oncall'),
  );
  expect(index).toBeGreaterThanOrEqual(0);
  return h.pager.acceptedAt[index]!;
}

async function stepFired(incident: number, stepIndex: number): Promise<void> {
  await waitUntil(`step ${stepIndex} of INC-${incident} to fire`, async () => {
    const steps = await stepsOf(h.db, incident);
    const generation = Math.max(...steps.map((s) => s.generation));
    return steps.find((s) => s.generation === generation && s.stepIndex === stepIndex)?.state === 'fired';
  });
}

/** Resolves, waits for the resolve events, and for the queue to drain: the next test starts from quiet. */
async function resolveAndSettle(incident: number, expectedResolves: string[]): Promise<void> {
  await h.incidents.resolve({ number: incident }, USERS.oncall, 'done');
  await waitUntil(
    'resolve follow-ups',
    () => h.pager.of(incident).filter((e) => e.action === 'resolve').length >= expectedResolves.length,
  );
  expect(
    h.pager
      .of(incident)
      .filter((e) => e.action === 'resolve')
      .map((e) => e.dedupKey),
  ).toEqual(expectedResolves.map((r) => dedupKeyOf(incident, r as 'oncall')));
  await waitUntil('the queue to drain', () => queueIdle(h.queue));
}

describe('declare SEV1', () => {
  test('announces the card, stores the ladder, pages each role in order at its time, resolve resolves each alert', async () => {
    const chatBefore = h.chat.calls.length;
    const title = 'Checkout returns 500';
    const { incident, cardError } = await h.incidents.declare({
      severity: 'sev1',
      title,
      actor: USERS.declarer,
      channel: EMERGENCY,
    });
    const n = incident.number;
    expect(cardError).toBeUndefined();

    // The card: first Slack call, in emergency_channel, with both buttons.
    const card = h.chat.calls[chatBefore]!;
    expect(card.kind).toBe('post');
    expect(card.channel).toBe(EMERGENCY);
    expect(card.threadTs).toBeUndefined();
    expect(card.message.text).toBe(`SEV1 INC-${n}: ${title} (open)`);
    const buttons = JSON.stringify(card.message.blocks);
    expect(buttons).toContain('"text":"Acknowledge"');
    expect(buttons).toContain('"text":"Resolve"');
    expect(incident.card).toEqual({ channel: EMERGENCY, ts: card.ts });
    const stored = await h.db.query<{ card_channel: string; card_ts: string }>(
      'SELECT card_channel, card_ts FROM incidents WHERE number = $1',
      [n],
    );
    expect(stored.rows[0]).toEqual({ card_channel: EMERGENCY, card_ts: card.ts });

    // The ladder, stored: one row per step, due relative to the declaration.
    const steps = await stepsOf(h.db, n);
    expect(steps.map((s) => [s.generation, s.stepIndex, s.role])).toEqual([
      [0, 0, 'oncall'],
      [0, 1, 'engineering_lead'],
      [0, 2, 'cto'],
    ]);
    const declaredAt = incident.declaredAt.getTime();
    steps.forEach((s, i) => {
      const offset = s.dueAt.getTime() - declaredAt;
      expect(offset).toBeGreaterThanOrEqual(STEP_MS[i]!);
      expect(offset).toBeLessThan(STEP_MS[i]! + DUE_SLACK_MS + 200);
      expect(s.dueAt.getTime() - steps[0]!.dueAt.getTime()).toBeGreaterThanOrEqual(STEP_MS[i]! - 1);
      expect(s.dueAt.getTime() - steps[0]!.dueAt.getTime()).toBeLessThan(STEP_MS[i]! + DUE_SLACK_MS);
    });

    // Each role paged once, in order, with its routing key and the per-incident-and-role dedup key.
    await expectPagerSummary(n, ['trigger:oncall', 'trigger:engineering_lead', 'trigger:cto']);
    const triggers = h.pager.of(n);
    expect(triggers.map((e) => [e.routingKey, e.dedupKey])).toEqual([
      [ROUTING.oncall, `lifeline-INC-${n}-oncall`],
      [ROUTING.engineering_lead, `lifeline-INC-${n}-engineering_lead`],
      [ROUTING.cto, `lifeline-INC-${n}-cto`],
    ]);
    for (const t of triggers) {
      expect(t.payload?.severity).toBe('critical');
      expect(t.payload?.summary).toBe(`[SEV1] ${title} (INC-${n})`);
    }
    // None before its time.
    for (const s of steps)
      expect(acceptedAt(n, 'trigger', s.role)).toBeGreaterThanOrEqual(s.dueAt.getTime() - EARLY_TOLERANCE_MS);

    // The people are mentioned in the card's thread, once per step.
    await waitUntil('3 thread mentions', async () => (await stepsOf(h.db, n)).every((s) => s.state === 'fired'));
    const notes = h.chat.calls.filter((c) => c.kind === 'post' && c.message.text.startsWith(`:pager: INC-${n}:`));
    expect(notes.map((c) => c.threadTs)).toEqual([card.ts, card.ts, card.ts]);
    expect(notes.map((c) => c.message.text.match(/<@U0[A-Z]+>/g))).toEqual([
      ['<@U0ONCALL>'],
      ['<@U0LEAD>'],
      ['<@U0CTO>'],
    ]);

    const fired = await stepsOf(h.db, n);
    expect(fired.map((s) => s.state)).toEqual(['fired', 'fired', 'fired']);
    expect(fired.every((s) => s.pagedAt !== null && s.mentionedAt !== null && s.claimedUntil === null)).toBe(true);
    expect(await countRows(h.db, 'page_keys', n)).toBe(3);
    expect(await timelineKinds(h.db, n)).toEqual(['declared', 'ladder_started', 'paged', 'paged', 'paged']);
    expect(h.pager.of(n).some((e) => e.routingKey === ROUTING.ceo)).toBe(false);
    const details = await h.incidents.details({ number: n });
    expect(details.pages.map((p) => [p.role, p.stepIndex])).toEqual([
      ['oncall', 0],
      ['engineering_lead', 1],
      ['cto', 2],
    ]);

    // Resolve: one `resolve` per alert, same routing key, nothing else.
    const resolved = await h.incidents.resolve({ number: n }, USERS.oncall, 'rolled back');
    expect(resolved.resolvedBy).toBe(USERS.oncall);
    expect(resolved.resolutionNote).toBe('rolled back');
    await expectPagerSummary(n, [
      'trigger:oncall',
      'trigger:engineering_lead',
      'trigger:cto',
      'resolve:oncall',
      'resolve:engineering_lead',
      'resolve:cto',
    ]);
    expect(
      h.pager
        .of(n)
        .slice(3)
        .map((e) => e.routingKey),
    ).toEqual([ROUTING.oncall, ROUTING.engineering_lead, ROUTING.cto]);
    await waitUntil('the queue to drain', () => queueIdle(h.queue));
    expect(h.pager.of(n)).toHaveLength(6);
    expect(await timelineKinds(h.db, n)).toEqual(['declared', 'ladder_started', 'paged', 'paged', 'paged', 'resolved']);
    const update = h.chat.calls.filter((c) => c.kind === 'update' && c.ts === card.ts).at(-1);
    expect(update?.message.text).toBe(`SEV1 INC-${n}: ${title} (resolved)`);
    const keys = await h.db.query<{ role: string; acknowledge_sent_at: Date | null; resolve_sent_at: Date | null }>(
      'SELECT role, acknowledge_sent_at, resolve_sent_at FROM page_keys WHERE incident = $1 ORDER BY triggered_at',
      [n],
    );
    expect(keys.rows.map((r) => [r.role, r.acknowledge_sent_at === null, r.resolve_sent_at !== null])).toEqual([
      ['oncall', true, true],
      ['engineering_lead', true, true],
      ['cto', true, true],
    ]);
  });

  test('acknowledge before a later step: that step never pages; acknowledge goes to each triggered key and only those', async () => {
    const incident = await declareIncident(h, 'sev1', 'Queue backlog');
    const n = incident.number;
    await stepFired(n, 0);
    const acked = await h.incidents.acknowledge({ number: n }, USERS.oncall);
    expect(acked.acknowledgedBy).toBe(USERS.oncall);
    expect(acked.acknowledgedAt).toBeInstanceOf(Date);

    const steps = await stepsOf(h.db, n);
    expect(steps.map((s) => s.state)).toEqual(['fired', 'cancelled', 'cancelled']);
    // Their timers are gone from Redis too.
    expect(await h.queue.getJob(stepJobId(steps[1]!.id))).toBeUndefined();
    expect(await h.queue.getJob(stepJobId(steps[2]!.id))).toBeUndefined();

    await expectPagerSummary(n, ['trigger:oncall', 'acknowledge:oncall']);
    expect(h.pager.of(n)[1]!.routingKey).toBe(ROUTING.oncall);
    // Past the last step's due time, nothing more went out.
    await waitPastAndIdle(h.queue, steps[2]!.dueAt);
    expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'acknowledge:oncall']);
    expect(pagedNotes(h.chat, n)).toHaveLength(1);
    expect(await timelineKinds(h.db, n)).toEqual([
      'declared',
      'ladder_started',
      'paged',
      'acknowledged',
      'ladder_stopped',
    ]);
    const card = h.chat.calls.filter((c) => c.kind === 'update' && c.ts === incident.card!.ts).at(-1);
    expect(card?.message.text).toBe(`SEV1 INC-${n}: Queue backlog (acknowledged)`);

    // Already acknowledged: refused, nothing recorded.
    const events = await countRows(h.db, 'incident_events', n);
    const again = await refusal(h.incidents.acknowledge({ number: n }, USERS.lead));
    expect(again.code).toBe('already_done');
    expect(again.message).toContain(`INC-${n}`);
    expect(await countRows(h.db, 'incident_events', n)).toBe(events);
    expect((await h.incidents.find({ number: n })).acknowledgedBy).toBe(USERS.oncall);

    await resolveAndSettle(n, ['oncall']);
    expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'acknowledge:oncall', 'resolve:oncall']);
  });
});

describe('the ladder runs from when the declaration arrived', () => {
  test('a declaration that a busy server records 2 s late keeps its schedule: declared_at and every due_at are from `at`', async () => {
    const at = new Date(Date.now() - 2_000);
    const { incident } = await h.incidents.declare({
      severity: 'sev1',
      title: 'Declared during a burst',
      actor: USERS.declarer,
      channel: EMERGENCY,
      at,
    });
    const n = incident.number;
    expect(incident.declaredAt.getTime()).toBe(at.getTime());
    const steps = await stepsOf(h.db, n);
    expect(steps.map((s) => s.dueAt.getTime() - at.getTime())).toEqual(STEP_MS);
    expect(await timelineKinds(h.db, n)).toEqual(['declared', 'ladder_started']);
    // engineering_lead is due 2.4 s after `at`, 0.4 s after this call: not 2.4 s after it.
    await waitUntil('the engineering_lead page', () => h.pager.summary(n).includes('trigger:engineering_lead'), 5_000);
    const lead = Date.now() - at.getTime();
    expect(lead).toBeGreaterThanOrEqual(STEP_MS[1]! - EARLY_TOLERANCE_MS);
    expect(lead).toBeLessThan(STEP_MS[1]! + 1_500);
    await resolveAndSettle(n, ['oncall', 'engineering_lead']);
  });
});

describe('severities', () => {
  test('a non-paging SEV3 pages nobody and schedules nothing', async () => {
    const incident = await declareIncident(h, 'sev3', 'Slow admin page');
    const n = incident.number;
    expect(await stepsOf(h.db, n)).toEqual([]);
    await waitPastAndIdle(h.queue, incident.declaredAt);
    expect(h.pager.of(n)).toEqual([]);
    expect(pagedNotes(h.chat, n)).toEqual([]);
    expect(await timelineKinds(h.db, n)).toEqual(['declared']);
    const card = h.chat.calls.find((c) => c.kind === 'post' && c.ts === incident.card!.ts)!;
    expect(JSON.stringify(card.message.blocks)).toContain('SEV3 does not page.');
    await resolveAndSettle(n, []);
    expect(h.pager.of(n)).toEqual([]);
  });

  test('raising SEV3 to SEV1 starts the ladder from that moment, on the timeline', async () => {
    const incident = await declareIncident(h, 'sev3', 'Raised later');
    const n = incident.number;
    const waitedMs = 600;
    await waitUntil('some time to pass', () => Date.now() >= incident.declaredAt.getTime() + waitedMs);
    expect(h.pager.of(n)).toEqual([]);

    const changed = await h.incidents.changeSeverity({ number: n }, USERS.lead, 'sev1');
    expect(changed.ladder).toBe('started');
    expect(changed.incident.severity).toBe('sev1');
    expect(changed.incident.ladderGeneration).toBe(1);

    const { rows } = await h.db.query<{ kind: string; detail: string; at: Date; actor: string }>(
      'SELECT kind, detail, at, actor FROM incident_events WHERE incident = $1 ORDER BY id',
      [n],
    );
    expect(rows.map((r) => [r.kind, r.actor])).toEqual([
      ['declared', USERS.declarer],
      ['severity_changed', USERS.lead],
      ['ladder_started', USERS.lead],
    ]);
    expect(rows[1]!.detail).toBe('SEV3 → SEV1');
    const changedAt = rows[1]!.at.getTime();

    const steps = await stepsOf(h.db, n);
    expect(steps.map((s) => [s.generation, s.stepIndex, s.role])).toEqual([
      [1, 0, 'oncall'],
      [1, 1, 'engineering_lead'],
      [1, 2, 'cto'],
    ]);
    // Due relative to the change, not to the declaration.
    steps.forEach((s, i) => {
      expect(s.dueAt.getTime() - incident.declaredAt.getTime()).toBeGreaterThanOrEqual(waitedMs + STEP_MS[i]!);
      expect(s.dueAt.getTime() - changedAt).toBeGreaterThanOrEqual(STEP_MS[i]!);
      expect(s.dueAt.getTime() - changedAt).toBeLessThan(STEP_MS[i]! + DUE_SLACK_MS);
    });

    await expectPagerSummary(n, ['trigger:oncall', 'trigger:engineering_lead', 'trigger:cto']);
    for (const s of steps)
      expect(acceptedAt(n, 'trigger', s.role)).toBeGreaterThanOrEqual(s.dueAt.getTime() - EARLY_TOLERANCE_MS);
    expect(h.pager.of(n).every((e) => e.payload?.severity === 'critical')).toBe(true);
    const note = h.chat.calls.find(
      (c) => c.kind === 'post' && c.message.text.startsWith(`:arrows_counterclockwise: INC-${n} severity changed`),
    );
    expect(note?.message.text).toContain('SEV3 → SEV1. Escalation ladder started.');
    expect(note?.threadTs).toBe(incident.card!.ts);
    await waitUntil('all steps finished', async () => (await stepsOf(h.db, n)).every((s) => s.state === 'fired'));
    expect(await timelineKinds(h.db, n)).toEqual([
      'declared',
      'severity_changed',
      'ladder_started',
      'paged',
      'paged',
      'paged',
    ]);
    await resolveAndSettle(n, ['oncall', 'engineering_lead', 'cto']);
  });

  test('lowering SEV1 to SEV3 stops the pending steps', async () => {
    const incident = await declareIncident(h, 'sev1', 'Lowered later');
    const n = incident.number;
    await stepFired(n, 0);
    const changed = await h.incidents.changeSeverity({ number: n }, USERS.lead, 'sev3');
    expect(changed.ladder).toBe('stopped');
    expect(changed.incident.severity).toBe('sev3');

    const steps = await stepsOf(h.db, n);
    expect(steps.map((s) => s.state)).toEqual(['fired', 'cancelled', 'cancelled']);
    expect(await h.queue.getJob(stepJobId(steps[1]!.id))).toBeUndefined();
    expect(await h.queue.getJob(stepJobId(steps[2]!.id))).toBeUndefined();
    const { rows } = await h.db.query<{ kind: string; detail: string }>(
      'SELECT kind, detail FROM incident_events WHERE incident = $1 ORDER BY id',
      [n],
    );
    expect(rows.map((r) => [r.kind, r.detail]).slice(2)).toEqual([
      ['paged', `oncall (${USERS.oncall})`],
      ['severity_changed', 'SEV1 → SEV3'],
      ['ladder_stopped', 'lowered to SEV3'],
    ]);

    await waitPastAndIdle(h.queue, steps[2]!.dueAt);
    expect(h.pager.summary(n)).toEqual(['trigger:oncall']);
    expect(pagedNotes(h.chat, n)).toHaveLength(1);
    await resolveAndSettle(n, ['oncall']);
  });
});

describe('refusals change nothing', () => {
  const snapshot = async (n: number) => ({
    timeline: (await h.db.query('SELECT * FROM incident_events WHERE incident = $1 ORDER BY id', [n])).rows,
    steps: await stepsOf(h.db, n),
    keys: (await h.db.query('SELECT * FROM page_keys WHERE incident = $1 ORDER BY role', [n])).rows,
    incident: (await h.db.query('SELECT * FROM incidents WHERE number = $1', [n])).rows,
    pager: h.pager.events.length,
    chat: h.chat.calls.length,
  });

  /** What the one error handler shows the sender in Slack. */
  const slackRefusal = async (err: UserError) => {
    const deps = { log: h.log, metrics: h.metrics, redact: (text: string) => text };
    const about = { command: '/incident', user: USERS.lead, channel: EMERGENCY };
    return (await runHandled(deps, about, () => Promise.reject(err)))?.text;
  };

  test('acknowledge (and every other change) of a resolved incident is refused with incident_resolved', async () => {
    const n = (await declareIncident(h, 'sev1', 'Resolved quickly')).number;
    await stepFired(n, 0);
    await resolveAndSettle(n, ['oncall']);
    expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'resolve:oncall']);

    const before = await snapshot(n);
    expect(before.timeline).toHaveLength(5); // declared, ladder_started, paged, resolved, ladder_stopped

    const ack = await refusal(h.incidents.acknowledge({ number: n }, USERS.oncall));
    expect(ack.code).toBe('incident_resolved');
    expect(ack.message).toBe(`INC-${n} is already resolved (by ${USERS.oncall}).`);
    expect((await refusal(h.incidents.resolve({ number: n }, USERS.oncall, 'again'))).code).toBe('incident_resolved');
    expect((await refusal(h.incidents.changeSeverity({ number: n }, USERS.oncall, 'sev2'))).code).toBe(
      'incident_resolved',
    );
    expect((await refusal(h.incidents.update({ number: n }, USERS.oncall, 'late note'))).code).toBe(
      'incident_resolved',
    );

    await waitPastAndIdle(h.queue, Date.now(), 300);
    expect(await snapshot(n)).toEqual(before);
  });

  test('refusals name the person who acted as data, without Slack markup; Slack still shows the mention', async () => {
    const n = (await declareIncident(h, 'sev3', 'Slow search')).number;
    await h.incidents.acknowledge({ number: n }, USERS.oncall);
    const acknowledged = await snapshot(n);

    const again = await refusal(h.incidents.acknowledge({ number: n }, USERS.lead));
    expect(again.code).toBe('already_done');
    expect(again.said).toEqual([`INC-${n} was already acknowledged by `, { person: USERS.oncall }, '.']);
    expect(again.message).toBe(`INC-${n} was already acknowledged by ${USERS.oncall}.`);
    expect(await slackRefusal(again)).toBe(`:warning: INC-${n} was already acknowledged by <@${USERS.oncall}>.`);
    expect(await snapshot(n)).toEqual(acknowledged);

    await h.incidents.resolve({ number: n }, USERS.lead, undefined);
    const resolved = await snapshot(n);
    const late = await refusal(h.incidents.update({ number: n }, USERS.oncall, 'one more thing'));
    expect(late.code).toBe('incident_resolved');
    expect(late.said).toEqual([`INC-${n} is already resolved (by `, { person: USERS.lead }, ').']);
    expect(late.message).not.toContain('<@');
    expect(await slackRefusal(late)).toBe(`:warning: INC-${n} is already resolved (by <@${USERS.lead}>).`);
    expect(await snapshot(n)).toEqual(resolved);
  });

  test('an unknown INC is refused with unknown_incident', async () => {
    const before = h.pager.events.length;
    for (const work of [
      () => h.incidents.acknowledge({ number: 424_242 }, USERS.oncall),
      () => h.incidents.resolve({ number: 424_242 }, USERS.oncall, undefined),
      () => h.incidents.changeSeverity({ number: 424_242 }, USERS.oncall, 'sev1'),
    ]) {
      const err = await refusal(work());
      expect(err.code).toBe('unknown_incident');
      expect(err.message).toContain('INC-424242');
    }
    const { rows } = await h.db.query<{ n: string }>(
      'SELECT count(*) AS n FROM incident_events WHERE incident = 424242',
    );
    expect(Number(rows[0]!.n)).toBe(0);
    expect(h.pager.events.length).toBe(before);
  });
});

describe('changes that land while a page is in flight', () => {
  /** A SEV3 raised to SEV1: its card exists before any step is scheduled, so no step waits for the card. */
  async function raisedWithPageInFlight(title: string): Promise<number> {
    const n = (await declareIncident(h, 'sev3', title)).number;
    h.pager.hold();
    await h.incidents.changeSeverity({ number: n }, USERS.lead, 'sev1');
    await waitUntil('the oncall page to be in flight', () => h.pager.held === 1);
    return n;
  }

  test('an acknowledge while step 0 is paging still acknowledges the alert that page opened', async () => {
    const n = await raisedWithPageInFlight('Ack races page');
    await h.incidents.acknowledge({ number: n }, USERS.oncall);
    // The acknowledge follow-up ran before the alert existed: it had nothing to send.
    await waitUntil('the first follow-up to finish', async () => (await pendingFollowUps(h.queue, n)) === 0);
    expect(h.pager.of(n)).toEqual([]);

    h.pager.release();
    await expectPagerSummary(n, ['trigger:oncall', 'acknowledge:oncall']);
    const steps = await stepsOf(h.db, n);
    expect(steps.map((s) => s.state)).toEqual(['fired', 'cancelled', 'cancelled']);
    await waitPastAndIdle(h.queue, steps[2]!.dueAt);
    expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'acknowledge:oncall']);
    await resolveAndSettle(n, ['oncall']);
  });

  // A retried step whose page already went out must still send the catch-up follow-up when it finds the incident
  // acknowledged: the acknowledge's own follow-up ran before this alert existed.
  test('an acknowledge while step 0 is paging, then the mention fails: the alert is still acknowledged', async () => {
    const n = await raisedWithPageInFlight('Ack races page, Slack fails');
    await h.incidents.acknowledge({ number: n }, USERS.oncall);
    await waitUntil('the first follow-up to finish', async () => (await pendingFollowUps(h.queue, n)) === 0);
    expect(h.pager.of(n)).toEqual([]);

    // The page goes through, the thread mention after it fails: BullMQ retries the step about 1 s later.
    h.chat.failNext(new TransientError('Slack chat.postMessage failed: socket hang up'));
    h.pager.release();
    await waitUntil('step 0 to finish', async () => (await stepsOf(h.db, n))[0]!.state !== 'pending', 10_000);
    const steps = await stepsOf(h.db, n);
    expect(steps[0]!.pagedAt).not.toBeNull();
    await waitPastAndIdle(h.queue, steps[2]!.dueAt);
    expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'acknowledge:oncall']);
    await resolveAndSettle(n, ['oncall']);
  });

  test('a page that lands while the acknowledge follow-up is still sending: its alert is acknowledged too', async () => {
    const n = (await declareIncident(h, 'sev1', 'Ack follow-up busy')).number;
    await stepFired(n, 0);
    const leadPage = h.pager.hold((e) => e.action === 'trigger' && e.dedupKey === dedupKeyOf(n, 'engineering_lead'));
    const oncallAck = h.pager.hold((e) => e.action === 'acknowledge' && e.dedupKey === dedupKeyOf(n, 'oncall'));
    await waitUntil('the engineering_lead page to be in flight', () => leadPage.held === 1, 5_000);
    await h.incidents.acknowledge({ number: n }, USERS.oncall);
    await waitUntil('the acknowledge of oncall to be in flight', () => oncallAck.held === 1);

    leadPage.release();
    const steps = await stepsOf(h.db, n);
    // The lead step finishes completely (including its catch-up follow-up) while the acknowledge job still runs.
    await waitUntil(
      'the lead step job to complete',
      async () => (await h.queue.getJob(stepJobId(steps[1]!.id))) === undefined,
    );
    expect(h.pager.summary(n)).toEqual(['trigger:oncall', 'trigger:engineering_lead']);
    oncallAck.release();

    await waitPastAndIdle(h.queue, steps[2]!.dueAt);
    expect((await stepsOf(h.db, n)).map((s) => s.state)).toEqual(['fired', 'fired', 'cancelled']);
    const summary = h.pager.summary(n);
    expect(summary.slice(0, 2)).toEqual(['trigger:oncall', 'trigger:engineering_lead']);
    // Both alerts acknowledged, each once (in either order).
    expect(summary.slice(2).sort()).toEqual(['acknowledge:engineering_lead', 'acknowledge:oncall']);
    await resolveAndSettle(n, ['oncall', 'engineering_lead']);
  });

  test('lowering to SEV3 while a page is in flight and then fails: the retry must not page', async () => {
    h.pager.hold();
    const incident = await declareIncident(h, 'sev1', 'Lowered mid-page');
    const n = incident.number;
    await waitUntil('the oncall page to be in flight', () => h.pager.held === 1);
    const changed = await h.incidents.changeSeverity({ number: n }, USERS.lead, 'sev3');
    expect(changed.incident.severity).toBe('sev3');
    h.pager.release(new TransientError('PagerDuty answered 503'));

    // BullMQ retries the failed step after ~1 s; wait for the step to leave 'pending' either way.
    await waitUntil('step 0 to finish', async () => (await stepsOf(h.db, n))[0]!.state !== 'pending', 10_000);
    const steps = await stepsOf(h.db, n);
    await waitPastAndIdle(h.queue, steps[2]!.dueAt);
    expect(h.pager.summary(n)).toEqual([]);
    expect(steps.map((s) => s.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    await h.incidents.resolve({ number: n }, USERS.oncall, 'done');
    await waitUntil('the queue to drain', () => queueIdle(h.queue));
  });
});

describe('who may act on an incident', () => {
  test('no role: may declare and update, not acknowledge, resolve or lower a SEV1; the ladder goes on', async () => {
    const declared = { severity: 'sev1', title: 'Not yours to stop', actor: USERS.other, channel: EMERGENCY } as const;
    const { incident } = await h.incidents.declare(declared);
    const n = incident.number;
    await stepFired(n, 0);
    await h.incidents.update({ number: n }, USERS.other, 'checkout errors since 10:02');
    const row = async () =>
      (await h.db.query('SELECT severity, acknowledged_at, resolved_at FROM incidents WHERE number = $1', [n])).rows[0];
    const before = { row: await row(), timeline: await timelineKinds(h.db, n), chat: h.chat.calls.length };
    expect(before.timeline).toEqual(['declared', 'ladder_started', 'paged', 'update']);

    const only = 'Only responders (oncall, engineering_lead, cto, ceo) may';
    const who = USERS.other;
    for (const [work, message] of [
      [() => h.incidents.acknowledge({ number: n }, who), `${only} acknowledge INC-${n}.`],
      [() => h.incidents.resolve({ number: n }, who, 'gone'), `${only} resolve INC-${n}.`],
      [() => h.incidents.changeSeverity({ number: n }, who, 'sev4'), `${only} change the severity of INC-${n}.`],
    ] as const) {
      const err = await refusal(work());
      expect(err.code).toBe('not_permitted');
      expect(err.message).toBe(message);
    }
    expect(await row()).toEqual(before.row);
    expect(await timelineKinds(h.db, n)).toEqual(before.timeline);
    expect(h.chat.calls.length).toBe(before.chat);
    // The refused lowering did not stop the ladder: the engineering lead and the CTO are paged at their minutes.
    await stepFired(n, 2);
    await expectPagerSummary(n, ['trigger:oncall', 'trigger:engineering_lead', 'trigger:cto']);
    await resolveAndSettle(n, ['oncall', 'engineering_lead', 'cto']);
  });

  test('permissions.responder_roles: on-call, left out, is refused; a listed role and Lifeline are not', async () => {
    const file = { ...h.file, permissions: { responder_roles: ['engineering_lead', 'cto'] } };
    const notifier = createSlackIncidentNotifier(h.chat, file);
    const { db, timers, metrics, log } = h;
    const narrowed = new IncidentService({ db, file, notifier, timers, metrics, log });
    const declared = { severity: 'sev3', title: 'Narrowed', actor: USERS.oncall, channel: EMERGENCY } as const;
    const { incident } = await narrowed.declare(declared);
    const n = incident.number;
    const err = await refusal(narrowed.acknowledge({ number: n }, USERS.oncall));
    expect(err.code).toBe('not_permitted');
    expect(err.message).toBe(`Only responders (engineering_lead, cto) may acknowledge INC-${n}.`);
    expect((await h.incidents.find({ number: n })).acknowledgedAt).toBeUndefined();
    expect((await narrowed.acknowledge({ number: n }, USERS.lead)).acknowledgedBy).toBe(USERS.lead);
    expect((await narrowed.changeSeverity({ number: n }, SYSTEM_ACTOR, 'sev4')).incident.severity).toBe('sev4');
    expect((await narrowed.resolve({ number: n }, SYSTEM_ACTOR, 'auto-resolved')).resolvedBy).toBe(SYSTEM_ACTOR);
    expect(await timelineKinds(h.db, n)).toEqual(['declared', 'acknowledged', 'severity_changed', 'resolved']);
  });
});
