// Stakeholder summaries on the real PostgreSQL (and Redis for the ladder's queue); Slack is the in-memory double.
import type { Queue } from 'bullmq';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import {
  createEscalationQueue,
  createEscalationTimers,
  type EscalationJob,
} from '../../src/delivery/jobs/escalation-queue.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import { createSlackStakeholderNotifier } from '../../src/delivery/slack/stakeholder-notifier.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import { StakeholderService } from '../../src/domain/incidents/stakeholders.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/log.js';
import { createMetrics, type Metrics } from '../../src/shared/metrics.js';
import { testConfigYaml, USERS } from '../support/test-config.js';
import { declareIncident, useBench } from './harness.js';

const STAKEHOLDERS = 'C0STAKEHOLDERS';

const FILE: FileConfig = parseConfigText(
  testConfigYaml({
    steps: [{ after_minutes: 5, notify: 'oncall' }],
    backupsFolder: '/tmp/x',
    extraYaml: `incidents:\n  stakeholders: { channel: ${STAKEHOLDERS}, severities: [sev1, sev2] }`,
  }),
  { PD_KEY_ONCALL: 'rk1-0000', PD_KEY_LEAD: 'rk2-0000', PD_KEY_CTO: 'rk3-0000', PD_KEY_CEO: 'rk4-0000' },
);

const log = createLogger('silent', []);
const bench = useBench();
let queue: Queue<EscalationJob>;

beforeAll(() => {
  queue = bench.queue(createEscalationQueue(bench.redis(), bench.prefix));
});

function world(): { chat: MemoryChat; incidents: IncidentService; metrics: Metrics; summaries: () => string[] } {
  const chat = new MemoryChat();
  const metrics = createMetrics();
  const stakeholders = new StakeholderService({
    db: bench.db,
    file: FILE,
    notifier: createSlackStakeholderNotifier(chat),
    metrics,
    log,
  });
  const incidents = new IncidentService({
    db: bench.db,
    file: FILE,
    notifier: createSlackIncidentNotifier(chat, FILE),
    timers: createEscalationTimers(queue),
    metrics,
    log,
    followers: [stakeholders],
  });
  const summaries = () =>
    chat.calls.filter((c) => c.kind === 'post' && c.channel === STAKEHOLDERS).map((c) => c.message.text);
  return { chat, incidents, metrics, summaries };
}

describe('stakeholder summaries', () => {
  it('posts a summary on declare, on each update and on resolve, with the latest update and the status page link', async () => {
    const w = world();
    const incident = await declareIncident(w, 'sev1', 'Checkout down');
    const id = `INC-${incident.number}`;
    expect(w.summaries()).toHaveLength(1);
    expect(w.summaries()[0]).toContain(`*${id} SEV1 declared*: Checkout down`);
    expect(w.summaries()[0]).toMatch(/Status: \*open\* · declared \d+ s ago/);
    expect(w.summaries()[0]).not.toContain('Latest update');

    // The status page incident the status page follower created meanwhile.
    await bench.db.query(
      `UPDATE incidents SET statuspage_id = 'sp1', statuspage_link = 'https://stspg.io/abc', statuspage_status = 'investigating'
        WHERE number = $1`,
      [incident.number],
    );
    await w.incidents.acknowledge({ number: incident.number }, USERS.oncall);
    await w.incidents.update({ number: incident.number }, USERS.oncall, 'Rolled back the deploy');
    expect(w.summaries()).toHaveLength(2);
    expect(w.summaries()[1]).toContain(`*${id} SEV1 update*: Checkout down`);
    expect(w.summaries()[1]).toContain('Status: *acknowledged*');
    expect(w.summaries()[1]).toContain('Latest update: Rolled back the deploy');
    expect(w.summaries()[1]).toContain('Status page: <https://stspg.io/abc|https://stspg.io/abc>');

    await w.incidents.resolve({ number: incident.number }, USERS.oncall, 'fixed');
    expect(w.summaries()).toHaveLength(3);
    expect(w.summaries()[2]).toContain(`*${id} SEV1 resolved*: Checkout down`);
    expect(w.summaries()[2]).toMatch(/Status: \*resolved\* · after \d+ s/);
    expect(w.summaries()[2]).toContain('Latest update: Rolled back the deploy');
    // The summaries went to the stakeholders' channel only, never threaded.
    expect(w.chat.calls.filter((c) => c.channel === STAKEHOLDERS && c.threadTs)).toHaveLength(0);
  });

  it('posts nothing for a severity that is not listed', async () => {
    const w = world();
    const incident = await declareIncident(w, 'sev3', 'Slow reports');
    await w.incidents.update({ number: incident.number }, USERS.oncall, 'looking');
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
    expect(w.summaries()).toHaveLength(0);
  });

  it('a Slack failure is logged and counted, and neither fails the declaration nor holds up its ladder', async () => {
    const w = world();
    const post = w.chat.post.bind(w.chat);
    w.chat.post = async (channel, message, threadTs) => {
      if (channel === STAKEHOLDERS) throw new Error('channel_not_found');
      return post(channel, message, threadTs);
    };
    const incident = await declareIncident(w, 'sev2', 'Queue backlog');
    expect(incident.card).toBeDefined();
    const steps = await bench.db.query<{ id: string }>('SELECT id FROM escalation_steps WHERE incident = $1', [
      incident.number,
    ]);
    expect(steps.rows).toHaveLength(1);
    expect(await queue.getJob(`step-${steps.rows[0]!.id}`)).toBeDefined();
    const failures = await w.metrics.slackFailures.get();
    expect(failures.values.find((v) => v.labels.call === 'Slack stakeholder summary')?.value).toBe(1);
    await w.incidents.resolve({ number: incident.number }, USERS.oncall, undefined);
  });
});
