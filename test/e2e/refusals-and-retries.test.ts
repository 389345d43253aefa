// Bad input is refused to the sender alone and changes nothing; Slack retries and double clicks count once;
// requests without a valid, fresh signature are refused with 401. The ladder here is a single oncall step.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, EMERGENCY, linesWithSecrets, stillAfter, World, type Sent, type Snapshot } from '../support/e2e.js';
import { SIGNING_SECRET, USERS } from '../support/lifeline-process.js';
import { commandBody, sign } from '../support/slack-requests.js';
import { waitUntil } from '../support/wait.js';

// Ladders run in seconds and processes restart: more than vitest's default per test, on a busy 2-core machine.
vi.setConfig({ testTimeout: 60_000 });

let w: World;

beforeAll(async () => {
  w = await World.create({ config: { steps: [{ after_minutes: 0, notify: 'oncall' }] } });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
});

/** A reply shows the usage when it spells out at least one form of the command. */
function showsUsage(reply: string): boolean {
  return /\/incident (sev1|sev[1-4]\|?|ack|update|severity|resolve|list|status|postmortem|help)\b/.test(reply);
}

function same(a: Snapshot, b: Snapshot): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Sends a command that must be refused: answered within 3 s to the sender alone, changing nothing. */
async function refused(
  text: string,
  options: { user?: string; channel?: string } = {},
): Promise<{ reply: string; sent: Sent }> {
  const before = await w.snapshot();
  const sent = await w.command(text, options);
  expect(sent.status).toBe(200);
  expect(sent.elapsedMs).toBeLessThan(3_000);
  const reply = await w.reply(sent, 5_000);
  expect(w.replyDelay(sent), 'the refusal arrives within Slack’s 3 s').toBeLessThan(3_000);
  expect(reply).toMatch(/\S/);
  // Nothing recorded, nothing paged, nothing posted; one private reply, not two.
  await stillAfter(`"${text}" to change nothing`, async () => same(await w.snapshot(), before), 400);
  expect(w.replies(sent)).toHaveLength(1);
  return { reply, sent };
}

describe('malformed commands: what is wrong, the usage, and nothing else', () => {
  const cases: { name: string; text: string; says: RegExp[] }[] = [
    { name: 'an unknown subcommand', text: 'reboot everything', says: [/reboot/] },
    { name: 'no subcommand at all', text: '', says: [] },
    { name: 'severity sev5', text: 'sev5 Disk full on db-1', says: [/sev5/i, /sev1/i, /sev4/i] },
    { name: 'a missing title', text: 'sev1', says: [/title/i] },
    { name: 'a title of blanks', text: 'sev2     ', says: [/title/i] },
    { name: 'a 151-character title', text: `sev1 ${'x'.repeat(151)}`, says: [/\b150\b/] },
    { name: 'postmortem without an ID', text: 'postmortem', says: [/INC-/] },
    { name: 'update without text', text: 'update INC-1', says: [/text|update/i] },
    { name: 'an unknown severity for `severity`', text: 'severity INC-1 sev9', says: [/sev9/i] },
    { name: 'a malformed incident ID', text: 'ack INC-abc', says: [/INC-abc/] },
  ];
  for (const c of cases) {
    test(`${c.name} (${JSON.stringify(c.text.length > 40 ? `${c.text.slice(0, 30)}…` : c.text)})`, async () => {
      const { reply } = await refused(c.text);
      for (const pattern of c.says) expect(reply).toMatch(pattern);
      expect(showsUsage(reply), `usage in: ${reply}`).toBe(true);
    });
  }
});

describe('well-formed commands that cannot be carried out', () => {
  let resolvedId = '';

  beforeAll(async () => {
    const inc = await w.declare('sev4', 'Old incident, already closed');
    await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
    await waitUntil('it is resolved', async () => (await w.incidentRow(inc.number))?.resolved_at != null);
    resolvedId = inc.id;
  });

  test('an unknown incident ID is named in the refusal (ack, status, update, resolve, severity, postmortem)', async () => {
    for (const text of [
      'ack INC-999',
      'status INC-999',
      'update INC-999 still broken',
      'resolve INC-999',
      'severity INC-999 sev2',
      'postmortem INC-999',
    ]) {
      const { reply } = await refused(text);
      expect(reply, text).toContain('INC-999');
    }
  });

  test('a command from a channel not in allowed_channels is refused and names where to go', async () => {
    const { reply } = await refused('sev1 Everything is down', { channel: 'C0RANDOM' });
    expect(reply).toMatch(/channel/i);
    expect(reply).toContain(EMERGENCY);
  });

  test('acknowledging (or resolving, updating, re-grading) a resolved incident is refused to a responder', async () => {
    for (const text of [
      `ack ${resolvedId}`,
      `resolve ${resolvedId}`,
      `update ${resolvedId} more`,
      `severity ${resolvedId} sev1`,
    ]) {
      const { reply } = await refused(text, { user: USERS.oncall });
      expect(reply, text).toContain(resolvedId);
      expect(reply, text).toMatch(/resolved/i);
    }
  });

  test('leaving the ID out while several incidents are open is refused, naming them', async () => {
    const one = await w.declare('sev4', 'Open one');
    const two = await w.declare('sev4', 'Open two');
    for (const text of ['ack', 'status', 'resolve', 'update still looking']) {
      const { reply } = await refused(text);
      expect(reply, text).toContain(one.id);
      expect(reply, text).toContain(two.id);
    }
    for (const inc of [one, two]) await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
  });

  test('those refusals also show the usage', async () => {
    const missing: string[] = [];
    for (const [text, channel] of [
      ['ack INC-999', EMERGENCY],
      ['sev1 Everything is down', 'C0RANDOM'],
      [`ack ${resolvedId}`, EMERGENCY],
    ] as const) {
      const { reply } = await refused(text, { channel, user: USERS.oncall });
      if (!showsUsage(reply)) missing.push(`"${text}" in ${channel} → ${reply}`);
    }
    expect(missing).toEqual([]);
  });
});

describe('titles', () => {
  test('quotes, emoji and SQL are stored and shown verbatim', async () => {
    const title = `"Payments" can't settle 🔥💳 — '; DROP TABLE incidents; --`;
    const inc = await w.declare('sev1', title);
    const { rows } = await w.sql.query<{ title: string }>('SELECT title FROM incidents WHERE number = $1', [
      inc.number,
    ]);
    expect(rows[0]!.title).toBe(title);
    expect(allText(inc.card.body)).toContain(title);
    await waitUntil('the page', () => w.triggersOf(inc.number).length >= 1);
    expect(w.triggersOf(inc.number)[0]!.payload?.summary).toContain(title);
    const list = await w.command('list');
    expect(await w.reply(list)).toContain(title);
    await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
    await waitUntil('resolved', () => w.followUpsOf(inc.number, 'resolve').length >= 1);
  });

  test('a title of exactly 150 characters is accepted', async () => {
    const title = `Edge ${'y'.repeat(145)}`;
    expect(title.length).toBe(150);
    const inc = await w.declare('sev4', title);
    expect((await w.incidentRow(inc.number))?.title).toBe(title);
    await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
  });

  // The limit counts characters (code points), as people and PostgreSQL's char_length do, not UTF-16 units.
  test('a title of 150 characters that include an emoji is accepted (characters, not UTF-16 units)', async () => {
    const title = `Emoji ${'z'.repeat(143)}🔥`;
    expect([...title].length).toBe(150);
    const sent = await w.command(`sev4 ${title}`);
    const reply = await w.reply(sent);
    expect(reply).not.toMatch(/limit/i);
    const { rows } = await w.sql.query<{ number: number }>('SELECT number FROM incidents WHERE title = $1', [title]);
    expect(rows).toHaveLength(1);
    await w.reply(await w.command(`resolve INC-${rows[0]!.number}`, { user: USERS.oncall }));
  });

  test('&, < and > (which Slack sends as entities) are stored as typed and shown verbatim, never as markup', async () => {
    const typed = 'p95 > 2s & rising on <checkout> <!channel>';
    const asSlackSends = typed.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const inc = await w.declare('sev4', asSlackSends);
    expect((await w.incidentRow(inc.number))?.title).toBe(typed);
    // mrkdwn (the top-level text and mrkdwn blocks) must carry the entities; plain_text shows characters literally.
    const problems: string[] = [];
    const texts = textObjects(inc.card.body);
    expect(texts.some((t) => t.text.includes(asSlackSends) || t.text.includes(typed))).toBe(true);
    for (const t of texts) {
      if (t.type === 'plain_text' ? t.text.includes(asSlackSends) : t.text.includes(typed))
        problems.push(`${t.type}: ${t.text}`);
    }
    // The top-level `text` is mrkdwn too (the notification fallback): unescaped, `<!channel>` would ping everyone.
    expect(problems).toEqual([]);
    await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
  });
});

/** Every text object of a message: its top-level text (mrkdwn) and each text object in its blocks, with its type. */
function textObjects(body: Record<string, unknown>): { type: string; text: string }[] {
  const out: { type: string; text: string }[] = [];
  if (typeof body.text === 'string') out.push({ type: 'mrkdwn', text: body.text });
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if ((o.type === 'mrkdwn' || o.type === 'plain_text') && typeof o.text === 'string')
      out.push({ type: o.type, text: o.text });
    for (const v of Object.values(o)) walk(v);
  };
  walk(body.blocks);
  return out;
}

describe('retries and double submits', () => {
  test('a slash command re-sent by Slack (same trigger_id, x-slack-retry-num: 1) creates no second incident, card or page', async () => {
    const inc = await w.declare('sev1', 'Retried declaration');
    await waitUntil(
      'the page and its mention',
      () => w.triggersOf(inc.number).length >= 1 && w.threadOf(inc.card).length >= 1,
    );
    await w.reply(inc.sent);
    const before = await w.snapshot();
    const retry = await w.resend(inc.sent, { retryNum: 1 });
    expect(retry.status).toBe(200);
    await stillAfter('no second incident, card or page', async () => same(await w.snapshot(), before), 1_500);
    expect(w.topLevelPosts().filter((c) => allText(c.body).includes('Retried declaration'))).toHaveLength(1);
    await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
    await waitUntil('resolved', () => w.followUpsOf(inc.number, 'resolve').length >= 1);
  });

  test('a retry that arrives while the original is still being handled also counts once', async () => {
    const before = await w.snapshot();
    const responseUrl = w.slack.newResponseUrl();
    const body = commandBody({
      command: '/incident',
      text: 'sev1 Racing retry',
      user_id: USERS.declarer,
      channel_id: EMERGENCY,
      response_url: responseUrl,
    });
    const request = { body, responseUrl, triggerId: '', user: USERS.declarer, channel: EMERGENCY };
    const [a, b] = await Promise.all([w.resend(request), w.resend(request, { retryNum: 1 })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    await waitUntil('the card', () => w.topLevelPosts().some((c) => allText(c.body).includes('Racing retry')));
    await waitUntil('one incident more', async () => (await w.snapshot()).incidents === before.incidents + 1);
    await stillAfter(
      'exactly one incident, card and page',
      async () => {
        const now = await w.snapshot();
        const cards = w.topLevelPosts().filter((c) => allText(c.body).includes('Racing retry')).length;
        return (
          now.incidents === before.incidents + 1 &&
          cards === 1 &&
          w.pd.triggers().filter((t) => t.payload?.summary.includes('Racing retry')).length <= 1
        );
      },
      1_500,
    );
    const { rows } = await w.sql.query<{ number: number }>(`SELECT number FROM incidents WHERE title = 'Racing retry'`);
    expect(rows).toHaveLength(1);
    await w.reply(await w.command(`resolve INC-${rows[0]!.number}`, { user: USERS.oncall }));
  });

  test('a double click on Acknowledge (two trigger_ids) acknowledges once', async () => {
    const inc = await w.declare('sev1', 'Double click');
    await waitUntil('the page', () => w.triggersOf(inc.number).length >= 1);
    const [a, b] = await Promise.all([
      w.click(inc.card, 'Acknowledge', { user: USERS.oncall }),
      w.click(inc.card, 'Acknowledge', { user: USERS.oncall }),
    ]);
    expect(a.triggerId).not.toBe(b.triggerId);
    expect([a.status, b.status]).toEqual([200, 200]);
    await waitUntil('the acknowledge event', () => w.followUpsOf(inc.number, 'acknowledge').length >= 1);
    await stillAfter('one acknowledgement', () => w.followUpsOf(inc.number, 'acknowledge').length === 1, 1_500);
    const acknowledged = (await w.timeline(inc.number)).filter((e) => e.kind === 'acknowledged');
    expect(acknowledged).toHaveLength(1);
    // The second click may be told it was already acknowledged — only the clicker sees that.
    expect(
      w.ephemeralsTo(USERS.oncall).filter((e) => /already acknowledged/i.test(allText(e.body))).length,
    ).toBeLessThanOrEqual(1);
    expect(w.slack.ephemerals().filter((e) => e.body.user !== USERS.oncall)).toHaveLength(0);

    // The same click re-sent by Slack (same trigger_id) changes nothing either.
    const before = await w.snapshot();
    const ephemerals = w.slack.ephemerals().length;
    const retry = await w.resend(a, { retryNum: 1 });
    expect(retry.status).toBe(200);
    await stillAfter(
      'nothing new after a retried click',
      async () => same(await w.snapshot(), before) && w.slack.ephemerals().length === ephemerals,
      1_000,
    );
    await w.reply(await w.command(`resolve ${inc.id}`, { user: USERS.oncall }));
    await waitUntil('resolved', () => w.followUpsOf(inc.number, 'resolve').length >= 1);
  });
});

describe('request signatures', () => {
  const declaring = () => {
    const responseUrl = w.slack.newResponseUrl();
    return {
      responseUrl,
      body: commandBody({
        command: '/incident',
        text: 'sev1 Forged outage',
        user_id: USERS.declarer,
        channel_id: EMERGENCY,
        response_url: responseUrl,
      }),
    };
  };

  async function expectRefused401(send: (body: string) => Promise<Response>): Promise<void> {
    const before = await w.snapshot();
    const { body, responseUrl } = declaring();
    const res = await send(body);
    await res.text();
    expect(res.status).toBe(401);
    await stillAfter('nothing created by a refused request', async () => same(await w.snapshot(), before), 700);
    expect(w.slack.responses.filter((r) => responseUrl.endsWith(`/${r.id}`))).toHaveLength(0);
  }

  const post = (body: string, headers: Record<string, string>) =>
    fetch(w.lifeline.eventsUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body,
    });
  const now = () => Math.floor(Date.now() / 1000);

  test('a bad signature is refused with 401 and creates nothing', async () => {
    await expectRefused401((body) =>
      post(body, { 'x-slack-request-timestamp': String(now()), 'x-slack-signature': `v0=${'0'.repeat(64)}` }),
    );
  });

  test('a signature made with another secret is refused with 401', async () => {
    await expectRefused401((body) =>
      post(body, {
        'x-slack-request-timestamp': String(now()),
        'x-slack-signature': sign('not-the-secret', now(), body),
      }),
    );
  });

  test('a signature over a different body (tampered request) is refused with 401', async () => {
    await expectRefused401((body) => {
      const ts = now();
      return post(body, {
        'x-slack-request-timestamp': String(ts),
        'x-slack-signature': sign(SIGNING_SECRET, ts, body.replace('Forged', 'Other')),
      });
    });
  });

  test('a correctly signed request whose timestamp is more than 5 minutes old is refused with 401', async () => {
    await expectRefused401((body) => {
      const old = now() - 6 * 60;
      return post(body, {
        'x-slack-request-timestamp': String(old),
        'x-slack-signature': sign(SIGNING_SECRET, old, body),
      });
    });
  });

  test('a request without signature headers is refused with 401', async () => {
    await expectRefused401((body) => post(body, {}));
  });
});

test('no log line carries a secret', () => {
  expect(linesWithSecrets(w.output())).toEqual([]);
});
