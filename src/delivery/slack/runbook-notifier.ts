// The runbook domain's messages in Slack: one live message per run in the channel the command came from, replies in
// its thread, and a dry run's gaps loudly in the emergency channel.
import type { ChatPort } from '../../adapters/slack/port.js';
import type { RunbookNotifier } from '../../domain/runbooks/notifier.js';
import type { RunStep } from '../../domain/runbooks/model.js';
import { line, saidText } from './blocks.js';
import { dryRunAlarm, runProgressMessage } from './runbook-replies.js';

export function createSlackRunbookNotifier(
  chat: ChatPort,
  emergencyChannel: string,
  describe: (step: RunStep) => string,
): RunbookNotifier {
  return {
    async progress(run, steps, approvers, live) {
      const message = runProgressMessage(run, steps, describe, approvers, live);
      if (run.progress) {
        await chat.update(run.progress, message);
        return run.progress;
      }
      return chat.post(run.requestedIn, message);
    },
    async tell(run, sentence) {
      await chat.post(run.progress?.channel ?? run.requestedIn, line(saidText(sentence)), run.progress?.ts);
    },
    async alarm(run, steps) {
      await chat.post(emergencyChannel, dryRunAlarm(run, steps));
    },
  };
}
