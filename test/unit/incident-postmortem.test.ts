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

describe('renderPostmortem: detection and communication', () => {
  const commsTimeline: TimelineEvent[] = [
    { at: T0, actor: 'lifeline', kind: 'declared', detail: 'SEV1: HighErrorRate' },
    { at: minutesAfter(T0, 1), actor: 'lifeline', kind: 'statuspage', detail: 'investigating: Looking into it' },
    { at: minutesAfter(T0, 2), actor: 'lifeline', kind: 'statuspage_failed', detail: 'update failed: HTTP 500' },
    { at: minutesAfter(T0, 30), actor: 'lifeline', kind: 'reminder', detail: 'no update for 30 min' },
    { at: minutesAfter(T0, 60), actor: 'lifeline', kind: 'reminder', detail: 'no update for 30 min' },
  ];
  const incident = makeIncident({
    severity: 'sev1',
    title: 'HighErrorRate',
    channel: 'C0INC1',
    statusPage: { id: 'sp-incident-1', link: 'https://stspg.io/abc', status: 'monitoring' },
    source: {
      kind: 'alertmanager',
      key: '{}:{alertname="HighErrorRate"}',
      name: 'HighErrorRate',
      labels: { alertname: 'HighErrorRate', severity: 'critical' },
      annotations: { summary: '5xx above 5 %' },
      link: 'http://prometheus:9090/graph?g0.expr=rate',
    },
  });
  const lines = renderPostmortem({ incident, timeline: commsTimeline, pages: [] }, FILE).split('\n');

  it('names the alert that declared it, with its labels and link', () => {
    expect(lines).toContain(
      '- **Detected by:** Alertmanager alert HighErrorRate (alertname=HighErrorRate, severity=critical), ' +
        'http://prometheus:9090/graph?g0.expr=rate',
    );
  });

  it('names the incident channel and the status page incident with its last status', () => {
    expect(lines).toContain('- **Incident channel:** C0INC1');
    expect(lines).toContain('- **Status page:** incident sp-incident-1 (https://stspg.io/abc), last status monitoring');
  });

  it('lists the status page updates, the failed calls and the reminders, each with a count and times', () => {
    const at = lines.indexOf('- **Status page updates:** 1');
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toBe('  - 2024-03-05 07:09:09 UTC: investigating: Looking into it');
    expect(lines).toContain('- **Status page calls that failed:** 1');
    const reminders = lines.indexOf('- **Update reminders:** 2');
    expect(lines.slice(reminders + 1, reminders + 3)).toEqual([
      '  - 2024-03-05 07:38:09 UTC: no update for 30 min',
      '  - 2024-03-05 08:08:09 UTC: no update for 30 min',
    ]);
  });

  it('says a person declared an incident that no alert declared, and that it had no channel or status page', () => {
    const plain = renderPostmortem({ incident: makeIncident({ severity: 'sev2' }), timeline: [], pages: [] }, FILE);
    expect(plain).toMatch(/- \*\*Detected by:\*\* a person: \/incident sev2 by U\w+/);
    expect(plain).toContain('- **Incident channel:** none');
    expect(plain).toContain('- **Status page:** none');
    expect(plain).not.toContain('Update reminders');
  });

  it('names a health check by its environment', () => {
    const health = makeIncident({
      source: { kind: 'health', key: 'production', name: 'production', labels: {}, annotations: {}, link: undefined },
    });
    expect(renderPostmortem({ incident: health, timeline: [], pages: [] }, FILE)).toContain(
      '- **Detected by:** the health check of production',
    );
  });
});
