// Attempts of one call to another system, as the HTTP clients (PagerDuty, Statuspage, Vercel) make them: a
// TransientError is tried again after a jittered exponential backoff, anything else is thrown at once.
import { setTimeout as sleep } from 'node:timers/promises';
import { TransientError } from './errors.js';

export interface RetryOptions {
  /** Each attempt's own limit. */
  readonly timeoutMs?: number;
  /** Attempts within one call before it is left to the caller's own (job-level) retry. */
  readonly attempts?: number;
  readonly backoffMs?: number;
}

/**
 * Runs `attempt` up to `attempts` times. `waitFor` may name the wait a failure asks for (a 429's Retry-After); a wait
 * longer than `maxWaitMs` is not waited out: the failure is thrown for the caller's own retry.
 */
export async function withRetries<T>(
  options: { attempts: number; backoffMs: number; maxWaitMs?: number },
  attempt: () => Promise<T>,
  waitFor: (err: TransientError) => number | undefined = () => undefined,
): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof TransientError) || i >= options.attempts) throw err;
      const wait = waitFor(err) ?? options.backoffMs * 2 ** (i - 1) * (0.5 + Math.random() / 2);
      if (options.maxWaitMs !== undefined && wait > options.maxWaitMs) throw err;
      await sleep(wait);
    }
  }
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
