// One Lifeline process: the runtime, the services built on it, the roles LIFELINE_ROLE asks for, and an orderly stop
// in reverse order of start.
import { loadRunbooks, type Runbook } from '../domain/runbooks/definitions.js';
import type { Config } from '../shared/config.js';
import { startBot, startWorkerHttp, startWorkers } from './roles.js';
import { openRuntime } from './runtime.js';
import { buildServices, createAdapters } from './services.js';
import { StartedList } from './started.js';

export interface RunningLifeline {
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly startupWaitMs?: number;
  /** The config's runbooks as main.ts checked them; loaded here when a caller starts Lifeline without checking. */
  readonly runbooks?: ReadonlyMap<string, Runbook>;
}

export async function startLifeline(config: Config, options: StartOptions = {}): Promise<RunningLifeline> {
  const runtime = await openRuntime(config, options.startupWaitMs ?? 30_000);
  const { log } = runtime;
  const started = new StartedList();
  started.add('PostgreSQL and Redis', () => runtime.close());
  const runbooks = options.runbooks ?? loadRunbooks(config.file);
  const services = buildServices(runtime, createAdapters(config, log), runbooks);
  started.add('queues', () => services.closeQueues());
  // Stop taking work first, then let running steps reach their end, then close the queues and connections.
  const stop = () => started.stopAll((step, err) => log.warn({ step, err }, 'stop step failed'));
  try {
    if (config.processRole !== 'bot') await startWorkers(runtime, services, started);
    if (config.processRole !== 'worker') await startBot(runtime, services, started);
    else await startWorkerHttp(runtime, services, started);
  } catch (err) {
    await stop();
    throw err;
  }
  const mode = config.slack.appToken ? 'socket' : 'http';
  log.info({ role: config.processRole, port: config.port, mode }, 'Lifeline started');
  return {
    async stop() {
      await stop();
      log.info('Lifeline stopped');
    },
  };
}
