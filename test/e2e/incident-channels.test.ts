// Incident channels through the real process (node dist/main.js): the channel calls reach the Slack stand-in, which
// answers them with Slack's rules (names lower case, [a-z0-9-_], at most 80 characters; name_taken; is_archived...).
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, buttonsOf, EMERGENCY, stillAfter, World } from '../support/e2e.js';
import { USERS } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

/** 1.8 s. */
const ARCHIVE_HOURS = 0.0005;

let w: World;

beforeAll(async () => {
  const channels = ['incidents:', `  channels: { enabled: true, prefix: inc, archive_after_hours: ${ARCHIVE_HOURS} }`];
  w = await World.create({
    config: { steps: [{ after_minutes: 0, notify: 'oncall' }], extraYaml: channels.join('\n') },
  });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
});

function callsOf(method: string, channel?: string) {
  return w.slack.calls.filter((c) => c.method === method && (channel === undefined || c.body.channel === channel));
}

describe('incident channels', () => {
  test('a declaration creates its channel within Slack rules, invites, sets the topic, pins the card and links it; a Slack retry makes no second one; it is archived after resolve', async () => {
    const title = `Checkout API 502s — Café EU ${'very long title '.repeat(7)}`.trim().slice(0, 140);
    const inc = await w.declare('sev1', title);

    const created = await waitUntil('the channel', () =>
      callsOf('conversations.create').find((c) => c.result?.ok === true),
    );
    const name = String(created.body.name);
    expect(name.startsWith(`inc-${inc.number}-checkout-api-502s-cafe-eu-very-long-title`)).toBe(true);
    expect(name).toMatch(/^[a-z0-9_-]{1,80}$/);
    expect(name.endsWith('-')).toBe(false);
    const channel = w.slack.channelNamed(name)!;

    await waitUntil('the pinned card', () => channel.pins.size === 1, 15_000);
    expect(channel.topic).toBe(`SEV1 | investigating | ${title}`);
    const [pinned] = [...channel.pins];
    const card = w.slack.find(channel.id, pinned!);
    expect(card?.text).toContain(`INC-${inc.number}`);
    await waitUntil('the declarer and the paged on-call invited', () =>
      [USERS.declarer, USERS.oncall].every((u) => channel.members.has(u)),
    );
    await waitUntil('the channel linked on the emergency card', () =>
      w.cardUpdates(inc.card).some((u) => allText(u.body).includes(`<#${channel.id}>`)),
    );
    expect(
      callsOf('conversations.invite', channel.id).every(
        (c) => c.result?.ok === true || c.result?.error === 'already_in_channel',
      ),
    ).toBe(true);

    // Slack retries the declaration (same trigger_id): no second incident, no second channel.
    const retry = await w.resend(inc.sent, { retryNum: 1 });
    expect(retry.status).toBe(200);
    await stillAfter('no second channel', () => callsOf('conversations.create').length === 1, 2_000);
    expect(w.topLevelPosts(EMERGENCY).filter((c) => allText(c.body).includes(title))).toHaveLength(1);

    // Resolved: the topic says so, and the channel is archived archive_after_hours later.
    const resolvedAt = Date.now();
    const resolve = await w.command(`resolve ${inc.id} fixed`, { user: USERS.oncall });
    expect(resolve.status).toBe(200);
    await waitUntil('the resolved topic', () => channel.topic === `SEV1 | resolved | ${title}`, 15_000);
    // The pinned copy of the card is brought up to date too: resolved, and no buttons left to click.
    const pinnedCard = await waitUntil('the pinned card resolved', () => {
      const now = w.slack.find(channel.id, pinned!);
      return now && allText({ text: now.text, blocks: now.blocks }).includes('Resolved by') ? now : undefined;
    });
    expect(buttonsOf({ blocks: pinnedCard.blocks })).toEqual([]);
    expect(channel.archived).toBe(false);
    await waitUntil('archived', () => channel.archived, 20_000);
    expect(Date.now() - resolvedAt).toBeGreaterThanOrEqual(ARCHIVE_HOURS * 3_600_000 - 1_000);
    await stillAfter('archived once', () => callsOf('conversations.archive', channel.id).length === 1, 1_500);
    expect(callsOf('conversations.archive', channel.id)[0]?.result).toEqual({ ok: true });
    const { rows } = await w.sql.query<{ channel_id: string; archived: boolean }>(
      `SELECT i.channel_id, c.archived_at IS NOT NULL AS archived FROM incidents i
         JOIN incident_channels c ON c.incident = i.number WHERE i.number = $1`,
      [inc.number],
    );
    expect(rows).toEqual([{ channel_id: channel.id, archived: true }]);
  });

  test('a channel Slack refuses is said in the thread; the page went out regardless and nothing is retried', async () => {
    w.slack.failures.push({ method: 'conversations.create', status: 200, error: 'restricted_action' });
    const creates = callsOf('conversations.create').length;
    const inc = await w.declare('sev1', 'Refused channel');
    await waitUntil('the page', () => w.triggersOf(inc.number).length === 1, 10_000);
    await waitUntil('the refusal in the thread', () =>
      w.threadOf(inc.card).some((m) => /no incident channel.*restricted_action/.test(allText(m.body))),
    );
    await stillAfter('no second try', () => callsOf('conversations.create').length === creates + 1, 2_000);
    const { rows } = await w.sql.query<{ failed: boolean }>(
      'SELECT failed_at IS NOT NULL AS failed FROM incident_channels WHERE incident = $1',
      [inc.number],
    );
    expect(rows).toEqual([{ failed: true }]);
  });
});
