import { describe, expect, it } from 'vitest';
import { CHANNEL_NAME_MAX, channelName, titleSlug } from '../../src/domain/incidents/channel-name.js';

const SLACK_NAME = /^[a-z0-9_-]+$/;

function expectSlackName(name: string): void {
  expect(name).toMatch(SLACK_NAME);
  expect(name.length).toBeLessThanOrEqual(CHANNEL_NAME_MAX);
  expect(name.endsWith('-')).toBe(false);
}

describe('incident channel names', () => {
  it('is <prefix>-<n>-<slug>, the slug lower-cased with other runs as one dash, trimmed', () => {
    expect(channelName('inc', 7, '  Checkout API: 502s (EU)!! ')).toBe('inc-7-checkout-api-502s-eu');
  });

  it('drops accents from unicode letters and replaces what has no ASCII form', () => {
    expect(titleSlug('Café Zürich — Ñandú')).toBe('cafe-zurich-nandu');
    expect(channelName('inc', 3, 'База данных down')).toBe('inc-3-down');
    expectSlackName(channelName('inc', 3, '数据库 宕机'));
  });

  it('is just <prefix>-<n> for an emoji-only title', () => {
    expect(channelName('inc', 12, '🔥🔥 🚒')).toBe('inc-12');
    expect(channelName('inc', 12, '🔥', 3)).toBe('inc-12-3');
  });

  it('cuts a 150-character title to at most 80 characters, never ending in a dash', () => {
    const title = `${'database '.repeat(16)}`.slice(0, 150);
    const name = channelName('inc', 123456, title);
    expectSlackName(name);
    expect(name.startsWith('inc-123456-database-database')).toBe(true);
    // A cut that lands on a dash drops it.
    const dashy = channelName('inc', 1, `${'a'.repeat(73)} b`);
    expect(dashy).toBe(`inc-1-${'a'.repeat(73)}`);
  });

  it('gives a clash -2, -3... within 80 characters', () => {
    const title = 'x'.repeat(150);
    const first = channelName('inc', 9, title);
    const second = channelName('inc', 9, title, 2);
    const tenth = channelName('inc', 9, title, 10);
    expect(first).toHaveLength(80);
    expect(second).toHaveLength(80);
    expect(second.endsWith('-2')).toBe(true);
    expect(tenth.endsWith('x-10')).toBe(true);
    for (const name of [first, second, tenth]) expectSlackName(name);
    expect(new Set([first, second, tenth]).size).toBe(3);
    expect(channelName('inc', 9, 'db down', 2)).toBe('inc-9-db-down-2');
  });
});
