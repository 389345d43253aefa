// A fake PagerDuty Events API v2 on 127.0.0.1: records every event; can be told to answer with errors.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PagerDutyEvent {
  readonly routing_key: string;
  readonly event_action: 'trigger' | 'acknowledge' | 'resolve';
  readonly dedup_key: string;
  readonly payload?: { summary: string; source: string; severity: string; custom_details?: Record<string, unknown> };
  readonly at: number;
}

export class FakePagerDuty {
  /** Accepted events only (answered 202). */
  readonly events: PagerDutyEvent[] = [];
  /** Every request, accepted or not. */
  readonly attempts: number[] = [];
  /** Status codes for the next requests, consumed in order (429, 500, 400...). */
  readonly nextStatuses: number[] = [];
  /** When true, error answers echo the request body (as some proxies do), to prove it never reaches a log. */
  echoRequestInErrors = false;
  /** Delay before answering (and recording) each request, to hold a page in flight. */
  delayMs = 0;
  /** Requests received and not answered yet. */
  inFlight = 0;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.attempts.push(Date.now());
        this.inFlight++;
        const delay = this.delayMs;
        const answer = () => {
          this.inFlight--;
          this.answer(res, chunks);
        };
        if (delay > 0) setTimeout(answer, delay);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/v2/enqueue`;
    return this;
  }

  private answer(res: ServerResponse, chunks: Buffer[]): void {
    const status = this.nextStatuses.shift();
    if (status !== undefined && status !== 202) {
      res.writeHead(status, { 'content-type': 'application/json' });
      const raw = Buffer.concat(chunks).toString('utf8');
      res.end(JSON.stringify({ status: 'error', message: 'fake failure', ...(this.echoRequestInErrors ? { request: raw } : {}) }));
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Omit<PagerDutyEvent, 'at'>;
    this.events.push({ ...body, at: Date.now() });
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: body.dedup_key }));
  }

  triggers(): PagerDutyEvent[] {
    return this.events.filter((e) => e.event_action === 'trigger');
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
