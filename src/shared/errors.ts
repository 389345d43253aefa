import { randomBytes } from 'node:crypto';
import { plainSaid, type Said } from './text.js';

/**
 * A mistake or refusal the user can fix: shown to them alone, never retried, never logged as a failure.
 * `usage` is appended to the reply so the user sees the correct form right away. A refusal that names people is a
 * `Said`: `said` keeps them as people for the renderers, `message` is its plain text.
 */
export class UserError extends Error {
  readonly said: Said;

  constructor(
    readonly code: UserErrorCode,
    message: string | Said,
    readonly usage?: string,
  ) {
    super(typeof message === 'string' ? message : plainSaid(message));
    this.said = typeof message === 'string' ? [message] : message;
    this.name = 'UserError';
  }
}

export type UserErrorCode =
  | 'bad_command'
  | 'channel_not_allowed'
  | 'unknown_incident'
  | 'incident_ambiguous'
  | 'incident_resolved'
  | 'already_done'
  | 'not_permitted'
  | 'not_available';

/** A call to another system that failed but may succeed later (network error, 429, 5xx). */
export class TransientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/** A call another system refused for good (for example a 400 from PagerDuty): retrying cannot help. */
export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/** Short, unambiguous, easy to read aloud on a bridge call. */
export function newErrorId(): string {
  return `ERR-${randomBytes(4).toString('hex').toUpperCase()}`;
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
