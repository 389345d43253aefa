// Signed requests into Bolt's HTTP receiver, exactly as Slack sends them (v0 signatures, form bodies).
import { createHmac, randomBytes } from 'node:crypto';

export function sign(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export interface SendOptions {
  readonly secret: string;
  /** Seconds since the epoch; default now. */
  readonly timestamp?: number;
  /** Overrides the computed signature (to test a bad one). */
  readonly signature?: string;
  readonly retryNum?: number;
}

export async function postSigned(url: string, body: string, options: SendOptions): Promise<Response> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': options.signature ?? sign(options.secret, timestamp, body),
      ...(options.retryNum !== undefined
        ? { 'x-slack-retry-num': String(options.retryNum), 'x-slack-retry-reason': 'http_timeout' }
        : {}),
    },
    body,
  });
}

export interface CommandFields {
  readonly command: string;
  readonly text: string;
  readonly user_id: string;
  readonly channel_id: string;
  readonly response_url: string;
  readonly trigger_id?: string;
}

export function newTriggerId(): string {
  return `${Date.now()}.${randomBytes(6).toString('hex')}`;
}

export function commandBody(fields: CommandFields): string {
  return new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: 'T0FAKE',
    team_domain: 'fake',
    channel_name: 'devops-emergency',
    user_name: fields.user_id.toLowerCase(),
    api_app_id: 'A0LIFELINE',
    ...fields,
    trigger_id: fields.trigger_id ?? newTriggerId(),
  }).toString();
}

export interface ButtonFields {
  readonly actionId: string;
  readonly value: string;
  readonly user_id: string;
  readonly channel_id: string;
  readonly message_ts: string;
  readonly response_url: string;
  readonly trigger_id?: string;
  /** The block_id of the actions block (Slack sends the real one); default 'incident_actions'. */
  readonly blockId?: string;
  /** The button's label as shown; default 'x'. */
  readonly label?: string;
}

export function buttonBody(fields: ButtonFields): string {
  const payload = {
    type: 'block_actions',
    team: { id: 'T0FAKE', domain: 'fake' },
    user: { id: fields.user_id, username: fields.user_id.toLowerCase(), team_id: 'T0FAKE' },
    api_app_id: 'A0LIFELINE',
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts: fields.message_ts, channel_id: fields.channel_id, is_ephemeral: false },
    trigger_id: fields.trigger_id ?? newTriggerId(),
    channel: { id: fields.channel_id, name: 'devops-emergency' },
    message: { type: 'message', ts: fields.message_ts, text: 'card' },
    response_url: fields.response_url,
    actions: [
      {
        type: 'button',
        action_id: fields.actionId,
        block_id: fields.blockId ?? 'incident_actions',
        value: fields.value,
        text: { type: 'plain_text', text: fields.label ?? 'x' },
        action_ts: `${Date.now() / 1000}`,
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}
