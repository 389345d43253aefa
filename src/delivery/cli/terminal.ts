// What the CLI prints: Slack's mrkdwn (the words the API answers with, the same as in Slack) made readable in a
// terminal.
import { unescapeSlackText } from '../slack/blocks.js';

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
