// Stakeholder summaries as Slack messages: short, for people who are not responding (no mentions, no buttons).
import type { ChatMessage, ChatPort } from '../../adapters/slack/port.js';
import { incidentId } from '../../domain/incidents/model.js';
import type { StakeholderNotifier, StakeholderSummary } from '../../domain/incidents/stakeholders.js';
import { formatDuration } from '../../shared/format.js';
import { bold, joinMd, md, message, webLink, type Mrkdwn } from './blocks.js';

const HEADLINE = { declared: 'declared', updated: 'update', resolved: 'resolved' } as const;
const EMOJI = { declared: ':rotating_light:', updated: ':memo:', resolved: ':white_check_mark:' } as const;
const UPDATE_MAX = 500;

export function stakeholderSummaryMessage(summary: StakeholderSummary): ChatMessage {
  const { incident, event } = summary;
  const head = `${incidentId(incident.number)} ${incident.severity.toUpperCase()} ${HEADLINE[event]}`;
  const age = event === 'resolved' ? 'after' : 'declared';
  const lines: Mrkdwn[] = [
    md`${EMOJI[event]} ${bold(head)}: ${incident.title}`,
    md`Status: ${bold(summary.status)} · ${age} ${formatDuration(summary.sinceDeclaredMs)}${event === 'resolved' ? '' : ' ago'}`,
  ];
  if (summary.latestUpdate) lines.push(md`Latest update: ${shorten(summary.latestUpdate)}`);
  if (summary.statusPageLink) lines.push(md`Status page: ${webLink(summary.statusPageLink, summary.statusPageLink)}`);
  return message(joinMd(lines, '\n'));
}

function shorten(text: string): string {
  const chars = [...text];
  return chars.length > UPDATE_MAX ? `${chars.slice(0, UPDATE_MAX - 1).join('')}…` : text;
}

export function createSlackStakeholderNotifier(chat: ChatPort): StakeholderNotifier {
  return {
    async summary(channel, summary) {
      await chat.post(channel, stakeholderSummaryMessage(summary));
    },
  };
}
