// A fake Slack Web API on 127.0.0.1 for the real @slack/web-api client (SLACK_API_URL), plus response_url endpoints.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  readonly method: string;
  readonly body: Record<string, unknown>;
  readonly at: number;
  /** The request's Authorization header (the WebClient sends its token there). */
  readonly authorization?: string;
  /** What the fake answered (set once answered; undefined for a call answered with a failure). */
  result?: Record<string, unknown>;
}

export interface ResponseUrlPost {
  readonly id: string;
  readonly body: Record<string, unknown>;
  readonly at: number;
}

/** Slack takes at most 5 posts at one response_url (within its 30 minutes); the fake refuses the 6th and on. */
export const RESPONSE_URL_USES = 5;

export class FakeSlack {
  readonly calls: SlackCall[] = [];
  /** The posts a response_url took (a refused one is not here, but in `refusedResponses`). */
  readonly responses: ResponseUrlPost[] = [];
  readonly refusedResponses: ResponseUrlPost[] = [];
  /** Status codes to answer the next Web API calls with (consumed in order); empty = answer normally. */
  readonly failures: { method: string; status: number; error?: string }[] = [];
  /** While true, every Web API call is answered 503, as by a Slack that is down (response_url posts too). */
  down = false;
  private server: Server | undefined;
  private counter = 0;
  private responseCounter = 0;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void readBody(req).then((body) => {
        const path = (req.url ?? '').split('?')[0] ?? '';
        if (this.down) {
          if (!path.startsWith('/response/')) {
            const method = path.replace(/^\/api\//, '');
            this.calls.push({ method, body, at: Date.now(), authorization: req.headers.authorization });
          }
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('Slack is down');
          return;
        }
        if (path.startsWith('/response/')) {
          const post = { id: path.slice('/response/'.length), body, at: Date.now() };
          if (this.responses.filter((r) => r.id === post.id).length >= RESPONSE_URL_USES) {
            // The error word is the sandbox's (src/sandbox/slack.ts); Slack documents the limit, not its answer.
            this.refusedResponses.push(post);
            res.writeHead(404, { 'content-type': 'text/plain' });
            res.end('used_url');
            return;
          }
          this.responses.push(post);
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('ok');
          return;
        }
        const method = path.replace(/^\/api\//, '');
        const call: SlackCall = { method, body, at: Date.now(), authorization: req.headers.authorization };
        this.calls.push(call);
        const failureIndex = this.failures.findIndex((f) => f.method === method);
        if (failureIndex >= 0) {
          const [failure] = this.failures.splice(failureIndex, 1);
          res.writeHead(failure!.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ ok: false, error: failure!.error ?? 'fake_failure' }));
          return;
        }
        call.result = this.answer(method, body, call);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(call.result));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this;
  }

  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  newResponseUrl(): string {
    return `${this.url}/response/r${++this.responseCounter}`;
  }

  /** chat.postMessage calls Slack took (answered with a ts), not the ones it failed. */
  delivered(channel?: string): SlackCall[] {
    return this.posts(channel).filter((c) => c.result?.ts !== undefined);
  }

  posts(channel?: string): SlackCall[] {
    return this.calls.filter((c) => c.method === 'chat.postMessage' && (channel === undefined || c.body.channel === channel));
  }

  ephemerals(): SlackCall[] {
    return this.calls.filter((c) => c.method === 'chat.postEphemeral');
  }

  updates(): SlackCall[] {
    return this.calls.filter((c) => c.method === 'chat.update');
  }

  /** Every reply delivered to the sender alone: response_url posts and chat.postEphemeral. */
  privateReplies(): string[] {
    return [...this.responses.map((r) => String(r.body.text ?? '')), ...this.ephemerals().map((c) => String(c.body.text ?? ''))];
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The answer to one Web API call; subclasses may answer more methods (and see the call's headers). */
  protected answer(method: string, body: Record<string, unknown>, _call?: SlackCall): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://fake.slack.com/', team: 'Fake', user: 'lifeline', team_id: 'T0FAKE', user_id: 'U0LIFELINE', bot_id: 'B0LIFELINE' };
      case 'chat.postMessage':
        return { ok: true, channel: body.channel, ts: `${1_800_000_000 + ++this.counter}.000200`, message: { text: body.text } };
      case 'chat.update':
        return { ok: true, channel: body.channel, ts: body.ts };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: `${1_800_000_000 + ++this.counter}.000300` };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  if (raw === '') return {};
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) return JSON.parse(raw) as Record<string, unknown>;
  // @slack/web-api sends form-encoded bodies; blocks and other structured fields arrive as JSON strings.
  const out: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    out[key] = /^[[{]/.test(value) ? safeJson(value) : value;
  }
  return out;
}

function safeJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
