// Slack's Socket Mode, faked on 127.0.0.1 for the real @slack/socket-mode client inside Lifeline: the Slack stand-in
// also answers `apps.connections.open` (only for the app token), pointing at a local WebSocket server that says
// hello, delivers envelopes the way Slack does, and records every ack the client sends back.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { SlackStandIn, type SlackAnswer, type SlackCall } from '../../src/adapters/slack/stand-in.js';
import { LifelineProcess } from './lifeline-process.js';
import { newTriggerId } from './slack-requests.js';
import { waitUntil } from './wait.js';

/** The app-level token the process runs with; it must never show up in its output. */
export const APP_TOKEN = 'xapp-1-A0LIFELINE-1234567890-test-app-token-abcdef0123456789';

export const HELLO = {
  type: 'hello',
  num_connections: 1,
  debug_info: { host: 'fake' },
  connection_info: { app_id: 'A0LIFELINE' },
} as const;

export type EnvelopeType = 'slash_commands' | 'interactive';

export interface Envelope {
  readonly envelope_id: string;
  readonly type: EnvelopeType;
  readonly payload: Record<string, unknown>;
  readonly accepts_response_payload: boolean;
  readonly retry_attempt: number;
  readonly retry_reason: string;
}

export interface Delivery {
  readonly envelope: Envelope;
  readonly sentAt: number;
}

/** What the client sent back for an envelope: `{ envelope_id, payload? }`. */
export interface SocketAck {
  readonly envelopeId: string;
  readonly payload: Record<string, unknown> | undefined;
  readonly at: number;
  readonly raw: string;
}

export interface CommandEnvelopeFields {
  readonly command?: string;
  readonly text: string;
  readonly user_id: string;
  readonly channel_id: string;
  readonly response_url: string;
  readonly trigger_id?: string;
}

export interface ButtonEnvelopeFields {
  readonly actionId: string;
  readonly value: string;
  readonly blockId: string;
  readonly label: string;
  readonly user_id: string;
  readonly channel_id: string;
  readonly message_ts: string;
  readonly response_url: string;
  readonly trigger_id?: string;
}

export class FakeSocketModeSlack extends SlackStandIn {
  /** Every message the client sent on a socket that was not a recognisable ack. */
  readonly strayMessages: string[] = [];
  readonly acks: SocketAck[] = [];
  readonly deliveries: Delivery[] = [];
  /** Sockets ever opened by the client, in order (closed ones included). */
  readonly sockets: WebSocket[] = [];
  private wss: WebSocketServer | undefined;
  private envelopeCounter = 0;
  linkUrl = '';

  constructor(private readonly appToken: string = APP_TOKEN) {
    super();
  }

  override async start(): Promise<this> {
    await super.start();
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/link' });
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    this.linkUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/link`;
    wss.on('connection', (socket) => {
      this.sockets.push(socket);
      socket.on('message', (data, isBinary) => this.record(data.toString(), isBinary));
      socket.send(JSON.stringify(HELLO));
    });
    return this;
  }

  /** `apps.connections.open` calls (whatever token they carried). */
  connectionOpens(): SlackCall[] {
    return this.calls.filter((c) => c.method === 'apps.connections.open');
  }

  /** Sockets currently open. */
  openSockets(): WebSocket[] {
    return this.sockets.filter((s) => s.readyState === s.OPEN);
  }

  async waitForConnection(timeoutMs = 10_000): Promise<WebSocket> {
    return waitUntil('a Socket Mode connection', () => this.openSockets()[0], timeoutMs);
  }

  /** Sends one envelope on the (single) open socket, as Slack does. */
  deliver(
    type: EnvelopeType,
    payload: Record<string, unknown>,
    options: { envelopeId?: string; retryAttempt?: number; acceptsResponsePayload?: boolean } = {},
  ): Delivery {
    const socket = this.openSockets()[0];
    if (!socket) throw new Error('no open Socket Mode connection to deliver on');
    const envelope: Envelope = {
      envelope_id: options.envelopeId ?? `env-${++this.envelopeCounter}-${randomBytes(4).toString('hex')}`,
      type,
      payload,
      accepts_response_payload: options.acceptsResponsePayload ?? type === 'slash_commands',
      retry_attempt: options.retryAttempt ?? 0,
      retry_reason: options.retryAttempt ? 'timeout' : '',
    };
    const delivery = { envelope, sentAt: Date.now() };
    this.deliveries.push(delivery);
    socket.send(JSON.stringify(envelope));
    return delivery;
  }

  /** Re-delivers an envelope as Slack's retry: same envelope_id and payload, retry_attempt counted up. */
  redeliver(delivery: Delivery, retryAttempt: number): Delivery {
    return this.deliver(delivery.envelope.type, delivery.envelope.payload, {
      envelopeId: delivery.envelope.envelope_id,
      retryAttempt,
      acceptsResponsePayload: delivery.envelope.accepts_response_payload,
    });
  }

  /** A slash command as Socket Mode carries it: the same fields as the HTTP form, as a JSON object. */
  deliverCommand(fields: CommandEnvelopeFields, options: { retryAttempt?: number } = {}): Delivery {
    const payload = {
      token: 'deprecated-verification-token',
      team_id: 'T0FAKE',
      team_domain: 'fake',
      channel_id: fields.channel_id,
      channel_name: 'devops-emergency',
      user_id: fields.user_id,
      user_name: fields.user_id.toLowerCase(),
      command: fields.command ?? '/incident',
      text: fields.text,
      api_app_id: 'A0LIFELINE',
      is_enterprise_install: 'false',
      response_url: fields.response_url,
      trigger_id: fields.trigger_id ?? newTriggerId(),
    };
    return this.deliver('slash_commands', payload, options);
  }

  /** A button click: an 'interactive' envelope carrying the block_actions payload. */
  deliverButton(fields: ButtonEnvelopeFields): Delivery {
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
          block_id: fields.blockId,
          value: fields.value,
          text: { type: 'plain_text', text: fields.label },
          action_ts: `${Date.now() / 1000}`,
        },
      ],
    };
    return this.deliver('interactive', payload, { acceptsResponsePayload: false });
  }

  acksOf(envelopeId: string): SocketAck[] {
    return this.acks.filter((a) => a.envelopeId === envelopeId);
  }

  /** Waits for the n-th ack (1-based) of an envelope. */
  async ack(envelopeId: string, nth = 1, timeoutMs = 10_000): Promise<SocketAck> {
    return waitUntil(`ack #${nth} of envelope ${envelopeId}`, () => this.acksOf(envelopeId)[nth - 1], timeoutMs);
  }

  override async stop(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
    await super.stop();
  }

  protected override answer(call: SlackCall): SlackAnswer {
    if (call.method === 'apps.connections.open') {
      // Slack accepts only the app-level token here (the WebClient sends it as a Bearer header).
      const token = call.authorization?.replace(/^Bearer\s+/i, '') ?? String(call.body.token ?? '');
      if (token !== this.appToken)
        return { ok: false, error: token.startsWith('xoxb-') ? 'not_allowed_token_type' : 'invalid_auth' };
      return { ok: true, url: this.linkUrl };
    }
    return super.answer(call);
  }

  private record(raw: string, isBinary: boolean): void {
    if (!isBinary) {
      try {
        const message = JSON.parse(raw) as { envelope_id?: unknown; payload?: unknown };
        if (typeof message.envelope_id === 'string') {
          const payload =
            message.payload !== null && typeof message.payload === 'object'
              ? (message.payload as Record<string, unknown>)
              : undefined;
          this.acks.push({ envelopeId: message.envelope_id, payload, at: Date.now(), raw });
          return;
        }
      } catch {
        // fall through: not JSON
      }
    }
    this.strayMessages.push(raw);
  }
}

/** A Lifeline process in Socket Mode: SLACK_APP_TOKEN set and SLACK_SIGNING_SECRET absent altogether. */
export class SocketModeLifeline extends LifelineProcess {
  override env(): Record<string, string> {
    const env: Record<string, string> = { ...super.env(), SLACK_APP_TOKEN: APP_TOKEN };
    delete env.SLACK_SIGNING_SECRET;
    return env;
  }
}
