import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { createSlackChat } from '../../src/adapters/slack/client.js';
import type { Block, ChatMessage } from '../../src/adapters/slack/port.js';
import { PermanentError, TransientError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/log.js';
import { SlackStandIn } from '../../src/adapters/slack/stand-in.js';
import { failure } from '../support/failure.js';
import { line, md } from '../../src/delivery/slack/blocks.js';

const TOKEN = 'xoxb-unit-test-token';
const log = createLogger('silent', [TOKEN], { write: () => undefined });
const BLOCKS: Block[] = [
  { type: 'header', text: { type: 'plain_text', text: 'SEV1 · INC-3' } },
  { type: 'section', text: { type: 'mrkdwn', text: '*Database &lt;down&gt;*' } },
];
const MESSAGE: ChatMessage = { text: md`SEV1 INC-3: Database down`.text, blocks: BLOCKS };

let fake: SlackStandIn;
beforeAll(async () => {
  fake = await new SlackStandIn().start();
});
afterAll(async () => {
  await fake.stop();
});
afterEach(() => {
  fake.calls.length = 0;
  fake.failures.length = 0;
});

function chat(timeoutMs?: number) {
  return createSlackChat({ token: TOKEN, apiUrl: fake.apiUrl, log, ...(timeoutMs ? { timeoutMs } : {}) });
}

describe('createSlackChat: what reaches Slack', () => {
  it('post sends chat.postMessage with channel, text and blocks and returns channel and ts', async () => {
    const posted = await chat().post('C0EMERGENCY', MESSAGE);
    expect(fake.calls).toHaveLength(1);
    const call = fake.calls[0]!;
    expect(call.method).toBe('chat.postMessage');
    expect(call.body.channel).toBe('C0EMERGENCY');
    expect(call.body.text).toBe('SEV1 INC-3: Database down');
    expect(call.body.blocks).toEqual(BLOCKS);
    expect(call.body.thread_ts).toBeUndefined();
    expect(String(call.body.unfurl_links)).toBe('false');
    expect(posted.channel).toBe('C0EMERGENCY');
    expect(posted.ts).toMatch(/^\d+\.\d{6}$/);
    expect(posted.ts).toBe(call.result?.ts);
  });

  it('post into a thread sends thread_ts', async () => {
    const parent = await chat().post('C0EMERGENCY', MESSAGE);
    await chat().post('C0EMERGENCY', line(md`paging oncall`), parent.ts);
    const call = fake.calls[1]!;
    expect(call.result?.ok).toBe(true);
    expect(call.body.thread_ts).toBe(parent.ts);
    expect(call.body.text).toBe('paging oncall');
    expect(call.body.blocks).toBeUndefined();
  });

  it('update sends chat.update with channel, ts, text and blocks', async () => {
    const posted = await chat().post('C0EMERGENCY', line(md`first`));
    await chat().update(posted, MESSAGE);
    const call = fake.calls[1]!;
    expect(call.result?.ok).toBe(true);
    expect(call.method).toBe('chat.update');
    expect(call.body.channel).toBe('C0EMERGENCY');
    expect(call.body.ts).toBe(posted.ts);
    expect(call.body.text).toBe(MESSAGE.text);
    expect(call.body.blocks).toEqual(BLOCKS);
  });

  it('postEphemeral sends chat.postEphemeral with channel, user and text', async () => {
    await chat().postEphemeral('C0EMERGENCY', 'U0OTHER', line(md`Only you can see this`));
    const call = fake.calls[0]!;
    expect(call.method).toBe('chat.postEphemeral');
    expect(call.body.channel).toBe('C0EMERGENCY');
    expect(call.body.user).toBe('U0OTHER');
    expect(call.body.text).toBe('Only you can see this');
    expect(call.body.blocks).toBeUndefined();
  });

  it('text with & < > and emoji arrives unchanged', async () => {
    const text = md`'; DROP TABLE x; -- <b>&amp;</b> 🔥 "q"`.text;
    await chat().post('C1', { text });
    expect(fake.calls[0]?.body.text).toBe(text);
  });
});

describe('createSlackChat: failures', () => {
  it.each(['channel_not_found', 'invalid_blocks', 'not_in_channel'])(
    'ok:false (%s) becomes a PermanentError naming the error',
    async (error) => {
      fake.failures.push({ method: 'chat.postMessage', status: 200, error });
      const err = await failure(chat().post('C0NOPE', MESSAGE));
      expect(err).toBeInstanceOf(PermanentError);
      expect(err.message).toBe(`Slack chat.postMessage refused: ${error}`);
      // Not retried: one call only.
      expect(fake.posts()).toHaveLength(1);
    },
  );

  it('ok:false on update and postEphemeral is permanent too', async () => {
    fake.failures.push(
      { method: 'chat.update', status: 200, error: 'message_not_found' },
      { method: 'chat.postEphemeral', status: 200, error: 'user_not_in_channel' },
    );
    const u = await failure(chat().update({ channel: 'C1', ts: '1.2' }, MESSAGE));
    expect(u).toBeInstanceOf(PermanentError);
    expect(u.message).toBe('Slack chat.update refused: message_not_found');
    const e = await failure(chat().postEphemeral('C1', 'U1', line(md`x`)));
    expect(e).toBeInstanceOf(PermanentError);
    expect(e.message).toBe('Slack chat.postEphemeral refused: user_not_in_channel');
  });

  it('a single 500 is retried by the client and succeeds', async () => {
    fake.failures.push({ method: 'chat.postMessage', status: 500 });
    const posted = await chat().post('C0EMERGENCY', MESSAGE);
    expect(posted.channel).toBe('C0EMERGENCY');
    expect(fake.posts()).toHaveLength(2);
  });

  it('persistent 5xx becomes a TransientError after a bounded number of tries', async () => {
    for (let i = 0; i < 5; i++) fake.failures.push({ method: 'chat.postMessage', status: 503 });
    const err = await failure(chat().post('C0EMERGENCY', MESSAGE));
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toMatch(/^Slack chat\.postMessage failed: /);
    expect(fake.posts()).toHaveLength(3);
  });

  it('a 429 is surfaced as a TransientError instead of being waited out', async () => {
    fake.failures.push({ method: 'chat.postMessage', status: 429, error: 'ratelimited' });
    const started = Date.now();
    const err = await failure(chat().post('C0EMERGENCY', MESSAGE));
    expect(err).toBeInstanceOf(TransientError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('the error never carries the bot token', async () => {
    fake.failures.push({ method: 'chat.postMessage', status: 200, error: 'invalid_auth' });
    const err = await failure(chat().post('C0EMERGENCY', MESSAGE));
    expect(err.message).not.toContain(TOKEN);
  });
});

describe('createSlackChat: timeout', () => {
  let hung: Server;
  let apiUrl = '';
  const sockets = new Set<Socket>();
  let requests = 0;

  beforeAll(async () => {
    hung = createServer(() => {
      requests++;
    });
    hung.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    apiUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/api/`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => hung.close(() => r()));
  });

  it('a Slack that never answers ends in a TransientError, not a hang', async () => {
    requests = 0;
    const started = Date.now();
    const err = await failure(createSlackChat({ token: TOKEN, apiUrl, log, timeoutMs: 150 }).post('C1', MESSAGE));
    expect(err).toBeInstanceOf(TransientError);
    expect(requests).toBeGreaterThanOrEqual(1);
    expect(requests).toBeLessThanOrEqual(3);
    expect(Date.now() - started).toBeLessThan(8_000);
  });
});

describe('MemoryChat', () => {
  it('records posts, thread posts, updates and ephemerals like the port', async () => {
    const m = new MemoryChat();
    const first = await m.post('C0EMERGENCY', MESSAGE);
    const second = await m.post('C0EMERGENCY', line(md`in thread`), first.ts);
    await m.update(first, line(md`updated`));
    await m.postEphemeral('C0EMERGENCY', 'U0OTHER', line(md`just you`));
    expect(first).toEqual({ channel: 'C0EMERGENCY', ts: '1700000001.000100' });
    expect(second).toEqual({ channel: 'C0EMERGENCY', ts: '1700000002.000100' });
    expect(m.calls).toEqual([
      { kind: 'post', channel: 'C0EMERGENCY', ts: first.ts, message: MESSAGE },
      { kind: 'post', channel: 'C0EMERGENCY', ts: second.ts, threadTs: first.ts, message: { text: 'in thread' } },
      { kind: 'update', channel: 'C0EMERGENCY', ts: first.ts, message: { text: 'updated' } },
      { kind: 'ephemeral', channel: 'C0EMERGENCY', ts: '', user: 'U0OTHER', message: { text: 'just you' } },
    ]);
  });

  it('failNext fails exactly the next call, whichever it is, and records nothing for it', async () => {
    const m = new MemoryChat();
    m.failNext(new PermanentError('channel_not_found'));
    await expect(m.update({ channel: 'C1', ts: '1.1' }, line(md`x`))).rejects.toThrow(PermanentError);
    expect(m.calls).toEqual([]);
    await m.post('C1', line(md`ok`));
    expect(m.calls).toHaveLength(1);
    m.failNext(new TransientError('later'));
    await expect(m.postEphemeral('C1', 'U1', line(md`x`))).rejects.toThrow('later');
    await m.postEphemeral('C1', 'U1', line(md`x`));
    expect(m.calls.map((c) => c.kind)).toEqual(['post', 'ephemeral']);
  });
});
