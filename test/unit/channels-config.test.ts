// `incidents.channels` in lifeline.yml: defaults, and what is refused (with the key's path).
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/shared/config.js';
import { EXAMPLE_ENV, EXAMPLE_TEXT } from './fixtures.js';

function parse(incidents: string) {
  return parseConfigText(`${EXAMPLE_TEXT}\nincidents:\n${incidents}\n`, EXAMPLE_ENV);
}

function problems(incidents: string): readonly string[] {
  try {
    parse(incidents);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('incidents.channels', () => {
  it('is off without the section, and defaults to prefix inc and 24 hours', () => {
    expect(parseConfigText(EXAMPLE_TEXT, EXAMPLE_ENV).incidents?.channels).toBeUndefined();
    expect(parse('  channels: { enabled: true }').incidents?.channels).toEqual({
      enabled: true,
      prefix: 'inc',
      archive_after_hours: 24,
    });
    expect(
      parse('  channels: { enabled: true, prefix: ops_inc, archive_after_hours: 0.5 }').incidents?.channels,
    ).toEqual({ enabled: true, prefix: 'ops_inc', archive_after_hours: 0.5 });
  });

  it('refuses a prefix outside Slack name rules, negative hours and unknown keys, naming the path', () => {
    expect(problems('  channels: { enabled: true, prefix: Inc }').join('\n')).toContain('incidents.channels.prefix');
    expect(problems('  channels: { enabled: true, archive_after_hours: -1 }').join('\n')).toContain(
      'incidents.channels.archive_after_hours',
    );
    expect(problems('  channels: { enabled: true, private: true }').join('\n')).toContain('private');
  });
});
