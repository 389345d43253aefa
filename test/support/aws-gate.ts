// A slow AWS: an HTTP hop in front of FakeAws that holds the requests of chosen actions (FilterLogEvents, say) until
// the test lets them through; everything else passes at once. FakeAws still answers every request, by AWS's rules.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface HeldRequest {
  readonly pass: () => void;
}

export class AwsGate {
  url = '';
  /** Requests of a held action that arrived, whether still held, let through or given up by their client. */
  arrived = 0;
  /** Held requests whose client closed the connection before they were let through (an aborted call). */
  abandoned = 0;
  /** The most requests ever waiting at once. */
  mostHeld = 0;
  private readonly heldActions = new Set<string>();
  private waiting: HeldRequest[] = [];
  private server: Server | undefined;

  constructor(private readonly upstream: string) {}

  /** Requests now waiting at the gate. */
  get held(): number {
    return this.waiting.length;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, Buffer.concat(chunks), res));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.release();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Holds every later request for `action` (as named by X-Amz-Target or the query protocol's Action). */
  hold(action: string): void {
    this.heldActions.add(action);
  }

  /** Stops holding and lets every waiting request through. */
  release(): void {
    this.heldActions.clear();
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.pass();
  }

  private handle(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const target = req.headers['x-amz-target'];
    const action =
      typeof target === 'string'
        ? (target.split('.')[1] ?? '')
        : (new URLSearchParams(body.toString('utf8')).get('Action') ?? '');
    const forward = () => this.forward(req, body, res);
    if (!this.heldActions.has(action)) return forward();
    this.arrived++;
    const held: HeldRequest = { pass: forward };
    this.waiting.push(held);
    this.mostHeld = Math.max(this.mostHeld, this.waiting.length);
    res.on('close', () => {
      if (res.writableEnded || !this.waiting.includes(held)) return;
      this.waiting = this.waiting.filter((w) => w !== held);
      this.abandoned++;
    });
  }

  private forward(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    if (res.destroyed) return;
    const target = new URL(req.url ?? '/', this.upstream);
    const upstream = request(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => res.destroy(err));
    upstream.end(body);
  }
}
