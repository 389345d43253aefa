// Alerts in through the real process (node dist/main.js) with the Slack and PagerDuty stand-ins: an Alertmanager
// firing declares an incident, pages on-call and posts a card that says where it came from; a repeat goes on its
// timeline; resolved resolves it and its page. CloudWatch ALARM / OK the same. Every refusal (401 without and with a
// wrong token, 413, 415, 400, 404 without an alerts: section) changes nothing: no incident, no page, no event.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, stillAfter, World, type Snapshot } from '../support/e2e.js';
import { ROUTING_KEYS, writeTestConfig, type LifelineProcess } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const TOKEN = 'alerts-token-e2e-0123456789abcdef';
const STEPS = [
  { after_minutes: 0, notify: 'oncall' },
  { after_minutes: 10, notify: 'engineering_lead' },
];
const ALERTS_YAML = `alerts:
  token: "\${ALERTS_TOKEN}"
  severity_map: { critical: sev1, warning: sev3 }
`;

let w: World;
let withoutAlerts: LifelineProcess;

beforeAll(async () => {
  w = await World.create({ config: { steps: STEPS, extraYaml: ALERTS_YAML }, extraEnv: { ALERTS_TOKEN: TOKEN } });
  await w.process().start();
  // The same database and fakes, with a config that has no alerts: section.
  withoutAlerts = w.process({ role: 'bot', configPath: writeTestConfig({ steps: STEPS }) });
  await withoutAlerts.start();
});

afterAll(async () => {
  await w?.close();
});

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function send(
  path: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
  via: LifelineProcess = w.lifeline,
): Promise<Answer> {
  const res = await fetch(`${via.baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

function webhook(status: 'firing' | 'resolved', extraLabels: Record<string, string> = {}): string {
  return JSON.stringify({
    version: '4',
    groupKey: '{}/{severity="critical"}:{alertname="CheckoutErrors"}',
    truncatedAlerts: 0,
    status,
    receiver: 'lifeline',
    groupLabels: { alertname: 'CheckoutErrors' },
    commonLabels: { alertname: 'CheckoutErrors', severity: 'critical', ...extraLabels },
    commonAnnotations: { summary: 'Checkout returns 5xx', description: 'Error rate above 5% for 5 minutes' },
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status,
        labels: { alertname: 'CheckoutErrors', severity: 'critical', instance: 'web-1' },
        annotations: {},
        startsAt: '2026-12-03T21:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus:9090/graph?g0.expr=checkout_errors',
        fingerprint: 'a1b2c3',
      },
    ],
  });
}

function alarm(value: 'ALARM' | 'OK'): string {
  return JSON.stringify({
    version: '0',
    id: 'c4c1c1c9-6542-e61b-6ef0-8c4d36933a92',
    'detail-type': 'CloudWatch Alarm State Change',
    source: 'aws.cloudwatch',
    account: '123456789012',
    time: '2026-12-03T21:00:00Z',
    region: 'eu-west-1',
    resources: ['arn:aws:cloudwatch:eu-west-1:123456789012:alarm:rds-cpu-high'],
    detail: {
      alarmName: 'rds-cpu-high',
      state: { value, reason: `state ${value}`, timestamp: '2026-12-03T21:00:00.000+0000' },
      previousState: { value: value === 'ALARM' ? 'OK' : 'ALARM' },
      configuration: { description: 'RDS CPU above 90%' },
    },
  });
}

async function world(): Promise<Snapshot & { alertEvents: number }> {
  const { rows } = await w.sql.query<{ n: string }>(
    `SELECT count(*) AS n FROM incident_events WHERE kind LIKE 'alert_%'`,
  );
  return { ...(await w.snapshot()), alertEvents: Number(rows[0]!.n) };
}

describe('Alertmanager', () => {
  test('firing: an incident declared by Lifeline, on-call paged, and a card that says where it came from, escaped', async () => {
    const answer = await send('/alerts/alertmanager', webhook('firing', { team: '<!channel> payments' }));
    expect(answer).toEqual({ status: 200, body: { ok: true, outcome: 'declared', incident: 'INC-1' } });

    const { card, text } = await w.cardShowing(1, [
      'Checkout returns 5xx',
      'SEV1',
      '*Declared by*\nlifeline',
      '*Source*: Alertmanager group CheckoutErrors',
      '*Group key*: `{}/{severity="critical"}:{alertname="CheckoutErrors"}`',
      'Error rate above 5% for 5 minutes',
      '<http://prometheus:9090/graph?g0.expr=checkout_errors|the alert in Prometheus>',
    ]);
    // A label is hostile input: <!channel> is shown, not sent as a ping.
    expect(text).toContain('&lt;!channel&gt; payments');
    expect(JSON.stringify(card.body)).not.toContain('<!channel>');

    await waitUntil('the on-call trigger for INC-1', () => w.triggersOf(1).length >= 1);
    expect(w.triggersOf(1).map((t) => t.routing_key)).toEqual([ROUTING_KEYS.oncall]);
    const row = await w.incidentRow(1);
    expect(row?.declared_by).toBe('lifeline');
    expect(row?.source_kind).toBe('alertmanager');
  });

  test('a repeat of the group goes on the timeline: no second incident, no second card, no second page', async () => {
    // The first firing's page is followed by its mention in the card's thread: let that land before counting.
    await w.settled();
    const before = await world();
    const answer = await send('/alerts/alertmanager', webhook('firing'));
    expect(answer).toEqual({ status: 200, body: { ok: true, outcome: 'repeat', incident: 'INC-1' } });
    const timeline = await w.timeline(1);
    expect(timeline.at(-1)?.kind).toBe('alert_repeat');
    expect(timeline.at(-1)?.detail).toContain('Alertmanager firing: 1 firing (Checkout returns 5xx)');
    await stillAfter('no new incident, card or page', async () => {
      const now = await world();
      return now.incidents === before.incidents && now.posts === before.posts && now.pdEvents === before.pdEvents;
    });
  });

  test('resolved: the incident is resolved by Lifeline and its page resolved at PagerDuty', async () => {
    const answer = await send('/alerts/alertmanager', webhook('resolved'));
    expect(answer).toEqual({ status: 200, body: { ok: true, outcome: 'resolved', incident: 'INC-1' } });
    const row = await w.incidentRow(1);
    expect(row?.resolved_by).toBe('lifeline');
    expect(String(row?.resolution_note)).toContain('Alertmanager group CheckoutErrors cleared');
    await waitUntil('the PagerDuty resolve of INC-1', () => w.followUpsOf(1, 'resolve').length >= 1);
    expect(w.followUpsOf(1, 'resolve').map((e) => e.dedup_key)).toEqual(w.triggersOf(1).map((e) => e.dedup_key));
  });
});

describe('CloudWatch through EventBridge', () => {
  test('ALARM declares one incident at sev2 with the alarm and its console link; OK resolves it', async () => {
    const fired = await send('/alerts/cloudwatch', alarm('ALARM'));
    expect(fired).toEqual({ status: 200, body: { ok: true, outcome: 'declared', incident: 'INC-2' } });
    const card = await waitUntil('the card of INC-2', () => w.cardOf(2));
    const text = allText(card.body);
    expect(text).toContain('SEV2');
    expect(text).toContain('*Source*: CloudWatch alarm rds-cpu-high');
    expect(text).toContain('arn:aws:cloudwatch:eu-west-1:123456789012:alarm:rds-cpu-high');
    expect(text).toContain(
      '<https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/rds-cpu-high|',
    );
    await waitUntil('the on-call trigger for INC-2', () => w.triggersOf(2).length >= 1);
    const ok = await send('/alerts/cloudwatch', alarm('OK'));
    expect(ok).toEqual({ status: 200, body: { ok: true, outcome: 'resolved', incident: 'INC-2' } });
    await waitUntil('the PagerDuty resolve of INC-2', () => w.followUpsOf(2, 'resolve').length >= 1);
  });
});

describe('refusals change nothing', () => {
  test('401 without and with a wrong token, 413 over 1 MB, 415 not JSON, 400 naming the problem, 404 without alerts:', async () => {
    // What the earlier tests set going (card refreshes, PagerDuty follow-ups) has settled first.
    let before = await world();
    await waitUntil('a quiet world', async () => {
      await new Promise((r) => setTimeout(r, 500));
      const now = await world();
      const quiet = JSON.stringify(now) === JSON.stringify(before);
      before = now;
      return quiet;
    });
    const firing = webhook('firing');

    const noToken = await fetch(`${w.lifeline.baseUrl}/alerts/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: firing,
    });
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get('www-authenticate')).toContain('Bearer');
    await noToken.arrayBuffer();

    const wrong = await send('/alerts/alertmanager', firing, { authorization: `Bearer ${TOKEN.slice(0, -1)}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe('unauthorized');
    const wrongCloudWatch = await send('/alerts/cloudwatch', alarm('ALARM'), { authorization: 'Bearer nope' });
    expect(wrongCloudWatch.status).toBe(401);

    const big = new TextEncoder().encode(`{"pad":"${'x'.repeat(1024 * 1024 + 10)}"}`);
    const tooLarge = await send('/alerts/alertmanager', big);
    expect(tooLarge).toEqual({
      status: 413,
      body: { ok: false, reply: 'The body is larger than 1 MB.', code: 'too_large' },
    });

    const notJson = await send('/alerts/alertmanager', firing, { 'content-type': 'text/plain' });
    expect(notJson.status).toBe(415);

    const noGroupKey = JSON.parse(firing) as Record<string, unknown>;
    delete noGroupKey.groupKey;
    const bad = await send('/alerts/alertmanager', JSON.stringify(noGroupKey));
    expect(bad.status).toBe(400);
    expect(String(bad.body.reply)).toContain('groupKey');
    const badAlarm = await send('/alerts/cloudwatch', JSON.stringify({ 'detail-type': 'EC2 Instance State-change' }));
    expect(badAlarm.status).toBe(400);
    expect(String(badAlarm.body.reply)).toContain('detail-type');
    const unparsable = await send('/alerts/alertmanager', '{"version": "4",');
    expect(unparsable.status).toBe(400);

    const notSetUp = await send('/alerts/alertmanager', firing, {}, withoutAlerts);
    expect(notSetUp.status).toBe(404);
    expect(String(notSetUp.body.reply)).toContain('alerts:');
    expect((await send('/alerts/cloudwatch', alarm('ALARM'), {}, withoutAlerts)).status).toBe(404);

    await stillAfter('no incident, page, event or Slack post', async () => {
      const now = await world();
      expect(now).toEqual(before);
      return true;
    });
    const metrics = await (await fetch(`${w.lifeline.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/lifeline_alerts_received_total\{source="alertmanager",outcome="refused"\} 6/);
    expect(metrics).toMatch(/lifeline_alerts_received_total\{source="cloudwatch",outcome="refused"\} 2/);
    // The token never reaches a log line.
    expect(w.output().filter((line) => line.includes(TOKEN))).toEqual([]);
  });
});
