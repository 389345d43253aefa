// What the CLI prints: Slack's mrkdwn made readable in a terminal, and a ChatPort whose replies land there.
import type { ChatMessage, ChatPort } from '../adapters/chat.js';
import { sectionText, unescapeSlackText } from '../slack/blocks.js';

/** Mentions, channel links and links as plain text; Slack's HTML escapes undone. Bold and code marks stay. */
export function toTerminal(text: string): string {
  const plain = text
    .replace(/<@([UW][A-Z0-9]+)>/g, '@$1')
    .replace(/<#([A-Z0-9]+)(\|[^>]*)?>/g, '#$1')
    .replace(/<!(here|channel|everyone)>/g, '@$1')
    .replace(/<(https?:[^|>]+)\|([^>]+)>/g, '$2 ($1)')
    .replace(/<(https?:[^>]+)>/g, '$1');
  return unescapeSlackText(plain);
}

export function messageText(message: ChatMessage): string {
  return toTerminal(sectionText(message).text);
}

/** For read-only lookups answered in-process: what a worker would send to Slack is printed instead. */
export function terminalChat(print: (text: string) => void): ChatPort {
  let next = 0;
  return {
    async respond(_responseUrl, message) {
      print(messageText(message));
    },
    async post(channel, message) {
      print(messageText(message));
      next += 1;
      return { channel, ts: `terminal.${next}` };
    },
    async update(_at, message) {
      print(messageText(message));
    },
    async postEphemeral(_channel, _user, message) {
      print(messageText(message));
    },
  };
}
