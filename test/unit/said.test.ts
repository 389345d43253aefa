import { describe, expect, test } from 'vitest';
import { saidText } from '../../src/delivery/slack/blocks.js';
import { person, plainSaid, said } from '../../src/shared/text.js';

describe('Said: sentences that name people, with no markup in them', () => {
  test('literal parts and strings stay text, people stay parts of their own', () => {
    const sentence = said`cancelled by ${person('U123')} after ${3} steps`;
    expect(sentence).toEqual(['cancelled by ', { person: 'U123' }, ' after 3 steps']);
    expect(plainSaid(sentence)).toBe('cancelled by U123 after 3 steps');
  });

  test('Slack: each person becomes a mention; a mention typed into a string stays text', () => {
    const sentence = said`rejected by ${person('U123')}: ${'<@U999> <!channel>'} in \`SELECT 1\``;
    expect(saidText(sentence).text).toBe('rejected by <@U123>: &lt;@U999&gt; &lt;!channel&gt; in `SELECT 1`');
  });

  test('the system actor is shown as text, not as a mention', () => {
    expect(saidText(said`requested by ${person('lifeline')}`).text).toBe('requested by lifeline');
  });
});
