import { describe, expect, it } from 'vitest';
import { createLogger, createRedactor } from '../../src/shared/log.js';
import { readConfig } from '../../src/shared/config.js';
import { EXAMPLE_ENV, EXAMPLE_PATH } from './fixtures.js';

const BOT_TOKEN = 'xoxb-1234-5678-AbCdEfGhIjKl';
const SIGNING_SECRET = '8f14e45fceea167a5a36dedd4bea2543';
const ROUTING_KEY = 'R0UTINGKEY0000000000000000000001';
const DB_PASSWORD = 'db-pa55word-xyz';
const SECRETS = [BOT_TOKEN, SIGNING_SECRET, ROUTING_KEY, DB_PASSWORD];

function capture(level = 'info', secrets: readonly string[] = SECRETS) {
  const lines: string[] = [];
  const log = createLogger(level, secrets, { write: (line: string) => lines.push(line) });
  return { log, lines, output: () => lines.join('') };
}

function expectClean(output: string, secrets: readonly string[] = SECRETS): void {
  for (const s of secrets) expect(output).not.toContain(s);
}

describe('createRedactor', () => {
  const redact = createRedactor(SECRETS);

  it('replaces every listed secret, every time it occurs', () => {
    expect(redact(`a ${ROUTING_KEY} b ${ROUTING_KEY} c ${SIGNING_SECRET}`)).toBe(
      'a [redacted] b [redacted] c [redacted]',
    );
  });

  it('removes a secret that contains another one whole', () => {
    const r = createRedactor(['abcd', 'abcdefgh']);
    expect(r('x abcdefgh y abcd z')).toBe('x [redacted] y [redacted] z');
  });

  it('scrubs unlisted Slack tokens', () => {
    const r = createRedactor([]);
    expect(r('bot xoxb-99-88-zzTOKEN here')).toBe('bot [redacted] here');
    expect(r('user xoxp-1-2-3-abc, app xapp-1-A0-123-def.')).toBe('user [redacted], app [redacted].');
  });

  it('scrubs unlisted URL passwords but keeps the rest of the URL', () => {
    const r = createRedactor([]);
    expect(r('postgres://app:hunter2@db.internal:5432/x')).toBe('postgres://app:[redacted]@db.internal:5432/x');
    expect(r('redis://:r3dis-pw@cache:6379')).toBe('redis://:[redacted]@cache:6379');
    expect(r('see postgresql://u:p%40ss@h/db and amqp://guest:guest@mq/')).toBe(
      'see postgresql://u:[redacted]@h/db and amqp://guest:[redacted]@mq/',
    );
  });

  it('leaves URLs without a password and ordinary text alone', () => {
    const r = createRedactor(SECRETS);
    expect(r('postgres://localhost:5432/lifeline and https://slack.com/api/ user@example.com 12:30')).toBe(
      'postgres://localhost:5432/lifeline and https://slack.com/api/ user@example.com 12:30',
    );
  });
});

describe('createLogger', () => {
  it('writes JSON lines with the message and fields', () => {
    const { log, lines } = capture();
    log.info({ incident: 'INC-3' }, 'incident declared');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry.msg).toBe('incident declared');
    expect(entry.incident).toBe('INC-3');
    expect(entry.service).toBe('lifeline');
    expect(entry.level).toBe(30);
  });

  it('respects the level', () => {
    const { log, lines } = capture('warn');
    log.info('quiet');
    log.debug('quieter');
    log.warn('loud');
    expect(lines).toHaveLength(1);
    const silent = capture('silent');
    silent.log.error('nothing');
    expect(silent.lines).toEqual([]);
  });

  it('never writes a secret in the message', () => {
    const { log, output } = capture();
    log.info(`calling Slack with ${BOT_TOKEN} and PagerDuty with ${ROUTING_KEY}`);
    log.warn(`signature check used ${SIGNING_SECRET}`);
    expectClean(output());
    expect(output()).toContain('[redacted]');
  });

  it('never writes a secret in fields, however deep', () => {
    const { log, output } = capture();
    log.info(
      { token: BOT_TOKEN, nested: { deeper: { key: ROUTING_KEY, list: [SIGNING_SECRET, { pw: DB_PASSWORD }] } } },
      'deep',
    );
    expectClean(output());
    const entry = JSON.parse(output()) as {
      token: string;
      nested: { deeper: { key: string; list: [string, { pw: string }] } };
    };
    expect(entry.token).toBe('[redacted]');
    expect(entry.nested.deeper.key).toBe('[redacted]');
    expect(entry.nested.deeper.list).toEqual(['[redacted]', { pw: '[redacted]' }]);
  });

  it('never writes a secret inside an error message or stack', () => {
    const { log, output } = capture();
    const err = new Error(`connect failed: postgres://lifeline:${DB_PASSWORD}@db:5432/x (token ${BOT_TOKEN})`);
    log.error({ err }, 'database unreachable');
    log.error(err);
    const cause = new Error('outer', { cause: new Error(`inner with ${ROUTING_KEY}`) });
    log.error({ err: cause }, 'wrapped');
    expectClean(output());
    const first = JSON.parse(output().split('\n')[0]!) as { err: { message: string; stack: string } };
    expect(first.err.message).toBe('connect failed: postgres://lifeline:[redacted]@db:5432/x (token [redacted])');
    expect(first.err.stack).not.toContain(DB_PASSWORD);
  });

  it('scrubs a secret that JSON has to escape (a database password with " or \\)', () => {
    // Regression (fixed): src/shared/log.ts createLogger redacts the serialised JSON line, where a secret containing "
    // or \ appears escaped (\" \\), so split(secret) never matches and the password is logged.
    const password = 'pa"ss\\word';
    const { log, output } = capture('info', [password]);
    log.error({ err: new Error(`auth failed for password ${password}`) }, `retrying with ${password}`);
    const entry = JSON.parse(output()) as { msg: string; err: { message: string } };
    expect(entry.msg).toBe('retrying with [redacted]');
    expect(entry.err.message).toBe('auth failed for password [redacted]');
  });

  it('scrubs unlisted tokens and URL passwords too', () => {
    const { log, output } = capture('info', []);
    log.info(
      { url: 'postgres://admin:not-listed-pw@prod-db/app', header: 'Bearer xoxb-555-666-unlistedToken' },
      'app token xapp-1-A1-unlisted',
    );
    expect(output()).not.toContain('not-listed-pw');
    expect(output()).not.toContain('unlistedToken');
    expect(output()).not.toContain('xapp-1-A1-unlisted');
    const entry = JSON.parse(output()) as { url: string; header: string; msg: string };
    expect(entry.url).toBe('postgres://admin:[redacted]@prod-db/app');
    expect(entry.header).toBe('Bearer [redacted]');
    expect(entry.msg).toBe('app token [redacted]');
  });

  it('with the secrets readConfig collects, nothing from the environment leaks', () => {
    const config = readConfig({
      ...EXAMPLE_ENV,
      LIFELINE_CONFIG: EXAMPLE_PATH,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      DATABASE_URL: 'postgres://lifeline:own-db-pw@pg:5432/lifeline',
    });
    const { log, output } = capture('info', config.secrets);
    // Values as they might reach a log line from somewhere else, not in URL form.
    log.info(
      {
        keys: Object.values(config.file.roles).map((r) => r.pagerduty_routing_key),
        pw: 'own-db-pw',
        prod: 'prod-s3cret-pw',
      },
      `signing with ${SIGNING_SECRET}`,
    );
    expectClean(output(), [
      BOT_TOKEN,
      SIGNING_SECRET,
      EXAMPLE_ENV.PD_KEY_ONCALL!,
      EXAMPLE_ENV.PD_KEY_CEO!,
      'own-db-pw',
      'prod-s3cret-pw',
    ]);
  });
});
