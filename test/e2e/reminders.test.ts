// Update reminders and stakeholder summaries through the real process (node dist/main.js) with the Slack and
// PagerDuty stand-ins: a SEV1 that nobody updates for 0.02 min (1.2 s) gets a reminder in its thread, and the
// stakeholders' channel hears of its declaration, its update and its resolve.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { allText, World } from '../support/e2e.js';
import { USERS } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const STAKEHOLDERS = 'C0STAKEHOLDERS';
const PERIOD_MS = 1_200;

let w: World;

beforeAll(async () => {
  const incidents = [
    'incidents:',
    '  update_every_minutes: { sev1: 0.02 }',
    `  stakeholders: { channel: ${STAKEHOLDERS}, severities: [sev1] }`,
  ].join('\n');
  w = await World.create({ config: { steps: [{ after_minutes: 0, notify: 'oncall' }], extraYaml: incidents } });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
});

describe('reminders and stakeholder summaries', () => {
  test('a SEV1 with no update gets a reminder in its thread each period; stakeholders hear of declare, update and resolve; /metrics has its time to resolve', async () => {
    const title = 'Payments timing out';
    const declaredAt = Date.now();
    const inc = await w.declare('sev1', title);
    const summaries = () => w.slack.posts(STAKEHOLDERS).map((c) => allText(c.body));
    const reminders = () => w.threadOf(inc.card).filter((m) => allText(m.body).includes(':alarm_clock:'));

    await waitUntil('the declaration summary', () => summaries().length === 1);
    expect(summaries()[0]).toContain(`${inc.id} SEV1 declared`);
    expect(summaries()[0]).toContain(title);

    const first = await waitUntil('the reminder', () => reminders()[0], 15_000);
    expect(first.at - declaredAt).toBeGreaterThanOrEqual(PERIOD_MS - 100);
    expect(allText(first.body)).toContain(`<@${USERS.declarer}>`);
    expect(allText(first.body)).toContain('since it was declared');
    await waitUntil('the second reminder', () => reminders().length >= 2, 15_000);

    const update = await w.command(`update ${inc.id} Failing over to the replica`, { user: USERS.oncall });
    expect(update.status).toBe(200);
    await waitUntil('the update summary', () => summaries().length === 2);
    expect(summaries()[1]).toContain(`${inc.id} SEV1 update`);
    expect(summaries()[1]).toContain('Latest update: Failing over to the replica');

    const resolve = await w.command(`resolve ${inc.id} replica promoted`, { user: USERS.oncall });
    expect(resolve.status).toBe(200);
    await waitUntil('the resolve summary', () => summaries().length === 3);
    expect(summaries()[2]).toContain(`${inc.id} SEV1 resolved`);
    const afterResolve = reminders().length;
    await new Promise((r) => setTimeout(r, PERIOD_MS * 2.5));
    // One already being posted when the resolve landed may still arrive; none after it.
    expect(reminders().length).toBeLessThanOrEqual(afterResolve + 1);
    const kinds = (await w.timeline(inc.number)).map((e) => e.kind);
    expect(kinds).toContain('reminder');

    // MTTR on /metrics, for a person's declaration: slash_command.
    const metrics = await (await fetch(`${w.lifeline.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /lifeline_incident_time_to_resolve_seconds_count\{severity="sev1",source="slash_command"\} 1\n/,
    );
  });
});
