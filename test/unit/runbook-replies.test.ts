// `/dr run` parsing, the run's message (its buttons by state, user text shown as written) and the report's Markdown.
import { describe, expect, test } from 'vitest';
import { parseRun } from '../../src/delivery/commands/runbooks.js';
import { runProgressMessage } from '../../src/delivery/slack/runbook-replies.js';
import type { Run, RunStep } from '../../src/domain/runbooks/model.js';
import { recoveryTimes, reportMarkdown } from '../../src/domain/runbooks/report.js';
import { UserError } from '../../src/shared/errors.js';

const at = (s: number) => new Date(Date.UTC(2026, 11, 1, 4, 0, s));

function run(overrides: Partial<Run> = {}): Run {
  return {
    number: 7,
    runbook: 'region-failover',
    version: 'abc123def456',
    title: 'Fail over <!channel>',
    approval: 'once',
    requestedBy: 'U0LEAD',
    requestedIn: 'C0EMERGENCY',
    responseUrl: undefined,
    dryRun: false,
    state: 'running',
    approvals: [{ by: 'U0CTO', at: at(1).toISOString(), step: null }],
    expiresAt: undefined,
    decidedBy: undefined,
    progress: undefined,
    outcome: undefined,
    createdAt: at(0),
    startedAt: at(1),
    recoveredAt: undefined,
    finishedAt: undefined,
    ...overrides,
  };
}

function step(index: number, overrides: Partial<RunStep> = {}): RunStep {
  return {
    index,
    id: `step-${index + 1}`,
    kind: 'http_check',
    params: {},
    state: 'pending',
    attempts: 0,
    startedAt: undefined,
    finishedAt: undefined,
    detail: '',
    missing: [],
    kindState: {},
    outputs: undefined,
    dataAgeMs: undefined,
    actedBy: undefined,
    undone: undefined,
    ...overrides,
  };
}

function buttons(r: Run, steps: RunStep[]): string[] {
  const message = runProgressMessage(r, steps, () => 'describe', ['U0CTO'], undefined);
  return (message.blocks ?? []).flatMap((b) =>
    b.type === 'actions' ? b.elements.map((e) => ('text' in e && e.text ? e.text.text : '')) : [],
  );
}

describe('/dr run parsing', () => {
  test('a runbook, --dry-run anywhere, or a report', () => {
    expect(parseRun('region-failover')).toEqual({ runbook: 'region-failover', dryRun: false });
    expect(parseRun('--dry-run region-failover')).toEqual({ runbook: 'region-failover', dryRun: true });
    expect(parseRun('report RUN-12')).toEqual({ report: 12 });
    // A runbook may be called "report": without a run ID it is the runbook.
    expect(parseRun('report')).toEqual({ runbook: 'report', dryRun: false });
  });

  test.each([
    ['', /Name the runbook/],
    ['--force failover', /Unknown option "--force"/],
    ['Fail_Over', /is not a runbook name/],
    ['failover now', /Unexpected text "now"/],
  ])('%j is refused', (text, why) => {
    expect(() => parseRun(text)).toThrow(UserError);
    expect(() => parseRun(text)).toThrow(why);
  });
});

describe("the run's message", () => {
  test('the buttons its state calls for', () => {
    expect(buttons(run({ state: 'awaiting_approval', approvals: [] }), [step(0)])).toEqual(['Approve', 'Reject']);
    expect(buttons(run(), [step(0, { state: 'awaiting_done', kind: 'confirm' })])).toEqual(['Done', 'Abort']);
    expect(buttons(run({ state: 'stopped' }), [step(0, { state: 'failed' })])).toEqual(['Retry', 'Skip', 'Abort']);
    expect(buttons(run(), [step(0, { state: 'running' })])).toEqual([]);
    expect(buttons(run({ state: 'succeeded' }), [step(0, { state: 'succeeded' })])).toEqual([]);
  });

  test('text from the config and from outside systems is shown as written, never as markup', () => {
    const message = runProgressMessage(
      run(),
      [step(0, { state: 'failed', attempts: 1, startedAt: at(2), detail: 'answered <@U0CEO> & 503' })],
      () => 'describe',
      [],
      undefined,
    );
    const text = JSON.stringify(message.blocks);
    expect(text).toContain('Fail over &lt;!channel&gt;');
    expect(text).toContain('answered &lt;@U0CEO&gt; &amp; 503');
    expect(text).not.toContain('<!channel>');
  });
});

describe('the report', () => {
  test('RTO from the first approval to the last recovery check, RPO from the oldest restored data, the headings', () => {
    const ended = run({ state: 'succeeded', recoveredAt: at(61), finishedAt: at(62) });
    const steps = [
      step(0, {
        kind: 'restore',
        state: 'succeeded',
        attempts: 1,
        startedAt: at(2),
        finishedAt: at(30),
        dataAgeMs: 7_200_000,
      }),
      step(1, { state: 'succeeded', attempts: 2, startedAt: at(31), finishedAt: at(61), detail: 'a | b' }),
    ];
    expect(recoveryTimes(ended, steps)).toEqual({ rtoMs: 60_000, rpoMs: 7_200_000, rpoStep: 'step-1' });
    const lines = reportMarkdown(ended, steps, [
      { at: at(40), env: null, job: null, run: 7, actor: 'lifeline', action: 'step_failed', detail: 'step-2: 503' },
      { at: at(45), env: null, job: null, run: 7, actor: 'U0CTO', action: 'step_retried', detail: 'step-2' },
    ]);
    expect(lines[0]).toBe('# RUN-7: region-failover');
    expect(lines).toContain(
      '- RTO achieved: 1 min (first approval 2026-12-01 04:00:01 UTC to the last http_check passing 2026-12-01 04:01:01 UTC)',
    );
    expect(lines).toContain('- RPO achieved: the restored data was 2 h old (step step-1)');
    expect(lines).toContain('- U0CTO approved the run at 2026-12-01 04:00:01 UTC');
    expect(lines).toContain(
      '| 2 | step-2 | http_check | 2026-12-01 04:00:31 UTC | 2026-12-01 04:01:01 UTC | 30.0 s | 2 | succeeded; a / b |',
    );
    const wrong = lines.slice(lines.indexOf('## What went wrong'), lines.indexOf('## Lessons learned'));
    expect(wrong).toContain('- 2026-12-01 04:00:40 UTC lifeline step failed: step-2: 503');
    expect(wrong).toContain('- 2026-12-01 04:00:45 UTC U0CTO step retried: step-2');
    expect(lines).toContain('## Lessons learned');
  });

  test('no recovery check passed: the RTO is not measured, and nothing went wrong is said so', () => {
    const lines = reportMarkdown(run({ state: 'succeeded' }), [step(0, { state: 'succeeded', attempts: 1 })], []);
    expect(lines).toContain('- RTO achieved: not measured (no step that proves recovery passed)');
    expect(lines).toContain('- Nothing: every step passed at its first attempt.');
  });
});
