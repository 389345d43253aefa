// The PagerDuty stand-in: the Events API v2 endpoint (PAGERDUTY_EVENTS_URL) with its answers: 202 for an accepted
// event, 400 naming what is wrong otherwise. It pages nobody; it keeps every event for the tests, the sandbox's page
// and the benchmarks. It serves itself on 127.0.0.1 (`start`), or answers what another server routes to it (`enqueue`).
import {
  jsonAnswer,
  serveOnLoopback,
  type HttpAnswer,
  type HttpRequest,
  type LoopbackServer,
} from '../../shared/loopback-server.js';

export type PagerDutyAction = 'trigger' | 'acknowledge' | 'resolve';

/** An accepted event, in the Events API's own words. */
export interface PagerDutyEvent {
  readonly routing_key: string;
  readonly event_action: PagerDutyAction;
  readonly dedup_key: string;
  readonly payload?: { summary: string; source: string; severity: string; custom_details?: Record<string, unknown> };
  readonly at: number;
  /** The role whose routing key it came with, when the stand-in was told the keys. */
  readonly role: string | undefined;
}

export interface PagerDutyStandInOptions {
  /** Routing key → role; without it, any routing key is taken. */
  readonly routingKeys?: ReadonlyMap<string, string>;
  /** Called after an event was accepted. */
  readonly onChange?: () => void;
}

const ACTIONS: readonly PagerDutyAction[] = ['trigger', 'acknowledge', 'resolve'];
const SEVERITIES = ['critical', 'error', 'warning', 'info'];
const ENQUEUE = 'v2/enqueue';

export class PagerDutyStandIn {
  /** Accepted events only (answered 202). */
  readonly events: PagerDutyEvent[] = [];
  /** When each request at `url` arrived, accepted or not. */
  readonly attempts: number[] = [];
  /** Statuses to answer the next requests with, consumed in order (429, 500, 400...). */
  readonly nextStatuses: number[] = [];
  /** When true, injected error answers echo the request body (as some proxies do), to prove it never reaches a log. */
  echoRequestInErrors = false;
  /** Delay before answering (and recording) each request, to hold a page in flight. */
  delayMs = 0;
  /** Requests received and not answered yet. */
  inFlight = 0;
  /** The enqueue URL Lifeline is given, once `start` serves the stand-in. */
  url = '';
  private server: LoopbackServer | undefined;

  constructor(private readonly options: PagerDutyStandInOptions = {}) {}

  async start(): Promise<this> {
    this.server = await serveOnLoopback((request) => this.serve(request));
    this.url = `${this.server.url}/${ENQUEUE}`;
    return this;
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }

  triggers(): PagerDutyEvent[] {
    return this.events.filter((e) => e.event_action === 'trigger');
  }

  /** One POST to the enqueue endpoint, answered as PagerDuty answers it. */
  enqueue(raw: string): HttpAnswer {
    const status = this.nextStatuses.shift();
    if (status !== undefined && status !== 202) {
      const echo = this.echoRequestInErrors ? { request: raw } : {};
      return jsonAnswer(status, { status: 'error', message: 'fake failure', ...echo });
    }
    let event: unknown;
    try {
      event = JSON.parse(raw);
    } catch {
      return invalid(['Event object is invalid: not JSON']);
    }
    const accepted = this.check(event);
    if ('errors' in accepted) return invalid(accepted.errors);
    this.events.push(accepted);
    this.options.onChange?.();
    return jsonAnswer(202, { status: 'success', message: 'Event processed', dedup_key: accepted.dedup_key });
  }

  private async serve({ path, raw }: HttpRequest): Promise<HttpAnswer> {
    if (path !== ENQUEUE) return jsonAnswer(404, { status: 'error', message: 'Not found' });
    this.attempts.push(Date.now());
    this.inFlight++;
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.inFlight--;
    return this.enqueue(raw);
  }

  private check(event: unknown): PagerDutyEvent | { errors: string[] } {
    if (!isObject(event)) return { errors: ['Event object is invalid: not an object'] };
    const errors: string[] = [];
    const routingKey = typeof event.routing_key === 'string' ? event.routing_key : '';
    const keys = this.options.routingKeys;
    const role = keys?.get(routingKey);
    if (routingKey === '' || (keys !== undefined && role === undefined)) errors.push("'routing_key' is invalid");
    const action = ACTIONS.find((a) => a === event.event_action);
    if (!action) errors.push("'event_action' must be trigger, acknowledge or resolve");
    const dedupKey = typeof event.dedup_key === 'string' && event.dedup_key !== '' ? event.dedup_key : undefined;
    if (action && action !== 'trigger' && !dedupKey) errors.push(`'dedup_key' is required for ${action}`);
    const payload = isObject(event.payload) ? event.payload : undefined;
    const summary = typeof payload?.summary === 'string' ? payload.summary : '';
    const source = typeof payload?.source === 'string' ? payload.source : '';
    const severity = String(payload?.severity);
    if (action === 'trigger') {
      if (summary === '') errors.push("'payload.summary' is missing");
      if (source === '') errors.push("'payload.source' is missing");
      if (!SEVERITIES.includes(severity)) errors.push("'payload.severity' must be critical, error, warning or info");
    }
    if (errors.length > 0 || !action) return { errors };
    const details = isObject(payload?.custom_details) ? { custom_details: payload.custom_details } : {};
    return {
      routing_key: routingKey,
      event_action: action,
      // PagerDuty makes up a key for a trigger that brings none, and answers with it.
      dedup_key: dedupKey ?? `stand-in-${this.events.length + 1}`,
      ...(payload ? { payload: { summary, source, severity, ...details } } : {}),
      at: Date.now(),
      role,
    };
  }
}

function invalid(errors: string[]): HttpAnswer {
  return jsonAnswer(400, { status: 'invalid event', message: 'Event object is invalid', errors });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
