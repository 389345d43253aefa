// The sandbox's one HTTP server: the page and its JSON/Server-Sent-Events API, and the Slack, PagerDuty, Statuspage and
// Vercel stand-ins Lifeline calls (SLACK_API_URL, response_url, PAGERDUTY_EVENTS_URL, STATUSPAGE_API_URL,
// VERCEL_API_URL, the sample application's health_url and its API's health URL the region failover checks).
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parse as parseContentType } from 'content-type';
import type { StatuspageStandIn } from '../adapters/statuspage/stand-in.js';
import type { VercelStandIn } from '../adapters/vercel/stand-in.js';
import type { HttpAnswer } from '../shared/loopback-server.js';
import type { SampleAlert } from './alerts.js';
import type { SandboxPagerDuty } from './pagerduty.js';
import { isObject, type SandboxSlack } from './slack.js';
import type { Workspace } from './workspace.js';

// The page is plain files, served from the source tree as they are: there is nothing to build or download.
const WEB = fileURLToPath(new URL('../../src/sandbox/web/', import.meta.url));
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
const BODY_LIMIT = 1 << 20;
const HEARTBEAT_MS = 15_000;

/** Tells every open page that something changed (the page then fetches the state); a burst makes one message. */
export class ChangeFeed {
  private readonly pages = new Set<ServerResponse>();
  private version = 0;
  private pending: NodeJS.Timeout | undefined;
  private readonly heartbeat = setInterval(() => {
    for (const res of this.pages) res.write(': keep-alive\n\n');
  }, HEARTBEAT_MS);

  readonly changed = (): void => {
    this.version++;
    this.pending ??= setTimeout(() => {
      this.pending = undefined;
      for (const res of this.pages) res.write(`data: ${this.version}\n\n`);
    }, 50);
  };

  open(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(`data: ${this.version}\n\n`);
    this.pages.add(res);
    req.on('close', () => this.pages.delete(res));
  }

  close(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.pending);
    for (const res of this.pages) res.end();
    this.pages.clear();
  }
}

export interface SandboxServerOptions {
  readonly host: string;
  readonly port: number;
  readonly changes: ChangeFeed;
  readonly slack: SandboxSlack;
  readonly pagerduty: SandboxPagerDuty;
  readonly statuspage: StatuspageStandIn;
  readonly vercel: VercelStandIn;
  /** The page's button: the sample Alertmanager alert, sent to Lifeline. */
  readonly alert: SampleAlert;
  readonly workspace: Workspace;
  /** Everything the page shows, as JSON. */
  readonly state: () => Promise<unknown>;
  /** The sample application's health: whether its database answers. */
  readonly healthy: () => Promise<boolean>;
  /** The sample API's health through its DNS record: whether the region serving it answers, and why not. */
  readonly apiHealth: () => { healthy: boolean; detail: string };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Listens; resolves with a function that closes the server (and every page's event stream). */
export async function startServer(options: SandboxServerOptions): Promise<() => Promise<void>> {
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (!res.headersSent) sendJson(res, status, { ok: false, error: (err as Error).message });
      else res.end();
    });
  });

  let ownOrigins: ReadonlySet<string> = new Set();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
    const method = req.method ?? 'GET';
    // Anyone who reaches the page may act as anyone, so a web page the developer visits must not reach it through
    // their browser. Browsers send Origin with every cross-origin request and with every POST; Lifeline's own calls to
    // the stand-ins (and curl) send none.
    const origin = req.headers.origin;
    if (origin !== undefined && !ownOrigins.has(origin)) {
      throw new HttpError(403, `requests from ${origin} are refused: the sandbox answers only its own page`);
    }
    const asset = STATIC[path];
    if (method === 'GET' && asset) {
      const body = await readFile(`${WEB}${asset.file}`);
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (method === 'GET' && path === '/api/state') {
      sendJson(res, 200, await options.state());
      return;
    }
    if (method === 'GET' && path === '/api/events') {
      options.changes.open(req, res);
      return;
    }
    if (method === 'GET' && path === '/shop/health') {
      const ok = await options.healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok' : 'the sample database does not answer');
      return;
    }
    if (method === 'GET' && path === '/shop/api/health') {
      const { healthy, detail } = options.apiHealth();
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(detail);
      return;
    }
    if (path.startsWith('/vercel/')) {
      const raw = await readBody(req);
      const query = new URL(req.url ?? '/', 'http://sandbox').searchParams;
      send(
        res,
        options.vercel.answer({ path: path.slice('/vercel/'.length), headers: req.headers, raw, method, query }),
      );
      // Reads too: a rollback or a build moves on with time, and Lifeline polling it is when the page should look again.
      options.changes.changed();
      return;
    }
    if (path.startsWith('/statuspage/') && (method === 'POST' || method === 'PATCH')) {
      const raw = await readBody(req);
      send(
        res,
        options.statuspage.answer({ path: path.slice('/statuspage/'.length), headers: req.headers, raw, method }),
      );
      options.changes.changed();
      return;
    }
    if (method !== 'POST') throw new HttpError(404, `no ${method} ${path}`);
    // A cross-origin form can post text/plain or form data without asking first; application/json needs a CORS
    // preflight, which this server never approves. Slack's Web API takes form posts, so its stand-in is exempt (the
    // Origin check above covers it).
    if (!path.startsWith('/slack/api/') && !isJson(req.headers['content-type'])) {
      throw new HttpError(415, 'the body must be sent as content-type: application/json');
    }
    const raw = await readBody(req);

    if (path === '/api/type') {
      const body = parseJson(raw);
      const thread = typeof body.threadTs === 'string' && body.threadTs !== '' ? body.threadTs : undefined;
      sendJson(
        res,
        200,
        await options.workspace.type(
          String(body.user ?? ''),
          String(body.channel ?? ''),
          String(body.text ?? ''),
          thread,
        ),
      );
      return;
    }
    if (path === '/api/click') {
      const body = parseJson(raw);
      sendJson(
        res,
        200,
        await options.workspace.click(
          String(body.user ?? ''),
          String(body.channel ?? ''),
          String(body.ts ?? ''),
          Number(body.blockIndex),
          Number(body.elementIndex),
        ),
      );
      return;
    }
    if (path === '/api/alert') {
      const status = parseJson(raw).status;
      if (status !== 'firing' && status !== 'resolved') throw new HttpError(400, 'status must be firing or resolved');
      const sent = await options.alert.send(status);
      const ok = sent.httpStatus === 200;
      sendJson(res, 200, ok ? { ok, sent } : { ok, sent, error: `Lifeline did not take the alert: ${sent.outcome}` });
      return;
    }
    if (path.startsWith('/slack/')) {
      send(res, options.slack.handle({ path: path.slice('/slack/'.length), headers: req.headers, raw }));
      return;
    }
    if (path === '/pagerduty/v2/enqueue') {
      send(res, options.pagerduty.enqueue(raw));
      return;
    }
    throw new HttpError(404, `no POST ${path}`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  ownOrigins = pageOrigins(options.host, (server.address() as AddressInfo).port);

  return async () => {
    options.changes.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

/**
 * The origins the page itself is opened at: loopback by name and address, the configured host, and, when it listens
 * on every interface, each address of this machine. Never a host name it cannot vouch for (DNS rebinding).
 */
export function pageOrigins(host: string, port: number): ReadonlySet<string> {
  const wildcard = host === '' || host === '0.0.0.0' || host === '::';
  const interfaces = wildcard
    ? Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((address) => address.address))
    : [];
  const hosts = ['localhost', '127.0.0.1', '::1', ...(wildcard ? [] : [host]), ...interfaces];
  return new Set(hosts.map((h) => `http://${h.includes(':') ? `[${h}]` : h}:${port}`));
}

function isJson(header: string | undefined): boolean {
  if (header === undefined) return false;
  try {
    return parseContentType(header).type === 'application/json';
  } catch {
    return false;
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) throw new HttpError(413, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(raw: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (isObject(parsed)) return parsed;
  } catch {
    // answered below
  }
  throw new HttpError(400, 'the body must be a JSON object');
}

function send(res: ServerResponse, answer: HttpAnswer): void {
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
