// JSON request bodies for the routes on PORT (the API, the alert webhooks): the type, the size limit and the parse.
import type { IncomingMessage, ServerResponse } from 'node:http';

export type JsonBody =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly status: 400 | 413 | 415; readonly answer: object };

export interface BodyLimit {
  readonly maxBytes: number;
  /**
   * What happens to the rest of a body over the limit: `drain` reads and drops it (the connection stays usable);
   * `stop` reads no further, and the answer closes the connection (see `closeAfter`).
   */
  readonly overflow: 'drain' | 'stop';
}

/** The JSON body of a POST, or why not: 415 (not JSON), 413 (over the limit), 400 (not parseable). Empty is `{}`. */
export async function readJsonBody(req: IncomingMessage, limit: BodyLimit): Promise<JsonBody> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    if (limit.overflow === 'drain') req.resume();
    return {
      ok: false,
      status: 415,
      answer: {
        ok: false,
        reply: 'Send the body as JSON, with content-type: application/json.',
        code: 'unsupported_media_type',
      },
    };
  }
  const tooLarge: JsonBody = {
    ok: false,
    status: 413,
    answer: { ok: false, reply: `The body is larger than ${sizeText(limit.maxBytes)}.`, code: 'too_large' },
  };
  if (Number(req.headers['content-length'] ?? 0) > limit.maxBytes) {
    if (limit.overflow === 'drain') req.resume();
    return tooLarge;
  }
  const chunks = await new Promise<Buffer[] | undefined>((resolve, reject) => {
    const received: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit.maxBytes) return void received.push(chunk);
      received.length = 0;
      if (limit.overflow === 'stop') {
        req.off('data', onData);
        req.pause();
      }
      // Answer at once; with `drain` the rest keeps arriving (so the 413 reaches the client) and is dropped.
      resolve(undefined);
    };
    req.on('data', onData);
    req.on('end', () => resolve(size <= limit.maxBytes ? received : undefined));
    req.on('error', reject);
  });
  if (chunks === undefined) return tooLarge;
  const raw = Buffer.concat(chunks).toString('utf8');
  if (raw.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch {
    return { ok: false, status: 400, answer: { ok: false, reply: 'The body is not valid JSON.', code: 'bad_request' } };
  }
}

/**
 * For an answer given without reading the whole body: the connection closes once the answer is sent, so what the
 * client still sends is never read.
 */
export function closeAfter(res: ServerResponse): void {
  res.setHeader('connection', 'close');
  res.once('finish', () => setImmediate(() => res.req.socket.destroy()));
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: object,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${bytes / (1024 * 1024)} MB` : `${bytes / 1024} KB`;
}
