import { describe, expect, test } from 'vitest';
import { toTerminal } from '../../src/delivery/cli/terminal.js';

describe('the CLI prints Slack mrkdwn readably', () => {
  test('mentions, channels, @here and links become plain text; escapes are undone; bold and code stay', () => {
    expect(toTerminal('Paged <@U0ONCALL> in <#C0EMERGENCY|devops-emergency>, <!here>')).toBe(
      'Paged @U0ONCALL in #C0EMERGENCY, @here',
    );
    expect(toTerminal('see <https://example.com/x|the runbook> or <https://example.com/y>')).toBe(
      'see the runbook (https://example.com/x) or https://example.com/y',
    );
    expect(toTerminal('*JOB-3* `SELECT COUNT(*) FROM users` &lt; 5 &amp;&amp; x &gt; 1')).toBe(
      '*JOB-3* `SELECT COUNT(*) FROM users` < 5 && x > 1',
    );
  });
});
