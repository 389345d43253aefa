import { describe, expect, it } from 'vitest';
import { incidentCommand, parseTitle, splitIncidentId } from '../../src/delivery/commands/incident.js';
import {
  badCommand,
  execute,
  helpText,
  route,
  subcommand,
  usageOf,
  words,
  type CommandContext,
  type SlashCommand,
} from '../../src/delivery/commands/registry.js';
import { UserError } from '../../src/shared/errors.js';
import { line, md } from '../../src/delivery/slack/blocks.js';
import type { IncidentReference } from '../../src/domain/incidents/service.js';
import { exampleFile, fakeService, makeIncident, T0, type ServiceCall } from './fixtures.js';

const FILE = exampleFile();
const CTX: CommandContext = { userId: 'U0DECLARER', channelId: 'C0EMERGENCY' };
const THREAD_CTX: CommandContext = { userId: 'U0ONCALL', channelId: 'C0EMERGENCY', threadTs: '1700000001.000100' };

const DECLARE_USAGE = 'Usage: `/incident sev1|sev2|sev3|sev4 <title>`';

/** The parsed arguments, with no service at all behind the command. */
function parse(text: string): unknown {
  const { service, calls } = fakeService();
  const command = incidentCommand({ incidents: service, file: FILE });
  const { entry, word, rest } = route(command, text);
  const args = entry.parse(rest, word);
  expect(calls).toEqual([]);
  return args;
}

/** Runs the command through `execute` and returns the refusal; asserts that nothing reached the service. */
async function refusal(text: string): Promise<UserError> {
  const { service, calls } = fakeService();
  const command = incidentCommand({ incidents: service, file: FILE });
  let caught: unknown;
  try {
    await execute(command, text, CTX);
  } catch (err) {
    caught = err;
  }
  expect(calls).toEqual([]);
  expect(caught).toBeInstanceOf(UserError);
  const e = caught as UserError;
  expect(e.code).toBe('bad_command');
  expect(typeof e.usage).toBe('string');
  return e;
}

/** A service whose every method answers with plausible data; returns the calls made. */
function workingService() {
  const incident = makeIncident({ number: 5, severity: 'sev1' });
  return fakeService({
    declare: (input: never) => {
      const i = input as { severity: 'sev1' | 'sev2' | 'sev3' | 'sev4'; title: string };
      return Promise.resolve({ incident: { ...incident, severity: i.severity, title: i.title } });
    },
    acknowledge: () => Promise.resolve(incident),
    update: () => Promise.resolve(incident),
    resolve: () => Promise.resolve(incident),
    changeSeverity: (_ref: never, _actor: never, severity: never) =>
      Promise.resolve({ incident: { ...incident, severity }, ladder: 'started' }),
    listOpen: () => Promise.resolve({ incidents: [], total: 0 }),
    details: () => Promise.resolve({ incident, timeline: [], pages: [] }),
  });
}

async function run(text: string, ctx: CommandContext = CTX): Promise<{ text: string; calls: ServiceCall[] }> {
  const { service, calls } = workingService();
  const reply = await execute(incidentCommand({ incidents: service, file: FILE }), text, ctx);
  return { text: reply?.text ?? '(no reply)', calls };
}

function ref(number: number | undefined, ctx: CommandContext = CTX): IncidentReference {
  return { number, threadTs: ctx.threadTs, channel: ctx.channelId };
}

describe('registry', () => {
  const ran: unknown[] = [];
  const demo: SlashCommand = {
    name: '/demo',
    summary: 'a demo',
    entries: [
      subcommand({
        usage: 'echo <text>',
        effect: 'local',
        access: 'anyone',
        summary: 'says it back',
        matches: (w) => w === 'echo',
        parse: (rest) => {
          if (rest === '') throw badCommand('Say something.');
          return { rest };
        },
        run: async (args: { rest: string }) => {
          ran.push(args);
          return line(md`${args.rest}`);
        },
      }),
      subcommand({
        usage: 'strict',
        effect: 'local',
        access: 'responders',
        summary: 'has its own usage',
        matches: (w) => w === 'strict',
        parse: () => {
          throw new UserError('bad_command', 'custom', 'custom usage');
        },
        run: async () => line(md`never`),
      }),
      subcommand({
        usage: 'boom',
        effect: 'local',
        access: 'responders',
        accessNote: 'mostly responders',
        summary: 'parse crashes',
        matches: (w) => w === 'boom',
        parse: () => {
          throw new RangeError('a bug');
        },
        run: async () => line(md`never`),
      }),
    ],
  };

  it('helpText lists the summary and every entry, one line each, with who may run it unless anyone may', () => {
    expect(helpText(demo)).toBe(
      [
        '*/demo*: a demo',
        '`/demo echo <text>`  says it back',
        '`/demo strict`  has its own usage _(responders only)_',
        '`/demo boom`  parse crashes _(mostly responders)_',
      ].join('\n'),
    );
  });

  it('usageOf names the command and the entry', () => {
    expect(usageOf(demo, demo.entries[0]!)).toBe('Usage: `/demo echo <text>`');
  });

  it('route splits the first word (lower-cased) from the trimmed rest', () => {
    const routed = route(demo, '   ECHO   hello   there  ');
    expect(routed.entry).toBe(demo.entries[0]);
    expect(routed.word).toBe('echo');
    expect(routed.rest).toBe('hello   there');
  });

  it('route refuses an unknown word with the whole help as usage', () => {
    expect(() => route(demo, 'nope x')).toThrow(UserError);
    try {
      route(demo, 'nope x');
    } catch (err) {
      const e = err as UserError;
      expect(e.code).toBe('bad_command');
      expect(e.message).toBe('Unknown subcommand "nope".');
      expect(e.usage).toBe(helpText(demo));
    }
  });

  it('route refuses empty text and asks what to do', () => {
    for (const text of ['', '   ']) {
      try {
        route(demo, text);
        expect.unreachable();
      } catch (err) {
        expect((err as UserError).message).toBe('Say what to do.');
        expect((err as UserError).usage).toBe(helpText(demo));
      }
    }
  });

  it('execute runs parse then run', async () => {
    ran.length = 0;
    await expect(execute(demo, 'echo hi', CTX)).resolves.toEqual({ text: 'hi' });
    expect(ran).toEqual([{ rest: 'hi' }]);
  });

  it("execute adds the entry's usage to a refusal without one, and runs nothing", async () => {
    ran.length = 0;
    const err = await execute(demo, 'echo', CTX).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe('Say something.');
    expect((err as UserError).usage).toBe('Usage: `/demo echo <text>`');
    expect(ran).toEqual([]);
  });

  it('execute keeps a usage the parser chose', async () => {
    const err = (await execute(demo, 'strict', CTX).catch((e: unknown) => e)) as UserError;
    expect(err.usage).toBe('custom usage');
  });

  it('execute lets other errors through untouched', async () => {
    const err = await execute(demo, 'boom', CTX).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RangeError);
  });

  it('words splits on any whitespace', () => {
    expect(words('  a \t b\nc  ')).toEqual(['a', 'b', 'c']);
    expect(words('   ')).toEqual([]);
  });
});

describe('/incident declare', () => {
  it.each(['sev1', 'sev2', 'sev3', 'sev4'] as const)('%s <title> parses', (sev) => {
    expect(parse(`${sev} Checkout is failing`)).toEqual({ severity: sev, title: 'Checkout is failing' });
  });

  it.each([
    ['quotes', `"Payments" are 'down'`],
    ['emoji', '🔥 checkout 💥 on fire'],
    ['SQL', "'; DROP TABLE x; --"],
    ['HTML', '<b>bold</b> & <script>alert(1)</script>'],
    ['Slack control sequences', '<!channel> <@U123> <#C1|x>'],
    ['inner spacing', 'two  spaces   here'],
  ])('keeps the title verbatim (%s)', (_what, title) => {
    expect(parse(`sev2 ${title}`)).toEqual({ severity: 'sev2', title });
  });

  it('trims the title', () => {
    expect(parse('sev3    padded title   ')).toEqual({ severity: 'sev3', title: 'padded title' });
  });

  it('the severity word is case-insensitive', () => {
    expect(parse('SEV1 Upper')).toEqual({ severity: 'sev1', title: 'Upper' });
    expect(parse('Sev4 Mixed')).toEqual({ severity: 'sev4', title: 'Mixed' });
  });

  it.each(['sev5', 'sev0', 'SEV12'])('%s is refused naming the allowed severities', async (sev) => {
    const e = await refusal(`${sev} Something broke`);
    expect(e.message).toContain(`"${sev.toLowerCase()}"`);
    expect(e.message).toContain('sev1, sev2, sev3 or sev4');
    expect(e.usage).toBe(DECLARE_USAGE);
  });

  it.each(['sev1', 'sev1    '])('a missing title is refused (%j)', async (text) => {
    const e = await refusal(text);
    expect(e.message).toBe('The incident needs a title.');
    expect(e.usage).toBe(DECLARE_USAGE);
  });

  it('150 characters are accepted, 151 are refused with the limit named', async () => {
    const ok = 'x'.repeat(150);
    expect(parse(`sev2 ${ok}`)).toEqual({ severity: 'sev2', title: ok });
    expect(parse(`sev2   ${ok}   `)).toEqual({ severity: 'sev2', title: ok });
    const e = await refusal(`sev2 ${'x'.repeat(151)}`);
    expect(e.message).toContain('150');
    expect(e.message).toContain('151');
    expect(e.usage).toBe(DECLARE_USAGE);
  });

  it('counts characters, not UTF-16 code units', () => {
    // The DB CHECK uses char_length (code points); an emoji is one character to the user.
    const title = `${'a'.repeat(140)}${'🔥'.repeat(10)}`;
    expect([...title]).toHaveLength(150);
    expect(parseTitle(title)).toBe(title);
    expect(() => parseTitle(`${title}🔥`)).toThrow('The title is 151 characters; the limit is 150.');
  });

  it('runs declare with the actor and channel and reports paging', async () => {
    const { text, calls } = await run('sev1 Database down');
    expect(calls).toEqual([
      {
        method: 'declare',
        args: [{ severity: 'sev1', title: 'Database down', actor: 'U0DECLARER', channel: 'C0EMERGENCY' }],
      },
    ]);
    expect(text).toBe('Declared *INC-5* (SEV1); its card is in <#C0EMERGENCY>. Paging has started.');
  });

  it('a non-paging severity does not claim paging', async () => {
    const { text } = await run('sev3 Slow dashboard');
    expect(text).toBe('Declared *INC-5* (SEV3); its card is in <#C0EMERGENCY>.');
  });

  it('says so when the card could not be posted', async () => {
    const { service } = fakeService({
      declare: () =>
        Promise.resolve({
          incident: makeIncident({ number: 9, severity: 'sev2', card: undefined }),
          cardError: 'channel_not_found',
        }),
    });
    const reply = await execute(incidentCommand({ incidents: service, file: FILE }), 'sev2 x', CTX);
    expect(reply?.text).toBe(
      'Declared *INC-9* (SEV2); its card could not be posted (channel_not_found). Paging has started.',
    );
  });
});

describe('/incident routing and help', () => {
  it('an unknown subcommand is refused with the full help', async () => {
    const { service } = fakeService();
    const command = incidentCommand({ incidents: service, file: FILE });
    const e = await refusal('frobnicate INC-1');
    expect(e.message).toBe('Unknown subcommand "frobnicate".');
    expect(e.usage).toBe(helpText(command));
  });

  it('empty text is refused with the full help', async () => {
    const { service } = fakeService();
    const command = incidentCommand({ incidents: service, file: FILE });
    const e = await refusal('');
    expect(e.message).toBe('Say what to do.');
    expect(e.usage).toBe(helpText(command));
  });

  it('help lists every entry of the table, as usage from the same table', async () => {
    const { service, calls } = fakeService();
    const command = incidentCommand({ incidents: service, file: FILE });
    const reply = (await execute(command, 'help', CTX))!;
    expect(calls).toEqual([]);
    // The help is plain text: its `<title>` is shown as typed, not taken for Slack markup.
    expect(reply.text).toBe(md`${helpText(command)}`.text);
    expect(reply.text).toContain('`/incident sev1|sev2|sev3|sev4 &lt;title&gt;`');
    expect(reply.text).not.toMatch(/[<>]/);
    const help = helpText(command);
    const lines = help.split('\n');
    expect(lines).toHaveLength(command.entries.length + 1);
    for (const entry of command.entries) expect(help).toContain(`\`/incident ${entry.usage}\``);
    // The README's forms are all there.
    for (const usage of [
      'sev1|sev2|sev3|sev4 <title>',
      'ack [ID]',
      'update [ID] <text>',
      'severity [ID] sev1..sev4',
      'resolve [ID] [note]',
      'list',
      'status [ID]',
      'postmortem ID',
      'help',
    ]) {
      expect(help).toContain(`\`/incident ${usage}\``);
    }
  });

  it('HELP works in any case', async () => {
    const { service } = fakeService();
    const command = incidentCommand({ incidents: service, file: FILE });
    await expect(execute(command, 'HELP', CTX)).resolves.toEqual({ text: md`${helpText(command)}`.text });
  });
});

describe('/incident ack', () => {
  it('parses with and without an ID', () => {
    expect(parse('ack')).toEqual({});
    expect(parse('ack INC-3')).toEqual({ number: 3 });
    expect(parse('ack inc-3')).toEqual({ number: 3 });
    expect(parse('acknowledge INC-12')).toEqual({ number: 12 });
  });

  it('passes the ID, thread and channel to the service', async () => {
    const bare = await run('ack', THREAD_CTX);
    expect(bare.calls).toEqual([{ method: 'acknowledge', args: [ref(undefined, THREAD_CTX), 'U0ONCALL'] }]);
    expect(bare.text).toBe('You acknowledged *INC-5*; escalation has stopped.');
    const named = await run('ack INC-3');
    expect(named.calls).toEqual([{ method: 'acknowledge', args: [ref(3), 'U0DECLARER'] }]);
  });

  it('refuses extra text', async () => {
    const e = await refusal('ack INC-3 extra');
    expect(e.message).toBe('Unexpected text "extra".');
    expect(e.usage).toBe('Usage: `/incident ack [ID]`');
  });

  it.each(['inc-x', 'INC-0', 'INC-', 'INC-3.5'])('refuses a malformed ID (%s)', async (id) => {
    const e = await refusal(`ack ${id}`);
    expect(e.message).toBe(`"${id}" is not an incident ID (they look like INC-42).`);
    expect(e.usage).toBe('Usage: `/incident ack [ID]`');
  });

  it('refuses a bare word that is not an ID', async () => {
    const e = await refusal('ack 3');
    expect(e.message).toBe('Unexpected text "3".');
  });
});

describe('/incident update', () => {
  it('parses an ID and the text', () => {
    expect(parse('update INC-2 the db is back')).toEqual({ number: 2, rest: 'the db is back' });
    expect(parse('update the db is back')).toEqual({ rest: 'the db is back' });
  });

  it('runs update with the text verbatim', async () => {
    const { calls, text } = await run("update INC-2 <b>rolled back</b> '; --", THREAD_CTX);
    expect(calls).toEqual([{ method: 'update', args: [ref(2, THREAD_CTX), 'U0ONCALL', "<b>rolled back</b> '; --"] }]);
    expect(text).toBe('Update added to *INC-5*.');
  });

  it.each(['update', 'update   ', 'update INC-2'])('refuses %j without text', async (text) => {
    const e = await refusal(text);
    expect(e.message).toBe('The update needs some text.');
    expect(e.usage).toBe('Usage: `/incident update [ID] <text>`');
  });

  it('refuses an update over 2900 characters', async () => {
    expect(parse(`update ${'u'.repeat(2900)}`)).toEqual({ rest: 'u'.repeat(2900) });
    const e = await refusal(`update ${'u'.repeat(2901)}`);
    expect(e.message).toContain('2900');
  });

  it('refuses a malformed ID', async () => {
    const e = await refusal('update INC-x something');
    expect(e.message).toBe('"INC-x" is not an incident ID (they look like INC-42).');
  });
});

describe('/incident severity', () => {
  it('parses with and without an ID, in any case', () => {
    expect(parse('severity INC-2 sev1')).toEqual({ number: 2, severity: 'sev1' });
    expect(parse('severity INC-2 SEV1')).toEqual({ number: 2, severity: 'sev1' });
    expect(parse('severity sev3')).toEqual({ number: undefined, severity: 'sev3' });
  });

  it('runs changeSeverity', async () => {
    const { calls, text } = await run('severity INC-2 sev1');
    expect(calls).toEqual([{ method: 'changeSeverity', args: [ref(2), 'U0DECLARER', 'sev1'] }]);
    expect(text).toBe('*INC-5* is now SEV1. Paging has started.');
  });

  it('refuses sev9 naming the allowed ones', async () => {
    const e = await refusal('severity sev9');
    expect(e.message).toBe('Unknown severity "sev9": use sev1, sev2, sev3 or sev4.');
    expect(e.usage).toBe('Usage: `/incident severity [ID] sev1..sev4`');
  });

  it('refuses a missing severity', async () => {
    expect((await refusal('severity')).message).toBe('Say which severity.');
    expect((await refusal('severity INC-2')).message).toBe('Say which severity.');
  });

  it('refuses trailing text', async () => {
    const e = await refusal('severity INC-2 sev1 now');
    expect(e.message).toContain('sev1 now');
    expect(e.usage).toBe('Usage: `/incident severity [ID] sev1..sev4`');
  });
});

describe('/incident resolve', () => {
  it('parses [ID] [note]', () => {
    expect(parse('resolve')).toEqual({ rest: '' });
    expect(parse('resolve INC-4')).toEqual({ number: 4, rest: '' });
    expect(parse('resolve INC-4 restarted the pool')).toEqual({ number: 4, rest: 'restarted the pool' });
    expect(parse('resolve restarted the pool')).toEqual({ rest: 'restarted the pool' });
  });

  it('passes no note when there is none, and the note verbatim when there is', async () => {
    const bare = await run('resolve');
    expect(bare.calls).toEqual([{ method: 'resolve', args: [ref(undefined), 'U0DECLARER', undefined] }]);
    expect(bare.text).toBe('You resolved *INC-5*.');
    const noted = await run('resolve INC-4 fixed <it> & more');
    expect(noted.calls).toEqual([{ method: 'resolve', args: [ref(4), 'U0DECLARER', 'fixed <it> & more'] }]);
  });

  it('refuses a note over 2900 characters and a malformed ID', async () => {
    expect((await refusal(`resolve ${'n'.repeat(2901)}`)).message).toContain('2900');
    expect((await refusal('resolve inc-? done')).message).toBe(
      '"inc-?" is not an incident ID (they look like INC-42).',
    );
  });
});

describe('/incident list, status, postmortem', () => {
  it('list takes nothing more', async () => {
    expect(parse('list')).toEqual({});
    const e = await refusal('list extra');
    expect(e.message).toBe('Unexpected text "extra".');
    expect(e.usage).toBe('Usage: `/incident list`');
    const { calls, text } = await run('list');
    expect(calls).toEqual([{ method: 'listOpen', args: [] }]);
    expect(text).toBe('No incidents are open.');
  });

  it('status takes an optional ID', async () => {
    expect(parse('status')).toEqual({});
    expect(parse('status INC-8')).toEqual({ number: 8 });
    expect((await refusal('status INC-8 now')).message).toBe('Unexpected text "now".');
    const { calls, text } = await run('status INC-8', THREAD_CTX);
    expect(calls).toEqual([{ method: 'details', args: [ref(8, THREAD_CTX)] }]);
    expect(text.split('\n')[0]).toBe('*INC-5* SEV1 Checkout is failing');
  });

  it('postmortem requires an ID', async () => {
    const e = await refusal('postmortem');
    expect(e.message).toBe('Name the incident, for example `INC-42`.');
    expect(e.usage).toBe('Usage: `/incident postmortem ID`');
    expect((await refusal('postmortem INC-7 please')).message).toBe('Unexpected text "please".');
    expect(parse('postmortem INC-7')).toEqual({ number: 7 });
  });

  it('postmortem replies with the Markdown draft in a code block', async () => {
    const { calls, text } = await run('postmortem INC-7');
    expect(calls).toEqual([{ method: 'details', args: [{ number: 7 }] }]);
    expect(text.startsWith('Post-mortem draft for INC-7:\n```\n# Post-mortem draft: INC-5 Checkout is failing\n')).toBe(
      true,
    );
    expect(text.endsWith('\n```')).toBe(true);
    expect(text).toContain(`- **Declared:** 2024-03-05 07:08:09 UTC by U0DECLARER`);
    expect(T0.toISOString()).toBe('2024-03-05T07:08:09.000Z');
  });
});

describe('splitIncidentId and parseTitle', () => {
  it('splits a leading ID', () => {
    expect(splitIncidentId('INC-42 rest of it')).toEqual({ number: 42, rest: 'rest of it' });
    expect(splitIncidentId('  rest only ')).toEqual({ rest: 'rest only' });
    expect(splitIncidentId('')).toEqual({ rest: '' });
    expect(() => splitIncidentId('inc-abc')).toThrow(UserError);
  });

  it('parseTitle trims and enforces 1..150', () => {
    expect(parseTitle('  t  ')).toBe('t');
    expect(() => parseTitle('   ')).toThrow('The incident needs a title.');
    expect(() => parseTitle('y'.repeat(151))).toThrow('The title is 151 characters; the limit is 150.');
  });
});

describe('/incident statuspage: parsing', () => {
  it('takes an optional ID, a status and the message', () => {
    expect(parse('statuspage INC-4 identified The database is failing over.')).toEqual({
      number: 4,
      status: 'identified',
      body: 'The database is failing over.',
    });
    expect(parse('statuspage MONITORING Fix is out')).toEqual({
      number: undefined,
      status: 'monitoring',
      body: 'Fix is out',
    });
  });

  it('refuses a bad status, a missing status and an empty message, before anything runs', async () => {
    expect((await refusal('statuspage INC-4 fixing It is fine')).message).toBe(
      'Unknown status "fixing": use investigating, identified, monitoring, resolved.',
    );
    expect((await refusal('statuspage')).message).toBe(
      'Say the status: investigating, identified, monitoring, resolved.',
    );
    expect((await refusal('statuspage INC-4 resolved')).message).toBe(
      'The status page update needs a message: it is what the public reads.',
    );
  });

  it('is listed in help as responders only, because it is a public statement', () => {
    const { service } = fakeService();
    const help = helpText(incidentCommand({ incidents: service, file: FILE }));
    expect(help).toContain(
      '`/incident statuspage [ID] investigating|identified|monitoring|resolved <message>`  create or update the status page incident, with the message as its public text _(responders only: it is a public statement)_',
    );
  });
});
