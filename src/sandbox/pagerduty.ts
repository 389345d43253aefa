// The PagerDuty stand-in: the Events API v2 endpoint (PAGERDUTY_EVENTS_URL) with its answers: 202 for an accepted
// event, 400 naming what is wrong otherwise. It pages nobody; the page lists every event and who it was for.

export interface PageEvent {
  readonly at: number;
  readonly action: 'trigger' | 'acknowledge' | 'resolve';
  /** The role whose routing key it was sent with. */
  readonly role: string;
  readonly dedupKey: string;
  readonly summary: string | undefined;
  readonly severity: string | undefined;
  readonly source: string | undefined;
}

const ACTIONS = ['trigger', 'acknowledge', 'resolve'] as const;
const SEVERITIES = ['critical', 'error', 'warning', 'info'];

export class PagerDutyStandIn {
  readonly events: PageEvent[] = [];

  /** routingKeys: routing key → role. */
  constructor(
    private readonly routingKeys: ReadonlyMap<string, string>,
    private readonly onChange: () => void,
  ) {}

  enqueue(raw: string): { status: number; body: Record<string, unknown> } {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return invalid(['Event object is invalid: not JSON']);
    }
    const errors: string[] = [];
    const role = this.routingKeys.get(String(event.routing_key ?? ''));
    if (role === undefined) errors.push("'routing_key' is invalid");
    const action = ACTIONS.find((a) => a === event.event_action);
    if (!action) errors.push("'event_action' must be trigger, acknowledge or resolve");
    const dedupKey = typeof event.dedup_key === 'string' ? event.dedup_key : undefined;
    if (action && action !== 'trigger' && !dedupKey) errors.push(`'dedup_key' is required for ${action}`);
    const payload = typeof event.payload === 'object' && event.payload !== null ? (event.payload as Record<string, unknown>) : undefined;
    if (action === 'trigger') {
      if (typeof payload?.summary !== 'string' || payload.summary === '') errors.push("'payload.summary' is missing");
      if (typeof payload?.source !== 'string' || payload.source === '') errors.push("'payload.source' is missing");
      if (!SEVERITIES.includes(String(payload?.severity))) errors.push("'payload.severity' must be critical, error, warning or info");
    }
    if (errors.length > 0 || !action || role === undefined) return invalid(errors);
    const key = dedupKey ?? `sandbox-${this.events.length + 1}`;
    this.events.push({
      at: Date.now(),
      action,
      role,
      dedupKey: key,
      summary: typeof payload?.summary === 'string' ? payload.summary : undefined,
      severity: typeof payload?.severity === 'string' ? payload.severity : undefined,
      source: typeof payload?.source === 'string' ? payload.source : undefined,
    });
    this.onChange();
    return { status: 202, body: { status: 'success', message: 'Event processed', dedup_key: key } };
  }
}

function invalid(errors: string[]): { status: number; body: Record<string, unknown> } {
  return { status: 400, body: { status: 'invalid event', message: 'Event object is invalid', errors } };
}
