// update, severity, list, status, postmortem, help: the answers go to the sender alone; the channel only ever gets
// the card and its thread. The process runs with TZ=Pacific/Auckland so that any local-time rendering shows up.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, buttonLabels, linesWithSecrets, stillAfter, World } from '../support/e2e.js';
import { ROUTING_KEYS, USERS } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

// Ladders run in seconds and processes restart: more than vitest's default per test, on a busy 2-core machine.
vi.setConfig({ testTimeout: 60_000 });

const STEP_MS = [0, 3_000, 6_000, 9_000];
let w: World;

beforeAll(async () => {
  w = await World.create({
    ladderMs: STEP_MS,
    extraEnv: { TZ: 'Pacific/Auckland' },
  });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
});

/** Runs a command that must answer the sender alone and post nothing anywhere. */
async function privateAnswer(text: string, user: string = USERS.other): Promise<string> {
  const before = await w.snapshot();
  const sent = await w.command(text, { user });
  expect(sent.status).toBe(200);
  expect(sent.elapsedMs).toBeLessThan(3_000);
  const reply = await w.reply(sent);
  expect(w.replyDelay(sent)).toBeLessThan(3_000);
  await stillAfter(
    `"${text}" to change nothing and post nothing`,
    async () => JSON.stringify(await w.snapshot()) === JSON.stringify(before),
    300,
  );
  expect(w.replies(sent)).toHaveLength(1);
  return reply;
}

let sev3: number;
let resolvedSev4: number;

describe('changing an incident', () => {
  test('a SEV3 does not page; `update` goes on the timeline; raising it to SEV1 starts the ladder from that moment', async () => {
    const inc = await w.declare('sev3', 'Search results are stale');
    sev3 = inc.number;
    expect(allText(inc.card.body)).toMatch(/SEV3/i);
    expect(buttonLabels(inc.card.body)).toEqual(['Acknowledge', 'Resolve']);
    await w.reply(inc.sent);
    await stillAfter('no page for a SEV3', () => w.pd.events.length === 0, 1_000);

    // update: a private confirmation; on the timeline; at most a note in the card's thread, never a channel post.
    const topLevel = w.topLevelPosts().length;
    const update = await w.command(`update ${inc.id} Reindex running, ETA 20 min`, { user: USERS.lead });
    expect(update.status).toBe(200);
    expect(await w.reply(update)).toContain(inc.id);
    await waitUntil('the update on the timeline', async () =>
      (await w.timeline(inc.number)).some(
        (e) => e.detail.includes('Reindex running, ETA 20 min') && e.actor === USERS.lead,
      ),
    );
    expect(w.topLevelPosts().length).toBe(topLevel);
    for (const note of w.threadOf(inc.card)) expect(note.body.channel).toBe(inc.card.body.channel);

    // severity sev3 → sev1: paging starts now, not at declaration.
    const raise = await w.command(`severity ${inc.id} sev1`, { user: USERS.lead });
    expect(raise.status).toBe(200);
    expect(await w.reply(raise)).toMatch(/SEV1/i);
    await waitUntil('oncall and engineering_lead triggers', () => w.triggersOf(inc.number).length >= 2, 15_000);
    const [oncall, lead] = w.triggersOf(inc.number);
    expect(oncall!.routing_key).toBe(ROUTING_KEYS.oncall);
    expect(lead!.routing_key).toBe(ROUTING_KEYS.engineering_lead);
    expect(oncall!.at).toBeGreaterThanOrEqual(raise.sentAt);
    expect(oncall!.at).toBeLessThan(raise.sentAt + 3_000);
    expect(lead!.at).toBeGreaterThanOrEqual(raise.sentAt + STEP_MS[1]! - 50);
    const timeline = await w.timeline(inc.number);
    expect(timeline.some((e) => /sev3/i.test(`${e.kind} ${e.detail}`) && /sev1/i.test(`${e.kind} ${e.detail}`))).toBe(
      true,
    );
    await waitUntil('the card shows SEV1', () => w.cardUpdates(inc.card).some((u) => /SEV1/.test(allText(u.body))));
    expect(w.topLevelPosts().length).toBe(topLevel);

    const ack = await w.command(`ack ${inc.id}`, { user: USERS.lead });
    await w.reply(ack);
    await waitUntil(
      'acknowledge events',
      () => w.followUpsOf(inc.number, 'acknowledge').length >= w.triggersOf(inc.number).length,
    );
  });

  test('a SEV2 card shows its 15 min response target and pages', async () => {
    const inc = await w.declare('sev2', 'Webhooks delayed');
    expect(allText(inc.card.body)).toMatch(/15\s*min/);
    await waitUntil('the SEV2 oncall page', () => w.triggersOf(inc.number).length >= 1);
    expect(w.triggersOf(inc.number)[0]!.routing_key).toBe(ROUTING_KEYS.oncall);
    await w.click(inc.card, 'Resolve', { user: USERS.oncall });
    await waitUntil('the SEV2 resolve', () => w.followUpsOf(inc.number, 'resolve').length >= 1);
  });
});

describe('answers seen by the sender alone', () => {
  test('`list` shows open incidents only', async () => {
    const gone = await w.declare('sev4', 'Typo on the pricing page');
    resolvedSev4 = gone.number;
    await w.reply(await w.command(`resolve ${gone.id}`, { user: USERS.oncall }));
    await waitUntil('the sev4 resolved', async () => (await w.incidentRow(gone.number))?.resolved_at != null);

    const list = await privateAnswer('list');
    expect(list).toContain(`INC-${sev3}`);
    expect(list).toContain('Search results are stale');
    expect(list).not.toContain(`INC-${resolvedSev4}`);
    expect(list).not.toContain('Typo on the pricing page');
    expect(list).not.toContain('Webhooks delayed'); // resolved by the Resolve button
  });

  test('`status INC-n` shows state, who was paged and the latest timeline', async () => {
    const status = await privateAnswer(`status INC-${sev3}`);
    expect(status).toContain(`INC-${sev3}`);
    expect(status).toContain('Search results are stale');
    expect(status).toMatch(/SEV1/);
    expect(status).toMatch(/acknowledged/i);
    expect(status).toContain('oncall');
    expect(status).toContain('Reindex running, ETA 20 min');
  });

  test('`postmortem INC-n` is Markdown with the timeline in UTC', async () => {
    const text = await privateAnswer(`postmortem INC-${sev3}`);
    expect(text).toMatch(/^#{1,3} .*INC-\d+/m);
    expect(text).toContain(`INC-${sev3}`);
    expect(text).toContain('Search results are stale');
    expect(text).toContain('UTC');
    const timeline = await w.timeline(sev3);
    expect(timeline.length).toBeGreaterThanOrEqual(5);
    const utcMinute = (d: Date) => d.toISOString().slice(0, 16).replace('T', ' ');
    for (const e of timeline)
      expect(text, `timeline entry ${e.kind} at ${e.at.toISOString()}`).toContain(utcMinute(e.at));
    expect(text).toContain('Reindex running, ETA 20 min');
    // Not the process's local time (Pacific/Auckland is 12-13 h off UTC).
    const declared = timeline[0]!.at;
    const auckland = new Intl.DateTimeFormat('sv-SE', {
      timeZone: 'Pacific/Auckland',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    }).format(declared);
    expect(text).not.toContain(auckland);
  });

  test('`help` lists every subcommand', async () => {
    const help = await privateAnswer('help');
    for (const word of ['sev1', 'ack', 'update', 'severity', 'resolve', 'list', 'status', 'postmortem', 'help'])
      expect(help).toContain(word);
  });
});

test('no log line carries a secret', () => {
  expect(linesWithSecrets(w.output())).toEqual([]);
});
