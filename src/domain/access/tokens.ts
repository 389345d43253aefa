// Personal API tokens: `llt_` + 43 URL-safe base64 characters (256 random bits). Only their SHA-256 is stored
// (migrations/005_api_tokens.sql says why a fast hash is right here); the token itself is shown once.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { audit } from '../audit/store.js';
import { formatUtc } from '../../shared/format.js';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export const TOKEN_PREFIX = 'llt_';
/** 32 bytes: 43 base64url characters. */
const TOKEN_BYTES = 32;
export const DEFAULT_TOKEN_DAYS = 90;
export const MAX_TOKEN_DAYS = 365;

/** A token as the README describes it: the prefix and at least 32 URL-safe base64 characters. */
const TOKEN_SHAPE = /^llt_[A-Za-z0-9_-]{32,}$/;

export function isTokenShaped(text: string): boolean {
  return TOKEN_SHAPE.test(text);
}

export function newToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(TOKEN_BYTES).toString('base64url')}`;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Who makes a token: /dr token in Slack, or an operator with lifeline-admin where the server runs. */
export type TokenSource = 'slack' | 'lifeline-admin';

export interface IssuedToken {
  readonly token: string;
  readonly userId: string;
  readonly expiresAt: Date;
}

export async function createToken(
  db: Queryable,
  input: { userId: string; via: TokenSource; days?: number; actor?: string },
): Promise<IssuedToken> {
  const days = input.days ?? DEFAULT_TOKEN_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_TOKEN_DAYS) {
    throw new RangeError(`a token lasts 1 to ${MAX_TOKEN_DAYS} days (got ${days})`);
  }
  const token = newToken();
  const { rows } = await db.query<{ expires_at: Date }>(
    `INSERT INTO api_tokens (token_hash, slack_user, created_via, expires_at)
     VALUES ($1, $2, $3, clock_timestamp() + make_interval(days => $4)) RETURNING expires_at`,
    [hashToken(token), input.userId, input.via, days],
  );
  const expiresAt = rows[0]!.expires_at;
  await audit(db, {
    actor: input.actor ?? input.userId,
    action: 'token_created',
    detail: `API token for ${input.userId} by ${input.via}, expires ${formatUtc(expiresAt)}`,
  });
  return { token, userId: input.userId, expiresAt };
}

/** Revokes every live token of a user; returns how many there were. */
export async function revokeTokens(db: Queryable, userId: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE api_tokens SET revoked_at = clock_timestamp()
      WHERE slack_user = $1 AND revoked_at IS NULL AND expires_at > clock_timestamp()`,
    [userId],
  );
  const revoked = rowCount ?? 0;
  await audit(db, {
    actor: userId,
    action: 'token_revoked',
    detail: `${revoked} API token${revoked === 1 ? '' : 's'} revoked`,
  });
  return revoked;
}

export type Authentication =
  | { readonly ok: true; readonly userId: string; readonly tokenId: string }
  | { readonly ok: false; readonly reason: 'missing' | 'malformed' | 'unknown' | 'expired' | 'revoked' };

/**
 * The user behind `Authorization: Bearer <token>`. The lookup goes by the token's hash, so how long it takes says
 * nothing about any stored token (the caller controls the hash only by guessing 256 bits); the final comparison is
 * constant-time anyway. A refused token changes nothing; an accepted one records when it was last used.
 */
export async function authenticate(db: Queryable, authorization: string | undefined): Promise<Authentication> {
  const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  if (!match) return { ok: false, reason: 'missing' };
  const token = match[1]!;
  if (!isTokenShaped(token)) return { ok: false, reason: 'malformed' };
  const hash = hashToken(token);
  const { rows } = await db.query<{
    id: string;
    token_hash: Buffer;
    slack_user: string;
    expired: boolean;
    revoked: boolean;
  }>(
    `SELECT id::text, token_hash, slack_user,
            expires_at <= clock_timestamp() AS expired, revoked_at IS NOT NULL AS revoked
       FROM api_tokens WHERE token_hash = $1`,
    [hash],
  );
  const row = rows[0];
  if (!row || !timingSafeEqual(row.token_hash, hash)) return { ok: false, reason: 'unknown' };
  if (row.revoked) return { ok: false, reason: 'revoked' };
  if (row.expired) return { ok: false, reason: 'expired' };
  await db.query('UPDATE api_tokens SET last_used_at = clock_timestamp() WHERE id = $1', [row.id]);
  return { ok: true, userId: row.slack_user, tokenId: row.id };
}

/** What a refused token is told (the 401 body): never the token itself. */
export function refusalText(reason: Exclude<Authentication, { ok: true }>['reason']): string {
  const fix =
    'Get a new token with `/dr token` in Slack, or from an operator with ' +
    '`lifeline-admin token create <your Slack user ID>`.';
  switch (reason) {
    case 'missing':
      return `No API token: send \`Authorization: Bearer <token>\` (the CLI reads LIFELINE_TOKEN). ${fix}`;
    case 'malformed':
      return `That is not a Lifeline API token (they look like llt_ followed by 43 characters). ${fix}`;
    case 'unknown':
      return `Lifeline does not know that API token. ${fix}`;
    case 'expired':
      return `That API token has expired. ${fix}`;
    case 'revoked':
      return `That API token was revoked. ${fix}`;
  }
}
