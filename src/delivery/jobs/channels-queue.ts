// Incident channel jobs on BullMQ. PostgreSQL holds what is owed (incident_channels); a job asks a worker to create and
// set up an incident's channel, set its topic, or archive it (delayed `archive_after_hours` after resolve). Its id
// names the incident and the kind (`channel-7-create`, `channel-7-topic-resolved`), so a repeated add, a second replica
// or the reconciler never makes a second job; failures are retried with backoff like the status page's.
import type { ConnectionOptions, Queue, Worker } from 'bullmq';
import type { ChannelJobKind, ChannelService, ChannelTriggers } from '../../domain/incidents/channels.js';
import type { Logger } from '../../shared/log.js';
import { createRetriedQueue, startRetriedWorker, type RetryPolicy } from './retried-queue.js';

export const CHANNELS_QUEUE = 'incident-channels';

export interface ChannelJob {
  readonly incident: number;
  readonly kind: ChannelJobKind;
}

/** 10 tries over about an hour and a half: 5 s, 10 s, 20 s... */
export const CHANNELS_RETRY: RetryPolicy = { attempts: 10, delayMs: 5_000 };

export function createChannelsQueue(
  connection: ConnectionOptions,
  prefix: string,
  retry: RetryPolicy = CHANNELS_RETRY,
): Queue<ChannelJob> {
  return createRetriedQueue<ChannelJob>(CHANNELS_QUEUE, connection, prefix, retry);
}

export function channelJobId(incident: number, key: string): string {
  return `channel-${incident}-${key}`;
}

export function createChannelTriggers(queue: Queue<ChannelJob>): ChannelTriggers {
  return {
    async trigger(incident, kind, { delayMs = 0, key = kind } = {}) {
      const delay = Math.max(0, Math.round(delayMs));
      await queue.add('channel', { incident, kind }, { jobId: channelJobId(incident, key), delay });
    },
  };
}

export function startChannelsWorker(
  connection: ConnectionOptions,
  prefix: string,
  channels: ChannelService,
  log: Logger,
): Worker<ChannelJob> {
  const work = (job: ChannelJob, finalAttempt: boolean) => channels.run(job.incident, job.kind, { finalAttempt });
  return startRetriedWorker(CHANNELS_QUEUE, connection, prefix, work, 'incident channel', log);
}
