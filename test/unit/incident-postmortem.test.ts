import { describe, expect, it } from 'vitest';
import type { PageRecord, TimelineEvent } from '../../src/domain/incidents/model.js';
import { renderPostmortem } from '../../src/delivery/slack/incident-postmortem.js';
import { exampleFile, makeIncident, minutesAfter, T0 } from './fixtures.js';

const FILE = exampleFile();

const timeline: TimelineEvent[] = [
  { at: T0, actor: 'U0DECLARER', kind: 'declared', detail: 'SEV1: DB | replicas down' },
  { at: T0, actor: 'U0DECLARER', kind: 'ladder_started', detail: 'oncall now, engineering_lead +15 min' },
  { at: minutesAfter(T0, 0.01), actor: 'lifeline', kind: 'paged', detail: 'oncall' },
  { at: minutesAfter(T0, 4), actor: 'U0ONCALL', kind: 'acknowledged', detail: '' },
  { at: minutesAfter(T0, 10), actor: 'U0ONCALL', kind: 'update', detail: 'line one\nline two | with pipe' },
  { at: minutesAfter(T0, 65), actor: 'U0LEAD', kind: 'resolved', detail: 'restarted' },
];
const pages: PageRecord[] = [{ role: 'oncall', stepIndex: 0, dueAt: T0, pagedAt: new Date(T0.getTime() + 600) }];

describe('renderPostmortem: a resolved incident', () => {
  const incident = makeIncident({
    number: 12,
    severity: 'sev1',
    title: 'Database | down',
    acknowledgedBy: 'U0ONCALL',
    acknowledgedAt: minutesAfter(T0, 4),
    resolvedBy: 'U0LEAD',
    resolvedAt: minutesAfter(T0, 65),
    resolutionNote: 'restarted\nthe pool',
  });
  const md = renderPostmortem({ incident, timeline, pages }, FILE);
  const lines = md.split('\n');

  it('starts with the ID and title', () => {
    expect(lines[0]).toBe('# Post-mortem draft: INC-12 Database | down');
  });

  it('has a summary with severity, declaration, time to acknowledge and to resolve against the target', () => {
    expect(lines).toContain('## Summary');
    expect(lines).toContain('- **Severity:** SEV1');
    expect(lines).toContain('- **Declared:** 2024-03-05 07:08:09 UTC by U0DECLARER');
    expect(lines).toContain('- **Time to acknowledge:** 4 min (target: immediate); acknowledged by U0ONCALL');
    expect(lines).toContain('- **Time to resolve:** 1 h 5 min (by U0LEAD)');
    expect(lines).toContain('- **Resolution note:** restarted the pool');
  });

  it('lists who was paged and when', () => {
    const at = lines.indexOf('## Who was paged');
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 2]).toBe('- oncall: 2024-03-05 07:08:09 UTC (step 1, due 2024-03-05 07:08:09 UTC)');
  });

  it('has a UTC timeline table with pipes escaped and newlines flattened', () => {
    const at = lines.indexOf('## Timeline (UTC)');
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 2, at + 2 + 2 + timeline.length)).toEqual([
      '| time | who | what | detail |',
      '| --- | --- | --- | --- |',
      '| 2024-03-05 07:08:09 UTC | U0DECLARER | Declared | SEV1: DB \\| replicas down |',
      '| 2024-03-05 07:08:09 UTC | U0DECLARER | Escalation started | oncall now, engineering_lead +15 min |',
      '| 2024-03-05 07:08:09 UTC | lifeline | Paged | oncall |',
      '| 2024-03-05 07:12:09 UTC | U0ONCALL | Acknowledged |  |',
      '| 2024-03-05 07:18:09 UTC | U0ONCALL | Update | line one line two \\| with pipe |',
      '| 2024-03-05 08:13:09 UTC | U0LEAD | Resolved | restarted |',
    ]);
    // Every table row has exactly 4 cells (5 unescaped pipes).
    for (const row of lines.filter((l) => l.startsWith('| '))) expect(row.split(/(?<!\\)\|/).length).toBe(6);
  });

  it('has headings for what only people know', () => {
    for (const heading of ['## Impact', '## Root cause', '## What went well / what did not', '## Action items'])
      expect(lines).toContain(heading);
    expect(lines.indexOf('## Root cause')).toBeLessThan(lines.indexOf('## Action items'));
    expect(lines).toContain('- [ ] _action_ (owner, due date)');
  });
});

describe('renderPostmortem: an open incident', () => {
  const md = renderPostmortem(
    { incident: makeIncident({ severity: 'sev2', title: 'multi\nline title' }), timeline: [], pages: [] },
    FILE,
  );
  const lines = md.split('\n');

  it('says it is not acknowledged yet (with the target) and not resolved yet', () => {
    expect(lines[0]).toBe('# Post-mortem draft: INC-7 multi line title');
    expect(lines).toContain('- **Time to acknowledge:** not acknowledged (target 15 min)');
    expect(lines).toContain('- **Time to resolve:** not resolved yet');
    expect(lines.some((l) => l.startsWith('- **Resolution note:**'))).toBe(false);
  });

  it('says nobody was paged', () => {
    expect(lines[lines.indexOf('## Who was paged') + 2]).toBe('Nobody was paged.');
  });

  it('a missed target says by how much', () => {
    const late = renderPostmortem(
      {
        incident: makeIncident({ severity: 'sev2', acknowledgedBy: 'U0ONCALL', acknowledgedAt: minutesAfter(T0, 20) }),
        timeline: [],
        pages: [],
      },
      FILE,
    );
    expect(late.split('\n')).toContain(
      '- **Time to acknowledge:** 20 min, target 15 min: missed by 5 min; acknowledged by U0ONCALL',
    );
  });

  it('met target is reported as met', () => {
    const acked = renderPostmortem(
      {
        incident: makeIncident({ severity: 'sev2', acknowledgedBy: 'U0ONCALL', acknowledgedAt: minutesAfter(T0, 5) }),
        timeline: [],
        pages: [],
      },
      FILE,
    );
    expect(acked.split('\n')).toContain(
      '- **Time to acknowledge:** 5 min, target 15 min: met; acknowledged by U0ONCALL',
    );
  });
});
