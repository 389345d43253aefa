// An HTTP server on 127.0.0.1 at a free port, for the stand-ins of outside systems: each one answers a request as a
// value, so the sandbox's own server can route the same requests to it.
import { createServer, type IncomingHttpHeaders } from 'node:http';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface HttpRequest {
  /** The path without its query, and without its leading slash. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly raw: string;
  /** GET, POST, PATCH...; absent where a request is routed by hand rather than served. */
  readonly method?: string;
  /** The query string's parameters (empty when there is none). */
  readonly query?: URLSearchParams;
}

export interface LoopbackServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  close(): Promise<void>;
}

export type Answerer = (request: HttpRequest) => HttpAnswer | Promise<HttpAnswer>;

export async function serveOnLoopback(answer: Answerer): Promise<LoopbackServer> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const target = req.url ?? '/';
      const mark = target.indexOf('?');
      const path = (mark < 0 ? target : target.slice(0, mark)).replace(/^\//, '');
      void Promise.resolve(
        answer({
          path,
          headers: req.headers,
          raw: Buffer.concat(chunks).toString('utf8'),
          method: req.method ?? 'GET',
          query: new URLSearchParams(mark < 0 ? '' : target.slice(mark + 1)),
        }),
      ).then(
        (a) => res.writeHead(a.status, a.headers).end(a.body),
        () => res.writeHead(500).end(),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the loopback server has no TCP port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function textAnswer(status: number, body: string): HttpAnswer {
  return { status, headers: { 'content-type': 'text/plain' }, body };
}

export function jsonAnswer(status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): HttpAnswer {
  const json = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
  return { status, headers: { ...json, ...headers }, body: JSON.stringify(body) };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A request body that is a JSON object; undefined for anything else. */
export function parseObject(raw: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(raw);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The failures a test asks a stand-in to answer its next requests with (a 500, a 429 with its Retry-After). */
export class ScriptedFailures {
  private queue: { status: number; retryAfter: string | undefined }[] = [];

  add(times: number, status: number, retryAfterSeconds: number | undefined): void {
    const retryAfter = retryAfterSeconds === undefined ? undefined : String(retryAfterSeconds);
    for (let i = 0; i < times; i++) this.queue.push({ status, retryAfter });
  }

  /** The next failure, answered with the stand-in's error `body` for its status; undefined when none is left. */
  next(body: (status: number) => unknown): HttpAnswer | undefined {
    const failure = this.queue.shift();
    if (!failure) return undefined;
    const extra: Record<string, string> = failure.retryAfter ? { 'retry-after': failure.retryAfter } : {};
    return jsonAnswer(failure.status, body(failure.status), extra);
  }
}
