// The services both the Slack app and the `lifeline` CLI drive, built one way for both, so that a command run from
// a terminal obeys exactly the rules (and gives exactly the refusals) of the same command run in Slack.
import type { Redis } from 'ioredis';
import type { ChatPort } from '../adapters/slack/port.js';
import type { Config } from '../shared/config.js';
import type { Db } from '../shared/db/pool.js';
import { IncidentService } from '../domain/incidents/service.js';
import { soleOpenIncident } from '../domain/incidents/store.js';
import { createEscalationQueue, createEscalationTimers } from '../delivery/jobs/escalation-queue.js';
import { createLookupsQueue, createRecoveryQueue, lookupTrigger, recoveryTriggers } from '../delivery/jobs/recovery-queue.js';
import type { Logger } from '../shared/log.js';
import type { Metrics } from '../shared/metrics.js';
import { RecoveryService } from '../domain/recovery/service.js';
import { createSlackIncidentNotifier } from '../delivery/slack/incident-notifier.js';
import { queueForSlack, queuePlanForSlack } from '../delivery/slack/outbox.js';
import { createSlackRecoveryNotifier } from '../delivery/slack/recovery-notifier.js';

export function createCommandServices(config: Config, deps: { db: Db; redis: Redis; chat: ChatPort; metrics: Metrics; log: Logger }) {
  const { db, redis, chat, metrics, log } = deps;
  const notifier = createSlackIncidentNotifier(chat, config.file);
  const escalationQueue = createEscalationQueue(redis, config.queuePrefix);
  const timers = createEscalationTimers(escalationQueue);
  const incidents = new IncidentService({ db, file: config.file, notifier, timers, metrics, log });
  // A result Slack did not take waits in the outbox, in the thread of the incident if exactly one is open; a plan
  // waits as itself, to be posted with its buttons.
  const recoveryNotifier = createSlackRecoveryNotifier(chat, {
    keepText: async (text, channel) => queueForSlack(db, { incident: await soleOpenIncident(db), channel, text }),
    keepPlan: (job) => queuePlanForSlack(db, job),
  });
  const recoveryQueue = createRecoveryQueue(redis, config.queuePrefix);
  const triggers = recoveryTriggers(recoveryQueue);
  const recovery = new RecoveryService({ db, file: config.file, notifier: recoveryNotifier, queue: triggers, log });
  const lookupsQueue = createLookupsQueue(redis, config.queuePrefix);
  return {
    notifier,
    timers,
    incidents,
    recoveryNotifier,
    triggers,
    recovery,
    /** Files a read-only /dr lookup for the lookups worker. */
    lookup: lookupTrigger(lookupsQueue),
    async close(): Promise<void> {
      await Promise.allSettled([escalationQueue.close(), recoveryQueue.close(), lookupsQueue.close()]);
    },
  };
}
