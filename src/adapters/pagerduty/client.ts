import { PermanentError, TransientError } from '../../shared/errors.js';
import { withRetries, type RetryOptions } from '../../shared/retry.js';
import type { PagerEvent, PagerPort } from './port.js';

export interface EventsApiOptions extends RetryOptions {
  readonly url: string;
}

/**
 * Written by hand, not @pagerduty/pdjs: pdjs's event() builds `https://${server}/v2/enqueue`, so it cannot
 * reach a plain-http endpoint (a test fake or an egress proxy), its requestTimeout aborts nothing, and it retries
 * 429 three times 20 s apart, far too slow mid-incident. This is one POST with a hard timeout and short backoff.
 */
export function createEventsApiPager(options: EventsApiOptions): PagerPort {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const attempts = options.attempts ?? 3;
  const backoffMs = options.backoffMs ?? 500;

  async function attempt(body: string): Promise<void> {
    let response: Response;
    try {
      response = await fetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new TransientError(`PagerDuty unreachable: ${(err as Error).message}`, { cause: err });
    }
    const text = await response.text().catch(() => '');
    if (response.status === 202 || response.status === 200) return;
    const detail = `PagerDuty answered ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
    if (response.status === 429 || response.status >= 500) throw new TransientError(detail);
    throw new PermanentError(detail);
  }

  return {
    async send(event) {
      const body = JSON.stringify(toWire(event));
      await withRetries({ attempts, backoffMs }, () => attempt(body));
    },
  };
}

function toWire(event: PagerEvent): Record<string, unknown> {
  return {
    routing_key: event.routingKey,
    event_action: event.action,
    dedup_key: event.dedupKey,
    ...(event.payload
      ? {
          payload: {
            summary: event.payload.summary.slice(0, 1024),
            source: event.payload.source,
            severity: event.payload.severity,
            ...(event.payload.customDetails ? { custom_details: event.payload.customDetails } : {}),
          },
        }
      : {}),
  };
}
