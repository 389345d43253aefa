// The `lifeline` CLI without a server: help from the very command tables Slack uses (built with nothing behind
// them), the refusals it makes before any request, and lifeline-admin's grammar. Everything that talks to a server is
// proven end to end in test/e2e/cli.test.ts.
import { describe, expect, test } from 'vitest';
import { parseAdminArgs } from '../../src/delivery/cli/admin-args.js';
import { EXIT, runCli, USAGE } from '../../src/delivery/cli/cli.js';
import { toTerminal } from '../../src/delivery/cli/terminal.js';
import { drCommand } from '../../src/delivery/commands/dr.js';
import { helpTables } from '../../src/delivery/commands/help.js';
import { incidentCommand } from '../../src/delivery/commands/incident.js';
import { helpText, prepare } from '../../src/delivery/commands/registry.js';
import { exampleFile, fakeService } from './fixtures.js';

const NO_SETTINGS = { url: undefined, token: undefined };

async function cli(argv: string[], settings: { url?: string; token?: string } = NO_SETTINGS) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(
    argv,
    { out: (l) => out.push(l), err: (l) => err.push(l) },
    { settings: { url: settings.url, token: settings.token } },
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('help with nothing behind the tables', () => {
  test('the help tables are the real ones: the same help text as tables built with services and config', () => {
    const file = exampleFile();
    const never = () => Promise.reject(new Error('not called'));
    const real = {
      incident: incidentCommand({ incidents: fakeService().service, file }),
      dr: drCommand({
        db: undefined as never,
        file,
        recovery: undefined as never,
        query: never,
        tokens: { create: never, revokeAll: never },
        runbooks: undefined as never,
      }),
    };
    const tables = helpTables();
    expect(helpText(tables.incident)).toBe(helpText(real.incident));
    expect(helpText(tables.dr)).toBe(helpText(real.dr));
    expect(helpText(tables.dr)).toContain('/dr token [revoke]');
  });

  test('parsing anything but help reaches for what is not there, and says so', () => {
    expect(() => prepare(helpTables().dr, 'restore production latest')).toThrow(
      /not available here: these command tables are for help only/,
    );
  });

  test('`lifeline help`, `dr help` and `incident help` need no settings; no command at all is a refusal with the usage', async () => {
    const help = await cli(['help']);
    expect(help).toEqual({ code: EXIT.ok, out: USAGE, err: '' });
    const dr = await cli(['dr', 'help']);
    expect(dr.code).toBe(EXIT.ok);
    expect(dr.out).toBe(toTerminal(helpText(helpTables().dr)));
    const incident = await cli(['--no-wait', 'incident', 'help']);
    expect(incident.code).toBe(EXIT.ok);
    expect(incident.out).toBe(toTerminal(helpText(helpTables().incident)));
    const none = await cli([]);
    expect(none).toEqual({ code: EXIT.refused, out: '', err: USAGE });
  });
});

describe('refusals before any request', () => {
  test.each([
    [['deploy', 'now'], /unknown command "deploy"/],
    [['approve'], /Name the job or run, for example `lifeline approve JOB-7` or `lifeline approve RUN-3`\./],
    [['reject', 'nonsense'], /Name the job or run, for example `lifeline reject JOB-7` or `lifeline reject RUN-3`\./],
    [['approve', 'JOB-1', 'JOB-2'], /Name the job/],
    [['run', 'retry'], /Say what to do and which run: `lifeline run done\|retry\|skip\|abort RUN-3`\./],
    [['run', 'again', 'RUN-3'], /Say what to do and which run/],
  ])('lifeline %j', async (argv, message) => {
    const run = await cli(argv, { url: 'http://127.0.0.1:1', token: `llt_${'a'.repeat(43)}` });
    expect(run.code).toBe(EXIT.refused);
    expect(run.err).toMatch(message);
    expect(run.out).toBe('');
  });

  test.each([
    [{}, 'LIFELINE_URL and LIFELINE_TOKEN'],
    [{ url: 'http://127.0.0.1:1' }, 'set LIFELINE_TOKEN'],
    [{ token: 'llt_x' }, 'set LIFELINE_URL'],
  ])('a command without %j is refused, naming what is missing', async (settings, missing) => {
    const run = await cli(['incident', 'sev1', 'x'], settings);
    expect(run.code).toBe(EXIT.refused);
    expect(run.err).toContain(missing);
    expect(run.err).toContain('Nothing was done.');
  });

  test('LIFELINE_URL must be http or https', async () => {
    const run = await cli(['dr', 'jobs'], { url: 'ftp://lifeline', token: 'llt_x' });
    expect(run.code).toBe(EXIT.refused);
    expect(run.err).toContain('LIFELINE_URL must be an http:// or https:// URL');
  });

  test('a server that does not answer is a failure (1), not a refusal', async () => {
    const run = await cli(['dr', 'jobs'], { url: 'http://127.0.0.1:1', token: `llt_${'a'.repeat(43)}` });
    expect(run.code).toBe(EXIT.failed);
    expect(run.err).toMatch(/cannot reach Lifeline at http:\/\/127\.0\.0\.1:1/);
  });
});

describe('lifeline-admin token create', () => {
  test('a Slack user ID, 90 days by default, --days 1 to 365', () => {
    expect(parseAdminArgs(['token', 'create', 'U0LEAD'])).toEqual({ userId: 'U0LEAD', days: 90 });
    expect(parseAdminArgs(['token', 'create', 'W0123ABC', '--days', '7'])).toEqual({ userId: 'W0123ABC', days: 7 });
    expect(parseAdminArgs(['token', 'create', 'U0LEAD', '--days', '365'])).toEqual({ userId: 'U0LEAD', days: 365 });
  });

  test.each([
    [[], 'knows one command'],
    [['token', 'delete', 'U0LEAD'], 'knows one command'],
    [['token', 'create'], 'is not a Slack user ID'],
    [['token', 'create', 'lead'], '"lead" is not a Slack user ID'],
    [['token', 'create', 'U0LEAD; DROP TABLE'], 'is not a Slack user ID'],
    [['token', 'create', 'U0LEAD', '--days'], '--days takes a whole number from 1 to 365'],
    [['token', 'create', 'U0LEAD', '--days', '0'], '--days takes a whole number from 1 to 365 (got "0")'],
    [['token', 'create', 'U0LEAD', '--days', '366'], '(got "366")'],
    [['token', 'create', 'U0LEAD', '--days', '1.5'], '(got "1.5")'],
    [['token', 'create', 'U0LEAD', '--forever'], 'Unexpected "--forever"'],
  ])('%j is refused', (argv, problem) => {
    const parsed = parseAdminArgs(argv);
    expect('problem' in parsed && parsed.problem).toContain(problem);
  });
});
