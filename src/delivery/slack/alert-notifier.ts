// The alert desk's notices as Slack posts in emergency_channel.
import type { ChatMessage, ChatPort } from '../../adapters/slack/port.js';
import { rpoBreachSummary, type AlertNotice, type AlertNotifier } from '../../domain/backups/alert-notifier.js';
import type { FileConfig } from '../../shared/config.js';
import { formatDuration } from '../../shared/format.js';
import { code, line, md } from './blocks.js';

export function alertMessage(notice: AlertNotice): ChatMessage {
  switch (notice.kind) {
    case 'rpo_breach': {
      const takeOne = md`${code(`/dr backup ${notice.env}`)} takes one now.`;
      return line(md`:rotating_light: ${rpoBreachSummary(notice)}. On-call has been paged (warning). ${takeOne}`);
    }
    case 'rpo_met': {
      const { env, newest } = notice;
      const [age, rpo] = [formatDuration(newest.ageMs), formatDuration(notice.rpoMs)];
      const met = md`:white_check_mark: RPO of ${env} met again: ${newest.name} is ${age} old (RPO ${rpo}).`;
      return line(md`${met} The page was resolved.`);
    }
  }
}

export function createSlackAlertNotifier(chat: ChatPort, file: FileConfig): AlertNotifier {
  return {
    async tell(notice) {
      await chat.post(file.slack.emergency_channel, alertMessage(notice));
    },
  };
}
