import type { CreatedChannel } from './stand-in.js';
import { SlackRefusal, type ChannelPort, type ChatMessage, type ChatPort, type PostedMessage } from './port.js';

export interface RecordedPost {
  readonly kind: 'post' | 'update' | 'ephemeral' | 'respond';
  readonly channel: string;
  readonly ts: string;
  readonly threadTs?: string;
  readonly user?: string;
  readonly message: ChatMessage;
}

let channelIds = 0;

/** A channel the double made: the stand-in's shape. */
export type MemoryChannel = CreatedChannel;

/** In-memory ChatPort and ChannelPort for unit tests: records every call; `failNext` makes the next call throw. */
export class MemoryChat implements ChatPort, ChannelPort {
  readonly calls: RecordedPost[] = [];
  readonly channels = new Map<string, MemoryChannel>();
  /** Every channel call that got through, in order: `conversations.archive C0MEM1`... */
  readonly channelCalls: string[] = [];
  /** conversations.create refuses every name with this code while set (`restricted_action`...). */
  refuseCreate: string | undefined;
  private counter = 0;
  private pendingFailure: Error | undefined;

  failNext(error: Error): void {
    this.pendingFailure = error;
  }

  async post(channel: string, message: ChatMessage, threadTs?: string): Promise<PostedMessage> {
    this.maybeFail();
    const ts = `${1_700_000_000 + ++this.counter}.000100`;
    this.calls.push({ kind: 'post', channel, ts, message, ...(threadTs ? { threadTs } : {}) });
    return { channel, ts };
  }

  async update(at: PostedMessage, message: ChatMessage): Promise<void> {
    this.maybeFail();
    this.calls.push({ kind: 'update', channel: at.channel, ts: at.ts, message });
  }

  async postEphemeral(channel: string, user: string, message: ChatMessage): Promise<void> {
    this.maybeFail();
    this.calls.push({ kind: 'ephemeral', channel, ts: '', user, message });
  }

  async respond(responseUrl: string, message: ChatMessage): Promise<void> {
    this.maybeFail();
    this.calls.push({ kind: 'respond', channel: responseUrl, ts: '', message });
  }

  async createChannel(name: string): Promise<string> {
    this.maybeFail();
    if (this.refuseCreate) throw new SlackRefusal('conversations.create', this.refuseCreate);
    if ([...this.channels.values()].some((c) => c.name === name))
      throw new SlackRefusal('conversations.create', 'name_taken');
    // Unique across doubles, as Slack's ids are across a workspace's lifetime.
    const id = `C0MEM${++channelIds}`;
    this.channelCalls.push(`conversations.create ${name}`);
    this.channels.set(id, { id, name, members: new Set(), topic: '', archived: false, pins: new Set() });
    return id;
  }

  async invite(channel: string, users: readonly string[]): Promise<void> {
    this.maybeFail();
    for (const user of users) this.open(channel, 'conversations.invite').members.add(user);
  }

  async setTopic(channel: string, topic: string): Promise<void> {
    this.maybeFail();
    this.open(channel, 'conversations.setTopic').topic = topic;
  }

  async archive(channel: string): Promise<void> {
    this.maybeFail();
    const found = this.channels.get(channel);
    if (!found) throw new SlackRefusal('conversations.archive', 'channel_not_found');
    // Like the real client, which takes already_archived as done.
    if (found.archived) return;
    found.archived = true;
    this.channelCalls.push(`conversations.archive ${channel}`);
  }

  async pin(at: PostedMessage): Promise<void> {
    this.maybeFail();
    this.open(at.channel, 'pins.add').pins.add(at.ts);
  }

  private open(id: string, method: string): MemoryChannel {
    const found = this.channels.get(id);
    if (!found) throw new SlackRefusal(method, 'channel_not_found');
    if (found.archived) throw new SlackRefusal(method, 'is_archived');
    return found;
  }

  private maybeFail(): void {
    const failure = this.pendingFailure;
    this.pendingFailure = undefined;
    if (failure) throw failure;
  }
}
