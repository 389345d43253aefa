import { describe, expect, test } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { rpoBreachSummary, type RpoBreach, type RpoMet } from '../../src/domain/backups/alert-notifier.js';
import { alertMessage, createSlackAlertNotifier } from '../../src/delivery/slack/alert-notifier.js';
import { exampleFile } from './fixtures.js';

const HOUR = 3_600_000;

const noBackup: RpoBreach = {
  kind: 'rpo_breach',
  env: 'staging',
  newest: undefined,
  location: 'memory://x/',
  rpoMs: HOUR,
};
const oldBackup: RpoBreach = {
  kind: 'rpo_breach',
  env: 'staging',
  newest: {
    name: 'staging_app_20260501_092953.dump',
    takenAt: new Date('2026-05-01T09:29:53Z'),
    ageMs: 150 * 60_000 + 7_000,
  },
  location: 'memory://x/',
  rpoMs: HOUR,
};
const metAgain: RpoMet = {
  kind: 'rpo_met',
  env: 'staging',
  newest: { name: 'staging_app_20260501_114730.dump', ageMs: 12.5 * 60_000 },
  rpoMs: HOUR,
};

describe('alert notices in Slack: the words the RPO watch posted before the desk spoke data', () => {
  test('a breach with no backup at all: where Lifeline looked, the RPO, and the command that takes one', () => {
    expect(rpoBreachSummary(noBackup)).toBe('RPO breach: there is no backup of staging in memory://x/; the RPO is 1 h');
    expect(alertMessage(noBackup)).toEqual({
      text:
        ':rotating_light: RPO breach: there is no backup of staging in memory://x/; the RPO is 1 h. ' +
        'On-call has been paged (warning). `/dr backup staging` takes one now.',
    });
  });

  test('a breach with an old backup: its name, when it was taken (UTC) and its age', () => {
    expect(alertMessage(oldBackup)).toEqual({
      text:
        ':rotating_light: RPO breach: the newest backup of staging (staging_app_20260501_092953.dump, ' +
        '2026-05-01 09:29 UTC) is 2 h 30 min old; the RPO is 1 h. On-call has been paged (warning). ' +
        '`/dr backup staging` takes one now.',
    });
  });

  test('met again: the fresh backup, its age, the RPO, and that the page was resolved', () => {
    expect(alertMessage(metAgain)).toEqual({
      text:
        ':white_check_mark: RPO of staging met again: staging_app_20260501_114730.dump is 12 min 30 s old ' +
        '(RPO 1 h). The page was resolved.',
    });
  });

  test('what comes from the config or the store is escaped, never markup', () => {
    const message = alertMessage({ ...noBackup, env: '<!channel>', location: 'file:///b<@U1>/' });
    expect(message.text).toContain('there is no backup of &lt;!channel&gt; in file:///b&lt;@U1&gt;/');
    expect(message.text).not.toMatch(/<[!@]/);
  });

  test('the Slack notifier posts the notice to emergency_channel, top-level', async () => {
    const file = exampleFile();
    const chat = new MemoryChat();
    await createSlackAlertNotifier(chat, file).tell(metAgain);
    expect(chat.calls).toEqual([
      { kind: 'post', channel: file.slack.emergency_channel, ts: expect.any(String), message: alertMessage(metAgain) },
    ]);
  });
});
