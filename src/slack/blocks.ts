import type { Block, ChatMessage } from '../adapters/chat.js';

/** Slack mrkdwn treats only &, < and > as control characters; escaping them shows any text verbatim. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Slack sends command text with &, < and > as entities; this gives back what the user typed. */
export function unescapeSlackText(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export function mention(userId: string): string {
  return /^[UW][A-Z0-9]+$/.test(userId) ? `<@${userId}>` : escapeMrkdwn(userId);
}

/** Section text is capped at 3000 characters by Slack; longer text is split at line ends, never mid-line. */
export function sections(text: string, limit = 3000): Block[] {
  const chunks: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    const candidate = current === '' ? line : `${current}\n${line}`;
    if (candidate.length <= limit) {
      current = candidate;
      continue;
    }
    if (current !== '') chunks.push(current);
    // A single line longer than the limit has to be cut; everything else breaks on a newline.
    let rest = line;
    while (rest.length > limit) {
      chunks.push(rest.slice(0, limit));
      rest = rest.slice(limit);
    }
    current = rest;
  }
  if (current !== '') chunks.push(current);
  return chunks.slice(0, 50).map((chunk) => ({ type: 'section', text: { type: 'mrkdwn', text: chunk } }));
}

/** The mrkdwn of a message's sections (where its detail is), or its fallback text: for places without Block Kit. */
export function sectionText(message: ChatMessage): string {
  const texts = (message.blocks ?? []).flatMap((b) => (b.type === 'section' && b.text ? [b.text.text] : []));
  return texts.length > 0 ? texts.join('\n') : message.text;
}
