// Health checks through the real process (node dist/main.js) with the Slack and PagerDuty stand-ins and a local health
// target whose answers the test flips: three failing probes (1 s apart) declare one SEV1 "staging health check
// failing" by Lifeline, page on-call and post a card with the URL, the last status and the reason; while it keeps
// failing nothing more happens; three passing probes resolve it as Lifeline and resolve the page. /metrics shows the
// probes and the health alerts.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { World } from '../support/e2e.js';
import { startHealthTarget, type HealthTarget } from '../support/health-target.js';
import { ROUTING_KEYS } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const ALERTS_YAML = `alerts:
  token: "alerts-token-e2e-0123456789abcdef"
  auto_resolve: false
  health_check_seconds: 1
`;

let w: World;
let target: HealthTarget;

beforeAll(async () => {
  target = await startHealthTarget(503);
  w = await World.create({
    config: { steps: [{ after_minutes: 0, notify: 'oncall' }], extraYaml: ALERTS_YAML, healthUrl: target.url },
  });
  await w.process().start();
});

afterAll(async () => {
  await w?.close();
  await target?.close();
});

describe('health checks', () => {
  test('3 failing probes: one SEV1 declared by Lifeline, on-call paged, a card with the URL, status and reason; more failures add nothing', async () => {
    await w.cardShowing(
      1,
      [
        'staging health check failing',
        'SEV1',
        '*Declared by*\nlifeline',
        '*Source*: Health check of staging',
        '*Env*: `staging`',
        target.url,
        'HTTP 503',
      ],
      20_000,
    );
    expect(target.requests).toBeGreaterThanOrEqual(3);
    await waitUntil('the on-call trigger for INC-1', () => w.triggersOf(1).length >= 1);
    expect(w.triggersOf(1).map((t) => t.routing_key)).toEqual([ROUTING_KEYS.oncall]);
    const row = await w.incidentRow(1);
    expect(row).toMatchObject({
      severity: 'sev1',
      declared_by: 'lifeline',
      source_kind: 'health',
      source_key: 'staging',
    });

    // Three more failing probes: no second incident, card, page or timeline entry.
    const requests = target.requests;
    const events = (await w.timeline(1)).length;
    await waitUntil('three more probes', () => target.requests >= requests + 3, 10_000);
    expect((await w.snapshot()).incidents).toBe(1);
    expect(w.triggersOf(1)).toHaveLength(1);
    expect(await w.timeline(1)).toHaveLength(events);
  });

  test('3 passing probes resolve it as Lifeline with a note, whatever auto_resolve says, and PagerDuty hears resolve', async () => {
    target.mode = 200;
    await waitUntil('INC-1 resolved', async () => (await w.incidentRow(1))?.resolved_at, 15_000);
    const row = await w.incidentRow(1);
    expect(row?.resolved_by).toBe('lifeline');
    expect(String(row?.resolution_note)).toMatch(/^health check of staging passing again: 3 successes in a row/);
    await waitUntil('the PagerDuty resolve', () => w.followUpsOf(1, 'resolve').length >= 1);
    expect((await w.snapshot()).incidents).toBe(1);
  });

  test('/metrics: the probes by env and outcome, and the health alerts by outcome', async () => {
    const metrics = await (await fetch(`${w.lifeline.baseUrl}/metrics`)).text();
    const count = (outcome: string) =>
      Number(
        new RegExp(`lifeline_health_probe_seconds_count\\{env="staging",outcome="${outcome}"\\} (\\d+)`).exec(
          metrics,
        )?.[1],
      );
    expect(count('failure')).toBeGreaterThanOrEqual(6);
    expect(count('success')).toBeGreaterThanOrEqual(3);
    expect(metrics).toContain('lifeline_alerts_received_total{source="health",outcome="declared"} 1');
    expect(metrics).toContain('lifeline_alerts_received_total{source="health",outcome="resolved"} 1');
  });
});
