// Wiring only: config -> adapters -> services -> Bolt app and workers, and an orderly stop.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { createSlackChat } from '../adapters/slack/client.js';
import { createEventsApiPager } from '../adapters/pagerduty/client.js';
import { drCommand, queryOnWorker } from '../delivery/commands/dr.js';
import { incidentCommand } from '../delivery/commands/incident.js';
import type { Config } from '../shared/config.js';
import { migrate } from '../shared/db/migrate.js';
import { createPool, type Db } from '../shared/db/pool.js';
import { createHealthCheck, operationalRoutes, serveRoutes } from '../delivery/http/health.js';
import { EscalationService } from '../domain/incidents/escalation.js';
import { startEscalationWorker } from '../delivery/jobs/escalation-queue.js';
import { createLogger, createRedactor, type Logger } from '../shared/log.js';
import { createMetrics, observeDrill } from '../shared/metrics.js';
import { forgetOldRequests } from '../delivery/requests.js';
import { createSlackApp } from '../delivery/slack/app.js';
import { within } from '../shared/timeout.js';
import { createEcsPort } from '../adapters/aws/ecs.js';
import { createLogsPort } from '../adapters/aws/logs.js';
import { createRdsPort } from '../adapters/aws/rds.js';
import { createBackupStore } from '../adapters/backup-store/stores.js';
import { startLookupsWorker, startRecoveryWorker } from '../delivery/jobs/recovery-queue.js';
import { kindsTable } from '../domain/recovery/kinds/index.js';
import { AlertDesk } from '../domain/backups/alerts.js';
import { RpoWatch } from '../domain/backups/rpo-watch.js';
import { createSchedulesQueue, startSchedulesWorker, syncSchedulers } from '../delivery/jobs/schedules.js';
import type { RecoveryJob } from '../domain/recovery/model.js';
import { RecoveryRunner } from '../domain/recovery/runner.js';
import { createQueryAnswerer } from '../delivery/slack/recovery-answers.js';
import { deliverOutbox } from '../delivery/slack/outbox.js';
import { createCommandServices } from './core.js';
import { createBotApi, tokenIssuer } from '../delivery/api/bot.js';
import { workerApiRoutes } from '../delivery/api/routes.js';

export interface RunningLifeline {
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly startupWaitMs?: number;
}

export class StartupError extends Error {}

export async function startLifeline(config: Config, options: StartOptions = {}): Promise<RunningLifeline> {
  const log = createLogger(config.logLevel, config.secrets);
  const redact = createRedactor(config.secrets);
  const metrics = createMetrics();
  const waitMs = options.startupWaitMs ?? 30_000;

  const db = createPool(config.databaseUrl, log);
  // Two connections: workers block on theirs and may wait out an outage (maxRetriesPerRequest null, as BullMQ
  // requires); commands and health checks use one that fails fast, so a Slack handler never hangs on Redis.
  const workerRedis = new Redis(config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 3_000, lazyConnect: true });
  for (const connection of [workerRedis, redis]) {
    connection.on('error', (err: Error) => log.debug({ err: err.message }, 'Redis connection error'));
  }
  await Promise.all([
    waitFor('PostgreSQL', redact(config.databaseUrl), waitMs, () => db.query('SELECT 1')),
    waitFor('Redis', redact(config.redisUrl), waitMs, async () => {
      for (const connection of [workerRedis, redis]) {
        if (connection.status === 'wait' || connection.status === 'end') await connection.connect();
        await connection.ping();
      }
    }),
  ]).catch(async (err) => {
    await closeQuietly(db, [workerRedis, redis]);
    throw err;
  });
  const applied = await migrate(db);
  if (applied.length > 0) log.info({ applied }, 'database migrations applied');
  await warnUnlessNoEviction(redis, log);

  const chat = createSlackChat({ token: config.slack.botToken, apiUrl: config.slack.apiUrl, log });
  const pager = createEventsApiPager({ url: config.pagerdutyEventsUrl });
  const core = createCommandServices(config, { db, redis, chat, metrics, log });
  const { notifier, timers, incidents, recoveryNotifier, triggers, recovery } = core;
  const routes = operationalRoutes(createHealthCheck(db, redis), metrics, config.metricsToken);

  // Recovery (/dr): AWS through the SDK's own chain (AWS_REGION, credentials, AWS_ENDPOINT_URL_<SERVICE>).
  const aws = { rds: createRdsPort(), ecs: createEcsPort(), logs: createLogsPort() };
  const waits = { pollSeconds: config.recovery.pollSeconds, maxWaitSeconds: config.recovery.maxWaitSeconds };
  const alerts = new AlertDesk({ db, pager, chat, file: config.file, log });
  const rpo = new RpoWatch({
    file: config.file,
    storeFor: createBackupStore,
    alerts,
    observe: (reading) => metrics.newestBackupAt.set(reading.env, reading.newest?.takenAt),
    log,
  });
  const kinds = kindsTable({
    restore: {
      db,
      storeFor: createBackupStore,
      rds: aws.rds,
      parallelJobs: config.recovery.restoreJobs,
      ...waits,
    },
    ecs: { ecs: aws.ecs, logs: aws.logs, ...waits },
    backup: {
      db,
      storeFor: createBackupStore,
      rds: aws.rds,
      alerts,
      rpo,
      observe: (env, taken) => {
        metrics.backupDuration.set({ env }, taken.durationMs / 1000);
        metrics.backupSize.set({ env }, taken.size);
      },
      log,
    },
    drill: {
      db,
      storeFor: createBackupStore,
      parallelJobs: config.recovery.restoreJobs,
      observe: (env, passed, restoreMs, skippedChecks) => observeDrill(metrics, env, passed, restoreMs, skippedChecks),
    },
  });
  const schedulesQueue = createSchedulesQueue(redis, config.queuePrefix);

  const stops: (() => Promise<unknown>)[] = [];
  const runsBot = config.processRole !== 'worker';
  const runsWorker = config.processRole !== 'bot';

  if (runsWorker) {
    const escalation = new EscalationService({ db, file: config.file, pager, notifier, timers, metrics, log });
    const runner = new RecoveryRunner({
      db,
      file: config.file,
      notifier: recoveryNotifier,
      queue: triggers,
      kinds,
      approvers: (job) => recovery.approversFor(job),
      log,
      leaseMs: config.recovery.jobLeaseMs,
      stepDeadlineMs: config.recovery.stepDeadlineMs,
    });
    const worker = startEscalationWorker(workerRedis, config.queuePrefix, escalation, log);
    const reconcileTimers = async () => {
      try {
        const found = await escalation.reconcile();
        await runner.reconcile();
        // Slack answers again after an outage: what waited (late cards, the CLI's notes, job results) goes out.
        const approvers = (job: RecoveryJob) => recovery.approversFor(job);
        await deliverOutbox({ db, chat, notifier, log, cardGraceMs: 30_000, approvers });
        if (found.steps + found.followUps > 0) log.debug(found, 'reconciled timers');
        await forgetOldRequests(db);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'reconcile failed; will try again');
      }
    };
    const reconcileSchedulers = async () => {
      // Apart from the timers: it needs Redis only, so a PostgreSQL outage never keeps lost schedules away.
      try {
        const recreated = await syncSchedulers(schedulesQueue, config.file, config.recovery.rpoWatchSeconds);
        if (recreated.length > 0) log.info({ schedulers: recreated }, 'job schedulers created or re-created');
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'job schedulers not checked; will try again');
      }
    };
    // One pass at a time; one asked for meanwhile (a reconnect during a pass that failed on the dead connection)
    // runs right after it.
    let reconciling = false;
    let askedAgain = false;
    const reconcile = async () => {
      if (reconciling) {
        askedAgain = true;
        return;
      }
      reconciling = true;
      do {
        askedAgain = false;
        await reconcileTimers();
        await reconcileSchedulers();
      } while (askedAgain);
      reconciling = false;
    };
    await reconcile();
    const interval = setInterval(() => void reconcile(), config.reconcileSeconds * 1000);
    stops.push(async () => clearInterval(interval));
    // A reconnect often follows a failover or a restart that emptied Redis: put everything back now, not at the
    // next tick.
    const reconcileOnReconnect = () => void reconcile();
    redis.on('ready', reconcileOnReconnect);
    stops.push(async () => void redis.off('ready', reconcileOnReconnect));
    // worker.close() lets the running step finish; steps are bounded (PagerDuty and Slack calls have timeouts).
    stops.push(() => worker.close());


    const recoveryWorker = startRecoveryWorker(workerRedis, config.queuePrefix, { runner, service: recovery }, log);
    runner.start();
    stops.push(async () => {
      // Long steps (a pg_restore) must not hold the shutdown past its 10 s: interrupt them and hand the jobs back.
      runner.stop();
      await recoveryWorker.close();
    });

    const answer = createQueryAnswerer({ db, file: config.file, storeFor: createBackupStore, ...aws }, chat);
    const lookupsWorker = startLookupsWorker(workerRedis, config.queuePrefix, answer, log);
    stops.push(() => lookupsWorker.close());

    const emergency = config.file.slack.emergency_channel;
    const schedulesWorker = startSchedulesWorker(
      workerRedis,
      config.queuePrefix,
      {
        start: async (kind, env) => {
          await recovery.request({ env, params: { kind, trigger: 'schedule' }, actor: 'lifeline', channel: emergency });
        },
        watchRpo: async () => {
          await rpo.checkAll();
        },
      },
      log,
    );
    stops.push(() => schedulesWorker.close());
  }

  if (runsBot) {
    const dispatch = { db, allowedChannels: config.file.slack.allowed_channels, log, metrics, redact };
    const tokens = tokenIssuer(db);
    const lookups = { db, file: config.file, storeFor: createBackupStore, ...aws };
    const services = { db, file: config.file, chat, notifier, incidents, recovery };
    const api = createBotApi({ ...services, tokens, dispatch, lookups, log });
    const app = createSlackApp({
      ...dispatch,
      config,
      commands: [
        incidentCommand({ incidents, file: config.file }),
        drCommand({ db, file: config.file, recovery, tokens, query: queryOnWorker(core.lookup) }),
      ],
      incidents,
      recovery,
      chat,
      routes: [...routes, ...api.routes],
    });
    await app.start(config.port);
    stops.unshift(() => app.stop());
    // Before the server closes: requests waiting for a job to change are answered at once.
    stops.unshift(async () => api.close());
  } else {
    const server: Server = await serveRoutes(config.port, [...routes, ...workerApiRoutes()]);
    stops.unshift(() => new Promise((resolve) => server.close(resolve)));
  }
  log.info({ role: config.processRole, port: config.port, mode: config.slack.appToken ? 'socket' : 'http' }, 'Lifeline started');

  return {
    async stop() {
      // Stop taking work first, then let running steps reach their end, then close connections.
      for (const stop of stops) await stop().catch((err: Error) => log.warn({ err: err.message }, 'stop step failed'));
      await Promise.allSettled([core.close(), schedulesQueue.close()]);
      await closeQuietly(db, [workerRedis, redis]);
      log.info('Lifeline stopped');
    },
  };
}

async function waitFor(name: string, where: string, waitMs: number, probe: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      // A probe on a connection that queues commands while offline would wait forever; cap each attempt.
      await within(probe(), 2_000);
      return;
    } catch (err) {
      if (Date.now() >= deadline) {
        throw new StartupError(`${name} did not answer within ${Math.round(waitMs / 1000)} s at ${where}: ${(err as Error).message}`);
      }
      await sleep(500);
    }
  }
}


async function warnUnlessNoEviction(redis: Redis, log: Logger): Promise<void> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    if (policy !== 'noeviction') {
      log.warn({ policy }, 'Redis maxmemory-policy is not noeviction: under memory pressure Redis may drop queued timers');
    }
  } catch {
    // Managed Redis often forbids CONFIG; the reconciler still restores lost timers from PostgreSQL.
  }
}

async function closeQuietly(db: Db, connections: readonly Redis[]): Promise<void> {
  // quit() waits for Redis to answer, which a client that never connected queues forever: bound it.
  await Promise.allSettled([within(db.end(), 2_000), ...connections.map((c) => within(c.quit(), 1_000))]);
  for (const connection of connections) connection.disconnect();
}
