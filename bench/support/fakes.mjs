// Local fakes for the benchmarks (127.0.0.1 only): a Slack Web API + response_url endpoint and a PagerDuty Events
// API v2. Plain-JS equivalents of test/support/fake-slack.ts and fake-pagerduty.ts, trimmed to what the benches use.
import { createServer } from 'node:http';
import { URLSearchParams } from 'node:url';

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

function close(server) {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

function readRaw(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(raw, type) {
  if (raw === '') return {};
  try {
    if (String(type ?? '').includes('application/json')) return JSON.parse(raw);
    return Object.fromEntries(new URLSearchParams(raw));
  } catch {
    return { raw };
  }
}

/** Answers auth.test, chat.postMessage, chat.update, chat.postEphemeral under /api/, and response_url posts. */
export class FakeSlack {
  /** recordPosts: keep every chat.postMessage as { channel, text, thread_ts, ts, blocks, at } in `posts`. */
  constructor({ recordPosts = false } = {}) {
    this.recordPosts = recordPosts;
    /** chat.postMessage calls, when recordPosts (blocks as sent: a JSON string in form bodies). */
    this.posts = [];
    this.counter = 0;
    this.responseCounter = 0;
    /** Counts per Web API method. */
    this.methodCounts = {};
    /** response_url posts: { id, text, at }. */
    this.responses = [];
    this.responseListeners = [];
    this.server = createServer((req, res) => {
      readRaw(req).then(
        (raw) => this.handle(req, res, raw),
        () => res.destroy(),
      );
    });
    this.url = '';
  }

  async start() {
    const port = await listen(this.server);
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  get apiUrl() {
    return `${this.url}/api/`;
  }

  newResponseUrl() {
    return `${this.url}/response/r${++this.responseCounter}`;
  }

  handle(req, res, raw) {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const body = parseBody(raw, req.headers['content-type']);
    if (path.startsWith('/response/')) {
      const entry = { id: path.slice('/response/'.length), text: String(body.text ?? ''), at: Date.now() };
      this.responses.push(entry);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    const method = path.replace(/^\/api\//, '');
    this.methodCounts[method] = (this.methodCounts[method] ?? 0) + 1;
    let answer;
    switch (method) {
      case 'auth.test':
        answer = { ok: true, url: 'https://fake.slack.com/', team: 'Fake', user: 'lifeline', team_id: 'T0FAKE', user_id: 'U0LIFELINE', bot_id: 'B0LIFELINE' };
        break;
      case 'chat.postMessage':
        answer = { ok: true, channel: body.channel, ts: `${1_800_000_000 + ++this.counter}.000200`, message: { text: body.text } };
        if (this.recordPosts) {
          this.posts.push({ channel: body.channel, text: String(body.text ?? ''), thread_ts: body.thread_ts, ts: answer.ts, blocks: body.blocks, at: Date.now() });
        }
        break;
      case 'chat.update':
        answer = { ok: true, channel: body.channel, ts: body.ts };
        break;
      case 'chat.postEphemeral':
        answer = { ok: true, message_ts: `${1_800_000_000 + ++this.counter}.000300` };
        break;
      default:
        answer = { ok: false, error: 'unknown_method' };
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  }

  stop() {
    return close(this.server);
  }
}

/** Answers every POST with 202 and records it: { routing_key, event_action, dedup_key, at }. */
export class FakePagerDuty {
  constructor() {
    this.events = [];
    this.server = createServer((req, res) => {
      readRaw(req).then(
        (raw) => {
          const at = Date.now();
          const body = parseBody(raw, 'application/json');
          this.events.push({ routing_key: body.routing_key, event_action: body.event_action, dedup_key: body.dedup_key, at });
          res.writeHead(202, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: body.dedup_key }));
        },
        () => res.destroy(),
      );
    });
    this.url = '';
  }

  async start() {
    const port = await listen(this.server);
    this.url = `http://127.0.0.1:${port}/v2/enqueue`;
    return this;
  }

  triggers() {
    return this.events.filter((e) => e.event_action === 'trigger');
  }

  stop() {
    return close(this.server);
  }
}
