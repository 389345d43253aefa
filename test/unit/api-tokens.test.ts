// Personal API tokens: their shape (the README's `llt_` + at least 32 URL-safe base64 characters), their hash,
// and that the logger scrubs one pasted anywhere.
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { hashToken, isTokenShaped, newToken, refusalText } from '../../src/domain/access/tokens.js';
import { createLogger, createRedactor } from '../../src/shared/log.js';

describe('token format', () => {
  test('a new token is llt_ and 43 URL-safe base64 characters: 256 random bits', () => {
    const token = newToken();
    expect(token).toMatch(/^llt_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice(4), 'base64url')).toHaveLength(32);
    expect(isTokenShaped(token)).toBe(true);
  });

  test('no two tokens are alike', () => {
    const tokens = new Set(Array.from({ length: 1_000 }, () => newToken()));
    expect(tokens.size).toBe(1_000);
  });

  test.each([
    ['no prefix', 'A'.repeat(43)],
    ['another prefix', `xxx_${'A'.repeat(43)}`],
    ['31 characters after the prefix', `llt_${'A'.repeat(31)}`],
    ['a character outside URL-safe base64', `llt_${'A'.repeat(42)}+`],
    ['padding', `llt_${'A'.repeat(42)}=`],
    ['whitespace', `llt_${'A'.repeat(20)} ${'A'.repeat(22)}`],
    ['empty', ''],
  ])('%s is not a token', (_what, text) => {
    expect(isTokenShaped(text)).toBe(false);
  });

  test('32 characters after the prefix is the shortest token allowed', () => {
    expect(isTokenShaped(`llt_${'a-_9'.repeat(8)}`)).toBe(true);
  });

  test('the stored hash is the SHA-256 of the whole token, 32 bytes', () => {
    const token = newToken();
    expect(hashToken(token).equals(createHash('sha256').update(token).digest())).toBe(true);
    expect(hashToken(token)).toHaveLength(32);
    expect(hashToken(token).equals(hashToken(`${token}x`))).toBe(false);
  });

  test('a refusal says why and how to get a token, never echoing one', () => {
    for (const reason of ['missing', 'malformed', 'unknown', 'expired', 'revoked'] as const) {
      const text = refusalText(reason);
      expect(text).toContain('/dr token');
      expect(text).toContain('lifeline-admin token create');
      expect(text).not.toMatch(/llt_[A-Za-z0-9_-]{8,}/);
    }
    expect(refusalText('expired')).toMatch(/expired/);
    expect(refusalText('revoked')).toMatch(/revoked/);
  });
});

describe('a token never reaches a log line', () => {
  test('the redactor scrubs a token anywhere in a text, without being told it', () => {
    const token = newToken();
    expect(createRedactor([])(`Authorization: Bearer ${token}; again ${token}.`)).toBe(
      'Authorization: Bearer [redacted]; again [redacted].',
    );
  });

  test('at debug level, in messages, fields and error texts alike', () => {
    const token = newToken();
    const lines: string[] = [];
    const log = createLogger('debug', [], { write: (line: string) => lines.push(line) });
    log.debug(`ack() response sent (body: {"text":"Your token: \`${token}\`"})`);
    log.info({ header: `Bearer ${token}`, nested: { reply: token } }, 'request');
    log.error({ err: new Error(`bad ${token}`).message }, 'failed');
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).not.toContain(token);
      expect(line).not.toContain(token.slice(4));
      expect(line).toContain('[redacted]');
    }
  });
});
