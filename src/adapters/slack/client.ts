import { WebClient, LogLevel } from '@slack/web-api';
import { TransientError, PermanentError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { SlackRefusal, type ChannelPort, type ChatPort, type SlackPort } from './port.js';

export interface SlackChatOptions {
  readonly token: string;
  readonly apiUrl: string;
  readonly log: Logger;
  /** Per-attempt timeout; the defaults keep one call under ~25 s in the worst case. */
  readonly timeoutMs?: number;
  /** Retries after the first attempt (default 2). */
  readonly retries?: number;
}

/**
 * WebClient's default policy may retry one call for ~30 minutes and waits out 429s by itself.
 * Incident posts must not hang like that: a bounded policy, rate limits surfaced as errors,
 * and the job that made the call decides whether to retry.
 */
export function createSlackChat(options: SlackChatOptions): SlackPort {
  const client = new WebClient(options.token, {
    slackApiUrl: options.apiUrl,
    timeout: options.timeoutMs ?? 8_000,
    retryConfig: { retries: options.retries ?? 2, factor: 2, minTimeout: 250, maxTimeout: 2_000, randomize: true },
    rejectRateLimitedCalls: true,
    logLevel: LogLevel.ERROR,
  });

  return { ...chatCalls(client, options.timeoutMs ?? 8_000), ...channelCalls(client) };
}

/** Messages: posts, updates, ephemeral replies and response_url answers. */
function chatCalls(client: WebClient, timeoutMs: number): ChatPort {
  return {
    async respond(responseUrl, message) {
      let response: Response;
      try {
        response = await fetch(responseUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            response_type: 'ephemeral',
            replace_original: false,
            text: message.text,
            ...(message.blocks ? { blocks: message.blocks } : {}),
          }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw new TransientError(`Slack response_url failed: ${(err as Error).message}`, { cause: err });
      }
      await response.body?.cancel();
      if (response.status >= 500 || response.status === 429)
        throw new TransientError(`Slack response_url answered ${response.status}`);
      if (!response.ok) throw new PermanentError(`Slack response_url answered ${response.status} (expired?)`);
    },
    async post(channel, message, threadTs) {
      const result = await call('chat.postMessage', () =>
        client.chat.postMessage({
          channel,
          text: message.text,
          ...(message.blocks ? { blocks: [...message.blocks] } : {}),
          ...(threadTs ? { thread_ts: threadTs } : {}),
          unfurl_links: false,
          unfurl_media: false,
        }),
      );
      if (!result.ts || !result.channel) throw new PermanentError('chat.postMessage answered without ts/channel');
      return { channel: result.channel, ts: result.ts };
    },
    async update(at, message) {
      await call('chat.update', () =>
        client.chat.update({
          channel: at.channel,
          ts: at.ts,
          text: message.text,
          ...(message.blocks ? { blocks: [...message.blocks] } : {}),
        }),
      );
    },
    async postEphemeral(channel, user, message) {
      await call('chat.postEphemeral', () =>
        client.chat.postEphemeral({
          channel,
          user,
          text: message.text,
          ...(message.blocks ? { blocks: [...message.blocks] } : {}),
        }),
      );
    },
  };
}

/** Incident channels: create, invite, topic, archive, pin. Slack's refusals keep their code (SlackRefusal). */
function channelCalls(client: WebClient): ChannelPort {
  /** A channel call: Slack's refusals keep their code, and `ignored` codes are no error at all. */
  async function channelCall(method: string, work: () => Promise<unknown>, ignored: readonly string[] = []) {
    try {
      return await work();
    } catch (err) {
      const e = err as { code?: string; data?: { error?: string } };
      if (e.code === 'slack_webapi_platform_error') {
        const code = e.data?.error ?? 'unknown_error';
        if (ignored.includes(code)) return undefined;
        throw new SlackRefusal(method, code);
      }
      throw classifySlackError(method, err);
    }
  }

  return {
    async createChannel(name) {
      const result = (await channelCall('conversations.create', () =>
        client.conversations.create({ name, is_private: false }),
      )) as { channel?: { id?: string } };
      const id = result.channel?.id;
      if (!id) throw new PermanentError('conversations.create answered without a channel id');
      return id;
    },
    async invite(channel, users) {
      // Slack takes up to 1000 users a call; already_in_channel is what a retry meets.
      for (let i = 0; i < users.length; i += 1000) {
        const chunk = users.slice(i, i + 1000).join(',');
        await channelCall('conversations.invite', () => client.conversations.invite({ channel, users: chunk }), [
          'already_in_channel',
        ]);
      }
    },
    async setTopic(channel, topic) {
      await channelCall('conversations.setTopic', () => client.conversations.setTopic({ channel, topic }));
    },
    async archive(channel) {
      await channelCall('conversations.archive', () => client.conversations.archive({ channel }), ['already_archived']);
    },
    async pin(at) {
      await channelCall('pins.add', () => client.pins.add({ channel: at.channel, timestamp: at.ts }), [
        'already_pinned',
      ]);
    },
  };
}

async function call<T>(method: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw classifySlackError(method, err);
  }
}

function classifySlackError(method: string, err: unknown): Error {
  const e = err as { code?: string; data?: { error?: string }; message?: string };
  // Slack's own "ok: false" answers (channel_not_found, invalid_blocks, not_in_channel...) will not change on retry.
  if (e.code === 'slack_webapi_platform_error') {
    return new PermanentError(`Slack ${method} refused: ${e.data?.error ?? 'unknown error'}`, { cause: err });
  }
  return new TransientError(`Slack ${method} failed: ${e.message ?? String(err)}`, { cause: err });
}
