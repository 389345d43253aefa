// The status page through the real process (node dist/main.js): Atlassian Statuspage is the stand-in at
// STATUSPAGE_API_URL, Slack and PagerDuty the usual ones.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { StatuspageStandIn } from '../../src/adapters/statuspage/stand-in.js';
import { allText, EMERGENCY, linesWithSecrets, stillAfter, World } from '../support/e2e.js';
import { USERS, writeTestConfig } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const PAGE = 'e2epage01';
const KEY = 'sp-e2e-api-key-0123456789';
const COMPONENT = 'cmpe2estaging';
const ALERTS_TOKEN = 'alerts-token-statuspage-0123456789';

let w: World;
let sp: StatuspageStandIn;

beforeAll(async () => {
  sp = await new StatuspageStandIn({ pageId: PAGE, apiKey: KEY, components: [COMPONENT] }).start();
  const statuspage = [
    'statuspage:',
    `  page_id: ${PAGE}`,
    '  api_key: "${STATUSPAGE_API_KEY}"',
    `  components: { staging: ${COMPONENT} }`,
    '  auto_for: [sev1]',
    'alerts:',
    `  token: ${ALERTS_TOKEN}`,
    '  severity_map: { critical: sev1 }',
  ].join('\n');
  w = await World.create({
    config: { steps: [{ after_minutes: 0, notify: 'oncall' }], extraYaml: statuspage },
    extraEnv: { STATUSPAGE_API_URL: sp.url, STATUSPAGE_API_KEY: KEY },
  });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
  await sp?.stop();
});

function named(title: string) {
  return sp.incidents.filter((i) => i.name === title);
}

async function callCount(): Promise<number> {
  const { rows } = await w.sql.query<{ n: string }>('SELECT count(*) AS n FROM statuspage_calls');
  return Number(rows[0]!.n);
}

describe('status page', () => {
  test('a SEV1 pages at once while Statuspage is slow, then gets its status page incident, linked on the card', async () => {
    sp.delayMs = 3_000;
    const title = 'Checkout unreachable';
    const inc = await w.declare('sev1', title);
    // The page does not wait for the status page call, still in flight.
    await waitUntil('the page', () => w.triggersOf(inc.number).length === 1, 2_500);
    await waitUntil('the status page call in flight', () => sp.inFlight === 1, 2_500);
    expect(named(title)).toHaveLength(0);
    expect(w.triggersOf(inc.number)).toHaveLength(1);
    sp.delayMs = 0;

    const created = await waitUntil('the status page incident', () => named(title)[0], 15_000);
    expect(created.status).toBe('investigating');
    expect(created.components).toEqual({ [COMPONENT]: 'major_outage' });
    await waitUntil('the link on the card', () =>
      w.cardUpdates(inc.card).some((u) => allText(u.body).includes(created.shortlink)),
    );
    await waitUntil('the note in the thread', () =>
      w.threadOf(inc.card).some((m) => allText(m.body).includes('status page incident created')),
    );

    // Resolving resolves it, and puts its components back to operational.
    const resolve = await w.command(`resolve ${inc.id} fixed`, { user: USERS.oncall });
    expect(resolve.status).toBe(200);
    await waitUntil('the status page resolve', () => created.status === 'resolved', 15_000);
    expect(created.components).toEqual({ [COMPONENT]: 'operational' });
    expect(sp.components[COMPONENT]).toBe('operational');
    expect(named(title)).toHaveLength(1);
    // The stand-in has the resolve when Lifeline's call arrives; the timeline row follows Statuspage's answer.
    const statusEvents = async () =>
      (await w.timeline(inc.number)).map((e) => e.kind).filter((k) => k.startsWith('statuspage'));
    await waitUntil('the resolve on the timeline', async () => (await statusEvents()).length === 2);
    expect(await statusEvents()).toEqual(['statuspage', 'statuspage']);
  });

  test('a 500 on create is reported in the thread within 30 s and retried until it succeeds; paging never waits', async () => {
    // Every try of the first attempt fails (the client tries 3 times); the job's retry succeeds.
    sp.failNext(3, 500);
    const title = 'Payments erroring';
    const inc = await w.declare('sev1', title);
    await waitUntil('the page', () => w.triggersOf(inc.number).length === 1, 2_500);
    const failure = await waitUntil(
      'the failure in the thread',
      () => w.threadOf(inc.card).find((m) => allText(m.body).includes('failed')),
      30_000,
    );
    expect(failure.at - inc.sent.sentAt).toBeLessThan(30_000);
    expect(allText(failure.body)).toContain('Statuspage answered 500');
    const created = await waitUntil('the retry to create it', () => named(title)[0], 30_000);
    await waitUntil('the success in the thread', () =>
      w.threadOf(inc.card).some((m) => allText(m.body).includes('status page incident created')),
    );
    expect(named(title)).toHaveLength(1);
    expect(created.components).toEqual({ [COMPONENT]: 'major_outage' });
  });

  test('/incident statuspage creates and updates for a responder, with the message as the body', async () => {
    const title = 'Emails delayed';
    const inc = await w.declare('sev2', title);
    await stillAfter('no status page incident for a SEV2 by itself', () => named(title).length === 0, 1_000);

    const post = await w.command(`statuspage ${inc.id} identified A queue is backed up.`, { user: USERS.lead });
    expect(post.status).toBe(200);
    expect(await w.reply(post)).toContain(inc.id);
    const created = await waitUntil('the status page incident', () => named(title)[0], 15_000);
    expect(created.status).toBe('identified');
    expect(created.components).toEqual({ [COMPONENT]: 'partial_outage' });

    await w.command(`statuspage ${inc.id} monitoring Draining now.`, { user: USERS.oncall });
    await waitUntil('the update', () => created.status === 'monitoring', 15_000);
    expect(created.updates.map((u) => u.body)).toEqual(['A queue is backed up.', 'Draining now.']);
    expect(named(title)).toHaveLength(1);
  });

  test('refusals: non-responder, bad status, empty message, unknown incident; each changes nothing', async () => {
    const inc = await w.declare('sev3', 'Refusals target');
    const cases: [string, string, RegExp][] = [
      [USERS.other, `statuspage ${inc.id} identified We know.`, /Only responders/],
      [USERS.oncall, `statuspage ${inc.id} fixing We know.`, /Unknown status "fixing"/],
      [USERS.oncall, `statuspage ${inc.id} identified`, /needs a message/],
      [USERS.oncall, 'statuspage INC-9999 identified We know.', /There is no incident INC-9999/],
    ];
    for (const [user, text, said] of cases) {
      const calls = await callCount();
      const requests = sp.calls.length;
      const sent = await w.command(text, { user });
      expect(sent.status).toBe(200);
      expect(await w.reply(sent)).toMatch(said);
      await stillAfter(`"${text}" to change nothing`, async () => (await callCount()) === calls, 500);
      expect(sp.calls.length).toBe(requests);
    }
    const help = await w.command('help', { user: USERS.other });
    expect(await w.reply(help)).toMatch(/statuspage \[ID\].*responders only: it is a public statement/);
  });

  test('without `statuspage:` in the config the command is refused and changes nothing', async () => {
    const bare = w.process({ configPath: writeTestConfig({ steps: [{ after_minutes: 0, notify: 'oncall' }] }) });
    await bare.start();
    const calls = await callCount();
    const sent = await w.command('statuspage identified Something', {
      user: USERS.oncall,
      via: bare,
      channel: EMERGENCY,
    });
    expect(await w.reply(sent)).toMatch(/No status page is configured/);
    expect(await callCount()).toBe(calls);
    await bare.stop();
  });

  test('an incident an alert declares and resolves follows the same way: created, then resolved and operational', async () => {
    const before = sp.incidents.length;
    const alert = (status: 'firing' | 'resolved') =>
      fetch(`${w.lifeline.baseUrl}/alerts/alertmanager`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ALERTS_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          version: '4',
          groupKey: '{}:{alertname="ApiDown"}',
          truncatedAlerts: 0,
          status,
          receiver: 'lifeline',
          groupLabels: { alertname: 'ApiDown' },
          commonLabels: { alertname: 'ApiDown', severity: 'critical' },
          commonAnnotations: { summary: 'The API is down' },
          externalURL: 'http://alertmanager:9093',
          alerts: [
            {
              status,
              labels: { alertname: 'ApiDown', severity: 'critical' },
              annotations: {},
              startsAt: '2026-12-03T21:00:00Z',
              endsAt: '0001-01-01T00:00:00Z',
              generatorURL: 'http://prometheus:9090/graph',
              fingerprint: 'f00d',
            },
          ],
        }),
      });
    expect((await alert('firing')).status).toBeLessThan(300);
    const created = await waitUntil('the status page incident', () => sp.incidents[before], 15_000);
    expect(created.components).toEqual({ [COMPONENT]: 'major_outage' });
    expect((await alert('resolved')).status).toBeLessThan(300);
    await waitUntil('the status page resolve', () => created.status === 'resolved', 15_000);
    expect(created.components).toEqual({ [COMPONENT]: 'operational' });
    expect(sp.incidents).toHaveLength(before + 1);
  });

  test('the API key never reaches a log line or a Slack message', () => {
    expect(linesWithSecrets(w.output())).toEqual([]);
    const messages = w.slack.calls.filter((c) => c.method.startsWith('chat.')).map((c) => JSON.stringify(c.body));
    expect(messages.filter((m) => m.includes(KEY))).toEqual([]);
    expect(w.output().filter((l) => l.includes(KEY))).toEqual([]);
  });
});
