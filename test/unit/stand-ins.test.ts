// The Slack and PagerDuty stand-ins answer as the real services do, over HTTP: what they take, and what they refuse
// (a refusal leaves the workspace and the event list as they were).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PagerDutyStandIn } from '../../src/adapters/pagerduty/stand-in.js';
import { RESPONSE_URL_USES, SlackStandIn } from '../../src/adapters/slack/stand-in.js';

const TOKEN = 'xoxb-stand-in-test';
const CHANNEL = 'C0EMERGENCY';

describe('the Slack stand-in', () => {
  let slack: SlackStandIn;
  beforeAll(async () => {
    const workspace = { channels: new Set([CHANNEL]), members: new Set(['U0ONCALL']) };
    slack = await new SlackStandIn({ botToken: TOKEN, workspace }).start();
  });
  afterAll(async () => {
    await slack.stop();
  });
  beforeEach(() => {
    slack.down = false;
  });

  async function call(method: string, body: object, token = TOKEN) {
    const res = await fetch(`${slack.apiUrl}${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as { ok: boolean; error?: string; ts?: string; errors?: string[] };
    return { status: res.status, retryAfter: res.headers.get('retry-after'), answer };
  }

  async function refusedWithNothingChanged(method: string, body: object, error: string, token?: string) {
    const before = JSON.stringify(slack.messages);
    const { status, answer } = await call(method, body, token ?? TOKEN);
    expect(status).toBe(200);
    expect(answer).toMatchObject({ ok: false, error });
    expect(JSON.stringify(slack.messages)).toBe(before);
  }

  it('takes a post, a reply in its thread and an update, answering with the message ts', async () => {
    const posted = await call('chat.postMessage', { channel: CHANNEL, text: 'card' });
    expect(posted.answer.ok).toBe(true);
    const ts = String(posted.answer.ts);
    expect((await call('chat.postMessage', { channel: CHANNEL, text: 'reply', thread_ts: ts })).answer.ok).toBe(true);
    expect((await call('chat.update', { channel: CHANNEL, ts, text: 'card, updated' })).answer.ok).toBe(true);
    expect(slack.find(CHANNEL, ts)?.text).toBe('card, updated');
    expect(slack.messages.filter((m) => m.threadTs === ts).map((m) => m.text)).toEqual(['reply']);
  });

  it('refuses a call without a token, or with another token, and changes nothing', async () => {
    await refusedWithNothingChanged('chat.postMessage', { channel: CHANNEL, text: 'x' }, 'not_authed', '');
    await refusedWithNothingChanged('chat.postMessage', { channel: CHANNEL, text: 'x' }, 'invalid_auth', 'xoxb-other');
  });

  it('refuses unknown channels, threads, messages and users, and changes nothing', async () => {
    const refused = refusedWithNothingChanged;
    await refused('chat.postMessage', { channel: 'C0NOPE', text: 'x' }, 'channel_not_found');
    await refused('chat.postMessage', { channel: CHANNEL, text: 'x', thread_ts: '1.000001' }, 'thread_not_found');
    await refused('chat.update', { channel: CHANNEL, ts: '1.000001', text: 'x' }, 'message_not_found');
    await refused('chat.postEphemeral', { channel: CHANNEL, user: 'U0NOPE', text: 'x' }, 'user_not_in_channel');
  });

  it('refuses text over 40,000 characters (msg_too_long) and blocks Slack refuses, and changes nothing', async () => {
    const refused = refusedWithNothingChanged;
    await refused('chat.postMessage', { channel: CHANNEL, text: 'x'.repeat(40_001) }, 'msg_too_long');
    const header = { type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } };
    await refused('chat.postMessage', { channel: CHANNEL, text: 'x', blocks: [header] }, 'invalid_blocks');
  });

  it('answers an injected 429 with Retry-After, as Slack rate-limits, and changes nothing', async () => {
    const before = slack.messages.length;
    slack.failures.push({ method: 'chat.postMessage', status: 429 });
    const { status, retryAfter, answer } = await call('chat.postMessage', { channel: CHANNEL, text: 'x' });
    expect([status, retryAfter, answer.error]).toEqual([429, '1', 'ratelimited']);
    expect(slack.messages).toHaveLength(before);
  });

  it('answers 503 while down, and changes nothing', async () => {
    const before = slack.messages.length;
    slack.down = true;
    const res = await fetch(`${slack.apiUrl}chat.postMessage`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(503);
    expect(slack.messages).toHaveLength(before);
  });

  it(`a response_url takes ${RESPONSE_URL_USES} posts and refuses the next (used_url), recording nothing`, async () => {
    const url = slack.newResponseUrl({ user: 'U0ONCALL', channel: CHANNEL });
    const post = (text: string) => fetch(url, { method: 'POST', body: JSON.stringify({ text }) });
    for (let i = 1; i <= RESPONSE_URL_USES; i++) expect((await post(`reply ${i}`)).status).toBe(200);
    const before = { responses: slack.responses.length, messages: slack.messages.length };
    const refused = await post('one too many');
    expect([refused.status, await refused.text()]).toEqual([404, 'used_url']);
    expect({ responses: slack.responses.length, messages: slack.messages.length }).toEqual(before);
    const shown = slack.messages.filter((m) => m.visibleTo === 'U0ONCALL').map((m) => m.text);
    expect(shown).toContain(`reply ${RESPONSE_URL_USES}`);
  });
});

describe('the PagerDuty stand-in', () => {
  const KEY = 'rk-oncall-000000000000';
  let pd: PagerDutyStandIn;
  beforeAll(async () => {
    pd = await new PagerDutyStandIn({ routingKeys: new Map([[KEY, 'oncall']]) }).start();
  });
  afterAll(async () => {
    await pd.stop();
  });

  async function send(event: Record<string, unknown>) {
    const headers = { 'content-type': 'application/json' };
    const res = await fetch(pd.url, { method: 'POST', headers, body: JSON.stringify(event) });
    const body = (await res.json()) as { status: string; dedup_key?: string; errors?: string[] };
    return { status: res.status, body };
  }

  const payload = { summary: 'SEV1 INC-1: down', source: 'lifeline', severity: 'critical' };

  it('accepts a trigger with 202 and records it with the role of its routing key', async () => {
    const { status, body } = await send({ routing_key: KEY, event_action: 'trigger', dedup_key: 'k1', payload });
    expect([status, body.dedup_key]).toEqual([202, 'k1']);
    expect(pd.events.map((e) => [e.event_action, e.dedup_key, e.role])).toEqual([['trigger', 'k1', 'oncall']]);
  });

  const unknownKey = { routing_key: 'rk-nope', event_action: 'trigger', dedup_key: 'k2', payload };
  const badSeverity = { routing_key: KEY, event_action: 'trigger', payload: { ...payload, severity: 'huge' } };
  it.each([
    ['an unknown routing key', unknownKey, "'routing_key' is invalid"],
    ['a trigger with a severity PagerDuty does not know', badSeverity, "'payload.severity'"],
    ['an acknowledge without dedup_key', { routing_key: KEY, event_action: 'acknowledge' }, "'dedup_key' is required"],
  ])('answers 400 to %s, and records nothing', async (_what, event, error) => {
    const before = pd.events.length;
    const { status, body } = await send(event);
    expect(status).toBe(400);
    expect(body.errors?.join('\n')).toContain(error);
    expect(pd.events).toHaveLength(before);
  });
});
