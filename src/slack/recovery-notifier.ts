import type { ChatMessage, ChatPort } from '../adapters/chat.js';
import type { RecoveryNotifier } from '../recovery/ports.js';
import { isScheduled } from '../recovery/model.js';
import { lifelineText, line, md, sectionText, type MrkdwnText } from './blocks.js';
import { planMessage, progressMessage, resultMessage, scheduledResultMessage } from './recovery-replies.js';

/**
 * `later` keeps a result Slack did not take (it is down) for the outbox, which posts it when Slack answers again:
 * a job's result is the one message nobody may miss.
 */
export function createSlackRecoveryNotifier(
  chat: ChatPort,
  later: (text: MrkdwnText, channel: string) => Promise<void>,
): RecoveryNotifier {
  const postOrKeep = async (channel: string, message: ChatMessage, threadTs?: string): Promise<void> => {
    try {
      await chat.post(channel, message, threadTs);
    } catch (err) {
      const at = new Date().toISOString().slice(0, 19).replace('T', ' ');
      await later(md`_(posted late: Slack was unreachable at ${at} UTC)_\n${sectionText(message)}`.text, channel);
      throw err;
    }
  };
  return {
    postPlan: (job, approvers) => chat.post(job.requestedIn, planMessage(job, approvers)),
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
    async tellRequester(job, said) {
      const text = line(lifelineText(said));
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
