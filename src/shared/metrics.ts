import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly incidentsDeclared: Counter<'severity'>;
  readonly pagesSent: Counter<'action'>;
  readonly pagesFailed: Counter<'action'>;
  readonly ladderLateness: Histogram;
  /** MTTA and MTTR: seconds from declaration to acknowledge / resolve, by severity and source. */
  readonly timeToAcknowledge: Histogram<'severity' | 'source'>;
  readonly timeToResolve: Histogram<'severity' | 'source'>;
  readonly slackFailures: Counter<'call'>;
  readonly commandsRefused: Counter<'command' | 'code'>;
  /** Alerts by source (alertmanager, cloudwatch, health) and what came of them. */
  readonly alertsReceived: Counter<'source' | 'outcome'>;
  /** Each health probe's duration, by env and outcome (success, failure). */
  readonly healthProbe: Histogram<'env' | 'outcome'>;
  /** When each env's newest backup was taken (from the RPO watch); the age gauge is computed from it at scrape. */
  readonly newestBackupAt: Map<string, Date | undefined>;
  readonly backupDuration: Gauge<'env'>;
  readonly backupSize: Gauge<'env'>;
  readonly drillPassed: Gauge<'env'>;
  readonly drillSkippedChecks: Gauge<'env'>;
  readonly drillRestore: Gauge<'env'>;
}

/** Minutes to hours: 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 4, 8, 24 h. */
const INCIDENT_DURATION_BUCKETS = [30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 14_400, 28_800, 86_400];

/** One registry per process (tests build several apps in one process, each with its own). */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'lifeline_' });
  const newestBackupAt = new Map<string, Date | undefined>();
  new Gauge({
    name: 'lifeline_backup_newest_age_seconds',
    help: "Age of each env's newest backup in its store (+Inf when the store has none), as of scrape time",
    labelNames: ['env'],
    registers: [registry],
    collect() {
      for (const [env, at] of newestBackupAt)
        this.set({ env }, at ? (Date.now() - at.getTime()) / 1000 : Number.POSITIVE_INFINITY);
    },
  });
  return {
    registry,
    newestBackupAt,
    backupDuration: new Gauge({
      name: 'lifeline_backup_duration_seconds',
      help: 'How long the last backup Lifeline took of each env ran',
      labelNames: ['env'],
      registers: [registry],
    }),
    backupSize: new Gauge({
      name: 'lifeline_backup_size_bytes',
      help: 'Size of the last backup Lifeline took of each env',
      labelNames: ['env'],
      registers: [registry],
    }),
    drillPassed: new Gauge({
      name: 'lifeline_drill_last_passed',
      help: "1 when each env's last restore drill passed every check, 0 when it failed or skipped a check",
      labelNames: ['env'],
      registers: [registry],
    }),
    drillSkippedChecks: new Gauge({
      name: 'lifeline_drill_last_skipped_checks',
      help: "Checks each env's last restore drill could not make (a backup Lifeline did not take has none recorded)",
      labelNames: ['env'],
      registers: [registry],
    }),
    drillRestore: new Gauge({
      name: 'lifeline_drill_restore_seconds',
      help: "Restore time (RTO achieved) of each env's last drill",
      labelNames: ['env'],
      registers: [registry],
    }),
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
    timeToAcknowledge: new Histogram({
      name: 'lifeline_incident_time_to_acknowledge_seconds',
      help: 'Seconds from declaration to acknowledgement, by severity and source (slash_command, alert, health_check)',
      labelNames: ['severity', 'source'],
      buckets: INCIDENT_DURATION_BUCKETS,
      registers: [registry],
    }),
    timeToResolve: new Histogram({
      name: 'lifeline_incident_time_to_resolve_seconds',
      help: 'Seconds from declaration to resolve, by severity and source (slash_command, alert, health_check)',
      labelNames: ['severity', 'source'],
      buckets: INCIDENT_DURATION_BUCKETS,
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
    healthProbe: new Histogram({
      name: 'lifeline_health_probe_seconds',
      help: "How long each probe of an env's health_url took, by env and outcome (success, failure)",
      labelNames: ['env', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    alertsReceived: new Counter({
      name: 'lifeline_alerts_received_total',
      help: 'Alerts received, by source (alertmanager, cloudwatch, health) and outcome (declared, repeat, resolved, cleared, ignored, refused, error)',
      labelNames: ['source', 'outcome'],
      registers: [registry],
    }),
  };
}

/**
 * A drill's result: lifeline_drill_last_passed is 1 for a full pass only; a pass that skipped a check (a backup not
 * taken by Lifeline has no checksum or row counts to compare) is 0 there and counted in
 * lifeline_drill_last_skipped_checks, so an alert on the first never mistakes it for a proven backup.
 */
export function observeDrill(
  metrics: Metrics,
  env: string,
  passed: boolean,
  restoreMs: number | undefined,
  skippedChecks: number,
): void {
  metrics.drillPassed.set({ env }, passed && skippedChecks === 0 ? 1 : 0);
  metrics.drillSkippedChecks.set({ env }, skippedChecks);
  if (restoreMs !== undefined) metrics.drillRestore.set({ env }, restoreMs / 1000);
}
