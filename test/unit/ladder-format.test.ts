import { describe, expect, it } from 'vitest';
import {
  againstTarget,
  formatDuration,
  formatStepTime,
  formatTarget,
  formatUtc,
  formatUtcSeconds,
} from '../../src/shared/format.js';
import { dedupKey, pages, planLadder } from '../../src/domain/incidents/ladder.js';
import { incidentId, incidentState, parseIncidentId } from '../../src/domain/incidents/model.js';
import { exampleFile, makeIncident, minutesAfter, T0 } from './fixtures.js';

const FILE = exampleFile();

describe('planLadder', () => {
  it('a paging severity gets every escalation step, in order, in milliseconds', () => {
    const expected = [
      { stepIndex: 0, role: 'oncall', afterMs: 0 },
      { stepIndex: 1, role: 'engineering_lead', afterMs: 900_000 },
      { stepIndex: 2, role: 'cto', afterMs: 1_800_000 },
      { stepIndex: 3, role: 'ceo', afterMs: 3_600_000 },
    ];
    expect(planLadder(FILE, 'sev1')).toEqual(expected);
    expect(planLadder(FILE, 'sev2')).toEqual(expected);
  });

  it('a non-paging severity gets no steps', () => {
    expect(planLadder(FILE, 'sev3')).toEqual([]);
    expect(planLadder(FILE, 'sev4')).toEqual([]);
  });

  it('follows the page flag, not the severity name', () => {
    const flipped = {
      ...FILE,
      severities: {
        ...FILE.severities,
        sev1: { page: false, respond_minutes: 0 },
        sev4: { page: true, respond_minutes: 1440 },
      },
    };
    expect(planLadder(flipped, 'sev1')).toEqual([]);
    expect(planLadder(flipped, 'sev4')).toHaveLength(4);
    expect(pages(flipped, 'sev1')).toBe(false);
    expect(pages(flipped, 'sev4')).toBe(true);
  });

  it('fractional minutes become whole milliseconds', () => {
    const file = {
      severities: FILE.severities,
      escalation: [
        { after_minutes: 0, notify: 'oncall' },
        { after_minutes: 0.05, notify: 'engineering_lead' },
        { after_minutes: 0.1, notify: 'cto' },
        { after_minutes: 1 / 3, notify: 'ceo' },
        { after_minutes: 0.0001, notify: 'extra' },
      ],
    };
    expect(planLadder(file, 'sev1').map((s) => s.afterMs)).toEqual([0, 3_000, 6_000, 20_000, 6]);
    expect(planLadder(file, 'sev1').map((s) => s.role)).toEqual(['oncall', 'engineering_lead', 'cto', 'ceo', 'extra']);
  });

  it('pages() reads the severity table', () => {
    expect(pages(FILE, 'sev1')).toBe(true);
    expect(pages(FILE, 'sev2')).toBe(true);
    expect(pages(FILE, 'sev3')).toBe(false);
    expect(pages(FILE, 'sev4')).toBe(false);
  });
});

describe('dedupKey', () => {
  it('is fixed per incident and role', () => {
    expect(dedupKey(3, 'oncall')).toBe('lifeline-INC-3-oncall');
    expect(dedupKey(3, 'oncall')).toBe(dedupKey(3, 'oncall'));
  });

  it('differs between roles and between incidents', () => {
    const keys = new Set([
      dedupKey(3, 'oncall'),
      dedupKey(3, 'cto'),
      dedupKey(4, 'oncall'),
      dedupKey(33, 'oncall'),
      dedupKey(4, 'cto'),
    ]);
    expect(keys.size).toBe(5);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 s'],
    [499, '0 s'],
    [500, '1 s'],
    [59_000, '59 s'],
    [59_500, '1 min'],
    [60_000, '1 min'],
    [61_000, '1 min 1 s'],
    [250_000, '4 min 10 s'],
    [3_600_000, '1 h'],
    [5_400_000, '1 h 30 min'],
    [3_661_000, '1 h 1 min'],
    [86_400_000, '1 d 0 h'],
    [90_000_000, '1 d 1 h'],
    [-5_000, '0 s'],
  ])('%i ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('formatStepTime', () => {
  it.each([
    [0, '0.0 s'],
    [400, '0.4 s'],
    [449, '0.4 s'],
    [450, '0.5 s'],
    [2_049, '2.0 s'],
    [12_345, '12.3 s'],
    [59_940, '59.9 s'],
    [59_950, '1 min'],
    [61_000, '1 min 1 s'],
    [3_600_000, '1 h'],
    [-5, '0.0 s'],
  ])('%i ms → %s', (ms, text) => {
    expect(formatStepTime(ms)).toBe(text);
  });
});

describe('formatTarget', () => {
  it('0 is immediate', () => {
    expect(formatTarget(0)).toBe('immediate');
  });
  it('15 is 15 min', () => {
    expect(formatTarget(15)).toBe('15 min');
  });
  it('60 is 1 h', () => {
    // Regression (fixed): src/domain/incidents/format.ts formatTarget(60) returns '1 h 0 min' (via formatDuration), not
    // the plan's '1 h' that its own comment promises.
    expect(formatTarget(60)).toBe('1 h');
  });
  it('1440 is the next business day', () => {
    expect(formatTarget(1440)).toMatch(/^next business day\b/);
  });
  it('fractional minutes are shown in seconds', () => {
    expect(formatTarget(0.5)).toBe('30 s');
    expect(formatTarget(0.05)).toBe('3 s');
  });
});

describe('againstTarget', () => {
  it('met when faster than the target', () => {
    expect(againstTarget(250_000, 15)).toBe('4 min 10 s, target 15 min: met');
  });
  it('met when exactly on the target', () => {
    expect(againstTarget(900_000, 15)).toBe('15 min, target 15 min: met');
  });
  it('missed by the overrun', () => {
    expect(againstTarget(1_000_000, 15)).toBe('16 min 40 s, target 15 min: missed by 1 min 40 s');
  });
  it('an immediate target (a SEV1) shows the time with no verdict: nobody acknowledges in 0 s', () => {
    expect(againstTarget(0, 0)).toBe('0 s (target: immediate)');
    expect(againstTarget(13_000, 0)).toBe('13 s (target: immediate)');
    expect(againstTarget(120_000, 0)).toBe('2 min (target: immediate)');
  });
});

describe('UTC formatting', () => {
  it('formatUtc shows minutes, formatUtcSeconds seconds, both in UTC', () => {
    expect(formatUtc(T0)).toBe('2024-03-05 07:08 UTC');
    expect(formatUtcSeconds(T0)).toBe('2024-03-05 07:08:09 UTC');
    expect(formatUtcSeconds(new Date('2024-12-31T23:59:59.999Z'))).toBe('2024-12-31 23:59:59 UTC');
  });
});

describe('incident model helpers', () => {
  it('incidentId / parseIncidentId', () => {
    expect(incidentId(42)).toBe('INC-42');
    expect(parseIncidentId('INC-42')).toBe(42);
    expect(parseIncidentId('inc-7')).toBe(7);
    expect(parseIncidentId('INC-0')).toBeUndefined();
    expect(parseIncidentId('INC-01')).toBeUndefined();
    expect(parseIncidentId('INC-42x')).toBeUndefined();
    expect(parseIncidentId('42')).toBeUndefined();
    expect(parseIncidentId('INC-1234567890')).toBeUndefined();
  });

  it('incidentState', () => {
    expect(incidentState(makeIncident())).toBe('open');
    expect(incidentState(makeIncident({ acknowledgedAt: minutesAfter(T0, 1), acknowledgedBy: 'U0ONCALL' }))).toBe(
      'acknowledged',
    );
    expect(
      incidentState(
        makeIncident({ acknowledgedAt: minutesAfter(T0, 1), resolvedAt: minutesAfter(T0, 2), resolvedBy: 'U0ONCALL' }),
      ),
    ).toBe('resolved');
    expect(incidentState(makeIncident({ resolvedAt: minutesAfter(T0, 2), resolvedBy: 'U0ONCALL' }))).toBe('resolved');
  });
});
