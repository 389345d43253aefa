import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly incidentsDeclared: Counter<'severity'>;
  readonly pagesSent: Counter<'action'>;
  readonly pagesFailed: Counter<'action'>;
  readonly ladderLateness: Histogram;
  readonly slackFailures: Counter<'call'>;
  readonly commandsRefused: Counter<'command' | 'code'>;
}

/** One registry per process (tests build several apps in one process, each with its own). */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'lifeline_' });
  return {
    registry,
    incidentsDeclared: new Counter({
      name: 'lifeline_incidents_declared_total',
      help: 'Incidents declared, by severity at declaration',
      labelNames: ['severity'],
      registers: [registry],
    }),
    pagesSent: new Counter({
      name: 'lifeline_pages_sent_total',
      help: 'PagerDuty events accepted, by event_action',
      labelNames: ['action'],
      registers: [registry],
    }),
    pagesFailed: new Counter({
      name: 'lifeline_pages_failed_total',
      help: 'PagerDuty sends that failed after their in-call retries (the job retries them again)',
      labelNames: ['action'],
      registers: [registry],
    }),
    ladderLateness: new Histogram({
      name: 'lifeline_ladder_lateness_seconds',
      help: 'How long after its due time an escalation step was claimed to fire',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300],
      registers: [registry],
    }),
    slackFailures: new Counter({
      name: 'lifeline_slack_failures_total',
      help: 'Slack Web API calls that failed, by kind of post',
      labelNames: ['call'],
      registers: [registry],
    }),
    commandsRefused: new Counter({
      name: 'lifeline_commands_refused_total',
      help: 'Slash commands and clicks refused, by command and reason code',
      labelNames: ['command', 'code'],
      registers: [registry],
    }),
  };
}
