// Socket Mode through the real process (node dist/main.js) and the real @slack/socket-mode client: with SLACK_APP_TOKEN
// set and no signing secret, Lifeline opens a WebSocket (apps.connections.open with the app token), takes slash
// commands and button clicks as envelopes, acks each one on the socket within Slack's 3 s, and still serves /healthz
// on PORT. Slack's Web API, the WebSocket endpoint and PagerDuty are local fakes; PostgreSQL and Redis are real.
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { adminToken } from '../support/cli.js';
import { createTestDatabase, dropQueuePrefix, uniqueQueuePrefix, type TestDatabase } from '../support/db.js';
import { allText, linesWithSecrets, stillAfter } from '../support/e2e.js';
import { PagerDutyStandIn } from '../../src/adapters/pagerduty/stand-in.js';
import {
  APP_TOKEN,
  FakeSocketModeSlack,
  SocketModeLifeline,
  type Delivery,
  type SocketAck,
} from '../support/fake-socket-mode.js';
import type { SlackCall } from '../../src/adapters/slack/stand-in.js';
import { ROUTING_KEYS, USERS, writeTestConfig } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 30_000 });

const EMERGENCY = 'C0EMERGENCY';
const ACK_LIMIT_MS = 3_000;
const TITLE = 'Checkout API returns 502 over Socket Mode';

let db: TestDatabase;
let sql: pg.Pool;
let slack: FakeSocketModeSlack;
let pd: PagerDutyStandIn;
let prefix: string;
let configPath: string;
let lifeline: SocketModeLifeline;
const processes: SocketModeLifeline[] = [];

function newLifeline(): SocketModeLifeline {
  const p = new SocketModeLifeline({
    databaseUrl: db.url,
    queuePrefix: prefix,
    slackApiUrl: slack.apiUrl,
    pagerdutyUrl: pd.url,
    configPath,
  });
  processes.push(p);
  return p;
}

beforeAll(async () => {
  db = await createTestDatabase();
  [slack, pd] = await Promise.all([new FakeSocketModeSlack().start(), new PagerDutyStandIn().start()]);
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
  prefix = uniqueQueuePrefix();
  // Only oncall is paged within this file's lifetime: the next step is ten minutes away.
  configPath = writeTestConfig({
    steps: [
      { after_minutes: 0, notify: 'oncall' },
      { after_minutes: 10, notify: 'engineering_lead' },
    ],
  });
  lifeline = newLifeline();
  await lifeline.start();
});

afterAll(async () => {
  await Promise.allSettled(processes.map((p) => p.stop('SIGKILL')));
  await Promise.allSettled([slack?.stop(), pd?.stop(), sql?.end()]);
  await db?.drop();
  if (prefix) await dropQueuePrefix(prefix);
  if (configPath) rmSync(dirname(configPath), { recursive: true, force: true });
});

// ---- helpers -------------------------------------------------------------------------------------------------------

async function incidentCount(): Promise<number> {
  const { rows } = await sql.query<{ n: string }>('SELECT count(*) AS n FROM incidents');
  return Number(rows[0]!.n);
}

function topLevelPosts(): SlackCall[] {
  return slack.posts(EMERGENCY).filter((c) => c.body.thread_ts === undefined);
}

/** Sends `/incident <text>` on the socket and waits for its ack, which must come within Slack's 3 s. */
async function command(
  text: string,
  user: string = USERS.declarer,
): Promise<{ delivery: Delivery; ack: SocketAck; responseUrl: string }> {
  const responseUrl = slack.newResponseUrl();
  const delivery = slack.deliverCommand({ text, user_id: user, channel_id: EMERGENCY, response_url: responseUrl });
  const ack = await slack.ack(delivery.envelope.envelope_id, 1, 5_000);
  expect(ack.at - delivery.sentAt, `ack of "/incident ${text}"`).toBeLessThan(ACK_LIMIT_MS);
  return { delivery, ack, responseUrl };
}

/** Replies seen by the sender alone: text carried in the ack's payload, and posts to the command's response_url. */
function privateReplies(
  ack: SocketAck,
  responseUrl: string,
): { via: 'ack' | 'response_url'; text: string; responseType: unknown }[] {
  const id = responseUrl.slice(responseUrl.lastIndexOf('/') + 1);
  const inAck =
    ack.payload && typeof ack.payload.text === 'string'
      ? [{ via: 'ack' as const, text: allText(ack.payload), responseType: ack.payload.response_type }]
      : [];
  const viaUrl = slack.responses
    .filter((r) => r.id === id)
    .map((r) => ({ via: 'response_url' as const, text: allText(r.body), responseType: r.body.response_type }));
  return [...inAck, ...viaUrl];
}

interface CardButton {
  readonly label: string;
  readonly actionId: string;
  readonly value: string;
  readonly blockId: string;
}

function buttonsOf(card: SlackCall): CardButton[] {
  const blocks = Array.isArray(card.body.blocks) ? (card.body.blocks as Record<string, unknown>[]) : [];
  return blocks
    .filter((b) => b.type === 'actions' && Array.isArray(b.elements))
    .flatMap((b) =>
      (b.elements as Record<string, unknown>[])
        .filter((el) => el.type === 'button')
        .map((el) => ({
          label: (el.text as { text?: string } | undefined)?.text ?? '',
          actionId: String(el.action_id),
          value: String(el.value ?? ''),
          blockId: String(b.block_id ?? ''),
        })),
    );
}

// ---- the story -----------------------------------------------------------------------------------------------------

let declaration: Delivery;
let card: SlackCall;
let incidentNumber: number;

describe('Lifeline in Socket Mode', () => {
  test('starts over a WebSocket opened with the app token and serves /healthz and /metrics on PORT', async () => {
    const opens = slack.connectionOpens();
    expect(opens.length).toBeGreaterThanOrEqual(1);
    for (const open of opens) {
      expect(open.authorization).toBe(`Bearer ${APP_TOKEN}`);
      expect(open.result).toEqual({ ok: true, url: slack.linkUrl });
    }
    await slack.waitForConnection();
    expect(slack.openSockets()).toHaveLength(1);
    expect(lifeline.output.some((l) => l.includes('Lifeline started') && l.includes('socket'))).toBe(true);

    const health = await fetch(`${lifeline.baseUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type') ?? '').toContain('json');
    await health.json();
    const metrics = await fetch(`${lifeline.baseUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# (HELP|TYPE) /m);
  });

  test('`/incident sev1 <title>` on the socket: acked within 3 s, card in #emergency, oncall paged once', async () => {
    const { delivery, ack } = await command(`sev1 ${TITLE}`);
    declaration = delivery;
    expect(ack.envelopeId).toBe(delivery.envelope.envelope_id);

    card = await waitUntil('the incident card', () =>
      topLevelPosts().find((c) => c.result?.ts !== undefined && allText(c.body).includes(TITLE)),
    );
    const text = allText(card.body);
    const match = /\bINC-(\d+)\b/.exec(text);
    expect(match, `the card names its incident: ${text}`).not.toBeNull();
    incidentNumber = Number(match![1]);
    expect(text).toMatch(/SEV1/i);
    expect(text).toContain(USERS.declarer);
    expect(buttonsOf(card).map((b) => b.label)).toEqual(['Acknowledge', 'Resolve']);

    await waitUntil('the oncall page', () => pd.triggers().length >= 1);
    await stillAfter('exactly one page', () => pd.triggers().length === 1, 1_000);
    const [page] = pd.triggers();
    expect(page!.routing_key).toBe(ROUTING_KEYS.oncall);
    expect(page!.payload?.summary ?? '').toContain(`INC-${incidentNumber}`);

    const { rows } = await sql.query<{ number: number; severity: string; title: string; declared_by: string }>(
      'SELECT number, severity, title, declared_by FROM incidents',
    );
    expect(rows).toEqual([{ number: incidentNumber, severity: 'sev1', title: TITLE, declared_by: USERS.declarer }]);
    expect(topLevelPosts()).toHaveLength(1);
  });

  test('the same envelope re-delivered (retry_attempt 1, same trigger_id) creates no second incident, card or page', async () => {
    expect(declaration).toBeDefined();
    const envelopeId = declaration.envelope.envelope_id;
    const retry = slack.redeliver(declaration, 1);
    const ack = await slack.ack(envelopeId, 2, 5_000);
    expect(ack.at - retry.sentAt).toBeLessThan(ACK_LIMIT_MS);

    // Slack may also retry under a fresh envelope_id; the trigger_id is what stays the same.
    const again = slack.deliver('slash_commands', declaration.envelope.payload, { retryAttempt: 2 });
    const againAck = await slack.ack(again.envelope.envelope_id, 1, 5_000);
    expect(againAck.at - again.sentAt).toBeLessThan(ACK_LIMIT_MS);

    await stillAfter(
      'one incident, one card, one page',
      async () => (await incidentCount()) === 1 && topLevelPosts().length === 1 && pd.triggers().length === 1,
      1_500,
    );
  });

  test('a malformed command (`/incident sev5 x`) is refused to the sender alone and creates nothing', async () => {
    const before = {
      incidents: await incidentCount(),
      posts: slack.posts().length,
      updates: slack.updates().length,
      pd: pd.events.length,
    };
    const { ack, responseUrl } = await command('sev5 x', USERS.other);

    const replies = await waitUntil('the refusal (in the ack payload or via response_url)', () => {
      const found = privateReplies(ack, responseUrl);
      return found.length > 0 ? found : undefined;
    });
    expect(replies).toHaveLength(1);
    const [refusal] = replies;
    expect(refusal!.text).toContain('sev5');
    expect(refusal!.text).toMatch(/sev1\|sev2\|sev3\|sev4/); // the usage
    expect(
      refusal!.responseType === undefined || refusal!.responseType === 'ephemeral',
      `response_type ${String(refusal!.responseType)}`,
    ).toBe(true);

    await stillAfter(
      'nothing created or posted',
      async () =>
        (await incidentCount()) === before.incidents &&
        slack.posts().length === before.posts &&
        slack.updates().length === before.updates &&
        pd.events.length === before.pd,
      1_000,
    );
    expect(privateReplies(ack, responseUrl)).toHaveLength(1);
  });

  test('clicking Acknowledge (an interactive envelope) acknowledges: PagerDuty acknowledge for oncall, card updated', async () => {
    expect(card).toBeDefined();
    const button = buttonsOf(card).find((b) => b.label === 'Acknowledge');
    expect(button).toBeDefined();
    const cardTs = String(card.result!.ts);
    const click = slack.deliverButton({
      ...button!,
      user_id: USERS.oncall,
      channel_id: EMERGENCY,
      message_ts: cardTs,
      response_url: slack.newResponseUrl(),
    });
    const ack = await slack.ack(click.envelope.envelope_id, 1, 5_000);
    expect(ack.at - click.sentAt).toBeLessThan(ACK_LIMIT_MS);

    const [page] = pd.triggers();
    const acknowledged = await waitUntil('the PagerDuty acknowledge', () =>
      pd.events.find((e) => e.event_action === 'acknowledge'),
    );
    expect(acknowledged.routing_key).toBe(ROUTING_KEYS.oncall);
    expect(acknowledged.dedup_key).toBe(page!.dedup_key);

    const update = await waitUntil('the card updated as acknowledged', () =>
      slack
        .updates()
        .find((u) => u.body.channel === EMERGENCY && u.body.ts === cardTs && /acknowledged by/i.test(allText(u.body))),
    );
    expect(allText(update.body)).toContain(USERS.oncall);
    const { rows } = await sql.query<{ acknowledged_by: string | null }>(
      'SELECT acknowledged_by FROM incidents WHERE number = $1',
      [incidentNumber],
    );
    expect(rows[0]?.acknowledged_by).toBe(USERS.oncall);
    await stillAfter(
      'one acknowledge, no further page',
      () => pd.events.filter((e) => e.event_action === 'acknowledge').length === 1 && pd.triggers().length === 1,
      500,
    );
  });

  test('/api/v1 is served on PORT too (installerOptions.port): 401 without a token; a lifeline-admin token declares', async () => {
    const refused = await fetch(`${lifeline.baseUrl}/api/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"command":"/incident","text":"sev4 x"}',
    });
    expect(refused.status).toBe(401);
    const token = await adminToken(USERS.lead, lifeline.env());
    const before = await incidentCount();
    const answer = await fetch(`${lifeline.baseUrl}/api/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ command: '/incident', text: 'sev4 Declared through the API in Socket Mode' }),
    });
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { ok: boolean; incident: string };
    expect(body.ok).toBe(true);
    expect(await incidentCount()).toBe(before + 1);
    const resolved = await fetch(`${lifeline.baseUrl}/api/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ command: '/incident', text: `resolve ${body.incident}` }),
    });
    expect(resolved.status).toBe(200);
  });

  test('the app token never reaches the output or Slack; SIGTERM closes the socket and exits 0', async () => {
    const startedAt = Date.now();
    expect(await lifeline.stop('SIGTERM', 12_000)).toBe(0);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    await waitUntil('the socket closed', () => slack.openSockets().length === 0, 5_000);

    expect(lifeline.output.length).toBeGreaterThan(0);
    expect(lifeline.output.filter((l) => l.includes(APP_TOKEN))).toEqual([]);
    expect(linesWithSecrets(lifeline.output)).toEqual([]);
    const messages = [
      ...slack.calls.filter((c) => c.method.startsWith('chat.')).map((c) => JSON.stringify(c.body)),
      ...slack.responses.map((r) => JSON.stringify(r.body)),
    ];
    expect(messages.filter((m) => m.includes(APP_TOKEN))).toEqual([]);
    expect(slack.acks.filter((a) => a.raw.includes(APP_TOKEN))).toEqual([]);
    expect(slack.strayMessages).toEqual([]);
  });
});

describe('reconnecting (a fresh process on the same database and fakes)', () => {
  let restarted: SocketModeLifeline;

  beforeAll(async () => {
    restarted = newLifeline();
    await restarted.start();
    await slack.waitForConnection();
  });

  /** Waits for a new open socket (the old one gone); fails at once, with the output's tail, if the process exits. */
  async function reconnected(socketsBefore: number, timeoutMs: number): Promise<void> {
    await waitUntil(
      'a new Socket Mode connection',
      () => {
        if (!restarted.running) {
          throw new Error(
            `expected Lifeline to stay up and reconnect; it exited with ${String(restarted.exitCode)}:\n${restarted.output.slice(-25).join('\n')}`,
          );
        }
        return slack.sockets.length > socketsBefore && slack.openSockets().length === 1;
      },
      timeoutMs,
      50,
    );
  }

  /** `/incident help` over the current socket: answered in the ack, within 3 s. */
  async function stillAnswers(): Promise<void> {
    const { ack } = await command('help', USERS.other);
    expect(String(ack.payload?.text ?? '')).toContain('sev1');
  }

  test('Slack asks it to reconnect (a "disconnect" message): it opens a new socket with the app token and keeps answering', async () => {
    const socketsBefore = slack.sockets.length;
    const opensBefore = slack.connectionOpens().length;
    slack
      .openSockets()[0]!
      .send(JSON.stringify({ type: 'disconnect', reason: 'refresh_requested', debug_info: { host: 'fake' } }));
    await reconnected(socketsBefore, 15_000);
    const opens = slack.connectionOpens().slice(opensBefore);
    expect(opens.length).toBeGreaterThanOrEqual(1);
    for (const open of opens) expect(open.authorization).toBe(`Bearer ${APP_TOKEN}`);
    await stillAnswers();
  });

  // Regression: with our bounded retry policy copied into the socket client, three 500s killed the process.
  test('the socket drops while apps.connections.open answers HTTP 500 for a few seconds: it stays up and reconnects', async () => {
    const socketsBefore = slack.sockets.length;
    for (let i = 0; i < 3; i++) slack.failures.push({ method: 'apps.connections.open', status: 500 });
    slack.openSockets()[0]!.terminate(); // the connection is lost, no close handshake
    await reconnected(socketsBefore, 30_000);
    expect(slack.failures).toEqual([]);
    await stillAnswers();
  });

  test('no output line of the restarted process carries the app token', () => {
    expect(restarted.output.filter((l) => l.includes(APP_TOKEN))).toEqual([]);
    expect(linesWithSecrets(restarted.output)).toEqual([]);
  });
});
