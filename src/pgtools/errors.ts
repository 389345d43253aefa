// How a PostgreSQL tool stops: cancelled (AbortError), or refused for good (RestoreFailedError).
import { PermanentError } from '../shared/errors.js';

/** Cancellation: the error every step throws when its AbortSignal fires. */
export class AbortError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'AbortError';
  }
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortError(`${what} was cancelled`);
}

/** Runs `work` but gives up (running `onAbort`) as soon as the signal fires. */
export async function abortable<T>(
  signal: AbortSignal | undefined,
  what: string,
  work: Promise<T>,
  onAbort: () => void,
): Promise<T> {
  if (!signal) return work;
  throwIfAborted(signal, what);
  let listener: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    listener = () => {
      onAbort();
      reject(new AbortError(`${what} was cancelled`));
    };
    signal.addEventListener('abort', listener, { once: true });
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (listener) signal.removeEventListener('abort', listener);
  }
}

/** A failure retrying cannot fix: the backup is missing or corrupt, pg_restore refused it, rights are missing. */
export class RestoreFailedError extends PermanentError {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreFailedError';
  }
}
