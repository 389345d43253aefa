// What the health checks ask the schedules for, without Redis: one `every` scheduler per env with a health_url, at
// alerts.health_check_seconds or 30 s without an alerts: section; a probe bound under the interval; a job's slot.
import { describe, expect, it } from 'vitest';
import { slotOf, wantedSchedulers } from '../../src/delivery/jobs/schedules.js';
import { healthCheckSeconds, probeTimeoutMs } from '../../src/domain/alerts/health.js';
import { exampleFile } from './fixtures.js';

describe('health check schedulers', () => {
  it('one every-30 s scheduler for each env with a health_url when the config has no alerts: section', () => {
    const file = exampleFile();
    expect(file.alerts).toBeUndefined();
    const withUrl = Object.entries(file.environments).filter(([, env]) => env.health_url !== undefined);
    expect(withUrl.length).toBeGreaterThan(0);
    const health = [...wantedSchedulers(file, 60)].filter(([id]) => id.startsWith('health-'));
    expect(health).toEqual(
      withUrl.map(([env]) => [`health-${env}`, { repeat: { every: 30_000 }, work: { kind: 'health', env } }]),
    );
  });

  it('alerts.health_check_seconds sets the interval; an env without health_url gets none', () => {
    const base = exampleFile();
    const file = {
      ...base,
      alerts: {
        token: 'x'.repeat(16),
        severity_map: {},
        cloudwatch_severity: 'sev2' as const,
        auto_resolve: true,
        health_check_seconds: 5,
      },
    };
    expect(healthCheckSeconds(file)).toBe(5);
    const ids = [...wantedSchedulers(file, 60).keys()];
    for (const [env, config] of Object.entries(file.environments))
      expect(ids.includes(`health-${env}`), env).toBe(config.health_url !== undefined);
    expect(wantedSchedulers(file, 60).get(`health-production`)?.repeat).toEqual({ every: 5_000 });
  });

  it('a probe is bounded by half the interval, at most 10 s', () => {
    expect([0.2, 1, 5, 20, 30, 3600].map(probeTimeoutMs)).toEqual([100, 500, 2_500, 10_000, 10_000, 10_000]);
  });

  it("a scheduler job's slot is the time in its id; any other job's is its creation time", () => {
    expect(slotOf({ id: 'repeat:health-production:1764800000000', timestamp: 5 })).toBe(1764800000000);
    expect(slotOf({ id: 'some-other-job', timestamp: 5 })).toBe(5);
    expect(slotOf({ id: undefined, timestamp: 7 })).toBe(7);
  });
});
