// Slack's mrkdwn, built so that nothing from a user, a log, a backup, the config, AWS or an error message can turn
// into markup: messages are composed with the `md` tag, whose literal parts are ours and whose interpolated values
// are escaped unless they are Mrkdwn already (a mention, a code span, a piece built with `md`). The only way to get
// the MrkdwnText that ChatMessage and Reply carry is through here.
import type { Block, ChatMessage, MrkdwnText } from '../../adapters/slack/port.js';
import { codeSafe, type Said } from '../../shared/text.js';

export type { MrkdwnText };

const BUILT_HERE = Symbol('built here');

/** A piece of mrkdwn; `md` inserts it as it is, where a string would be escaped. */
export class Mrkdwn {
  readonly text: MrkdwnText;

  constructor(token: typeof BUILT_HERE, text: string) {
    if (token !== BUILT_HERE)
      throw new Error('Mrkdwn is built with md and the helpers of src/delivery/slack/blocks.ts');
    this.text = text as MrkdwnText;
  }

  toString(): string {
    return this.text;
  }
}

export type MdValue = Mrkdwn | string | number;

function trusted(text: string): Mrkdwn {
  return new Mrkdwn(BUILT_HERE, text);
}

/**
 * Slack treats only &, < and > as control characters (its formatting reference); escaping them shows any text
 * verbatim and makes `<!channel>`, `<@U…>` or `<http://…|…>` inert. *, _, ~ and ` have no escape in mrkdwn. Lifeline's
 * own texts (plans, step details, results) go through here too: code spans stay code spans, and people reach Slack
 * only through `saidText`.
 */
export function escapeMrkdwn(text: string): Mrkdwn {
  return trusted(escapeText(text));
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function inserted(value: MdValue): string {
  return value instanceof Mrkdwn ? value.text : escapeText(String(value));
}

/** The template's literal parts are markup; every value is escaped unless it is Mrkdwn. */
export function md(literals: TemplateStringsArray, ...values: readonly MdValue[]): Mrkdwn {
  let out = literals[0] ?? '';
  values.forEach((value, i) => {
    out += inserted(value) + (literals[i + 1] ?? '');
  });
  return trusted(out);
}

export function joinMd(parts: readonly MdValue[], separator: MdValue): Mrkdwn {
  return trusted(parts.map(inserted).join(inserted(separator)));
}

export function bold(value: MdValue): Mrkdwn {
  return md`*${value}*`;
}

export function italic(value: MdValue): Mrkdwn {
  return md`_${value}_`;
}

/** Inline code: SQL, names, commands. Inside it Slack applies no formatting (`COUNT(*)` stays as typed). */
export function code(text: string): Mrkdwn {
  return trusted(`\`${escapeText(codeSafe(text))}\``);
}

/** A code block of whole lines; a ``` inside a line would end the block, so it is shown as '''. */
export function codeBlock(lines: readonly string[]): Mrkdwn {
  return trusted(`\`\`\`\n${lines.map((line) => escapeText(line.replace(/```/g, "'''"))).join('\n')}\n\`\`\``);
}

const USER_ID = /^[UW][A-Z0-9]+$/;
const CHANNEL_ID = /^[CG][A-Z0-9]+$/;

/** A Slack user id becomes a mention; anything else (the system actor `lifeline`, say) is shown as text. */
export function mention(userId: string): Mrkdwn {
  return USER_ID.test(userId) ? trusted(`<@${userId}>`) : escapeMrkdwn(userId);
}

export function channelLink(channelId: string): Mrkdwn {
  return CHANNEL_ID.test(channelId) ? trusted(`<#${channelId}>`) : escapeMrkdwn(channelId);
}

/**
 * A web link with a label: only http(s) URLs without spaces or Slack's link delimiters become links (& escaped, as
 * Slack asks); anything else is shown as escaped text.
 */
export function webLink(url: string, label: string): Mrkdwn {
  if (!/^https?:\/\/[^\s<>|]+$/i.test(url)) return escapeMrkdwn(url);
  return trusted(`<${url.replace(/&/g, '&amp;')}|${escapeText(label.replace(/\|/g, '/'))}>`);
}

/** The loud one, for a scheduled job that failed: only Lifeline decides when to use it. */
export const HERE = trusted('<!here>');

/**
 * A Lifeline sentence that names people (src/shared/text.ts): its text escaped whole (code spans stay code spans,
 * a typed `<@U…>` stays text), each person a mention.
 */
export function saidText(sentence: Said): Mrkdwn {
  return joinMd(
    sentence.map((part) => (typeof part === 'string' ? escapeMrkdwn(part) : mention(part.person))),
    '',
  );
}

/** MrkdwnText is made only here, so a finished message's text (a reply, say) can be composed into another. */
export function rebuilt(text: MrkdwnText): Mrkdwn {
  return trusted(text);
}

/** Slack sends command text with &, < and > as entities; this gives back what the user typed. */
export function unescapeSlackText(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export function section(text: Mrkdwn): Block {
  return { type: 'section', text: { type: 'mrkdwn', text: text.text } };
}

/** Section text is capped at 3000 characters by Slack; longer text is split at line ends, never mid-line. */
export function sections(text: Mrkdwn, limit = 3000): Block[] {
  const chunks: string[] = [];
  let current = '';
  for (const line of text.text.split('\n')) {
    const candidate = current === '' ? line : `${current}\n${line}`;
    if (candidate.length <= limit) {
      current = candidate;
      continue;
    }
    if (current !== '') chunks.push(current);
    // A single line longer than the limit has to be cut; everything else breaks on a newline.
    let rest = line;
    while (rest.length > limit) {
      const cut = cutPoint(rest, limit);
      chunks.push(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
    current = rest;
  }
  if (current !== '') chunks.push(current);
  return chunks.slice(0, 50).map((chunk) => section(trusted(chunk)));
}

/** Where to cut an over-long line: at the limit, but never inside an entity (`&lt;`) or a mention (`<@U…>`). */
function cutPoint(line: string, limit: number): number {
  for (const [open, close, reach] of [
    ['&', ';', 6],
    ['<', '>', 40],
  ] as const) {
    const at = line.lastIndexOf(open, limit - 1);
    if (at > 0 && limit - at < reach && line.indexOf(close, at) >= limit) return at;
  }
  return limit;
}

/** A message whose detail is in sections; `fallback` is what notifications show (the whole text by default). */
export function message(body: Mrkdwn, fallback: Mrkdwn = body): ChatMessage {
  return { text: fallback.text, blocks: sections(body) };
}

/** A one-line message without blocks. */
export function line(text: Mrkdwn): ChatMessage {
  return { text: text.text };
}

/**
 * The mrkdwn of a message's sections (where its detail is), or its fallback text: for places without Block Kit.
 * Its blocks were built by the renderers, as the message was.
 */
export function sectionText(message: ChatMessage): Mrkdwn {
  const texts = (message.blocks ?? []).flatMap((b) => (b.type === 'section' && b.text ? [b.text.text] : []));
  return trusted(texts.length > 0 ? texts.join('\n') : message.text);
}
