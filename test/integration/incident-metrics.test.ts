// MTTA and MTTR on /metrics: observed on acknowledge and resolve, by severity and source, on the real PostgreSQL.
import type { Queue } from 'bullmq';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import {
  createEscalationQueue,
  createEscalationTimers,
  type EscalationJob,
} from '../../src/delivery/jobs/escalation-queue.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import { incidentOrigin, type AlertSource } from '../../src/domain/incidents/model.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import { createLogger } from '../../src/shared/log.js';
import { createMetrics } from '../../src/shared/metrics.js';
import { USERS } from '../support/test-config.js';
import { EMERGENCY, useBench, testFileConfig } from './harness.js';

const log = createLogger('silent', []);
const bench = useBench();
let queue: Queue<EscalationJob>;

beforeAll(() => {
  queue = bench.queue(createEscalationQueue(bench.redis(), bench.prefix));
});

const ALERT: AlertSource = {
  kind: 'alertmanager',
  key: '{}:{alertname="HighErrorRate"}',
  name: 'HighErrorRate',
  labels: { severity: 'critical' },
  annotations: {},
  link: undefined,
};

/** The sample count of one histogram series in /metrics' text, 0 when the series is absent. */
function countOf(text: string, metric: string, severity: string, source: string): number {
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith(`${metric}_count{`) && l.includes(`severity="${severity}"`) && l.includes(`source="${source}"`),
    );
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('MTTA and MTTR metrics', () => {
  it('observes time to acknowledge and time to resolve with the severity and the source', async () => {
    const file = testFileConfig([{ after_minutes: 5, notify: 'oncall' }]);
    const metrics = createMetrics();
    const incidents = new IncidentService({
      db: bench.db,
      file,
      notifier: createSlackIncidentNotifier(new MemoryChat(), file),
      timers: createEscalationTimers(queue),
      metrics,
      log,
    });
    const typed = await incidents.declare({
      severity: 'sev1',
      title: 'typed',
      actor: USERS.declarer,
      channel: EMERGENCY,
    });
    const alerted = await incidents.declare({
      severity: 'sev2',
      title: 'alerted',
      actor: 'lifeline',
      channel: EMERGENCY,
      source: ALERT,
    });
    await new Promise((r) => setTimeout(r, 300));
    await incidents.acknowledge({ number: typed.incident.number }, USERS.oncall);
    await incidents.resolve({ number: typed.incident.number }, USERS.oncall, undefined);
    await incidents.resolve({ number: alerted.incident.number }, USERS.oncall, undefined);

    const text = await metrics.registry.metrics();
    const mtta = 'lifeline_incident_time_to_acknowledge_seconds';
    const mttr = 'lifeline_incident_time_to_resolve_seconds';
    expect(countOf(text, mtta, 'sev1', 'slash_command')).toBe(1);
    expect(countOf(text, mttr, 'sev1', 'slash_command')).toBe(1);
    expect(countOf(text, mttr, 'sev2', 'alert')).toBe(1);
    // Resolved without an acknowledgement: no time to acknowledge.
    expect(countOf(text, mtta, 'sev2', 'alert')).toBe(0);
    const ack = (await metrics.timeToAcknowledge.get()).values.find(
      (v) => v.metricName === `${mtta}_sum` && v.labels.source === 'slash_command',
    );
    expect(ack?.value).toBeGreaterThanOrEqual(0.3);
    expect(ack?.value).toBeLessThan(30);
    // Buckets that suit minutes to hours.
    expect(text).toContain(`${mttr}_bucket{le="3600",severity="sev1",source="slash_command"} 1`);
    expect(text).toContain(`${mttr}_bucket{le="86400",severity="sev2",source="alert"} 1`);
  });

  it('labels an incident a health check declared health_check, an alert alert and a person slash_command', () => {
    expect(incidentOrigin({ source: undefined })).toBe('slash_command');
    expect(incidentOrigin({ source: ALERT })).toBe('alert');
    expect(incidentOrigin({ source: { ...ALERT, kind: 'cloudwatch' } })).toBe('alert');
    const health = { ...ALERT, kind: 'health' } as unknown as AlertSource;
    expect(incidentOrigin({ source: health })).toBe('health_check');
  });
});
