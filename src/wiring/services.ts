// Every adapter and service, built once: the one place that picks the real clients, the backup store for a URL and
// the job kinds. Building starts nothing; roles.ts starts what runs.
import type { EcsPort, LogsPort, RdsPort } from '../adapters/aws/port.js';
import { createEcsPort } from '../adapters/aws/ecs.js';
import { createLogsPort } from '../adapters/aws/logs.js';
import { createRdsPort } from '../adapters/aws/rds.js';
import type { BackupStore } from '../adapters/backup-store/port.js';
import { createBackupStore } from '../adapters/backup-store/stores.js';
import { createEventsApiPager } from '../adapters/pagerduty/client.js';
import type { PagerPort } from '../adapters/pagerduty/port.js';
import { createSlackChat } from '../adapters/slack/client.js';
import { createStatuspageClient } from '../adapters/statuspage/client.js';
import type { StatuspagePort } from '../adapters/statuspage/port.js';
import type { ChatPort, SlackPort } from '../adapters/slack/port.js';
import { tokenIssuer } from '../delivery/api/bot.js';
import { createEscalationQueue, createEscalationTimers } from '../delivery/jobs/escalation-queue.js';
import {
  createLookupsQueue,
  createRecoveryQueue,
  lookupTrigger,
  recoveryTriggers,
} from '../delivery/jobs/recovery-queue.js';
import { createSchedulesQueue } from '../delivery/jobs/schedules.js';
import { createStatusPageQueue, createStatusPageTriggers } from '../delivery/jobs/statuspage-queue.js';
import { createChannelsQueue, createChannelTriggers } from '../delivery/jobs/channels-queue.js';
import { incidentCard } from '../delivery/slack/incident-card.js';
import { createReminderTimers, createRemindersQueue } from '../delivery/jobs/reminders-queue.js';
import { createSlackIncidentNotifier } from '../delivery/slack/incident-notifier.js';
import { createSlackStakeholderNotifier } from '../delivery/slack/stakeholder-notifier.js';
import { queueForSlack, queuePlanForSlack } from '../delivery/slack/outbox.js';
import { createSlackRecoveryNotifier } from '../delivery/slack/recovery-notifier.js';
import { AlertDesk } from '../domain/backups/alerts.js';
import { HealthChecks } from '../domain/alerts/health.js';
import { AlertService } from '../domain/alerts/service.js';
import { createSlackAlertNotifier } from '../delivery/slack/alert-notifier.js';
import { RpoWatch } from '../domain/backups/rpo-watch.js';
import { EscalationService } from '../domain/incidents/escalation.js';
import { ReminderService } from '../domain/incidents/reminders.js';
import { IncidentService } from '../domain/incidents/service.js';
import { StakeholderService } from '../domain/incidents/stakeholders.js';
import { StatusPageService } from '../domain/incidents/statuspage.js';
import { ChannelService } from '../domain/incidents/channels.js';
import { soleOpenIncident } from '../domain/incidents/store.js';
import type { BackupKindDeps } from '../domain/recovery/kinds/backup/index.js';
import { kindsTable, type KindsTable } from '../domain/recovery/kinds/index.js';
import type { RecoveryNotifier, RecoveryQueue } from '../domain/recovery/notifier.js';
import type { QueryDeps } from '../domain/recovery/queries.js';
import { RecoveryRunner } from '../domain/recovery/runner.js';
import { RecoveryService } from '../domain/recovery/service.js';
import type { Config, FileConfig } from '../shared/config.js';
import type { Db } from '../shared/db/pool.js';
import type { Logger } from '../shared/log.js';
import { observeDrill, type Metrics } from '../shared/metrics.js';
import type { Runtime } from './runtime.js';
import { createRunbookQueue, runbookTriggers } from '../delivery/jobs/runbook-queue.js';
import { line, md } from '../delivery/slack/blocks.js';
import { createSlackRunbookNotifier } from '../delivery/slack/runbook-notifier.js';
import { probeHealth } from '../domain/recovery/health-probe.js';
import type { Runbook } from '../domain/runbooks/definitions.js';
import { RunbookEngine } from '../domain/runbooks/engine.js';
import type { RunStep } from '../domain/runbooks/model.js';
import type { RunbookQueue } from '../domain/runbooks/notifier.js';
import { RunbookService } from '../domain/runbooks/service.js';
import type { StepKind } from '../domain/runbooks/step-kind.js';
import { STEP_KINDS, type StepDeps } from '../domain/runbooks/steps/index.js';
import type { RecoveryJobsPort } from '../domain/runbooks/steps/recovery-jobs.js';
import { createRecoveryJobs } from '../domain/runbooks/recovery-jobs.js';
import { createAwsRegions } from '../adapters/aws/regions.js';
import type { AwsRegions } from '../adapters/aws/port.js';
import { createVercelClient } from '../adapters/vercel/client.js';
import type { VercelPort } from '../adapters/vercel/port.js';

export interface AwsPorts {
  readonly rds: RdsPort;
  readonly ecs: EcsPort;
  readonly logs: LogsPort;
  /** Any region's RDS, ECS, Secrets Manager and Route 53, for the runbooks' AWS steps. */
  readonly regions: AwsRegions;
}

export interface Adapters extends AwsPorts {
  readonly chat: SlackPort;
  readonly pager: PagerPort;
  readonly storeFor: (url: string) => BackupStore;
  /** Undefined when the config has no `statuspage:`. */
  readonly statuspage: StatuspagePort | undefined;
  /** Undefined without VERCEL_TOKEN (startup then refuses a runbook with a Vercel step). */
  readonly vercel: VercelPort | undefined;
}

/**
 * The real clients. AWS goes through the SDK's own chain (AWS_REGION, credentials, AWS_ENDPOINT_URL_<SERVICE>)
 * unless a port is given: the sandbox points RDS at its simulated AWS without touching its own environment.
 */
export function createAdapters(config: Config, log: Logger, aws: Partial<AwsPorts> = {}): Adapters {
  return {
    chat: createSlackChat({ token: config.slack.botToken, apiUrl: config.slack.apiUrl, log }),
    pager: createEventsApiPager({ url: config.pagerdutyEventsUrl }),
    rds: aws.rds ?? createRdsPort(),
    ecs: aws.ecs ?? createEcsPort(),
    logs: aws.logs ?? createLogsPort(),
    regions: aws.regions ?? createAwsRegions(),
    storeFor: createBackupStore,
    statuspage: statuspageClient(config),
    vercel: config.vercel.token
      ? createVercelClient({ baseUrl: config.vercel.apiUrl, token: config.vercel.token, teamId: config.vercel.teamId })
      : undefined,
  };
}

function statuspageClient(config: Config): StatuspagePort | undefined {
  const page = config.file.statuspage;
  if (!page) return undefined;
  return createStatuspageClient({ baseUrl: config.statuspageApiUrl, pageId: page.page_id, apiKey: page.api_key });
}

export function createRecoveryNotifier(db: Db, chat: ChatPort): RecoveryNotifier {
  // A result Slack did not take waits in the outbox, in the thread of the incident if exactly one is open; a plan
  // waits as itself, to be posted with its buttons.
  return createSlackRecoveryNotifier(chat, {
    keepText: async (text, channel) => queueForSlack(db, { incident: await soleOpenIncident(db), channel, text }),
    keepPlan: (job) => queuePlanForSlack(db, job),
  });
}

export interface BackupJobsDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly adapters: Pick<Adapters, 'chat' | 'pager' | 'rds' | 'storeFor'>;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** What the backup kind needs: the alerts and the RPO watch it reports to (the schedules use the same watch). */
export function createBackupJobs(deps: BackupJobsDeps): { alerts: AlertDesk; rpo: RpoWatch; backup: BackupKindDeps } {
  const { db, file, adapters, metrics, log } = deps;
  const { storeFor } = adapters;
  const notifier = createSlackAlertNotifier(adapters.chat, file);
  const alerts = new AlertDesk({ db, pager: adapters.pager, notifier, file, log });
  const rpo = new RpoWatch({
    file,
    storeFor,
    alerts,
    observe: (reading) => metrics.newestBackupAt.set(reading.env, reading.newest?.takenAt),
    log,
  });
  const backup: BackupKindDeps = {
    db,
    storeFor,
    rds: adapters.rds,
    alerts,
    rpo,
    observe: (env, taken) => {
      metrics.backupDuration.set({ env }, taken.durationMs / 1000);
      metrics.backupSize.set({ env }, taken.size);
    },
    log,
  };
  return { alerts, rpo, backup };
}

export interface RecoveryDeps {
  readonly db: Db;
  readonly config: Pick<Config, 'file' | 'recovery'>;
  readonly notifier: RecoveryNotifier;
  readonly queue: RecoveryQueue;
  readonly kinds: KindsTable;
  readonly log: Logger;
}

/** The recovery service that files and decides jobs, and the runner that carries them out. */
export function createRecovery(deps: RecoveryDeps): { service: RecoveryService; runner: RecoveryRunner } {
  const { db, config, notifier, queue, kinds, log } = deps;
  const service = new RecoveryService({ db, file: config.file, notifier, queue, log });
  const runner = new RecoveryRunner({
    db,
    file: config.file,
    notifier,
    queue,
    kinds,
    approvers: (job) => service.approversFor(job),
    log,
    leaseMs: config.recovery.jobLeaseMs,
    stepDeadlineMs: config.recovery.stepDeadlineMs,
  });
  return { service, runner };
}

/**
 * What the runbook step kinds call (StepDeps in src/domain/runbooks/steps/index.ts): the one place their clients are
 * picked. A new kind's deps go in this object.
 */
export function createStepDeps(
  config: Pick<Config, 'file' | 'recovery'>,
  adapters: Pick<Adapters, 'chat' | 'regions' | 'vercel' | 'statuspage'>,
  recoveryJobs: RecoveryJobsPort,
): StepDeps {
  const { statuspage } = config.file;
  return {
    pollMs: config.recovery.pollSeconds * 1000,
    // A runbook's text (and the outputs filled into it) is shown as written, never as markup.
    postNotice: async (channel, text) => (await adapters.chat.post(channel, line(md`${text}`))).ts,
    probe: (url, timeoutMs) => probeHealth(url, timeoutMs),
    aws: adapters.regions,
    vercel: adapters.vercel,
    statuspage:
      adapters.statuspage && statuspage
        ? { port: adapters.statuspage, components: Object.values(statuspage.components) }
        : undefined,
    recoveryJobs,
  };
}

export interface RunbookDeps {
  readonly db: Db;
  readonly config: Pick<Config, 'file' | 'recovery'>;
  readonly runbooks: ReadonlyMap<string, Runbook>;
  readonly chat: ChatPort;
  readonly stepDeps: StepDeps;
  readonly queue: RunbookQueue;
  readonly kinds?: readonly StepKind<StepDeps>[];
  readonly log: Logger;
}

/** The runbook service that files and decides runs, and the engine that carries them out. */
export function createRunbooks(deps: RunbookDeps): { service: RunbookService; engine: RunbookEngine } {
  const { db, config, chat, queue, log } = deps;
  const kinds = deps.kinds ?? STEP_KINDS;
  const byId = new Map(kinds.map((kind) => [kind.id, kind]));
  const describe = (step: RunStep) => byId.get(step.kind)?.describe(step.params) ?? step.kind;
  const notifier = createSlackRunbookNotifier(chat, config.file.slack.emergency_channel, describe);
  const engine = new RunbookEngine({
    db,
    file: config.file,
    kinds,
    stepDeps: deps.stepDeps,
    notifier,
    queue,
    log,
    leaseMs: config.recovery.jobLeaseMs,
    stepDeadlineMs: config.recovery.stepDeadlineMs,
  });
  const service = new RunbookService({
    db,
    file: config.file,
    runbooks: deps.runbooks,
    queue,
    showProgress: (run) => engine.showProgress(run),
    log,
  });
  return { service, engine };
}

/** Everything both roles use, on the runtime's connections; the queues are the only things it opens. */
export function buildServices(runtime: Runtime, adapters: Adapters, runbookDefinitions: ReadonlyMap<string, Runbook>) {
  const { config, db, redis, metrics, log } = runtime;
  const { file, queuePrefix } = config;
  const queues = {
    escalation: createEscalationQueue(redis.queues, queuePrefix),
    recovery: createRecoveryQueue(redis.queues, queuePrefix),
    lookups: createLookupsQueue(redis.queues, queuePrefix),
    schedules: createSchedulesQueue(redis.queues, queuePrefix),
    statuspage: createStatusPageQueue(redis.queues, queuePrefix),
    channels: createChannelsQueue(redis.queues, queuePrefix),
    reminders: createRemindersQueue(redis.queues, queuePrefix),
    runbooks: createRunbookQueue(redis.queues, queuePrefix),
  };
  const notifier = createSlackIncidentNotifier(adapters.chat, file);
  const timers = createEscalationTimers(queues.escalation);
  const statusPage: StatusPageService = new StatusPageService({
    db,
    file,
    port: adapters.statuspage,
    triggers: createStatusPageTriggers(queues.statuspage),
    notifier,
    incidents: { find: (ref) => incidents.find(ref) },
    log,
  });
  const channels = new ChannelService({
    db,
    file,
    slack: adapters.chat,
    triggers: createChannelTriggers(queues.channels),
    notifier,
    postCard: (incident, channel) => adapters.chat.post(channel, incidentCard(incident, file)),
    refreshCard: (incident, card) => adapters.chat.update(card, incidentCard(incident, file)),
    log,
  });
  const reminders = new ReminderService({ db, file, notifier, timers: createReminderTimers(queues.reminders), log });
  const stakeholders = new StakeholderService({
    db,
    file,
    notifier: createSlackStakeholderNotifier(adapters.chat),
    metrics,
    log,
  });
  const followers = [statusPage, channels, reminders, stakeholders];
  const incidents: IncidentService = new IncidentService({ db, file, notifier, timers, metrics, log, followers });
  const paged = (incident: number, users: readonly string[]) => channels.paged(incident, users);
  const escalation = new EscalationService({ db, file, pager: adapters.pager, notifier, timers, metrics, log, paged });
  const alerts = file.alerts
    ? { config: file.alerts, service: new AlertService({ db, file, alerts: file.alerts, incidents, notifier, log }) }
    : undefined;
  const health = new HealthChecks({ db, file, incidents, metrics, log });

  const { rpo, backup } = createBackupJobs({ db, file, adapters, metrics, log });
  const { storeFor, rds, ecs, logs } = adapters;
  const { pollSeconds, maxWaitSeconds, restoreJobs } = config.recovery;
  const kinds = kindsTable({
    restore: { db, storeFor, rds, parallelJobs: restoreJobs, pollSeconds, maxWaitSeconds },
    ecs: { ecs, logs, pollSeconds, maxWaitSeconds },
    backup,
    drill: {
      db,
      storeFor,
      parallelJobs: restoreJobs,
      observe: (env, passed, restoreMs, skippedChecks) => observeDrill(metrics, env, passed, restoreMs, skippedChecks),
    },
  });
  const recoveryNotifier = createRecoveryNotifier(db, adapters.chat);
  const queue = recoveryTriggers(queues.recovery);
  const { service: recovery, runner } = createRecovery({ db, config, notifier: recoveryNotifier, queue, kinds, log });
  const lookups: QueryDeps = { db, file, storeFor, rds, ecs, logs };
  const runbooks = createRunbooks({
    db,
    config,
    runbooks: runbookDefinitions,
    chat: adapters.chat,
    stepDeps: createStepDeps(config, adapters, createRecoveryJobs({ db, file, storeFor, service: recovery })),
    queue: runbookTriggers(queues.runbooks),
    log,
  });
  return {
    adapters,
    queues,
    notifier,
    incidents,
    statusPage,
    channels,
    reminders,
    escalation,
    /** Alerts in: undefined without an `alerts:` section. */
    alerts,
    /** Health checks: every env with a health_url, with or without `alerts:`. */
    health,
    rpo,
    recovery,
    runner,
    /** Runbook runs: the service that files and decides them, the engine that carries them out. */
    runbooks: runbooks.service,
    runbookEngine: runbooks.engine,
    lookups,
    /** Files a read-only /dr lookup for the lookups worker. */
    lookup: lookupTrigger(queues.lookups),
    tokens: tokenIssuer(db),
    async closeQueues(): Promise<void> {
      await Promise.allSettled(Object.values(queues).map((queue) => queue.close()));
    },
  };
}

export type Services = ReturnType<typeof buildServices>;
