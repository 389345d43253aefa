// One end-to-end world per test file: its own database and queue prefix, the Slack and PagerDuty stand-ins at the
// HTTP boundary, and any number of real Lifeline processes (node dist/main.js) on them. Helpers speak Slack's wire
// format.
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { createTestDatabase, dropQueuePrefix, uniqueQueuePrefix, type TestDatabase } from './db.js';
import { PagerDutyStandIn, type PagerDutyEvent } from '../../src/adapters/pagerduty/stand-in.js';
import { SlackStandIn, type SlackCall } from '../../src/adapters/slack/stand-in.js';
import {
  BOT_TOKEN,
  LifelineProcess,
  ROUTING_KEYS,
  SIGNING_SECRET,
  USERS,
  writeTestConfig,
  type TestConfigOptions,
} from './lifeline-process.js';
import { buttonBody, commandBody, newTriggerId, postSigned } from './slack-requests.js';
import { waitUntil } from './wait.js';

export const EMERGENCY = 'C0EMERGENCY';
export const ROLE_ORDER = ['oncall', 'engineering_lead', 'cto', 'ceo'] as const;
export const ROLE_USERS: Record<(typeof ROLE_ORDER)[number], string> = {
  oncall: USERS.oncall,
  engineering_lead: USERS.lead,
  cto: USERS.cto,
  ceo: USERS.ceo,
};
/** The four-role ladder (ROLE_ORDER), step i paging `stepMs[i]` ms after the declaration. */
function ladderSteps(stepMs: readonly number[]): { after_minutes: number; notify: (typeof ROLE_ORDER)[number] }[] {
  return ROLE_ORDER.map((notify, i) => ({ after_minutes: stepMs[i]! / 60_000, notify }));
}
/** Every value that must never appear in a log line or a Slack message. */
export const SECRETS: readonly string[] = [BOT_TOKEN, SIGNING_SECRET, ...Object.values(ROUTING_KEYS)];

export interface WorldOptions {
  readonly config?: TestConfigOptions;
  /** The four-role ladder (ROLE_ORDER), step i paging this many ms after the declaration: instead of config.steps. */
  readonly ladderMs?: readonly number[];
  readonly extraEnv?: Record<string, string>;
}

export interface SendOptions {
  readonly user?: string;
  readonly channel?: string;
  readonly triggerId?: string;
  readonly retryNum?: number;
  readonly timestamp?: number;
  readonly signature?: string;
  /** Which process receives it (default: the first one). */
  readonly via?: LifelineProcess;
}

export interface Sent {
  readonly user: string;
  readonly channel: string;
  readonly status: number;
  /** Time until Slack would have had its HTTP answer. */
  readonly elapsedMs: number;
  readonly sentAt: number;
  readonly responseUrl: string;
  readonly responseId: string;
  readonly triggerId: string;
  readonly body: string;
  /** A reply carried in the ack itself (help, refusals of malformed commands), if any. */
  readonly ackReply?: { readonly text: string; readonly responseType: string; readonly at: number };
}

export interface Declared {
  readonly number: number;
  readonly id: string;
  readonly card: SlackCall;
  readonly cardTs: string;
  readonly sent: Sent;
}

export interface Snapshot {
  readonly incidents: number;
  readonly events: number;
  readonly steps: number;
  readonly pdEvents: number;
  readonly posts: number;
  readonly updates: number;
}

export interface EventRow {
  readonly at: Date;
  readonly actor: string;
  readonly kind: string;
  readonly detail: string;
}

export class World {
  readonly processes: LifelineProcess[] = [];
  private constructor(
    readonly db: TestDatabase,
    readonly sql: pg.Pool,
    readonly slack: SlackStandIn,
    readonly pd: PagerDutyStandIn,
    readonly prefix: string,
    readonly configPath: string,
    private readonly extraEnv: Record<string, string>,
  ) {}

  static async create(options: WorldOptions = {}): Promise<World> {
    const db = await createTestDatabase();
    const slack = new SlackStandIn({ botToken: BOT_TOKEN });
    const pd = new PagerDutyStandIn();
    await Promise.all([slack.start(), pd.start()]);
    const sql = new pg.Pool({ connectionString: db.url, max: 3 });
    const config = options.ladderMs ? { ...options.config, steps: ladderSteps(options.ladderMs) } : options.config;
    return new World(db, sql, slack, pd, uniqueQueuePrefix(), writeTestConfig(config), options.extraEnv ?? {});
  }

  /** A process on this world's database, prefix and fakes (not started). */
  process(
    options: { role?: 'all' | 'bot' | 'worker'; extraEnv?: Record<string, string>; configPath?: string } = {},
  ): LifelineProcess {
    const p = new LifelineProcess({
      databaseUrl: this.db.url,
      queuePrefix: this.prefix,
      slackApiUrl: this.slack.apiUrl,
      pagerdutyUrl: this.pd.url,
      configPath: options.configPath ?? this.configPath,
      role: options.role ?? 'all',
      extraEnv: { ...this.extraEnv, ...options.extraEnv },
    });
    this.processes.push(p);
    return p;
  }

  /** The process that receives requests unless told otherwise: the first one still running. */
  get lifeline(): LifelineProcess {
    const p = this.processes.find((x) => x.running && x.env().LIFELINE_ROLE !== 'worker');
    if (!p) throw new Error('no Lifeline process is running');
    return p;
  }

  /** Every line any process of this world printed. */
  output(): string[] {
    return this.processes.flatMap((p) => p.output);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.processes.map((p) => p.stop('SIGKILL')));
    await Promise.allSettled([this.slack.stop(), this.pd.stop(), this.sql.end()]);
    await this.db.drop();
    await dropQueuePrefix(this.prefix);
    rmSync(dirname(this.configPath), { recursive: true, force: true });
  }

  // ---- Slack requests ---------------------------------------------------------------------------------------

  /** `/incident <text>` from the declarer in #emergency, signed like Slack; resolves once the HTTP answer is in. */
  async command(text: string, options: SendOptions = {}, name = '/incident'): Promise<Sent> {
    const responseUrl = this.slack.newResponseUrl();
    const triggerId = options.triggerId ?? newTriggerId();
    const body = commandBody({
      command: name,
      text,
      user_id: options.user ?? USERS.declarer,
      channel_id: options.channel ?? EMERGENCY,
      response_url: responseUrl,
      trigger_id: triggerId,
    });
    return this.post(
      body,
      responseUrl,
      triggerId,
      options,
      options.user ?? USERS.declarer,
      options.channel ?? EMERGENCY,
    );
  }

  /** Re-sends exactly the same request body (what Slack does on a retry). */
  async resend(
    sent: Pick<Sent, 'body' | 'responseUrl' | 'triggerId' | 'user' | 'channel'>,
    options: SendOptions = {},
  ): Promise<Sent> {
    return this.post(sent.body, sent.responseUrl, sent.triggerId, options, sent.user, sent.channel);
  }

  /** Clicks the card's button with this label, as Slack's block_actions payload. */
  async click(card: SlackCall, label: 'Acknowledge' | 'Resolve', options: SendOptions = {}): Promise<Sent> {
    const button = findButton(card, label);
    if (!button) throw new Error(`the card has no "${label}" button: ${JSON.stringify(card.body.blocks)}`);
    const ts = String(card.result?.ts ?? '');
    const responseUrl = this.slack.newResponseUrl();
    const triggerId = options.triggerId ?? newTriggerId();
    const body = buttonBody({
      actionId: button.actionId,
      value: button.value,
      blockId: button.blockId,
      label,
      user_id: options.user ?? USERS.oncall,
      channel_id: String(card.body.channel),
      message_ts: ts,
      response_url: responseUrl,
      trigger_id: triggerId,
    });
    return this.post(body, responseUrl, triggerId, options, options.user ?? USERS.oncall, String(card.body.channel));
  }

  private async post(
    body: string,
    responseUrl: string,
    triggerId: string,
    options: SendOptions,
    user: string,
    channel: string,
  ): Promise<Sent> {
    const target = options.via ?? this.lifeline;
    const sentAt = Date.now();
    const res = await postSigned(target.eventsUrl, body, {
      secret: SIGNING_SECRET,
      ...(options.timestamp !== undefined ? { timestamp: options.timestamp } : {}),
      ...(options.signature !== undefined ? { signature: options.signature } : {}),
      ...(options.retryNum !== undefined ? { retryNum: options.retryNum } : {}),
    });
    const ackBody = await res.text();
    const ackReply = parseAckReply(ackBody);
    return {
      ...(ackReply ? { ackReply } : {}),
      user,
      channel,
      status: res.status,
      elapsedMs: Date.now() - sentAt,
      sentAt,
      responseUrl,
      responseId: responseUrl.slice(responseUrl.lastIndexOf('/') + 1),
      triggerId,
      body,
    };
  }

  /**
   * Every reply this request's sender alone saw, oldest first: posts to its response_url, and ephemeral messages to
   * the sender in its channel since it was sent (Slack allows either).
   */
  privateMessages(sent: Sent): { text: string; at: number; via: 'ack' | 'response_url' | 'ephemeral' }[] {
    const inAck =
      sent.ackReply && sent.ackReply.responseType === 'ephemeral'
        ? [{ text: sent.ackReply.text, at: sent.ackReply.at, via: 'ack' as const }]
        : [];
    const viaUrl = this.slack.responses
      .filter((r) => r.id === sent.responseId)
      .map((r) => ({ text: allText(r.body), at: r.at, via: 'response_url' as const }));
    const viaEphemeral = this.slack
      .ephemerals()
      .filter((c) => c.body.user === sent.user && c.body.channel === sent.channel && c.at >= sent.sentAt)
      .map((c) => ({ text: allText(c.body), at: c.at, via: 'ephemeral' as const }));
    return [...inAck, ...viaUrl, ...viaEphemeral].sort((a, b) => a.at - b.at);
  }

  /** The texts of privateMessages(). */
  replies(sent: Sent): string[] {
    return this.privateMessages(sent).map((m) => m.text);
  }

  /** Waits for the first reply seen by this request's sender alone. */
  async reply(sent: Sent, timeoutMs = 10_000): Promise<string> {
    await waitUntil(`a reply to ${sent.responseUrl}`, () => this.replies(sent).length > 0, timeoutMs);
    return this.replies(sent)[0]!;
  }

  /** When the first private reply to this request arrived, in ms after it was sent. */
  replyDelay(sent: Sent): number | undefined {
    const first = this.privateMessages(sent)[0];
    return first ? first.at - sent.sentAt : undefined;
  }

  /** Ephemeral messages to one user. */
  ephemeralsTo(user: string): SlackCall[] {
    return this.slack.ephemerals().filter((c) => c.body.user === user);
  }

  // ---- incidents as Slack sees them ------------------------------------------------------------------------------

  /** Top-level posts in a channel (not thread replies). */
  topLevelPosts(channel = EMERGENCY): SlackCall[] {
    return this.slack.posts(channel).filter((c) => c.body.thread_ts === undefined);
  }

  /** The card of INC-n: the top-level post in #emergency that names it. */
  cardOf(number: number): SlackCall | undefined {
    const re = new RegExp(`\\bINC-${number}\\b`);
    return this.topLevelPosts().find((c) => re.test(allText(c.body)) && c.result?.ts !== undefined);
  }

  /** Declares an incident and waits for its card; the incident number is read off the card. */
  async declare(severity: string, title: string, options: SendOptions = {}): Promise<Declared> {
    const before = new Set(this.topLevelPosts());
    const sent = await this.command(`${severity} ${title}`, options);
    if (sent.status !== 200) throw new Error(`declaring answered HTTP ${sent.status}`);
    const card = await waitUntil(`the card for "${title}"`, () =>
      this.topLevelPosts().find((c) => !before.has(c) && c.result?.ts !== undefined && allText(c.body).includes(title)),
    );
    const match = /\bINC-(\d+)\b/.exec(allText(card.body));
    if (!match) throw new Error(`the card names no incident ID: ${allText(card.body)}`);
    const number = Number(match[1]);
    return { number, id: `INC-${number}`, card, cardTs: String(card.result!.ts), sent };
  }

  /** Waits for the card of INC-n, checks that it is in #emergency and shows every one of `parts`; returns its text. */
  async cardShowing(
    number: number,
    parts: readonly string[],
    timeoutMs = 10_000,
  ): Promise<{ card: SlackCall; text: string }> {
    const card = await waitUntil(`the card of INC-${number}`, () => this.cardOf(number), timeoutMs);
    expect(card.body.channel).toBe(EMERGENCY);
    const text = allText(card.body);
    for (const part of parts) expect(text).toContain(part);
    return { card, text };
  }

  /** chat.update calls on a card, oldest first. */
  cardUpdates(card: SlackCall): SlackCall[] {
    return this.slack.updates().filter((u) => u.body.ts === card.result?.ts && u.body.channel === card.body.channel);
  }

  /** Thread messages under a card, oldest first. */
  threadOf(card: SlackCall): SlackCall[] {
    return this.slack.posts().filter((c) => c.body.thread_ts !== undefined && c.body.thread_ts === card.result?.ts);
  }

  // ---- PagerDuty as the fake saw it --------------------------------------------------------------------------

  /** Triggers whose summary names INC-n, in the order they arrived. */
  triggersOf(number: number): PagerDutyEvent[] {
    const re = new RegExp(`\\bINC-${number}\\b`);
    return this.pd
      .triggers()
      .filter((e) => re.test(e.payload?.summary ?? '') || re.test(JSON.stringify(e.payload?.custom_details ?? {})));
  }

  /** Every event (trigger, acknowledge, resolve) for the alerts INC-n opened. */
  eventsOf(number: number): PagerDutyEvent[] {
    const keys = new Set(this.triggersOf(number).map((e) => e.dedup_key));
    return this.pd.events.filter((e) => keys.has(e.dedup_key));
  }

  followUpsOf(number: number, action: 'acknowledge' | 'resolve'): PagerDutyEvent[] {
    return this.eventsOf(number).filter((e) => e.event_action === action);
  }

  // ---- the database --------------------------------------------------------------------------------------------

  async snapshot(): Promise<Snapshot> {
    const { rows } = await this.sql.query<{ incidents: string; events: string; steps: string }>(
      `SELECT (SELECT count(*) FROM incidents) AS incidents, (SELECT count(*) FROM incident_events) AS events,
              (SELECT count(*) FROM escalation_steps) AS steps`,
    );
    const r = rows[0]!;
    return {
      incidents: Number(r.incidents),
      events: Number(r.events),
      steps: Number(r.steps),
      pdEvents: this.pd.events.length,
      posts: this.slack.posts().length,
      updates: this.slack.updates().length,
    };
  }

  async timeline(number: number): Promise<EventRow[]> {
    const { rows } = await this.sql.query<EventRow>(
      'SELECT at, actor, kind, detail FROM incident_events WHERE incident = $1 ORDER BY id',
      [number],
    );
    return rows;
  }

  async incidentRow(number: number): Promise<Record<string, unknown> | undefined> {
    const { rows } = await this.sql.query<Record<string, unknown>>('SELECT * FROM incidents WHERE number = $1', [
      number,
    ]);
    return rows[0];
  }

  /** Slack messages queued in the outbox and not sent yet. */
  async pendingOutbox(): Promise<number> {
    const { rows } = await this.sql.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM slack_outbox WHERE sent_at IS NULL',
    );
    return rows[0]!.n;
  }

  /**
   * Waits until what earlier tests set going (job results, notes from the outbox, pages) has reached Slack and
   * PagerDuty: the outbox empty and no new Slack call, response_url post or PagerDuty event for 3 s.
   */
  async settled(): Promise<void> {
    // Quiet for 3 s: under load a job's last messages (its result, then its plan's update) can be a second apart.
    let seen = '';
    let quietSince = Date.now();
    await waitUntil(
      'Slack to go quiet',
      async () => {
        const now = `${await this.pendingOutbox()}/${this.slack.calls.length}/${this.slack.responses.length}/${this.pd.events.length}`;
        if (now !== seen || !now.startsWith('0/')) {
          seen = now;
          quietSince = Date.now();
        }
        return Date.now() - quietSince >= 3_000;
      },
      30_000,
      250,
    );
  }

  async stepStates(number: number): Promise<{ role: string; state: string; due_at: Date }[]> {
    const { rows } = await this.sql.query<{ role: string; state: string; due_at: Date }>(
      'SELECT role, state, due_at FROM escalation_steps WHERE incident = $1 ORDER BY generation, step_index',
      [number],
    );
    return rows;
  }
}

// ---- helpers -----------------------------------------------------------------------------------------------------

/** The text of a message body: its `text` and every text inside its blocks, joined by newlines. */
export function allText(body: Record<string, unknown>): string {
  const parts: string[] = [];
  if (typeof body.text === 'string') parts.push(body.text);
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'text' && typeof v === 'string') parts.push(v);
      else walk(v);
    }
  };
  walk(body.blocks);
  return parts.join('\n');
}

/** Button labels shown on a message, in order. */
export function buttonLabels(body: Record<string, unknown>): string[] {
  return buttonsOf(body).map((b) => b.label);
}

export interface ButtonInfo {
  readonly label: string;
  readonly actionId: string;
  readonly value: string;
  readonly blockId: string;
}

export function buttonsOf(body: Record<string, unknown>): ButtonInfo[] {
  const blocks = Array.isArray(body.blocks) ? (body.blocks as Record<string, unknown>[]) : [];
  const out: ButtonInfo[] = [];
  for (const block of blocks) {
    if (block.type !== 'actions' || !Array.isArray(block.elements)) continue;
    for (const el of block.elements as Record<string, unknown>[]) {
      if (el.type !== 'button') continue;
      const text = el.text as { text?: string } | undefined;
      out.push({
        label: text?.text ?? '',
        actionId: String(el.action_id),
        value: String(el.value ?? ''),
        blockId: String(block.block_id ?? ''),
      });
    }
  }
  return out;
}

function findButton(card: SlackCall, label: string): ButtonInfo | undefined {
  return buttonsOf(card.body).find((b) => b.label === label);
}

/** Asserts a condition keeps holding for a short while: the only way to see that something does NOT happen. */
export async function stillAfter(what: string, check: () => boolean | Promise<boolean>, ms = 1_500): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (!(await check())) throw new Error(`expected ${what} to keep holding for ${ms} ms, but it stopped`);
    if (Date.now() >= deadline) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the wall clock passes a moment (a step's due time, say), polling like waitUntil. */
export async function waitUntilTime(what: string, at: number, slackMs = 15_000): Promise<void> {
  await waitUntil(what, () => Date.now() >= at, Math.max(0, at - Date.now()) + slackMs, 50);
}

/** Lines of output that contain any of the secrets (they must be none). */
export function linesWithSecrets(lines: readonly string[]): string[] {
  return lines.filter((l) => SECRETS.some((s) => l.includes(s)));
}

/** Every Slack message (chat.* calls and response_url replies) the fake received that carries a secret. */
export function slackTextsWithSecrets(slack: SlackStandIn): string[] {
  // auth.test legitimately carries the bot token to Slack; it is not a message anyone sees.
  const messages = slack.calls.filter((c) => c.method.startsWith('chat.'));
  const texts = [...messages.map((c) => JSON.stringify(c.body)), ...slack.responses.map((r) => JSON.stringify(r.body))];
  return texts.filter((t) => SECRETS.some((s) => t.includes(s)));
}

/** Slack shows a JSON ack body with text to the sender (ephemeral unless response_type says in_channel). */
function parseAckReply(raw: string): Sent['ackReply'] {
  if (raw.trim() === '') return undefined;
  try {
    const body = JSON.parse(raw) as { text?: unknown; blocks?: unknown; response_type?: unknown };
    if (typeof body.text !== 'string') return undefined;
    return {
      text: allText(body as Record<string, unknown>),
      responseType: typeof body.response_type === 'string' ? body.response_type : 'ephemeral',
      at: Date.now(),
    };
  } catch {
    return undefined;
  }
}
