import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TimelineEvent } from '../../src/domain/incidents/model.js';
import { renderIncidentList, renderIncidentStatus } from '../../src/delivery/slack/incident-replies.js';
import { allTexts, exampleFile, makeIncident, minutesAfter, T0 } from './fixtures.js';

const FILE = exampleFile();

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(minutesAfter(T0, 65));
});
afterEach(() => {
  vi.useRealTimers();
});

describe('renderIncidentList', () => {
  it('says when nothing is open', () => {
    expect(renderIncidentList({ incidents: [], total: 0 }, FILE)).toEqual({ text: 'No incidents are open.' });
  });

  it('lists each open incident with severity, title, age, state and target', () => {
    const reply = renderIncidentList(
      {
        incidents: [
          makeIncident({ number: 3, severity: 'sev1', title: 'DB <primary> & replica down' }),
          makeIncident({
            number: 4,
            severity: 'sev2',
            declaredAt: minutesAfter(T0, 60),
            acknowledgedBy: 'U0ONCALL',
            acknowledgedAt: minutesAfter(T0, 61),
          }),
        ],
        total: 2,
      },
      FILE,
    );
    expect(reply.text).toBe(
      [
        '2 open incidents:',
        '• *INC-3* SEV1 DB &lt;primary&gt; &amp; replica down: open 1 h 5 min, *not acknowledged* (target immediate)',
        '• *INC-4* SEV2 Checkout is failing: open 5 min, acknowledged by <@U0ONCALL> after 1 min, target 15 min: met',
      ].join('\n'),
    );
    expect(allTexts(reply.blocks)).toEqual([reply.text]);
  });

  it('one incident is singular', () => {
    expect(renderIncidentList({ incidents: [makeIncident()], total: 1 }, FILE).text.split('\n')[0]).toBe(
      '1 open incident:',
    );
  });

  it('a long list is split into section blocks of at most 3000 characters', () => {
    const many = Array.from({ length: 60 }, (_, i) => makeIncident({ number: i + 1, title: `${'&'.repeat(100)}` }));
    const reply = renderIncidentList({ incidents: many, total: 60 }, FILE);
    expect(reply.blocks!.length).toBeGreaterThan(1);
    for (const t of allTexts(reply.blocks)) expect(t.length).toBeLessThanOrEqual(3000);
    expect(allTexts(reply.blocks).join('\n')).toBe(reply.text);
  });

  it('says how many are open in all when only the newest are listed', () => {
    const reply = renderIncidentList(
      { incidents: [makeIncident({ number: 55 }), makeIncident({ number: 54 })], total: 55 },
      FILE,
    );
    expect(reply.text.split('\n')[0]).toBe('55 open incidents (the newest 2 shown):');
  });
});

describe('renderIncidentStatus', () => {
  it('shows state, declaration, target, who was paged and the latest timeline', () => {
    const timeline: TimelineEvent[] = [
      { at: T0, actor: 'U0DECLARER', kind: 'declared', detail: 'SEV1: <b>x</b>' },
      { at: minutesAfter(T0, 1), actor: 'lifeline', kind: 'paged', detail: '' },
    ];
    const reply = renderIncidentStatus(
      {
        incident: makeIncident({ severity: 'sev1', title: 'A & B' }),
        timeline,
        pages: [{ role: 'oncall', stepIndex: 0, dueAt: T0, pagedAt: minutesAfter(T0, 1) }],
      },
      FILE,
    );
    expect(reply.text).toBe(
      [
        '*INC-7* SEV1 A &amp; B',
        'State: open; declared 2024-03-05 07:08 UTC by <@U0DECLARER>; respond immediately',
        'Paged: oncall at 2024-03-05 07:09 UTC',
        '*Latest timeline*',
        '2024-03-05 07:08 UTC  <@U0DECLARER>  declared: SEV1: &lt;b&gt;x&lt;/b&gt;',
        '2024-03-05 07:09 UTC  lifeline  paged',
      ].join('\n'),
    );
    expect(allTexts(reply.blocks)).toEqual([reply.text]);
  });

  it('links the status page incident, with its status, once there is one', () => {
    const statusPage = { id: 'sp1', link: 'https://stspg.io/abc1', status: 'identified' as const };
    const reply = renderIncidentStatus({ incident: makeIncident({ statusPage }), timeline: [], pages: [] }, FILE);
    expect(reply.text.split('\n')).toContain('Status page: <https://stspg.io/abc1|https://stspg.io/abc1> (identified)');
    const without = renderIncidentStatus({ incident: makeIncident(), timeline: [], pages: [] }, FILE);
    expect(without.text).not.toContain('Status page');
  });

  it('says nobody was paged, and shows only the last 10 timeline entries', () => {
    const timeline: TimelineEvent[] = Array.from({ length: 15 }, (_, i) => ({
      at: minutesAfter(T0, i),
      actor: 'U0ONCALL',
      kind: 'update' as const,
      detail: `note ${i}`,
    }));
    const reply = renderIncidentStatus(
      {
        incident: makeIncident({ acknowledgedBy: 'U0ONCALL', acknowledgedAt: minutesAfter(T0, 2) }),
        timeline,
        pages: [],
      },
      FILE,
    );
    const lines = reply.text.split('\n');
    expect(lines[1]).toMatch(/^State: acknowledged; /);
    expect(lines[2]).toBe('Acknowledged by <@U0ONCALL> after 2 min, target 15 min: met');
    expect(lines[3]).toBe('Paged: nobody yet');
    const entries = lines.slice(lines.indexOf('*Latest timeline*') + 1);
    expect(entries).toHaveLength(10);
    expect(entries[0]).toBe('2024-03-05 07:13 UTC  <@U0ONCALL>  update: note 5');
    expect(entries[9]).toBe('2024-03-05 07:22 UTC  <@U0ONCALL>  update: note 14');
  });

  it('an acknowledged SEV1 shows the time to acknowledge against its immediate target, never as missed', () => {
    const incident = makeIncident({
      severity: 'sev1',
      acknowledgedBy: 'U0ONCALL',
      acknowledgedAt: new Date(T0.getTime() + 13_000),
    });
    const status = renderIncidentStatus({ incident, timeline: [], pages: [] }, FILE).text;
    expect(status).toContain('Acknowledged by <@U0ONCALL> after 13 s (target: immediate)');
    const list = renderIncidentList({ incidents: [incident], total: 1 }, FILE).text;
    expect(list).toContain('acknowledged by <@U0ONCALL> after 13 s (target: immediate)');
    expect(`${status}\n${list}`).not.toMatch(/missed/);
  });

  it('stays within section limits with long updates in the timeline', () => {
    const timeline: TimelineEvent[] = Array.from({ length: 10 }, (_, i) => ({
      at: minutesAfter(T0, i),
      actor: 'U0ONCALL',
      kind: 'update' as const,
      detail: 'x'.repeat(2900),
    }));
    const reply = renderIncidentStatus({ incident: makeIncident(), timeline, pages: [] }, FILE);
    expect(reply.blocks!.length).toBeGreaterThan(1);
    for (const t of allTexts(reply.blocks)) expect(t.length).toBeLessThanOrEqual(3000);
  });
});
