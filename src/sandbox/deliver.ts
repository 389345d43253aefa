// What Slack's platform does between a person and the app: a slash command or a button click becomes an HTTP request
// to the app's Request URL (Lifeline's POST /slack/events), form-encoded and signed with the signing secret (v0), and
// the app has 3 seconds to acknowledge it. Bolt verifies these requests exactly as it verifies Slack's.
import { createHmac, randomBytes } from 'node:crypto';
import { wireMessage, TEAM_ID, type SlackMessage } from './slack.js';
import type { Channel, Person } from './world.js';

const ACK_TIMEOUT_MS = 3_000;
const APP_ID = 'A0LIFELINE';
const TEAM_DOMAIN = 'lifeline-sandbox';

export function sign(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export interface Delivery {
  /** The app's HTTP status; undefined when it did not answer in time or at all. */
  readonly status: number | undefined;
  readonly body: string;
  /** What Slack tells the user when the app failed to acknowledge. */
  readonly error: 'operation_timeout' | 'dispatch_failed' | undefined;
}

/** Posts a signed request as Slack does, and reports the acknowledgement (or Slack's error for its absence). */
export async function deliver(url: string, secret: string, body: string): Promise<Delivery> {
  const timestamp = Math.floor(Date.now() / 1000);
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': sign(secret, timestamp, body),
      },
      body,
      signal: AbortSignal.timeout(ACK_TIMEOUT_MS),
    });
    const text = await response.text();
    return { status: response.status, body: text, error: response.ok ? undefined : 'dispatch_failed' };
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError';
    return { status: undefined, body: '', error: timedOut ? 'operation_timeout' : 'dispatch_failed' };
  }
}

export function newTriggerId(): string {
  return `${Date.now()}.${randomBytes(6).toString('hex')}`;
}

export interface SlashCommand {
  readonly command: string;
  readonly text: string;
  readonly user: Person;
  readonly channel: Channel;
  readonly responseUrl: string;
}

/** Slack's slash command request body. */
export function slashCommandBody(c: SlashCommand): string {
  return new URLSearchParams({
    token: 'sandbox-verification-token',
    team_id: TEAM_ID,
    team_domain: TEAM_DOMAIN,
    channel_id: c.channel.id,
    channel_name: c.channel.name,
    user_id: c.user.id,
    user_name: userName(c.user),
    command: c.command,
    // Slack sends &, < and > as entities in the text of a command.
    text: c.text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'),
    api_app_id: APP_ID,
    is_enterprise_install: 'false',
    response_url: c.responseUrl,
    trigger_id: newTriggerId(),
  }).toString();
}

export interface ButtonClick {
  readonly user: Person;
  readonly channel: Channel;
  readonly message: SlackMessage;
  readonly blockId: string;
  readonly button: Record<string, unknown>;
  readonly responseUrl: string;
}

/** Slack's block_actions interactive payload for a button click, form-encoded as `payload=<json>`. */
export function blockActionsBody(c: ButtonClick): string {
  const label =
    typeof c.button.text === 'object' && c.button.text !== null
      ? (c.button.text as Record<string, unknown>).text
      : undefined;
  const ephemeral = c.message.visibleTo !== undefined;
  const payload = {
    type: 'block_actions',
    user: { id: c.user.id, username: userName(c.user), name: userName(c.user), team_id: TEAM_ID },
    api_app_id: APP_ID,
    token: 'sandbox-verification-token',
    container: {
      type: 'message',
      message_ts: c.message.ts,
      channel_id: c.channel.id,
      is_ephemeral: ephemeral,
      ...(c.message.threadTs ? { thread_ts: c.message.threadTs } : {}),
    },
    trigger_id: newTriggerId(),
    team: { id: TEAM_ID, domain: TEAM_DOMAIN },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: c.channel.id, name: c.channel.name },
    // Slack leaves the message out of a payload from an ephemeral message.
    ...(ephemeral ? {} : { message: wireMessage(c.message) }),
    state: { values: {} },
    response_url: c.responseUrl,
    actions: [
      {
        type: 'button',
        action_id: c.button.action_id,
        block_id: c.blockId,
        text: { type: 'plain_text', text: typeof label === 'string' ? label : '', emoji: true },
        ...(typeof c.button.value === 'string' ? { value: c.button.value } : {}),
        ...(typeof c.button.style === 'string' ? { style: c.button.style } : {}),
        action_ts: (Date.now() / 1000).toFixed(6),
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

function userName(person: Person): string {
  return person.name.toLowerCase().replace(/[^a-z0-9]+/g, '.');
}
