// The Slack stand-in: the Web API methods Lifeline calls (auth.test, chat.postMessage, chat.update, chat.postEphemeral,
// conversations.create/invite/setTopic/archive, pins.add) and response_url, answered with Slack's rules and errors over
// a workspace of messages. The tests, the sandbox (which shows the messages on its page) and the benchmarks all run
// Lifeline against this one. It serves itself on 127.0.0.1 (`start`), or answers requests another server routes to it
// (`handle`).
import { randomBytes } from 'node:crypto';
import {
  jsonAnswer as json,
  parseObject,
  serveOnLoopback,
  textAnswer as text,
  type HttpAnswer,
  type HttpRequest,
  type LoopbackServer,
} from '../../shared/loopback-server.js';

export interface SlackMessage {
  /** Arrival order. */
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
  /** A slash command as its sender typed it: Slack shows it to nobody, the sandbox's page shows it to the sender. */
  readonly command: boolean;
  /** How many times chat.update or a response_url replaced it. */
  edits: number;
}

export type SlackAnswer = Record<string, unknown> & { readonly ok: boolean };

/** One Web API call as it arrived, and what the stand-in answered (unset when it answered with an HTTP failure). */
export interface SlackCall {
  readonly method: string;
  readonly body: Record<string, unknown>;
  readonly at: number;
  /** The Authorization header (the WebClient sends its token there). */
  readonly authorization: string | undefined;
  result?: SlackAnswer;
}

export interface ResponseUrlPost {
  readonly id: string;
  readonly body: Record<string, unknown>;
  /** The body's text. */
  readonly text: string;
  readonly at: number;
}

/** A channel conversations.create made. */
export interface CreatedChannel {
  readonly id: string;
  readonly name: string;
  readonly members: Set<string>;
  topic: string;
  archived: boolean;
  /** The ts of the messages pinned in it. */
  readonly pins: Set<string>;
}

/** Slack's channel name limit, and the characters a name may have. */
export const CHANNEL_NAME_MAX = 80;
const CHANNEL_NAME = /^[a-z0-9_-]+$/;

/** An answer to give the next call of `method` instead of the real one: an HTTP status, or 200 with ok: false. */
export interface InjectedFailure {
  readonly method: string;
  readonly status: number;
  readonly error?: string;
}

/** Who the workspace is. Channels and members left out mean every id exists, as tests make ids up freely. */
export interface SlackWorkspace {
  readonly teamId: string;
  readonly teamName: string;
  readonly url: string;
  readonly botUserId: string;
  readonly botId: string;
  readonly appId: string;
  readonly channels?: ReadonlySet<string>;
  readonly members?: ReadonlySet<string>;
}

export interface SlackStandInOptions {
  /** The only bot token accepted; without one, any token is (but a call still needs one). */
  readonly botToken?: string;
  readonly workspace?: Partial<SlackWorkspace>;
  /** Where Lifeline reaches `handle`, for response URLs; `listen` sets it to its own address. */
  readonly baseUrl?: string;
  /** Called after anything a person would see changed. */
  readonly onChange?: () => void;
}

/** Where a response_url posts to: the request's sender and channel, and the message a clicked button was on. */
export interface ResponseUrlContext {
  readonly user: string;
  readonly channel: string;
  readonly clicked?: SlackMessage;
}

/** A message as it is added: the workspace numbers it, stamps it and keeps its blocks if they are a list. */
export type NewMessage = Omit<SlackMessage, 'seq' | 'ts' | 'edits' | 'blocks'> & { readonly blocks: unknown };

interface ResponseUrl {
  readonly context: ResponseUrlContext | undefined;
  readonly expiresAt: number;
  uses: number;
}

// Slack's documented limits: response_url takes 5 posts within 30 minutes; message text is cut at 40,000 characters,
// and chat.* refuse longer text with msg_too_long; Block Kit's sizes are in blocksProblems.
export const RESPONSE_URL_USES = 5;
const RESPONSE_URL_MS = 30 * 60_000;
const MAX_TEXT = 40_000;
const RETRY_AFTER_SECONDS = 1;
const BLOCK_TYPES = new Set('section header context actions divider image rich_text input file video'.split(' '));
/** Web API fields @slack/web-api sends form-encoded as JSON text. */
const JSON_FIELDS = new Set(['blocks', 'attachments', 'metadata']);

const DEFAULT_WORKSPACE: SlackWorkspace = {
  teamId: 'T0FAKE',
  teamName: 'Fake',
  url: 'https://fake.slack.com/',
  botUserId: 'U0LIFELINE',
  botId: 'B0LIFELINE',
  appId: 'A0LIFELINE',
};

export class SlackStandIn {
  readonly workspace: SlackWorkspace;
  readonly messages: SlackMessage[] = [];
  readonly calls: SlackCall[] = [];
  /** The posts a response_url took (a refused one is in `refusedResponses` instead). */
  readonly responses: ResponseUrlPost[] = [];
  readonly refusedResponses: ResponseUrlPost[] = [];
  /** Answers for the next calls of a method, consumed in order; empty: answer by Slack's rules. */
  readonly failures: InjectedFailure[] = [];
  /** While true, every request is answered 503, as by a Slack that is down. */
  down = false;
  baseUrl: string;
  /** Channels conversations.create made, by id. */
  readonly created = new Map<string, CreatedChannel>();
  private readonly byKey = new Map<string, SlackMessage>();
  private readonly responseUrls = new Map<string, ResponseUrl>();
  private seq = 0;
  private lastMicros = 0;
  private server: LoopbackServer | undefined;

  constructor(private readonly options: SlackStandInOptions = {}) {
    this.workspace = { ...DEFAULT_WORKSPACE, ...options.workspace };
    this.baseUrl = options.baseUrl ?? '';
  }

  /** Serves the stand-in on 127.0.0.1 at a free port: the Web API under /api/, response URLs under /response/. */
  async start(): Promise<this> {
    this.server = await serveOnLoopback((request) => this.handle(request));
    this.baseUrl = this.server.url;
    return this;
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }

  /** The Web API base URL Lifeline is given (SLACK_API_URL). */
  get apiUrl(): string {
    return `${this.baseUrl}/api/`;
  }

  /** One request at `path` (below the base URL): `api/<method>` or `response/<id>`. */
  handle({ path, headers, raw }: HttpRequest): HttpAnswer {
    const response = /^response\/([^/]+)$/.exec(path);
    const method = /^api\/([\w.]+)$/.exec(path)?.[1];
    const body = parseWebApiBody(raw, headers['content-type']);
    const call: SlackCall | undefined =
      method === undefined ? undefined : { method, body, at: Date.now(), authorization: headers.authorization };
    if (call) this.calls.push(call);
    if (this.down) return text(503, 'Slack is down');
    if (response?.[1] !== undefined) return this.respond(response[1], raw);
    if (!call) return text(404, 'no such endpoint');
    const index = this.failures.findIndex((f) => f.method === call.method);
    const [failure] = index >= 0 ? this.failures.splice(index, 1) : [];
    if (failure) {
      // Slack's rate limit answer carries Retry-After; the WebClient refuses to treat a 429 without one as a limit.
      const limited = failure.status === 429;
      const error = failure.error ?? (limited ? 'ratelimited' : 'fake_failure');
      return json(failure.status, { ok: false, error }, limited ? { 'retry-after': String(RETRY_AFTER_SECONDS) } : {});
    }
    call.result = this.answer(call);
    // Slack answers its own refusals with 200 and ok: false.
    return json(200, call.result);
  }

  /** A response_url for a request; with a context, what is posted there shows in the workspace too. */
  newResponseUrl(context?: ResponseUrlContext): string {
    const id = randomBytes(12).toString('hex');
    this.responseUrls.set(id, { context, expiresAt: Date.now() + RESPONSE_URL_MS, uses: 0 });
    return `${this.baseUrl}/response/${id}`;
  }

  find(channel: string, ts: string): SlackMessage | undefined {
    return this.byKey.get(`${channel}/${ts}`);
  }

  /** chat.postMessage calls Slack took (answered with a ts), not the ones it failed. */
  delivered(channel?: string): SlackCall[] {
    return this.posts(channel).filter((c) => c.result?.ts !== undefined);
  }

  posts(channel?: string): SlackCall[] {
    return this.calls.filter(
      (c) => c.method === 'chat.postMessage' && (channel === undefined || c.body.channel === channel),
    );
  }

  ephemerals(): SlackCall[] {
    return this.calls.filter((c) => c.method === 'chat.postEphemeral');
  }

  updates(): SlackCall[] {
    return this.calls.filter((c) => c.method === 'chat.update');
  }

  /** Every reply delivered to the sender alone: response_url posts and chat.postEphemeral. */
  privateReplies(): string[] {
    return [...this.responses.map((r) => r.text), ...this.ephemerals().map((c) => String(c.body.text ?? ''))];
  }

  /** The answer to one Web API call; a subclass may answer more methods (before the bot token is checked). */
  protected answer(call: SlackCall): SlackAnswer {
    const { body } = call;
    const bearer = call.authorization?.replace(/^Bearer\s+/i, '');
    const token = bearer ?? (typeof body.token === 'string' ? body.token : undefined);
    if (!token) return failure('not_authed');
    if (this.options.botToken !== undefined && token !== this.options.botToken) return failure('invalid_auth');
    const w = this.workspace;
    switch (call.method) {
      case 'auth.test':
        return {
          ok: true,
          url: w.url,
          team: w.teamName,
          user: 'lifeline',
          team_id: w.teamId,
          user_id: w.botUserId,
          bot_id: w.botId,
        };
      case 'chat.postMessage':
        return this.postMessage(body);
      case 'chat.update':
        return this.update(body);
      case 'chat.postEphemeral':
        return this.postEphemeral(body);
      case 'conversations.create':
        return this.createChannel(body);
      case 'conversations.invite':
        return this.inChannel(body.channel, (c) => {
          const users = String(body.users ?? '')
            .split(',')
            .filter((u) => u !== '');
          if (users.length === 0) return failure('no_user');
          if (users.length > 1000) return failure('too_many_users');
          const members = this.workspace.members;
          if (members && users.some((u) => !members.has(u))) return failure('user_not_found');
          if (users.every((u) => c.members.has(u))) return failure('already_in_channel');
          for (const user of users) c.members.add(user);
          return { ok: true, channel: { id: c.id, name: c.name } };
        });
      case 'conversations.setTopic':
        return this.inChannel(body.channel, (c) => {
          const topic = String(body.topic ?? '');
          if (topic.length > 250) return failure('too_long');
          c.topic = topic;
          return { ok: true, channel: { id: c.id, name: c.name, topic: { value: topic } } };
        });
      case 'conversations.archive': {
        const c = this.created.get(String(body.channel ?? ''));
        if (!c) return failure('channel_not_found');
        if (c.archived) return failure('already_archived');
        c.archived = true;
        this.changed();
        return { ok: true };
      }
      case 'pins.add':
        return this.inChannel(body.channel, (c) => {
          const ts = String(body.timestamp ?? '');
          const message = this.find(c.id, ts);
          if (!message) return failure('message_not_found');
          if (c.pins.has(ts)) return failure('already_pinned');
          c.pins.add(ts);
          return { ok: true };
        });
      default:
        return failure('unknown_method');
    }
  }

  /** Adds a message to the workspace (what Lifeline posts, or what the sandbox's people type). */
  protected add(fields: NewMessage): SlackMessage {
    const message: SlackMessage = {
      ...fields,
      blocks: Array.isArray(fields.blocks) ? fields.blocks : undefined,
      seq: ++this.seq,
      ts: this.nextTs(),
      edits: 0,
    };
    this.messages.push(message);
    this.byKey.set(`${message.channel}/${message.ts}`, message);
    return message;
  }

  protected changed(): void {
    this.options.onChange?.();
  }

  /** A POST to a response_url: a reply to the sender alone, unless it asks to replace, delete or go in the channel. */
  private respond(id: string, raw: string): HttpAnswer {
    const url = this.responseUrls.get(id);
    if (!url) return text(404, 'no_such_url');
    if (Date.now() > url.expiresAt) return text(404, 'expired_url');
    const body = parseObject(raw);
    if (!body) return text(400, 'invalid_payload');
    const post = { id, body, text: typeof body.text === 'string' ? body.text : '', at: Date.now() };
    if (url.uses >= RESPONSE_URL_USES) {
      this.refusedResponses.push(post);
      return text(404, 'used_url');
    }
    url.uses++;
    if (blocksProblems(body.blocks).length > 0) return text(400, 'invalid_blocks');
    if (post.text.length > MAX_TEXT) return text(400, 'msg_too_long');
    this.responses.push(post);
    if (url.context) this.showResponse(url.context, body, post.text);
    this.changed();
    return text(200, 'ok');
  }

  private showResponse(context: ResponseUrlContext, body: Record<string, unknown>, text: string): void {
    const { user, channel, clicked } = context;
    const original = clicked ? this.find(channel, clicked.ts) : undefined;
    const blocks = Array.isArray(body.blocks) ? body.blocks : undefined;
    if (body.delete_original === true && original) {
      this.messages.splice(this.messages.indexOf(original), 1);
      this.byKey.delete(`${original.channel}/${original.ts}`);
    } else if (body.replace_original === true && original) {
      replace(original, text, blocks);
    } else {
      const visibleTo = body.response_type === 'in_channel' ? undefined : user;
      const bot = this.workspace.botUserId;
      this.add({ channel, threadTs: clicked?.threadTs, user: bot, text, blocks, visibleTo, command: false });
    }
  }

  private postMessage(body: Record<string, unknown>): SlackAnswer {
    const channel = String(body.channel ?? '');
    if (!this.isChannel(channel)) return failure('channel_not_found');
    const refused = contentProblem(body);
    if (refused) return refused;
    const text = typeof body.text === 'string' ? body.text : '';
    if (text === '' && body.blocks === undefined) return failure('no_text');
    let threadTs: string | undefined;
    if (typeof body.thread_ts === 'string' && body.thread_ts !== '') {
      const parent = this.find(channel, body.thread_ts);
      if (!parent || parent.visibleTo !== undefined) return failure('thread_not_found');
      // A reply to a reply joins the parent's thread, as in Slack.
      threadTs = parent.threadTs ?? parent.ts;
    }
    const bot = this.workspace.botUserId;
    const blocks = body.blocks;
    const message = this.add({ channel, threadTs, user: bot, text, blocks, visibleTo: undefined, command: false });
    this.changed();
    return { ok: true, channel, ts: message.ts, message: wireMessage(message, this.workspace) };
  }

  private update(body: Record<string, unknown>): SlackAnswer {
    const channel = String(body.channel ?? '');
    if (!this.isChannel(channel)) return failure('channel_not_found');
    const message = this.find(channel, String(body.ts ?? ''));
    if (!message || message.visibleTo !== undefined) return failure('message_not_found');
    if (message.user !== this.workspace.botUserId) return failure('cant_update_message');
    const refused = contentProblem(body);
    if (refused) return refused;
    const blocks = Array.isArray(body.blocks) ? body.blocks : undefined;
    replace(message, typeof body.text === 'string' ? body.text : message.text, blocks);
    this.changed();
    return { ok: true, channel, ts: message.ts, text: message.text, message: wireMessage(message, this.workspace) };
  }

  private postEphemeral(body: Record<string, unknown>): SlackAnswer {
    const channel = String(body.channel ?? '');
    if (!this.isChannel(channel)) return failure('channel_not_found');
    const user = String(body.user ?? '');
    const members = this.workspace.members;
    if (user === '' || (members !== undefined && !members.has(user))) return failure('user_not_in_channel');
    const refused = contentProblem(body);
    if (refused) return refused;
    const threadTs = typeof body.thread_ts === 'string' && body.thread_ts !== '' ? body.thread_ts : undefined;
    const bot = this.workspace.botUserId;
    const text = String(body.text ?? '');
    const blocks = body.blocks;
    const message = this.add({ channel, threadTs, user: bot, text, blocks, visibleTo: user, command: false });
    this.changed();
    return { ok: true, message_ts: message.ts };
  }

  private isChannel(id: string): boolean {
    const channels = this.workspace.channels;
    const made = this.created.get(id);
    if (made) return !made.archived;
    return id !== '' && (channels === undefined || channels.has(id));
  }

  /** conversations.create with Slack's name rules: lower case, [a-z0-9-_], at most 80 characters, unique. */
  private createChannel(body: Record<string, unknown>): SlackAnswer {
    const name = typeof body.name === 'string' ? body.name : '';
    if (name === '') return failure('invalid_name_required');
    if ([...name].length > CHANNEL_NAME_MAX) return failure('invalid_name_maxlength');
    if (!CHANNEL_NAME.test(name)) return failure('invalid_name_specials');
    if (/^[-_]+$/.test(name)) return failure('invalid_name_punctuation');
    if ([...this.created.values()].some((c) => c.name === name)) return failure('name_taken');
    const id = `C0NEW${String(this.created.size + 1).padStart(5, '0')}`;
    const channel: CreatedChannel = { id, name, members: new Set(), topic: '', archived: false, pins: new Set() };
    this.created.set(id, channel);
    this.changed();
    return { ok: true, channel: { id, name, is_channel: true, is_archived: false } };
  }

  /** A call on a channel conversations.create made: channel_not_found, is_archived, or `work`'s answer. */
  private inChannel(id: unknown, work: (channel: CreatedChannel) => SlackAnswer): SlackAnswer {
    const channel = this.created.get(String(id ?? ''));
    if (!channel) return failure('channel_not_found');
    if (channel.archived) return failure('is_archived');
    const answer = work(channel);
    if (answer.ok) this.changed();
    return answer;
  }

  /** A created channel by name. */
  channelNamed(name: string): CreatedChannel | undefined {
    return [...this.created.values()].find((c) => c.name === name);
  }

  /** Slack's ts: seconds and microseconds, unique and increasing. */
  private nextTs(): string {
    const micros = Math.max(Date.now() * 1000, this.lastMicros + 1);
    this.lastMicros = micros;
    return `${Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`;
  }
}

/** The message as Slack's API returns it (and puts in a block_actions payload). */
export function wireMessage(message: SlackMessage, workspace: SlackWorkspace): Record<string, unknown> {
  return {
    type: 'message',
    ts: message.ts,
    user: message.user,
    ...(message.user === workspace.botUserId ? { bot_id: workspace.botId, app_id: workspace.appId } : {}),
    text: message.text,
    ...(message.blocks ? { blocks: message.blocks } : {}),
    ...(message.threadTs ? { thread_ts: message.threadTs } : {}),
    team: workspace.teamId,
  };
}

function replace(message: SlackMessage, text: string, blocks: readonly unknown[] | undefined): void {
  message.text = text;
  message.blocks = blocks;
  message.edits++;
}

function failure(error: string): SlackAnswer {
  return { ok: false, error };
}

/** What chat.* refuse in a message's text and blocks, whatever the method. */
function contentProblem(body: Record<string, unknown>): SlackAnswer | undefined {
  const problems = blocksProblems(body.blocks);
  if (problems.length > 0) return { ...failure('invalid_blocks'), errors: problems };
  if (typeof body.text === 'string' && body.text.length > MAX_TEXT) return failure('msg_too_long');
  return undefined;
}

/** A Web API body: JSON, or a form whose structured fields arrive as JSON text. */
function parseWebApiBody(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (raw === '') return {};
  if (contentType?.includes('application/json')) return parseObject(raw) ?? {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    // Kept as sent when it is not JSON: invalid_blocks then says what is wrong with it.
    out[key] = JSON_FIELDS.has(key) ? (parseJsonText(value) ?? value) : value;
  }
  return out;
}

function parseJsonText(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

/** The Block Kit limits Slack enforces (invalid_blocks), so a message too big for Slack fails here too. */
export function blocksProblems(blocks: unknown): string[] {
  if (blocks === undefined) return [];
  if (!Array.isArray(blocks)) return ['blocks must be an array'];
  const problems: string[] = [];
  if (blocks.length > 50) problems.push(`no more than 50 items allowed [json-pointer:/blocks]`);
  blocks.forEach((block: unknown, i) => problems.push(...blockProblems(block, i)));
  return problems;
}

function blockProblems(block: unknown, i: number): string[] {
  const at = `[json-pointer:/blocks/${i}]`;
  if (!isObject(block) || typeof block.type !== 'string' || !BLOCK_TYPES.has(block.type)) {
    return [`invalid block type ${at}`];
  }
  const problems: string[] = [];
  const text = isObject(block.text) ? block.text : undefined;
  const textLength = typeof text?.text === 'string' ? text.text.length : 0;
  switch (block.type) {
    case 'header':
      if (text?.type !== 'plain_text' || textLength === 0 || textLength > 150) {
        problems.push(`header text must be plain_text of 1-150 characters ${at}`);
      }
      break;
    case 'section': {
      const fields = Array.isArray(block.fields) ? block.fields : undefined;
      if (!text && !fields) problems.push(`section needs text or fields ${at}`);
      if (textLength > 3000) problems.push(`must be less than 3001 characters [json-pointer:/blocks/${i}/text/text]`);
      const tooLong = (f: unknown) => !isObject(f) || typeof f.text !== 'string' || f.text.length > 2000;
      if (fields && (fields.length > 10 || fields.some(tooLong))) {
        problems.push(`section fields: at most 10, each at most 2000 characters ${at}`);
      }
      break;
    }
    case 'context':
      if (!Array.isArray(block.elements) || block.elements.length === 0 || block.elements.length > 10) {
        problems.push(`context needs 1-10 elements ${at}`);
      }
      break;
    case 'actions':
      problems.push(...actionsProblems(block.elements, at));
      break;
  }
  return problems;
}

function actionsProblems(elements: unknown, at: string): string[] {
  const list: unknown[] = Array.isArray(elements) ? elements : [];
  const problems: string[] = [];
  if (list.length === 0 || list.length > 25) problems.push(`actions needs 1-25 elements ${at}`);
  const ids = new Set<string>();
  for (const element of list) {
    if (!isObject(element)) continue;
    const label = isObject(element.text) && typeof element.text.text === 'string' ? element.text.text : '';
    if (element.type === 'button' && (label.length === 0 || label.length > 75)) {
      problems.push(`button text must be 1-75 characters ${at}`);
    }
    if (typeof element.action_id === 'string') {
      if (ids.has(element.action_id)) problems.push(`duplicate action_id ${element.action_id} ${at}`);
      ids.add(element.action_id);
    }
  }
  return problems;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
