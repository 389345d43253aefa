import { formatUtcSeconds } from '../../shared/format.js';
import type { ChatMessage, ChatPort } from '../../adapters/slack/port.js';
import { TransientError } from '../../shared/errors.js';
import type { RecoveryNotifier } from '../../domain/recovery/notifier.js';
import { isScheduled, type RecoveryJob } from '../../domain/recovery/model.js';
import { line, md, saidText, sectionText, type MrkdwnText } from './blocks.js';
import { planMessage, progressMessage, resultMessage, scheduledResultMessage } from './recovery-replies.js';

/** Where messages Slack did not take wait until it answers again (src/delivery/slack/outbox.ts). */
export interface RecoveryOutbox {
  /** A job's result, as text: it is the one message nobody may miss. */
  keepText(text: MrkdwnText, channel: string): Promise<void>;
  /** A job's plan, posted as the real plan message (buttons and all) when Slack is back. */
  keepPlan(job: RecoveryJob): Promise<void>;
}

export function createSlackRecoveryNotifier(chat: ChatPort, outbox: RecoveryOutbox): RecoveryNotifier {
  const postOrKeep = async (channel: string, message: ChatMessage, threadTs?: string): Promise<void> => {
    try {
      await chat.post(channel, message, threadTs);
    } catch (err) {
      const late = md`_(posted late: Slack was unreachable at ${formatUtcSeconds(new Date())})_\n${sectionText(message)}`;
      await outbox.keepText(late.text, channel);
      throw err;
    }
  };
  return {
    async postPlan(job, approvers) {
      try {
        return await chat.post(job.requestedIn, planMessage(job, approvers));
      } catch (err) {
        // Only an unreachable Slack is waited out: a refusal (channel_not_found, say) would block the outbox for good.
        if (!(err instanceof TransientError)) throw err;
        await outbox.keepPlan(job);
        return undefined;
      }
    },
    async updatePlan(job, approvers) {
      if (job.approval) await chat.update(job.approval, planMessage(job, approvers));
    },
    async progress(job, steps, running) {
      const message = progressMessage(job, steps, running);
      if (job.progress) {
        await chat.update(job.progress, message);
        return job.progress;
      }
      // Under the plan, so a channel with several jobs keeps each one's story together.
      return chat.post(job.approval?.channel ?? job.requestedIn, message, job.approval?.ts);
    },
    async result(job, steps, summary) {
      if (isScheduled(job)) {
        await postOrKeep(job.requestedIn, scheduledResultMessage(job, steps, summary));
        return;
      }
      // The progress message is itself a reply under the plan; a thread is addressed by its parent's ts.
      const where = job.approval ?? job.progress;
      await postOrKeep(where?.channel ?? job.requestedIn, resultMessage(job, steps, summary), where?.ts);
    },
    async tellRequester(job, sentence) {
      const text = line(saidText(sentence));
      // A schedule has nobody to reply to: what it was told goes to the channel it reports in.
      if (isScheduled(job)) {
        await chat.post(job.requestedIn, text);
        return;
      }
      if (job.responseUrl && Date.now() - job.createdAt.getTime() < 29 * 60_000) {
        await chat.respond(job.responseUrl, text);
        return;
      }
      await chat.postEphemeral(job.requestedIn, job.requestedBy, text);
    },
  };
}
