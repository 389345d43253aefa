import type { ChatMessage, ChatPort, PostedMessage } from './port.js';

export interface RecordedPost {
  readonly kind: 'post' | 'update' | 'ephemeral' | 'respond';
  readonly channel: string;
  readonly ts: string;
  readonly threadTs?: string;
  readonly user?: string;
  readonly message: ChatMessage;
}

/** In-memory ChatPort for unit tests: records every call; `failNext` makes the next call throw. */
export class MemoryChat implements ChatPort {
  readonly calls: RecordedPost[] = [];
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

  private maybeFail(): void {
    const failure = this.pendingFailure;
    this.pendingFailure = undefined;
    if (failure) throw failure;
  }
}
