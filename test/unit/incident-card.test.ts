import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/adapters/slack/port.js';
import { ACK_ACTION, incidentCard, RESOLVE_ACTION, threadNoteMessage } from '../../src/delivery/slack/incident-card.js';
import { allTexts, exampleFile, makeIncident, minutesAfter, T0 } from './fixtures.js';

const FILE = exampleFile();

interface LooseBlock {
  type: string;
  block_id?: string;
  text?: { type: string; text: string; emoji?: boolean };
  fields?: { type: string; text: string }[];
  elements?: LooseElement[];
}
interface LooseElement {
  type: string;
  text?: { type: string; text: string } | string;
  action_id?: string;
  value?: string;
  style?: string;
  confirm?: { title: { text: string }; text: { text: string }; confirm: { text: string }; deny: { text: string } };
}

function blocksOf(message: ChatMessage): LooseBlock[] {
  return (message.blocks ?? []) as unknown as LooseBlock[];
}

function fieldTexts(message: ChatMessage): string[] {
  return blocksOf(message).flatMap((b) => b.fields?.map((f) => f.text) ?? []);
}

function statusField(message: ChatMessage): string {
  const status = fieldTexts(message).find((f) => f.startsWith('*Status*\n'));
  if (status === undefined) throw new Error('no status field');
  return status.slice('*Status*\n'.length);
}

function buttons(message: ChatMessage): LooseElement[] {
  return blocksOf(message)
    .filter((b) => b.type === 'actions')
    .flatMap((b) => b.elements ?? []);
}

function buttonLabel(e: LooseElement): string {
  return typeof e.text === 'string' ? e.text : (e.text?.text ?? '');
}

/** Slack's Block Kit length limits for the kinds of objects the card uses. */
function assertWithinSlackLimits(message: ChatMessage): void {
  expect(message.text.length).toBeGreaterThan(0);
  expect(message.text.length).toBeLessThanOrEqual(40_000);
  const blocks = blocksOf(message);
  expect(blocks.length).toBeGreaterThan(0);
  expect(blocks.length).toBeLessThanOrEqual(50);
  for (const block of blocks) {
    if (block.type === 'header') expect(block.text!.text.length).toBeLessThanOrEqual(150);
    if (block.type === 'section' && block.text) {
      expect(block.text.text.length).toBeGreaterThan(0);
      expect(block.text.text.length).toBeLessThanOrEqual(3000);
    }
    for (const f of block.fields ?? []) expect(f.text.length).toBeLessThanOrEqual(2000);
    for (const e of block.elements ?? []) {
      if (e.type === 'button') {
        expect(buttonLabel(e).length).toBeLessThanOrEqual(75);
        expect((e.value ?? '').length).toBeLessThanOrEqual(2000);
        expect((e.action_id ?? '').length).toBeLessThanOrEqual(255);
      }
    }
  }
  for (const text of allTexts(message.blocks)) expect(text.length).toBeLessThanOrEqual(3000);
  // What goes over the wire is plain JSON.
  expect(JSON.parse(JSON.stringify(message))).toEqual(message);
}

describe('incidentCard: an open incident', () => {
  const incident = makeIncident({ number: 7, severity: 'sev2', title: 'Checkout is failing' });
  const card = incidentCard(incident, FILE);

  it('has a header with the severity and the ID', () => {
    expect(blocksOf(card)[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: 'SEV2 · INC-7', emoji: true },
    });
  });

  it('shows the title, who declared it, when, and the response target', () => {
    expect(blocksOf(card)[1]).toEqual({
      type: 'section',
      text: { type: 'mrkdwn', text: ':rotating_light: *Checkout is failing*' },
    });
    expect(fieldTexts(card)).toEqual([
      '*Declared by*\n<@U0DECLARER>',
      '*Declared at*\n2024-03-05 07:08 UTC',
      '*Respond within*\n15 min',
      '*Status*\nOpen, not acknowledged',
    ]);
  });

  it('has buttons labelled exactly Acknowledge and Resolve carrying the incident number', () => {
    const [ack, resolve, ...more] = buttons(card);
    expect(more).toEqual([]);
    expect(ack?.type).toBe('button');
    expect(buttonLabel(ack!)).toBe('Acknowledge');
    expect(ack?.action_id).toBe('incident_acknowledge');
    expect(ack?.value).toBe('7');
    expect(resolve?.type).toBe('button');
    expect(buttonLabel(resolve!)).toBe('Resolve');
    expect(resolve?.action_id).toBe('incident_resolve');
    expect(resolve?.value).toBe('7');
    expect(ACK_ACTION).toBe('incident_acknowledge');
    expect(RESOLVE_ACTION).toBe('incident_resolve');
  });

  it('asks for confirmation before resolving', () => {
    const resolve = buttons(card).find((b) => b.action_id === RESOLVE_ACTION)!;
    expect(resolve.confirm?.title.text).toBe('Resolve INC-7?');
    expect(resolve.confirm?.confirm.text).toBe('Resolve');
    expect(resolve.confirm?.deny.text).toBe('Cancel');
  });

  it('shows the escalation ladder while unacknowledged', () => {
    const context = blocksOf(card).find((b) => b.type === 'context');
    expect(context?.elements?.[0]?.text).toBe(
      'Escalation until acknowledged: oncall at 0 min → engineering_lead at 15 min → cto at 30 min → ceo at 60 min',
    );
  });

  it('has a plain-text fallback naming severity, ID, title and state', () => {
    expect(card.text).toBe('SEV2 INC-7: Checkout is failing (open)');
  });

  it('stays within Slack limits and is JSON-serialisable', () => {
    assertWithinSlackLimits(card);
  });

  it('shows a SEV1 target as immediate and a SEV4 target as the next business day', () => {
    expect(fieldTexts(incidentCard(makeIncident({ severity: 'sev1' }), FILE))).toContain('*Respond within*\nimmediate');
    const sev4 = fieldTexts(incidentCard(makeIncident({ severity: 'sev4' }), FILE)).find((f) =>
      f.startsWith('*Respond within*'),
    );
    expect(sev4).toMatch(/^\*Respond within\*\nnext business day\b/);
  });

  it('says a non-paging severity does not page', () => {
    const sev3 = incidentCard(makeIncident({ severity: 'sev3' }), FILE);
    expect(blocksOf(sev3).find((b) => b.type === 'context')?.elements?.[0]?.text).toBe('SEV3 does not page.');
    expect(blocksOf(sev3)[0]?.text?.text).toBe('SEV3 · INC-7');
  });

  it('shows fractional ladder minutes readably', () => {
    const file = {
      ...FILE,
      escalation: [
        { after_minutes: 0, notify: 'oncall' },
        { after_minutes: 0.05, notify: 'cto' },
        { after_minutes: 1 / 3, notify: 'ceo' },
      ],
    };
    const text = blocksOf(incidentCard(makeIncident({ severity: 'sev1' }), file)).find((b) => b.type === 'context')
      ?.elements?.[0]?.text;
    expect(text).toBe('Escalation until acknowledged: oncall at 0 min → cto at 0.05 min → ceo at 0.33 min');
  });
});

describe('incidentCard: titles are shown verbatim', () => {
  const nasty = `<b>bold</b> & <!channel> <@U123> '; DROP TABLE x; -- "q" 🔥`;
  const card = incidentCard(makeIncident({ title: nasty }), FILE);

  it('escapes &, < and > in the title block', () => {
    expect(blocksOf(card)[1]?.text?.text).toBe(
      `:rotating_light: *&lt;b&gt;bold&lt;/b&gt; &amp; &lt;!channel&gt; &lt;@U123&gt; '; DROP TABLE x; -- "q" 🔥*`,
    );
    for (const text of allTexts(card.blocks)) {
      expect(text).not.toContain('<!channel>');
      expect(text).not.toContain('<b>');
      expect(text).not.toContain('<@U123>');
    }
  });

  it('escapes the title in the fallback text too (Slack formats it as mrkdwn in notifications)', () => {
    // Regression (fixed): src/delivery/slack/incident-card.ts incidentCard puts the raw title in `text`, so a title
    // "<!channel> ..." or "<https://x|y>" is parsed as a Slack control sequence in notifications.
    expect(card.text).toBe(
      `SEV2 INC-7: &lt;b&gt;bold&lt;/b&gt; &amp; &lt;!channel&gt; &lt;@U123&gt; '; DROP TABLE x; -- "q" 🔥 (open)`,
    );
  });

  it('a 150-character title of & stays within limits', () => {
    assertWithinSlackLimits(incidentCard(makeIncident({ title: '&'.repeat(150) }), FILE));
  });
});

describe('incidentCard: after acknowledgement', () => {
  const incident = makeIncident({
    severity: 'sev2',
    acknowledgedBy: 'U0ONCALL',
    acknowledgedAt: new Date(T0.getTime() + 250_000),
  });
  const card = incidentCard(incident, FILE);

  it('only Resolve remains', () => {
    const all = buttons(card);
    expect(all.map((b) => [buttonLabel(b), b.action_id, b.value])).toEqual([['Resolve', 'incident_resolve', '7']]);
  });

  it('the status names who acknowledged and the time to acknowledge against the target', () => {
    expect(statusField(card)).toBe('Acknowledged by <@U0ONCALL> after 4 min 10 s, target 15 min: met');
    expect(blocksOf(card)[1]?.text?.text).toBe(':eyes: *Checkout is failing*');
    expect(card.text).toBe('SEV2 INC-7: Checkout is failing (acknowledged)');
  });

  it('a missed target says by how much', () => {
    const late = incidentCard(
      makeIncident({ severity: 'sev2', acknowledgedBy: 'U0LEAD', acknowledgedAt: minutesAfter(T0, 17) }),
      FILE,
    );
    expect(statusField(late)).toBe('Acknowledged by <@U0LEAD> after 17 min, target 15 min: missed by 2 min');
  });

  it('a SEV1 (immediate target) shows the time to acknowledge and never calls it missed', () => {
    const sev1 = incidentCard(
      makeIncident({ severity: 'sev1', acknowledgedBy: 'U0LEAD', acknowledgedAt: new Date(T0.getTime() + 13_000) }),
      FILE,
    );
    expect(statusField(sev1)).toBe('Acknowledged by <@U0LEAD> after 13 s (target: immediate)');
    expect(JSON.stringify(sev1)).not.toMatch(/missed/);
  });

  it('the ladder line says escalation stopped', () => {
    expect(blocksOf(card).find((b) => b.type === 'context')?.elements?.[0]?.text).toMatch(
      /^Escalation stopped\. Ladder: oncall at 0 min → /,
    );
  });

  it('stays within limits', () => {
    assertWithinSlackLimits(card);
  });
});

describe('incidentCard: resolved', () => {
  const incident = makeIncident({
    acknowledgedBy: 'U0ONCALL',
    acknowledgedAt: minutesAfter(T0, 3),
    resolvedBy: 'U0LEAD',
    resolvedAt: minutesAfter(T0, 65),
    resolutionNote: 'Restarted <pgbouncer> & cleared the queue',
  });
  const card = incidentCard(incident, FILE);

  it('has no buttons', () => {
    expect(blocksOf(card).filter((b) => b.type === 'actions')).toEqual([]);
    expect(buttons(card)).toEqual([]);
  });

  it('shows who resolved it and how long it took', () => {
    expect(statusField(card)).toBe('Resolved by <@U0LEAD> after 1 h 5 min');
    expect(blocksOf(card)[1]?.text?.text).toBe(':white_check_mark: *Checkout is failing*');
    expect(card.text).toBe('SEV2 INC-7: Checkout is failing (resolved)');
  });

  it('shows the resolution note escaped', () => {
    expect(allTexts(card.blocks)).toContain('*Resolution*\nRestarted &lt;pgbouncer&gt; &amp; cleared the queue');
  });

  it('resolved without acknowledgement still has no buttons', () => {
    const direct = incidentCard(makeIncident({ resolvedBy: 'U0DECLARER', resolvedAt: minutesAfter(T0, 0.5) }), FILE);
    expect(buttons(direct)).toEqual([]);
    expect(statusField(direct)).toBe('Resolved by <@U0DECLARER> after 30 s');
  });

  it('stays within limits with the longest note the command accepts', () => {
    // Regression (fixed): src/delivery/slack/incident-card.ts incidentCard escapes a resolution note of up to 2900
    // characters (the /incident resolve limit) into one section; & < > expand 4-5x, so the section exceeds Slack's 3000
    // and chat.update fails with invalid_blocks.
    const note = 'Rolled back <deploy 42> & restarted. '.repeat(100).slice(0, 2900);
    assertWithinSlackLimits(
      incidentCard(
        makeIncident({ resolvedBy: 'U0LEAD', resolvedAt: minutesAfter(T0, 10), resolutionNote: note }),
        FILE,
      ),
    );
  });
});

describe('threadNoteMessage', () => {
  const incident = makeIncident();

  it('a page at declaration mentions the role and its users', () => {
    const m = threadNoteMessage(incident, {
      kind: 'paged',
      role: 'oncall',
      users: ['U0ONCALL', 'U0BACKUP'],
      stepNumber: 1,
      totalSteps: 4,
      afterMinutes: 0,
    });
    expect(m.text).toBe(':pager: INC-7: paging *oncall* (step 1 of 4, at declaration): <@U0ONCALL> <@U0BACKUP>');
    expect(m.blocks).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: m.text } }]);
  });

  it('a later page says how long nobody acknowledged', () => {
    const m = threadNoteMessage(incident, {
      kind: 'paged',
      role: 'engineering_lead',
      users: ['U0LEAD'],
      stepNumber: 2,
      totalSteps: 4,
      afterMinutes: 15,
    });
    expect(m.text).toBe(
      ':pager: INC-7: paging *engineering_lead* (step 2 of 4, 15 min without acknowledgement): <@U0LEAD>',
    );
  });

  it('a fractional step is shown in seconds', () => {
    const m = threadNoteMessage(incident, {
      kind: 'paged',
      role: 'cto',
      users: ['U0CTO'],
      stepNumber: 3,
      totalSteps: 4,
      afterMinutes: 0.1,
    });
    expect(m.text).toBe(':pager: INC-7: paging *cto* (step 3 of 4, 6 s without acknowledgement): <@U0CTO>');
  });

  it('a role name from the config is text, and a user id that is no Slack id is no mention', () => {
    const m = threadNoteMessage(incident, {
      kind: 'paged',
      role: 'on<!channel>call',
      users: ['<!here>', 'U0ONCALL'],
      stepNumber: 1,
      totalSteps: 1,
      afterMinutes: 0,
    });
    expect(m.text).toBe(
      ':pager: INC-7: paging *on&lt;!channel&gt;call* (step 1 of 1, at declaration): &lt;!here&gt; <@U0ONCALL>',
    );
  });

  it('a role without Slack users says so', () => {
    const m = threadNoteMessage(incident, {
      kind: 'paged',
      role: 'ceo',
      users: [],
      stepNumber: 4,
      totalSteps: 4,
      afterMinutes: 60,
    });
    expect(m.text).toBe(
      ':pager: INC-7: paging *ceo* (step 4 of 4, 1 h without acknowledgement): _(no Slack users configured)_',
    );
  });

  it('an update shows who wrote it and the text escaped', () => {
    const m = threadNoteMessage(incident, { kind: 'update', actor: 'U0ONCALL', text: 'Failover <done> & verified' });
    expect(m.text).toBe(':memo: INC-7 update from <@U0ONCALL>:\nFailover &lt;done&gt; &amp; verified');
    expect(m.blocks).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: m.text } }]);
  });

  it('an update at the command limit stays within Slack limits', () => {
    const m = threadNoteMessage(incident, {
      kind: 'update',
      actor: 'U0ONCALL',
      text: '<&>'.repeat(967).slice(0, 2900),
    });
    assertWithinSlackLimits(m);
  });

  it('an update at the command limit is shown in full', () => {
    // Regression (fixed): src/delivery/slack/incident-card.ts threadNoteMessage cuts the escaped update at 3000
    // characters (text.slice(0, 3000)); an accepted 2900-character update containing & < > loses its tail (and can end
    // in a half entity like "&am").
    const text = `${'Checked the replicas & the <primary>. '.repeat(80).slice(0, 2890)} THE END`;
    const m = threadNoteMessage(incident, { kind: 'update', actor: 'U0ONCALL', text });
    const shown = allTexts(m.blocks).join('');
    expect(shown).toContain('THE END');
    expect(shown).not.toMatch(/&[a-z]*$/);
  });

  it('a severity change shows from, to and the ladder', () => {
    const started = threadNoteMessage(incident, {
      kind: 'severity',
      actor: 'U0LEAD',
      from: 'sev3',
      to: 'sev1',
      ladder: 'started',
    });
    expect(started.text).toBe(
      ':arrows_counterclockwise: INC-7 severity changed by <@U0LEAD>: SEV3 → SEV1. Escalation ladder started.',
    );
    const stopped = threadNoteMessage(incident, {
      kind: 'severity',
      actor: 'U0LEAD',
      from: 'sev1',
      to: 'sev4',
      ladder: 'stopped',
    });
    expect(stopped.text).toBe(
      ':arrows_counterclockwise: INC-7 severity changed by <@U0LEAD>: SEV1 → SEV4. Escalation ladder stopped.',
    );
    const same = threadNoteMessage(incident, {
      kind: 'severity',
      actor: 'U0LEAD',
      from: 'sev1',
      to: 'sev2',
      ladder: 'unchanged',
    });
    expect(same.text).toBe(':arrows_counterclockwise: INC-7 severity changed by <@U0LEAD>: SEV1 → SEV2.');
  });
});

describe('incidentCard and thread notes: the status page', () => {
  it('has no status page field until one exists', () => {
    expect(fieldTexts(incidentCard(makeIncident(), FILE)).join('\n')).not.toContain('Status page');
  });

  it('links the status page incident and shows its status', () => {
    const incident = makeIncident({
      statusPage: { id: 'sp1', link: 'https://stspg.io/abc1', status: 'monitoring' },
    });
    expect(fieldTexts(incidentCard(incident, FILE))).toContain(
      '*Status page*\n<https://stspg.io/abc1|https://stspg.io/abc1> (monitoring)',
    );
  });

  it('shows a link that is not a plain http(s) URL as text, never as markup', () => {
    const incident = makeIncident({
      statusPage: { id: 'sp1', link: 'javascript:alert(1)|<!channel>', status: 'investigating' },
    });
    const field = fieldTexts(incidentCard(incident, FILE)).find((f) => f.startsWith('*Status page*'));
    expect(field).toBe('*Status page*\njavascript:alert(1)|&lt;!channel&gt; (investigating)');
  });

  it('says in the thread when the status page incident was created, and after how many failed tries', () => {
    const note = threadNoteMessage(makeIncident(), {
      kind: 'statuspage',
      status: 'investigating',
      link: 'https://stspg.io/abc1',
      created: true,
      failures: 2,
    });
    expect(note.text).toBe(
      ':globe_with_meridians: INC-7: status page incident created, *investigating* (after 2 failed tries): <https://stspg.io/abc1|https://stspg.io/abc1>',
    );
  });

  it('says a failed call and whether Lifeline keeps retrying, with the error escaped', () => {
    const retrying = threadNoteMessage(makeIncident(), {
      kind: 'statuspage_failed',
      status: 'resolved',
      error: 'Statuspage answered 500: <oops>',
      retrying: true,
    });
    expect(retrying.text).toBe(
      ':warning: INC-7: the status page call (resolved) failed: Statuspage answered 500: &lt;oops&gt;. Lifeline keeps retrying.',
    );
    const gaveUp = threadNoteMessage(makeIncident(), {
      kind: 'statuspage_failed',
      status: 'identified',
      error: 'Statuspage answered 401: Could not authenticate',
      retrying: false,
    });
    expect(gaveUp.text).toContain('Lifeline has given up on it.');
  });
});

describe('incidentCard and thread notes: the incident channel', () => {
  it('links the incident channel once there is one', () => {
    expect(fieldTexts(incidentCard(makeIncident(), FILE)).join('\n')).not.toContain('Channel');
    expect(fieldTexts(incidentCard(makeIncident({ channel: 'C0INC7' }), FILE))).toContain('*Channel*\n<#C0INC7>');
  });

  it('says in the thread that Slack refused the channel, and that paging goes on', () => {
    const note = threadNoteMessage(makeIncident(), {
      kind: 'channel_failed',
      error: 'Slack conversations.create refused: restricted_action',
    });
    expect(note.text).toBe(
      ':warning: INC-7: no incident channel: Slack conversations.create refused: restricted_action. Paging and this thread go on as usual.',
    );
  });
});
