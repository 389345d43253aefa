// What the real AWS clients (AWS SDK v3; endpoints from the SDK's own chain, including AWS_ENDPOINT_URL_<SERVICE>)
// and the in-memory doubles share: AWS's refusals and timeouts as errors, and the one polling loop behind every wait.
import { messageOf, TransientError } from '../../shared/errors.js';
import type { WaitOptions } from './port.js';

/** Per-attempt timeouts for the real clients (each makes at most 3 attempts); defaults are in each adapter. */
export interface AwsClientLimits {
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

/** An AWS call that AWS refused for good (access denied, not found, invalid parameter): never retried. */
export class AwsRefusedError extends Error {
  constructor(
    readonly service: string,
    readonly code: string,
    message: string,
  ) {
    super(`${service}: ${code}: ${message}`);
    this.name = 'AwsRefusedError';
  }
}

// Statuses from which neither a snapshot nor an instance becomes available by waiting (the SDK's own
// waiters give up on the same ones); incompatible-* (restore, network, parameters...) are matched by prefix.
const DEAD_RDS_STATUSES = new Set(['failed', 'deleted', 'deleting', 'inaccessible-encryption-credentials']);

/** True for an RDS instance/snapshot status that waiting cannot turn into `available`. */
function isDeadRdsStatus(status: string): boolean {
  return DEAD_RDS_STATUSES.has(status) || status.startsWith('incompatible-');
}

/** One look at an RDS instance or snapshot, as a wait reads it: available is done, a dead status will not recover. */
export function rdsPoll<T>(status: string, value: T, what: string): PollResult<T> {
  if (status === 'available') return { state: 'done', status, value };
  if (isDeadRdsStatus(status)) {
    return { state: 'failed', status, error: new AwsRefusedError('rds', status, `${what} is ${status}`) };
  }
  return { state: 'pending', status };
}

/** A wait that ran out of time: the thing may still get there, so this one is not final (unlike AwsRefusedError). */
export class AwsWaitTimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly waitedSeconds: number,
    readonly lastStatus: string,
  ) {
    super(`timed out after ${waitedSeconds} s waiting for ${what} (last status: ${lastStatus})`);
    this.name = 'AwsWaitTimeoutError';
  }
}

/** What one poll of a wait saw. */
export type PollResult<T> =
  | { readonly state: 'done'; readonly status: string; readonly value: T }
  | { readonly state: 'pending'; readonly status: string }
  | { readonly state: 'failed'; readonly status: string; readonly error: Error };

/**
 * The one polling loop behind every wait (real adapters and in-memory doubles alike, so jobs see the same
 * behaviour in unit tests and production): poll, report the status through `onPoll`, stop on done/failed,
 * sleep `pollSeconds`, give up with AwsWaitTimeoutError after `maxWaitSeconds` (always polling at least once,
 * and once more at the deadline). An abort rejects with the signal's reason at once, even mid-sleep.
 *
 * A poll that throws AwsRefusedError ends the wait (it will not get better); any other error (throttling,
 * 5xx, a dropped connection, after the SDK's own retries) is reported as the status and the wait goes on:
 * a 20-minute restore should not fail on one bad answer. An `onPoll` that throws ends the wait with its error.
 */
export async function waitFor<T>(
  what: string,
  options: WaitOptions,
  poll: (signal: AbortSignal | undefined) => Promise<PollResult<T>>,
): Promise<T> {
  const { signal } = options;
  const started = Date.now();
  const deadline = started + Math.max(0, options.maxWaitSeconds) * 1000;
  const pollMs = Math.max(0, options.pollSeconds) * 1000;
  for (;;) {
    throwIfAborted(signal);
    let result: PollResult<T>;
    try {
      result = await poll(signal);
    } catch (err) {
      throwIfAborted(signal);
      if (err instanceof AwsRefusedError) throw err;
      result = { state: 'pending', status: `error: ${messageOf(err)}` };
    }
    await options.onPoll?.(result.status);
    if (result.state === 'done') return result.value;
    if (result.state === 'failed') throw result.error;
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new AwsWaitTimeoutError(what, options.maxWaitSeconds, result.status);
    await sleep(Math.min(pollMs, remaining), signal);
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(reason === undefined ? 'aborted' : `aborted: ${String(reason)}`);
  error.name = 'AbortError';
  return error;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// Error names that mean "try again later" even though AWS sends them as 4xx client faults.
const RETRYABLE_NAMES = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'SlowDown',
  'PriorRequestNotComplete',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'TransactionInProgressException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalFailure',
  'InternalError',
  'InternalServerError',
  'ServerException',
]);

/**
 * Sorts an error thrown by an AWS SDK call (after the SDK's own bounded retries) into what our jobs need:
 * AwsRefusedError for answers that will not change on retry (access denied, not found, invalid parameter,
 * validation, a resource in the wrong state: every other 4xx), a TransientError (a plain Error to the jobs)
 * for throttling, 5xx and anything that never got an answer (network, timeouts, credentials not reachable).
 * Aborts pass through unchanged.
 */
export function classifyAwsError(service: string, action: string, err: unknown): Error {
  if (err instanceof AwsRefusedError) return err;
  const e = (err ?? {}) as {
    name?: string;
    message?: string;
    $fault?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e.name ?? 'Error';
  if (name === 'AbortError' && err instanceof Error) return err;
  const message = e.message ?? String(err);
  const status = e.$metadata?.httpStatusCode;
  const retryable =
    RETRYABLE_NAMES.has(name) || e.$fault === 'server' || (status !== undefined && (status >= 500 || status === 429));
  if (!retryable && (e.$fault === 'client' || (status !== undefined && status >= 400 && status < 500))) {
    return new AwsRefusedError(service, name, `${action}: ${message}`);
  }
  return new TransientError(`${service}: ${action} failed: ${name}: ${message}`, { cause: err });
}
