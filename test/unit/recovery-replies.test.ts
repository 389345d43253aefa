// The /dr renderers: everything from users, logs, backups, the config, AWS and error messages arrives escaped; SQL
// and query values as code; step times to a tenth of a second; only those who may approve are named; a logs reply
// within Slack's response_url and message limits.
import { describe, expect, test } from 'vitest';
import type { ChatMessage } from '../../src/adapters/slack/port.js';
import type { LogEvent } from '../../src/adapters/aws/port.js';
import { verifiedLine } from '../../src/pgtools/verify.js';
import type { RecoveryJob, StepRecord } from '../../src/domain/recovery/model.js';
import type { JobSummary } from '../../src/domain/recovery/notifier.js';
import { person, said } from '../../src/shared/text.js';
import { approversOf } from '../../src/domain/recovery/service.js';
import {
  LOG_REPLY_MESSAGES,
  logReplies,
  planMessage,
  progressMessage,
  renderAudit,
  renderBackupListing,
  renderStatus,
  resultMessage,
  scheduledResultMessage,
} from '../../src/delivery/slack/recovery-replies.js';
import { allTexts, exampleFile, T0 } from './fixtures.js';

/** Slack's special forms that no text but Lifeline's own may carry: broadcasts, a user group, a link. */
const HOSTILE = '<!channel> <!here> <!subteam^S0TEAM> <https://evil.example|docs> &';
const HOSTILE_ESCAPED =
  '&lt;!channel&gt; &lt;!here&gt; &lt;!subteam^S0TEAM&gt; &lt;https://evil.example|docs&gt; &amp;';
const COUNT_QUERY = 'SELECT COUNT(*) FROM users WHERE id > 0 AND kind = `a`';
const COUNT_CODE = '`SELECT COUNT(*) FROM users WHERE id &gt; 0 AND kind = \u02CBa\u02CB`';

function makeJob(overrides: Partial<RecoveryJob> = {}): RecoveryJob {
  return {
    number: 7,
    kind: 'restore',
    env: 'production',
    target: 'production/database',
    params: { kind: 'restore', source: { type: 'latest' } },
    requestedBy: 'U0LEAD',
    requestedIn: 'C0EMERGENCY',
    responseUrl: undefined,
    state: 'awaiting_approval',
    needsApproval: true,
    plan: 'Restore the production database.',
    approval: undefined,
    decidedBy: undefined,
    decidedAt: undefined,
    expiresAt: new Date(T0.getTime() + 30 * 60_000),
    cancelRequestedBy: undefined,
    progress: undefined,
    stepState: {},
    outcome: undefined,
    createdAt: T0,
    startedAt: T0,
    finishedAt: undefined,
    ...overrides,
  };
}

function step(
  index: number,
  name: string,
  ms: number | undefined,
  detail = '',
  state: StepRecord['state'] = 'succeeded',
): StepRecord {
  const startedAt = new Date(T0.getTime() + index * 10_000);
  return {
    index,
    step: name,
    name,
    destructive: false,
    state,
    startedAt,
    finishedAt: ms === undefined ? undefined : new Date(startedAt.getTime() + ms),
    detail: [detail],
  };
}

/** Everything Slack would parse: the fallback text and every text in the blocks. */
function everything(message: ChatMessage): string {
  return [message.text, ...allTexts(message.blocks)].join('\n');
}

/** The raw Slack special forms: a mention, a broadcast, a link. None may come from data. */
function specialForms(text: string): string[] {
  return [...text.matchAll(/<[^>]*>/g)].map((m) => m[0]);
}

describe('approversOf: who the plan names', () => {
  const file = exampleFile(); // approver_roles: engineering_lead (U0LEAD), cto (U0CTO); no self-approval

  test('the requester is left out unless allow_self_approval', () => {
    expect(approversOf(file, { requestedBy: 'U0LEAD' })).toEqual(['U0CTO']);
    expect(approversOf(file, { requestedBy: 'U0ONCALL' })).toEqual(['U0LEAD', 'U0CTO']);
    const selfApproving = { ...file, approvals: { ...file.approvals, allow_self_approval: true } };
    expect(approversOf(selfApproving, { requestedBy: 'U0LEAD' })).toEqual(['U0LEAD', 'U0CTO']);
  });

  test('a sole approver who requested leaves nobody, and the plan says so', () => {
    const sole = { ...file, approvals: { ...file.approvals, approver_roles: ['cto'] } };
    const approvers = approversOf(sole, { requestedBy: 'U0CTO' });
    expect(approvers).toEqual([]);
    expect(everything(planMessage(makeJob({ requestedBy: 'U0CTO' }), approvers))).toContain(
      'Nobody can approve it: no other approver is configured',
    );
  });
});

describe('planMessage', () => {
  test('names those who may approve (the requester is left out by the caller) and no requester note', () => {
    const text = everything(planMessage(makeJob(), ['U0CTO', 'U0CEO']));
    expect(text).toContain('Needs approval by one of <@U0CTO>, <@U0CEO>, until 2024-03-05 07:38 UTC.');
    expect(text).not.toContain('not the requester');
    expect(everything(planMessage(makeJob(), ['U0CTO']))).toContain('Needs approval by <@U0CTO>, until');
  });

  test('when nobody but the requester could approve, it says so plainly', () => {
    const text = everything(planMessage(makeJob(), []));
    expect(text).toContain(
      'Nobody can approve it: no other approver is configured (add one to `approvals.approver_roles`); the request expires at 2024-03-05 07:38 UTC.',
    );
    expect(text).not.toMatch(/Needs approval by/);
  });

  test('the plan text is escaped whole (a mention typed into it too), its SQL is code; people are mentioned as people', () => {
    const plan = `Restore from ${HOSTILE}.\nVerify queries: ${'`SELECT COUNT(*) FROM users`'}.\nAsked by <@U0LEAD>.`;
    const job = makeJob({ params: { kind: 'restore', source: { type: 'file', name: 'shop_<!here>.dump' } }, plan });
    const text = everything(planMessage(job, ['U0CTO']));
    expect(text).toContain(`Restore from ${HOSTILE_ESCAPED}.`);
    expect(text).toContain('Verify queries: `SELECT COUNT(*) FROM users`.');
    expect(text).toContain('shop_&lt;!here&gt;.dump');
    expect(text).toContain('Asked by &lt;@U0LEAD&gt;.');
    expect(specialForms(text).sort()).toEqual(['<@U0CTO>', '<@U0LEAD>']);
  });
});

describe('progressMessage and resultMessage', () => {
  test('step times to a tenth of a second below a minute, as today above', () => {
    const steps = [
      step(0, 'preflight', 400),
      step(1, 'restore into a fresh database', 12_345),
      step(2, 'swap', 75_000),
      step(3, 'verify', undefined, '', 'running'),
    ];
    const progress = everything(progressMessage(makeJob({ state: 'running' }), steps, 'verify'));
    expect(progress).toContain('preflight: started 2024-03-05 07:08:09 UTC, ended 2024-03-05 07:08:09 UTC (0.4 s)');
    expect(progress).toContain('(12.3 s)');
    expect(progress).toContain('(1 min 15 s)');
    expect(progress).not.toMatch(/\(0 s\)/);
    const summary: JobSummary = { succeeded: true, headline: ['Restored production.'], verified: [], totalMs: 2_049 };
    const result = everything(resultMessage(makeJob({ state: 'succeeded' }), steps.slice(0, 3), summary));
    expect(result).toContain('Took 2.0 s in all.');
    expect(result).toContain('• preflight: 0.4 s');
    expect(result).toContain('• restore into a fresh database: 12.3 s');
  });

  test('verify SQL is inline code in progress and result, never bold; values from the database stay data', () => {
    const detail = `Verified "app": ${[
      verifiedLine({ query: COUNT_QUERY, value: '3' }),
      verifiedLine({ query: 'SELECT name FROM users LIMIT 1', value: '<@U0CEO> <!channel>' }),
    ].join('; ')}.`;
    const progress = everything(
      progressMessage(makeJob({ state: 'running' }), [step(0, 'verify', 300, detail)], undefined),
    );
    expect(progress).toContain(`${COUNT_CODE} → \`3\``);
    expect(progress).toContain('`SELECT name FROM users LIMIT 1` → `&lt;@U0CEO&gt; &lt;!channel&gt;`');
    // Outside code spans there is no asterisk that Slack could pair into bold.
    const outsideCode = progress.replace(/`[^`\n]*`/g, '');
    expect(outsideCode).not.toMatch(/COUNT\(\*\)/);
    const summary: JobSummary = {
      succeeded: true,
      headline: ['Restored production.'],
      verified: [verifiedLine({ query: COUNT_QUERY, value: '3' }), 'health: https://x.example/?a=1&b=<2>: HTTP 200'],
      totalMs: 3_000,
    };
    const result = everything(resultMessage(makeJob({ state: 'succeeded' }), [], summary));
    expect(result).toContain(`• ${COUNT_CODE} → \`3\``);
    expect(result).toContain('• health: https://x.example/?a=1&amp;b=&lt;2&gt;: HTTP 200');
    expect(specialForms(result)).toEqual([]);
  });

  test('details, headlines, step names and the running note from AWS or errors are escaped; Lifeline mentions stay', () => {
    const steps = [step(0, `wait ${HOSTILE}`, 1_000, `status ${HOSTILE}`, 'failed')];
    const progress = everything(progressMessage(makeJob({ state: 'running' }), steps, `snapshot ${HOSTILE}`));
    expect(progress).toContain(`wait ${HOSTILE_ESCAPED}`);
    expect(progress).toContain(`status ${HOSTILE_ESCAPED}`);
    expect(progress).toContain(`snapshot ${HOSTILE_ESCAPED}`);
    const failed: JobSummary = {
      succeeded: false,
      headline: said`Cancelled by ${person('U0LEAD')}: ${HOSTILE}`,
      verified: [HOSTILE],
      totalMs: 1_000,
    };
    const result = everything(resultMessage(makeJob({ state: 'failed' }), steps, failed));
    expect(result).toContain(`Cancelled by <@U0LEAD>: ${HOSTILE_ESCAPED}`);
    expect(specialForms(result)).toEqual(['<@U0LEAD>', '<@U0LEAD>']);
  });
});

describe('scheduledResultMessage', () => {
  test('the quiet success line escapes the headline and the drill checks', () => {
    const job = makeJob({ kind: 'drill', params: { kind: 'drill', trigger: 'schedule' }, state: 'succeeded' });
    const summary: JobSummary = {
      succeeded: true,
      headline: [`Restore drill of production passed with ${HOSTILE}.`],
      verified: [`✓ ${HOSTILE}`],
      totalMs: 2_000,
    };
    const message = scheduledResultMessage(job, [], summary);
    expect(message.text).toBe(
      `:white_check_mark: JOB-7 Restore drill of production passed with ${HOSTILE_ESCAPED}. ✓ ${HOSTILE_ESCAPED}.`,
    );
    expect(specialForms(everything(message))).toEqual([]);
  });

  test('a failure is loud with @here, and only that one special form', () => {
    const job = makeJob({ kind: 'backup', params: { kind: 'backup', trigger: 'schedule' }, state: 'failed' });
    const summary: JobSummary = {
      succeeded: false,
      headline: [`pg_dump failed: ${HOSTILE}`],
      verified: [],
      totalMs: 2_000,
    };
    const text = everything(scheduledResultMessage(job, [step(0, 'dump', 1_500, '', 'failed')], summary));
    expect(text).toContain(`pg_dump failed: ${HOSTILE_ESCAPED}`);
    expect(text).toContain('• dump: failed (1.5 s)');
    expect(specialForms(text)).toEqual(['<!here>']);
  });
});

describe('listings, status and audit', () => {
  test('config values, AWS answers and backup names are escaped; names are code', () => {
    const listing = renderBackupListing({
      env: 'production',
      location: `s3://bucket/${HOSTILE}/`,
      rpoMinutes: 360,
      backups: [
        {
          name: 'shop_20240101_000000.dump',
          format: 'custom',
          takenAt: T0,
          safetyCopy: false,
          size: 2048,
          withinRpo: false,
          inFuture: false,
        },
      ],
      snapshots: undefined,
      snapshotError: `AccessDenied ${HOSTILE}`,
    });
    const text = everything(listing);
    expect(text).toContain(`in s3://bucket/${HOSTILE_ESCAPED}/`);
    expect(text).toContain('• `shop_20240101_000000.dump` 2024-03-05 07:08 UTC');
    expect(text).toContain(`AccessDenied ${HOSTILE_ESCAPED}`);
    expect(specialForms(text)).toEqual([]);

    const status = everything(
      renderStatus([
        {
          env: 'production',
          rds: { instance: 'prod-db', error: `throttled ${HOSTILE}` },
          newestBackup: undefined,
          backupError: undefined,
          rpoMinutes: 60,
          services: [{ name: 'api', error: HOSTILE }],
          health: {
            url: 'https://x.example/health?a=1&b=2',
            result: { ok: false, status: undefined, error: HOSTILE, latencyMs: 5 },
          },
        },
      ]),
    );
    expect(status).toContain(`• RDS prod-db: could not be read (throttled ${HOSTILE_ESCAPED})`);
    expect(status).toContain('https://x.example/health?a=1&amp;b=2: no answer');
    expect(specialForms(status)).toEqual([]);
  });

  test('the audit trail keeps who acted as a mention and escapes the detail', () => {
    const text = everything(
      renderAudit(
        [{ at: T0, env: 'production', job: 7, actor: 'U0LEAD', action: 'requested', detail: `restore ${HOSTILE}` }],
        undefined,
      ),
    );
    expect(text).toContain(`JOB-7 [production] <@U0LEAD> requested: restore ${HOSTILE_ESCAPED}`);
    expect(specialForms(text)).toEqual(['<@U0LEAD>', '<@U0LEAD>']);
  });
});

describe('logReplies', () => {
  const asked = { env: 'production', service: 'web', sinceMs: 3_600_000, filter: 'timeout' };
  const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + i * 1_000);

  function codeLines(messages: readonly ChatMessage[]): string[] {
    return messages.flatMap((m) =>
      allTexts(m.blocks)
        .filter((t) => t.startsWith('```\n'))
        .flatMap((t) => {
          expect(t.endsWith('\n```')).toBe(true);
          return t.slice(4, -4).split('\n');
        }),
    );
  }

  test('a few lines: one message, a header, the lines as code in time order', () => {
    const events: LogEvent[] = Array.from({ length: 3 }, (_, i) => ({ at: at(i), stream: 's', message: `line ${i}` }));
    const replies = logReplies(events, asked);
    expect(replies).toHaveLength(1);
    expect(allTexts(replies[0]!.blocks)[0]).toBe(
      ':scroll: Logs of production web, last 60 min, filter "timeout": 3 lines',
    );
    expect(codeLines(replies)).toEqual([
      '2026-01-01 00:00:00 line 0',
      '2026-01-01 00:00:01 line 1',
      '2026-01-01 00:00:02 line 2',
    ]);
  });

  test('no lines: one short reply', () => {
    expect(logReplies([], asked)).toEqual([
      { text: 'No log lines for production web, last 60 min, filter "timeout".' },
    ]);
  });

  test('log lines and the filter arrive escaped: no mention, broadcast or link, and a code block cannot be closed', () => {
    const events: LogEvent[] = [
      { at: at(0), stream: 's', message: 'ping <!here> and <!channel>' },
      { at: at(1), stream: 's', message: 'user <@U0CEO> & <https://evil.example|click>' },
      { at: at(2), stream: 's', message: 'fence ``` *bold* <b>' },
    ];
    const replies = logReplies(events, { ...asked, filter: '<!channel>' });
    const all = replies.map(everything).join('\n');
    expect(specialForms(all)).toEqual([]);
    expect(all).toContain('filter "&lt;!channel&gt;"');
    expect(codeLines(replies)).toEqual([
      '2026-01-01 00:00:00 ping &lt;!here&gt; and &lt;!channel&gt;',
      '2026-01-01 00:00:01 user &lt;@U0CEO&gt; &amp; &lt;https://evil.example|click&gt;',
      "2026-01-01 00:00:02 fence ''' *bold* &lt;b&gt;",
    ]);
  });

  test('2,000 long lines: at most 5 messages within Slack limits, the newest lines whole and in order, then what was left out', () => {
    const events: LogEvent[] = Array.from({ length: 2_000 }, (_, i) => ({
      at: at(i),
      stream: 's',
      message: `WARN request ${String(i).padStart(4, '0')} <slow> & ${'x'.repeat(80 + (i % 50))}`,
    }));
    const replies = logReplies(events, asked);
    expect(replies.length).toBe(LOG_REPLY_MESSAGES + 1);
    expect(replies.length).toBeLessThanOrEqual(5);
    for (const reply of replies) {
      const texts = allTexts(reply.blocks);
      expect((reply.blocks ?? []).length).toBeLessThanOrEqual(50);
      for (const t of texts) expect(t.length).toBeLessThanOrEqual(3_000);
      expect(texts.join('').length).toBeLessThanOrEqual(12_000);
    }
    const shown = codeLines(replies);
    const first = 2_000 - shown.length;
    expect(shown.length).toBeGreaterThan(100);
    expect(shown).toEqual(
      events
        .slice(first)
        .map(
          (e) =>
            `${e.at.toISOString().slice(0, 19).replace('T', ' ')} ${e.message.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}`,
        ),
    );
    expect(allTexts(replies[0]!.blocks)[0]).toBe(
      `:scroll: Logs of production web, last 60 min, filter "timeout": 2000 lines, the newest ${shown.length} shown`,
    );
    const note = replies.at(-1)!;
    expect(note.blocks).toBeUndefined();
    expect(note.text).toBe(
      `:scissors: ${first} older lines were left out: the newest ${shown.length} fill ${LOG_REPLY_MESSAGES} messages. ` +
        'To see the rest, narrow it with `--since 5m` (a shorter window) or `--filter TEXT` (only lines with TEXT).',
    );
  });

  test('a line longer than a section is cut to fit, and says so', () => {
    const events: LogEvent[] = [{ at: at(0), stream: 's', message: '<'.repeat(5_000) }];
    const [reply] = logReplies(events, asked);
    const [line] = codeLines([reply!]);
    expect(line!.endsWith('…')).toBe(true);
    expect(line!.length).toBeLessThanOrEqual(2_900);
    expect(line!.replace('2026-01-01 00:00:00 ', '').replace('…', '')).toMatch(/^(&lt;)+$/);
  });
});
