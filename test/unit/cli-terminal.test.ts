import { describe, expect, test } from 'vitest';
import { messageText, terminalChat, toTerminal } from '../../src/cli/terminal.js';
import { line, md } from '../../src/slack/blocks.js';

describe('the CLI prints Slack mrkdwn readably', () => {
  test('mentions, channels, @here and links become plain text; escapes are undone; bold and code stay', () => {
    expect(toTerminal('Paged <@U0ONCALL> in <#C0EMERGENCY|devops-emergency>, <!here>')).toBe('Paged @U0ONCALL in #C0EMERGENCY, @here');
    expect(toTerminal('see <https://example.com/x|the runbook> or <https://example.com/y>')).toBe('see the runbook (https://example.com/x) or https://example.com/y');
    expect(toTerminal('*JOB-3* `SELECT COUNT(*) FROM users` &lt; 5 &amp;&amp; x &gt; 1')).toBe('*JOB-3* `SELECT COUNT(*) FROM users` < 5 && x > 1');
  });

  test('a message is its sections, or its fallback text without blocks', () => {
    const blocks = [
      { type: 'section' as const, text: { type: 'mrkdwn' as const, text: 'first <@U0LEAD>' } },
      { type: 'divider' as const },
      { type: 'section' as const, text: { type: 'mrkdwn' as const, text: 'second' } },
    ];
    expect(messageText({ text: md`fallback`.text, blocks })).toBe('first @U0LEAD\nsecond');
    expect(messageText(line(md`only <@U0CTO>`))).toBe('only @U0CTO');
  });

  test('the terminal chat prints what a worker would send to Slack, and answers like Slack', async () => {
    const printed: string[] = [];
    const chat = terminalChat((t) => printed.push(t));
    await chat.respond('terminal', line(md`answer`));
    const posted = await chat.post('C1', line(md`a post`));
    await chat.update(posted, line(md`an update`));
    await chat.postEphemeral('C1', 'U1', line(md`private`));
    expect(printed).toEqual(['answer', 'a post', 'an update', 'private']);
    expect(posted.channel).toBe('C1');
  });
});
