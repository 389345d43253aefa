// A fake PagerDuty Events API v2 on 127.0.0.1: records every event; can be told to answer with errors.
import { createServer, type Server } from 'node:http';
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
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.attempts.push(Date.now());
        const status = this.nextStatuses.shift();
        if (status !== undefined && status !== 202) {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: "error", message: "fake failure" }));
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Omit<PagerDutyEvent, 'at'>;
        this.events.push({ ...body, at: Date.now() });
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: body.dedup_key }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/v2/enqueue`;
    return this;
  }

  triggers(): PagerDutyEvent[] {
    return this.events.filter((e) => e.event_action === 'trigger');
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
