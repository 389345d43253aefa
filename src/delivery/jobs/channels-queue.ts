// Incident channel jobs on BullMQ. PostgreSQL holds what is owed (incident_channels); a job asks a worker to create
// and set up an incident's channel, set its topic, or archive it (delayed `archive_after_hours` after resolve). Its id
// names the incident and the kind (`channel-7-create`), so a repeated add, a second replica or the reconciler never
// makes a second job; failures are retried with backoff like the status page's.
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { ChannelJobKind, ChannelService, ChannelTriggers } from '../../domain/incidents/channels.js';
import type { Logger } from '../../shared/log.js';
import type { StatusPageRetry } from './statuspage-queue.js';

export const CHANNELS_QUEUE = 'incident-channels';

export interface ChannelJob {
  readonly incident: number;
  readonly kind: ChannelJobKind;
}

/** 10 tries over about an hour and a half: 5 s, 10 s, 20 s... */
export const CHANNELS_RETRY: StatusPageRetry = { attempts: 10, delayMs: 5_000 };

export function createChannelsQueue(
  connection: ConnectionOptions,
  prefix: string,
  retry: StatusPageRetry = CHANNELS_RETRY,
): Queue<ChannelJob> {
  const defaultJobOptions = {
    attempts: retry.attempts,
    backoff: { type: 'exponential', delay: retry.delayMs },
    // Removed however it ends, so the reconciler may add the same id again while PostgreSQL says work is owed.
    removeOnComplete: true,
    removeOnFail: true,
  } as const;
  return new Queue<ChannelJob>(CHANNELS_QUEUE, { connection, prefix, defaultJobOptions });
}

export function channelJobId(incident: number, kind: ChannelJobKind): string {
  return `channel-${incident}-${kind}`;
}

export function createChannelTriggers(queue: Queue<ChannelJob>): ChannelTriggers {
  return {
    async trigger(incident, kind, delayMs = 0) {
      const delay = Math.max(0, Math.round(delayMs));
      await queue.add('channel', { incident, kind }, { jobId: channelJobId(incident, kind), delay });
    },
  };
}

export function startChannelsWorker(
  connection: ConnectionOptions,
  prefix: string,
  channels: ChannelService,
  log: Logger,
): Worker<ChannelJob> {
  const worker = new Worker<ChannelJob>(
    CHANNELS_QUEUE,
    async (job: Job<ChannelJob>) => {
      const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      try {
        await channels.run(job.data.incident, job.data.kind, { finalAttempt });
      } catch (err) {
        if (finalAttempt) throw new UnrecoverableError((err as Error).message);
        throw err;
      }
    },
    { connection, prefix, concurrency: 5 },
  );
  worker.on('failed', (job, err) => {
    log.warn({ job: job?.id, attempt: job?.attemptsMade, err: err.message }, 'incident channel job failed');
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'incident channel worker error'));
  return worker;
}
