// The `incidents:` keys of lifeline.yml: channels, reminders and stakeholder summaries; defaults, and what is refused
// (with the key's path).
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/shared/config.js';
import { testConfigYaml } from '../support/test-config.js';

const ENV = { PD_KEY_ONCALL: 'rk1-0000', PD_KEY_LEAD: 'rk2-0000', PD_KEY_CTO: 'rk3-0000', PD_KEY_CEO: 'rk4-0000' };

function parse(incidents: string | undefined) {
  const extraYaml = incidents === undefined ? '' : `incidents:\n${incidents}`;
  return parseConfigText(testConfigYaml({ backupsFolder: '/tmp/x', extraYaml }), ENV);
}

function problems(incidents: string): readonly string[] {
  try {
    parse(incidents);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('incidents: config', () => {
  it('is optional: no reminders and no stakeholder summaries', () => {
    const file = parse(undefined);
    expect(file.incidents).toBeUndefined();
  });

  it('takes fractional minutes per severity, and stakeholders default to sev1 and sev2', () => {
    const file = parse('  update_every_minutes: { sev1: 0.5, sev2: 60 }\n  stakeholders: { channel: C0STAKE }');
    expect(file.incidents?.update_every_minutes).toEqual({ sev1: 0.5, sev2: 60 });
    expect(file.incidents?.stakeholders).toEqual({ channel: 'C0STAKE', severities: ['sev1', 'sev2'] });
  });

  it('refuses a zero period, an unknown severity and an unknown key', () => {
    expect(problems('  update_every_minutes: { sev1: 0 }').join('\n')).toContain('update_every_minutes.sev1');
    expect(problems('  update_every_minutes: { sev5: 10 }').join('\n')).toContain('sev5');
    expect(problems('  stakeholders: { channel: C0S, severities: [sev9] }').join('\n')).toContain('severities');
    expect(problems('  remind_every: 5').join('\n')).toContain('remind_every');
  });
});

describe('incidents.channels', () => {
  it('is off without the section, and defaults to prefix inc and 24 hours', () => {
    expect(parse(undefined).incidents?.channels).toBeUndefined();
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
