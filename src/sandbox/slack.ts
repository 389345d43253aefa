// The Slack stand-in: the Web API methods Lifeline calls (auth.test, chat.postMessage, chat.update,
// chat.postEphemeral) and response_url, answered as Slack answers them, over the workspace's messages the page shows.
// Lifeline's real @slack/web-api client talks to it through SLACK_API_URL; Bolt's respond() and Lifeline's own
// response_url replies reach it through the response_url of each request the sandbox delivers.
import { randomBytes } from 'node:crypto';
import { BOT, CHANNELS, PEOPLE } from './world.js';

export interface SlackMessage {
  /** Arrival order: how the page lists messages. */
  readonly seq: number;
  readonly channel: string;
  readonly ts: string;
  /** The parent's ts, for a reply in a thread. */
  readonly threadTs: string | undefined;
  readonly user: string;
  text: string;
  blocks: readonly unknown[] | undefined;
  /** An ephemeral message: only this user sees it ("Only visible to you"). */
  readonly visibleTo: string | undefined;
  /** A slash command as its sender typed it: Slack shows it to nobody, the page shows it to the sender. */
  readonly command: boolean;
  /** How many times chat.update or a response_url replaced it. */
  edits: number;
}

type SlackAnswer = Record<string, unknown> & { readonly ok: boolean };

interface ResponseUrl {
  readonly user: string;
  readonly channel: string;
  /** The message whose button was clicked (for replace_original and delete_original). */
  readonly messageTs: string | undefined;
  readonly threadTs: string | undefined;
  readonly expiresAt: number;
  uses: number;
}

export interface SlackStandInOptions {
  readonly botToken: string;
  /** Base URL Lifeline reaches this process at, for response URLs. */
  readonly baseUrl: string;
  readonly onChange: () => void;
}

// Slack's documented limits (response_url: 5 uses within 30 minutes; Block Kit: the sizes below).
const RESPONSE_URL_USES = 5;
const RESPONSE_URL_MS = 30 * 60_000;
const BLOCK_TYPES = new Set(['section', 'header', 'context', 'actions', 'divider', 'image', 'rich_text', 'input', 'file', 'video']);

export class SlackStandIn {
  readonly messages: SlackMessage[] = [];
  private readonly responseUrls = new Map<string, ResponseUrl>();
  private seq = 0;
  private lastMicros = 0;

  constructor(private readonly options: SlackStandInOptions) {}

  /** One Web API call, authenticated by the bot token in the Authorization header (or the form's `token`). */
  webApi(method: string, authorization: string | undefined, body: Record<string, unknown>): SlackAnswer {
    const token = authorization?.replace(/^Bearer\s+/i, '') ?? (typeof body.token === 'string' ? body.token : undefined);
    if (!token) return failure('not_authed');
    if (token !== this.options.botToken) return failure('invalid_auth');
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://lifeline-sandbox.slack.invalid/', team: 'Lifeline sandbox', user: 'lifeline', team_id: TEAM_ID, user_id: BOT.id, bot_id: BOT_ID };
      case 'chat.postMessage':
        return this.postMessage(body);
      case 'chat.update':
        return this.update(body);
      case 'chat.postEphemeral':
        return this.postEphemeral(body);
      default:
        return failure('unknown_method');
    }
  }

  /** A POST to a response_url: a reply to the sender alone, unless it asks to replace, delete or go in the channel. */
  respond(id: string, body: Record<string, unknown>): { status: number; text: string } {
    const url = this.responseUrls.get(id);
    if (!url) return { status: 404, text: 'no_such_url' };
    if (Date.now() > url.expiresAt) return { status: 404, text: 'expired_url' };
    if (url.uses >= RESPONSE_URL_USES) return { status: 404, text: 'used_url' };
    url.uses++;
    const blocks = body.blocks;
    const problems = blocksProblems(blocks);
    if (problems.length > 0) return { status: 400, text: 'invalid_blocks' };
    const text = typeof body.text === 'string' ? body.text : '';
    const original = url.messageTs ? this.find(url.channel, url.messageTs) : undefined;
    if (body.delete_original === true && original) {
      this.messages.splice(this.messages.indexOf(original), 1);
    } else if (body.replace_original === true && original) {
      this.replace(original, text, blocks as readonly unknown[] | undefined);
    } else if (body.response_type === 'in_channel') {
      this.add({ channel: url.channel, threadTs: url.threadTs, user: BOT.id, text, blocks, visibleTo: undefined, command: false });
    } else {
      this.add({ channel: url.channel, threadTs: url.threadTs, user: BOT.id, text, blocks, visibleTo: url.user, command: false });
    }
    this.options.onChange();
    return { status: 200, text: 'ok' };
  }

  /** A response_url for a request from `user` in `channel` (about the message `clicked`, for a button). */
  newResponseUrl(user: string, channel: string, clicked?: SlackMessage): string {
    const id = randomBytes(12).toString('hex');
    this.responseUrls.set(id, {
      user,
      channel,
      messageTs: clicked?.ts,
      threadTs: clicked?.threadTs,
      expiresAt: Date.now() + RESPONSE_URL_MS,
      uses: 0,
    });
    return `${this.options.baseUrl}/slack/response/${id}`;
  }

  /** A person's own message (typed in the page). */
  say(user: string, channel: string, text: string, threadTs: string | undefined): SlackMessage {
    const message = this.add({ channel, threadTs, user, text: escapeText(text), blocks: undefined, visibleTo: undefined, command: false });
    this.options.onChange();
    return message;
  }

  /** The slash command as typed, shown to its sender only (Slack shows nothing; the page keeps the story readable). */
  echoCommand(user: string, channel: string, text: string): void {
    this.add({ channel, threadTs: undefined, user, text: escapeText(text), blocks: undefined, visibleTo: user, command: true });
    this.options.onChange();
  }

  /** An ephemeral message from the app, as Slack shows a reply carried in a request's acknowledgement. */
  ephemeral(user: string, channel: string, text: string, blocks: unknown, threadTs?: string): void {
    this.add({ channel, threadTs, user: BOT.id, text, blocks: Array.isArray(blocks) ? blocks : undefined, visibleTo: user, command: false });
    this.options.onChange();
  }

  find(channel: string, ts: string): SlackMessage | undefined {
    return this.messages.find((m) => m.channel === channel && m.ts === ts);
  }

  private postMessage(body: Record<string, unknown>): SlackAnswer {
    const channel = String(body.channel ?? '');
    if (!isChannel(channel)) return failure('channel_not_found');
    const problems = blocksProblems(body.blocks);
    if (problems.length > 0) return { ...failure('invalid_blocks'), errors: problems };
    const text = typeof body.text === 'string' ? body.text : '';
    if (text === '' && body.blocks === undefined) return failure('no_text');
    let threadTs: string | undefined;
    if (typeof body.thread_ts === 'string' && body.thread_ts !== '') {
      const parent = this.find(channel, body.thread_ts);
      if (!parent || parent.visibleTo !== undefined) return failure('thread_not_found');
      // A reply to a reply joins the parent's thread, as in Slack.
      threadTs = parent.threadTs ?? parent.ts;
    }
    const message = this.add({ channel, threadTs, user: BOT.id, text, blocks: body.blocks, visibleTo: undefined, command: false });
    this.options.onChange();
    return { ok: true, channel, ts: message.ts, message: wireMessage(message) };
  }

  private update(body: Record<string, unknown>): SlackAnswer {
    const channel = String(body.channel ?? '');
    if (!isChannel(channel)) return failure('channel_not_found');
    const message = this.find(channel, String(body.ts ?? ''));
    if (!message || message.visibleTo !== undefined) return failure('message_not_found');
    if (message.user !== BOT.id) return failure('cant_update_message');
    const problems = blocksProblems(body.blocks);
    if (problems.length > 0) return { ...failure('invalid_blocks'), errors: problems };
    this.replace(message, typeof body.text === 'string' ? body.text : message.text, body.blocks as readonly unknown[] | undefined);
    this.options.onChange();
    return { ok: true, channel, ts: message.ts, text: message.text, message: wireMessage(message) };
  }

  private postEphemeral(body: Record<string, unknown>): SlackAnswer {
    const channel = String(body.channel ?? '');
    if (!isChannel(channel)) return failure('channel_not_found');
    const user = String(body.user ?? '');
    if (!PEOPLE.some((p) => p.id === user)) return failure('user_not_in_channel');
    const problems = blocksProblems(body.blocks);
    if (problems.length > 0) return { ...failure('invalid_blocks'), errors: problems };
    const threadTs = typeof body.thread_ts === 'string' && body.thread_ts !== '' ? body.thread_ts : undefined;
    const message = this.add({ channel, threadTs, user: BOT.id, text: String(body.text ?? ''), blocks: body.blocks, visibleTo: user, command: false });
    this.options.onChange();
    return { ok: true, message_ts: message.ts };
  }

  private replace(message: SlackMessage, text: string, blocks: readonly unknown[] | undefined): void {
    message.text = text;
    message.blocks = blocks;
    message.edits++;
  }

  private add(fields: Omit<SlackMessage, 'seq' | 'ts' | 'edits' | 'blocks'> & { readonly blocks: unknown }): SlackMessage {
    const message: SlackMessage = {
      ...fields,
      blocks: Array.isArray(fields.blocks) ? fields.blocks : undefined,
      seq: ++this.seq,
      ts: this.nextTs(),
      edits: 0,
    };
    this.messages.push(message);
    return message;
  }

  /** Slack's ts: seconds and microseconds, unique and increasing within a channel. */
  private nextTs(): string {
    const micros = Math.max(Date.now() * 1000, this.lastMicros + 1);
    this.lastMicros = micros;
    return `${Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`;
  }
}

export const TEAM_ID = 'T0SANDBOX';
const BOT_ID = 'B0LIFELINE';

/** The message as Slack's API returns it (and puts in a block_actions payload). */
export function wireMessage(message: SlackMessage): Record<string, unknown> {
  return {
    type: 'message',
    ts: message.ts,
    user: message.user,
    ...(message.user === BOT.id ? { bot_id: BOT_ID, app_id: 'A0LIFELINE' } : {}),
    text: message.text,
    ...(message.blocks ? { blocks: message.blocks } : {}),
    ...(message.threadTs ? { thread_ts: message.threadTs } : {}),
    team: TEAM_ID,
  };
}

function failure(error: string): SlackAnswer {
  return { ok: false, error };
}

function isChannel(id: string): boolean {
  return CHANNELS.some((c) => c.id === id);
}

/** What a person types reaches Slack with &, < and > as entities. */
function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The Block Kit limits Slack enforces (invalid_blocks), so a message too big for Slack fails here too. */
export function blocksProblems(blocks: unknown): string[] {
  if (blocks === undefined) return [];
  if (!Array.isArray(blocks)) return ['blocks must be an array'];
  const problems: string[] = [];
  if (blocks.length > 50) problems.push(`no more than 50 items allowed [json-pointer:/blocks]`);
  blocks.forEach((block: unknown, i) => {
    const at = `[json-pointer:/blocks/${i}]`;
    if (!isObject(block) || typeof block.type !== 'string' || !BLOCK_TYPES.has(block.type)) {
      problems.push(`invalid block type ${at}`);
      return;
    }
    const text = isObject(block.text) ? block.text : undefined;
    const textLength = typeof text?.text === 'string' ? text.text.length : 0;
    switch (block.type) {
      case 'header':
        if (text?.type !== 'plain_text' || textLength === 0 || textLength > 150) problems.push(`header text must be plain_text of 1-150 characters ${at}`);
        break;
      case 'section': {
        const fields = Array.isArray(block.fields) ? block.fields : undefined;
        if (!text && !fields) problems.push(`section needs text or fields ${at}`);
        if (textLength > 3000) problems.push(`must be less than 3001 characters [json-pointer:/blocks/${i}/text/text]`);
        if (fields && (fields.length > 10 || fields.some((f: unknown) => !isObject(f) || typeof f.text !== 'string' || f.text.length > 2000))) {
          problems.push(`section fields: at most 10, each at most 2000 characters ${at}`);
        }
        break;
      }
      case 'context':
        if (!Array.isArray(block.elements) || block.elements.length === 0 || block.elements.length > 10) problems.push(`context needs 1-10 elements ${at}`);
        break;
      case 'actions': {
        const elements = Array.isArray(block.elements) ? (block.elements as unknown[]) : [];
        if (elements.length === 0 || elements.length > 25) problems.push(`actions needs 1-25 elements ${at}`);
        const ids = new Set<string>();
        for (const element of elements) {
          if (!isObject(element)) continue;
          const label = isObject(element.text) && typeof element.text.text === 'string' ? element.text.text : '';
          if (element.type === 'button' && (label.length === 0 || label.length > 75)) problems.push(`button text must be 1-75 characters ${at}`);
          if (typeof element.action_id === 'string') {
            if (ids.has(element.action_id)) problems.push(`duplicate action_id ${element.action_id} ${at}`);
            ids.add(element.action_id);
          }
        }
        break;
      }
    }
  });
  return problems;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
