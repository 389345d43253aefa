// The roles a process runs (LIFELINE_ROLE): the workers with their reconcile loop, and the Slack bot with the API,
// or a worker's own small HTTP server. Each records what it started, with its stop, in the process's list.
import { messageOf } from '../shared/errors.js';
import type { Server } from 'node:http';
import { alertRoutes } from '../delivery/alerts/routes.js';
import { createBotApi } from '../delivery/api/bot.js';
import { workerApiRoutes } from '../delivery/api/routes.js';
import { drCommand, queryOnWorker } from '../delivery/commands/dr.js';
import { incidentCommand } from '../delivery/commands/incident.js';
import { createHealthCheck, operationalRoutes, serveRoutes } from '../delivery/http/health.js';
import { startEscalationWorker } from '../delivery/jobs/escalation-queue.js';
import { startLookupsWorker, startRecoveryWorker } from '../delivery/jobs/recovery-queue.js';
import { startRunbookWorker } from '../delivery/jobs/runbook-queue.js';
import { startSchedulesWorker, syncSchedulers, type ScheduleHandlers } from '../delivery/jobs/schedules.js';
import { startStatusPageWorker } from '../delivery/jobs/statuspage-queue.js';
import { startChannelsWorker } from '../delivery/jobs/channels-queue.js';
import { startRemindersWorker } from '../delivery/jobs/reminders-queue.js';
import { forgetOldRequests } from '../delivery/requests.js';
import { createSlackApp } from '../delivery/bot/app.js';
import { deliverOutbox } from '../delivery/slack/outbox.js';
import { createQueryAnswerer } from '../delivery/slack/recovery-answers.js';
import type { JobParams, RecoveryJob } from '../domain/recovery/model.js';
import { type Runtime } from './runtime.js';
import type { Services } from './services.js';
import type { StartedList } from './started.js';

/**
 * The workers, after one reconcile pass (what Redis lost is back before they take work), then the reconcile loop.
 * Stopped in reverse: the loop first, so no pass runs while the workers let their running steps end.
 */
export async function startWorkers(runtime: Runtime, services: Services, started: StartedList): Promise<void> {
  const { config, redis, log } = runtime;
  const { queuePrefix } = config;
  const reconcile = reconciler(runtime, services);
  await reconcile();

  // Started in the reverse of the order they stop in: the escalation worker stops taking work first.
  const emergency = config.file.slack.emergency_channel;
  const handlers: ScheduleHandlers = {
    start: async (kind, env) => {
      const params = { kind, trigger: 'schedule' } satisfies JobParams;
      await services.recovery.request({ env, params, actor: 'lifeline', channel: emergency });
    },
    watchRpo: async () => {
      await services.rpo.checkAll();
    },
    checkHealth: async (env, slot) => {
      await services.health.check(env, slot);
    },
    dryRun: async (runbook) => {
      await services.runbooks.request({ runbook, dryRun: true, actor: 'lifeline', channel: emergency });
    },
  };
  const schedules = startSchedulesWorker(redis.workers, queuePrefix, handlers, log);
  started.add('schedules worker', () => schedules.close());

  const answer = createQueryAnswerer(services.lookups, services.adapters.chat);
  const lookups = startLookupsWorker(redis.workers, queuePrefix, answer, log);
  started.add('lookups worker', () => lookups.close());

  const { runner } = services;
  const recovery = startRecoveryWorker(redis.workers, queuePrefix, { runner, service: services.recovery }, log);
  runner.start();
  started.add('recovery worker', async () => {
    // Long steps (a pg_restore) must not hold the shutdown past its 10 s: interrupt them and hand the jobs back.
    runner.stop();
    await recovery.close();
  });

  const engine = services.runbookEngine;
  const runbooks = startRunbookWorker(redis.workers, queuePrefix, { engine, service: services.runbooks }, log);
  started.add('runbook worker', async () => {
    // A step waiting on an outside change must not hold the shutdown: it is handed back and runs again elsewhere.
    engine.stop();
    await runbooks.close();
  });

  // Status page calls are bounded too (timeouts, a few retries): close() lets the running one end.
  const statusPage = startStatusPageWorker(redis.workers, queuePrefix, services.statusPage, log);
  started.add('status page worker', () => statusPage.close());
  const channels = startChannelsWorker(redis.workers, queuePrefix, services.channels, log);
  started.add('incident channels worker', () => channels.close());

  // A reminder is one Slack post: close() lets the running one end.
  const reminders = startRemindersWorker(redis.workers, queuePrefix, services.reminders, log);
  started.add('reminders worker', () => reminders.close());

  // close() lets the running step finish; steps are bounded (PagerDuty and Slack calls have timeouts).
  const escalation = startEscalationWorker(redis.workers, queuePrefix, services.escalation, log);
  started.add('escalation worker', () => escalation.close());

  const interval = setInterval(() => void reconcile(), config.reconcileSeconds * 1000);
  // A reconnect often follows a failover or a restart that emptied Redis: put everything back now, not at the
  // next tick.
  const reconcileOnReconnect = () => void reconcile();
  redis.queues.on('ready', reconcileOnReconnect);
  started.add('reconcile loop', async () => {
    clearInterval(interval);
    redis.queues.off('ready', reconcileOnReconnect);
  });
}

/** One reconcile pass at a time; one asked for meanwhile (a reconnect during a failing pass) runs right after it. */
function reconciler(runtime: Runtime, services: Services): () => Promise<void> {
  const { config, db, log } = runtime;
  const approvers = (job: RecoveryJob) => services.recovery.approversFor(job);
  const reconcileTimers = async () => {
    try {
      const found = await services.escalation.reconcile();
      await services.runner.reconcile();
      await services.runbookEngine.reconcile();
      await services.statusPage.reconcile();
      await services.channels.reconcile();
      await services.reminders.reconcile();
      // Slack answers again after an outage: what waited (late cards, the CLI's notes, job results) goes out.
      const { chat } = services.adapters;
      await deliverOutbox({ db, chat, notifier: services.notifier, log, cardGraceMs: 30_000, approvers });
      if (found.steps + found.followUps > 0) log.debug(found, 'reconciled timers');
      await forgetOldRequests(db);
    } catch (err) {
      log.warn({ err: messageOf(err) }, 'reconcile failed; will try again');
    }
  };
  const reconcileSchedulers = async () => {
    // Apart from the timers: it needs Redis only, so a PostgreSQL outage never keeps lost schedules away.
    try {
      const { rpoWatchSeconds } = config.recovery;
      const recreated = await syncSchedulers(services.queues.schedules, config.file, rpoWatchSeconds);
      if (recreated.length > 0) log.info({ schedulers: recreated }, 'job schedulers created or re-created');
    } catch (err) {
      log.warn({ err: messageOf(err) }, 'job schedulers not checked; will try again');
    }
  };
  let reconciling = false;
  let askedAgain = false;
  return async () => {
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
}

/** The Bolt app (HTTP or Socket Mode) with the health routes and the API beside it. */
export async function startBot(runtime: Runtime, services: Services, started: StartedList): Promise<void> {
  const { config, db, log, metrics, redact } = runtime;
  const { file } = config;
  const { incidents, statusPage, recovery, runbooks, notifier, tokens, lookups } = services;
  const { chat } = services.adapters;
  const dispatch = { db, allowedChannels: file.slack.allowed_channels, log, metrics, redact };
  const api = createBotApi({
    db,
    file,
    chat,
    notifier,
    incidents,
    statusPage,
    recovery,
    runbooks,
    tokens,
    dispatch,
    lookups,
    log,
  });
  const app = createSlackApp({
    ...dispatch,
    config,
    commands: [
      incidentCommand({ incidents, statusPage, file }),
      drCommand({ db, file, recovery, tokens, query: queryOnWorker(services.lookup), runbooks }),
    ],
    incidents,
    recovery,
    runbooks,
    chat,
    routes: [...operationalRoutesOf(runtime), ...alertRoutesOf(runtime, services), ...api.routes],
  });
  await app.start(config.port);
  started.add('Slack app', () => app.stop());
  // Stopped before the server closes: requests waiting for a job to change are answered at once.
  started.add('API long polls', async () => api.close());
}

/** A worker-only process still answers health checks, metrics and alerts, and refuses the API. */
export async function startWorkerHttp(runtime: Runtime, services: Services, started: StartedList): Promise<void> {
  const routes = [...operationalRoutesOf(runtime), ...alertRoutesOf(runtime, services), ...workerApiRoutes()];
  const server: Server = await serveRoutes(runtime.config.port, routes);
  started.add('HTTP server', () => new Promise((resolve) => server.close(resolve)));
}

function alertRoutesOf(runtime: Runtime, services: Services) {
  return alertRoutes({ alerts: services.alerts, metrics: runtime.metrics, log: runtime.log });
}

function operationalRoutesOf(runtime: Runtime) {
  const { config, db, redis, metrics } = runtime;
  return operationalRoutes(createHealthCheck(db, redis.queues), metrics, config.metricsToken);
}
