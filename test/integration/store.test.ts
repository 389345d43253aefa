// The database rules that hold no matter who calls: the append-only timeline, request de-duplication, verbatim
// titles, and how commands find their incident. Non-paging severities only, so no worker is needed.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UserError } from '../../src/shared/errors.js';
import * as store from '../../src/domain/incidents/store.js';
import { claimRequest } from '../../src/delivery/requests.js';
import { createHarness, EMERGENCY, resolveAllOpen, USERS, type Harness } from './harness.js';

let h: Harness;

beforeAll(async () => {
  h = await createHarness([
    { after_minutes: 0, notify: 'oncall' },
    { after_minutes: 0.02, notify: 'engineering_lead' },
  ]);
});

afterAll(async () => {
  await h?.close();
});

async function userErrorOf(work: Promise<unknown>): Promise<UserError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

describe('incident_events is append-only', () => {
  test('UPDATE and DELETE raise, and the rows stay as they were', async () => {
    const { incident } = await h.incidents.declare({
      severity: 'sev3',
      title: 'Append-only probe',
      actor: USERS.declarer,
      channel: EMERGENCY,
    });
    const before = await h.db.query(
      'SELECT id, incident, at, actor, kind, detail FROM incident_events WHERE incident = $1 ORDER BY id',
      [incident.number],
    );
    expect(before.rows.map((r: { kind: string }) => r.kind)).toEqual(['declared']);

    await expect(
      h.db.query(`UPDATE incident_events SET detail = 'tampered' WHERE incident = $1`, [incident.number]),
    ).rejects.toThrow(/incident_events is append-only/);
    await expect(h.db.query('DELETE FROM incident_events WHERE incident = $1', [incident.number])).rejects.toThrow(
      /incident_events is append-only/,
    );
    // A bulk statement cannot sneak past the row trigger either.
    await expect(h.db.query(`UPDATE incident_events SET actor = 'x'`)).rejects.toThrow(/append-only/);

    const after = await h.db.query(
      'SELECT id, incident, at, actor, kind, detail FROM incident_events WHERE incident = $1 ORDER BY id',
      [incident.number],
    );
    expect(after.rows).toEqual(before.rows);

    // Appending still works.
    await store.appendEvent(h.db, incident.number, USERS.other, 'update', 'still appendable');
    const kinds = (await store.timeline(h.db, incident.number)).map((e) => e.kind);
    expect(kinds).toEqual(['declared', 'update']);
  });
});

describe('claimRequest', () => {
  test('true the first time a key is seen, false for every repeat', async () => {
    const key = `trigger-${Date.now()}.abc`;
    expect(await claimRequest(h.db, key)).toBe(true);
    expect(await claimRequest(h.db, key)).toBe(false);
    expect(await claimRequest(h.db, key)).toBe(false);
    expect(await claimRequest(h.db, `${key}-other`)).toBe(true);
  });

  test('exactly one of many concurrent claims of one key wins', async () => {
    const keys = ['conc-a', 'conc-b', 'conc-c'];
    // 3 keys x 12 concurrent claims each, interleaved, over one 10-connection pool.
    const attempts = keys.flatMap((key) => Array.from({ length: 12 }, () => key));
    const results = await Promise.all(attempts.map((key) => claimRequest(h.db, key).then((won) => ({ key, won }))));
    for (const key of keys) {
      expect(results.filter((r) => r.key === key && r.won)).toHaveLength(1);
      expect(results.filter((r) => r.key === key && !r.won)).toHaveLength(11);
    }
    const { rows } = await h.db.query<{ n: string }>(
      'SELECT count(*) AS n FROM handled_requests WHERE request_key = ANY($1)',
      [keys],
    );
    expect(Number(rows[0]!.n)).toBe(3);
  });
});

describe('titles are stored and read back verbatim', () => {
  const titles = [
    `Robert'); DROP TABLE incidents; --`,
    `'; DROP TABLE incidents; --`,
    `"Quoted" and 'single' and \`back\` ticks`,
    `🔥 checkout down 🚨 — naïve café ✓`,
    `Backslash \\ and percent % and underscore _ and $1 and \${PD_KEY_ONCALL}`,
    `<!channel> & <@U0CTO> *bold* ~strike~`,
  ];

  test.each(titles)('%s', async (title) => {
    const { incident } = await h.incidents.declare({
      severity: 'sev4',
      title,
      actor: USERS.declarer,
      channel: EMERGENCY,
    });
    expect(incident.title).toBe(title);
    const read = await store.getIncident(h.db, incident.number);
    expect(read?.title).toBe(title);
    const details = await h.incidents.details({ number: incident.number });
    expect(details.incident.title).toBe(title);
    expect(details.timeline.map((e) => [e.kind, e.detail])).toEqual([['declared', `SEV4: ${title}`]]);
    // The card shows the title as typed: only Slack's three control characters are escaped, so `<!channel>` in a
    // title cannot ping anyone and `'; DROP ...` arrives untouched.
    const card = h.chat.calls.find(
      (c) => c.kind === 'post' && c.message.text.startsWith(`SEV4 INC-${incident.number}:`),
    );
    const shown = title.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    expect(card?.message.text).toBe(`SEV4 INC-${incident.number}: ${shown} (open)`);
    expect(JSON.stringify(card?.message.blocks)).toContain(JSON.stringify(shown).slice(1, -1));
    // And nothing was dropped.
    const { rows } = await h.db.query<{ n: string }>('SELECT count(*) AS n FROM incidents');
    expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(incident.number);
  });

  test('surrounding whitespace is trimmed, inner whitespace and newlines kept', async () => {
    const { incident } = await h.incidents.declare({
      severity: 'sev4',
      title: '  two  spaces\nand a newline  ',
      actor: USERS.declarer,
      channel: EMERGENCY,
    });
    expect((await store.getIncident(h.db, incident.number))?.title).toBe('two  spaces\nand a newline');
  });

  test('150 characters (emoji count as one each) are accepted; 151 are refused with the limit named', async () => {
    // 140 ASCII + 10 emoji = 150 characters (160 UTF-16 code units).
    const title = `${'x'.repeat(140)}${'🔥'.repeat(10)}`;
    const { incident } = await h.incidents.declare({
      severity: 'sev4',
      title,
      actor: USERS.declarer,
      channel: EMERGENCY,
    });
    expect((await store.getIncident(h.db, incident.number))?.title).toBe(title);

    const before = await h.db.query<{ n: string }>('SELECT count(*) AS n FROM incidents');
    const err = await userErrorOf(
      h.incidents.declare({ severity: 'sev4', title: `${title}!`, actor: USERS.declarer, channel: EMERGENCY }),
    );
    expect(err.code).toBe('bad_command');
    expect(err.message).toContain('150');
    const after = await h.db.query<{ n: string }>('SELECT count(*) AS n FROM incidents');
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
  });

  test('the incidents table survived every title above', async () => {
    const { rows } = await h.db.query<{ r: string | null }>(`SELECT to_regclass('public.incidents')::text AS r`);
    expect(rows[0]!.r).toBe('incidents');
  });
});

describe('which incident a command means', () => {
  test('explicit id, thread, the only open incident, several open, none open', async () => {
    await resolveAllOpen(h);
    expect(await h.incidents.listOpen()).toEqual({ incidents: [], total: 0 });

    const none = await userErrorOf(h.incidents.find({}));
    expect(none.code).toBe('unknown_incident');

    const { incident: a } = await h.incidents.declare({
      severity: 'sev3',
      title: 'Reference A',
      actor: USERS.declarer,
      channel: EMERGENCY,
    });
    expect((await h.incidents.find({})).number).toBe(a.number);
    // Acknowledged is still open.
    await h.incidents.acknowledge({}, USERS.oncall);
    expect((await h.incidents.find({})).number).toBe(a.number);

    const { incident: b } = await h.incidents.declare({
      severity: 'sev4',
      title: 'Reference B',
      actor: USERS.declarer,
      channel: EMERGENCY,
    });
    const ambiguous = await userErrorOf(h.incidents.find({}));
    expect(ambiguous.code).toBe('incident_ambiguous');
    expect(ambiguous.message).toContain(`INC-${a.number}`);
    expect(ambiguous.message).toContain(`INC-${b.number}`);
    // Commands that need a reference are refused the same way, and change nothing.
    const eventsBefore = await h.db.query<{ n: string }>('SELECT count(*) AS n FROM incident_events');
    expect((await userErrorOf(h.incidents.resolve({}, USERS.other, undefined))).code).toBe('incident_ambiguous');
    expect((await userErrorOf(h.incidents.acknowledge({}, USERS.other))).code).toBe('incident_ambiguous');
    const eventsAfter = await h.db.query<{ n: string }>('SELECT count(*) AS n FROM incident_events');
    expect(eventsAfter.rows[0]!.n).toBe(eventsBefore.rows[0]!.n);

    // Explicit ids always win.
    expect((await h.incidents.find({ number: a.number })).title).toBe('Reference A');
    expect((await h.incidents.find({ number: b.number })).title).toBe('Reference B');
    // Inside a card's thread the thread names the incident.
    expect(b.card).toBeDefined();
    expect((await h.incidents.find({ channel: b.card!.channel, threadTs: b.card!.ts })).number).toBe(b.number);
    expect((await h.incidents.find({ channel: a.card!.channel, threadTs: a.card!.ts })).number).toBe(a.number);
    // A thread that is no card falls back to the open-incident rule.
    expect((await userErrorOf(h.incidents.find({ channel: EMERGENCY, threadTs: '1.000000' }))).code).toBe(
      'incident_ambiguous',
    );

    const unknown = await userErrorOf(h.incidents.find({ number: 99_999 }));
    expect(unknown.code).toBe('unknown_incident');
    expect(unknown.message).toContain('INC-99999');
    expect((await userErrorOf(h.incidents.acknowledge({ number: 99_999 }, USERS.oncall))).code).toBe(
      'unknown_incident',
    );

    // Resolving one leaves exactly one open again.
    await h.incidents.resolve({ number: a.number }, USERS.oncall, 'fixed');
    expect((await h.incidents.find({})).number).toBe(b.number);
    // A resolved incident can still be named explicitly (status, postmortem).
    expect((await h.incidents.find({ number: a.number })).resolvedBy).toBe(USERS.oncall);
    await resolveAllOpen(h);
    // Non-paging severities: not one ladder step, not one timer.
    const steps = await h.db.query<{ n: string }>('SELECT count(*) AS n FROM escalation_steps');
    expect(Number(steps.rows[0]!.n)).toBe(0);
    expect((await h.queue.getJobCounts('delayed')).delayed).toBe(0);
  });
});
