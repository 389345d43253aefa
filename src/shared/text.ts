// Lifeline's texts (plans, step details, results, refusals) are plain text in which backticks mark code, as in
// Markdown: the terminal prints them as they are, and Slack shows the marked parts as inline code, where nothing is
// formatted (a verify query's `COUNT(*)` must not turn bold). Escaping for Slack happens in
// src/delivery/slack/blocks.ts.

/**
 * What may go between two backticks: a backtick inside would end the span early, so it becomes ˋ (U+02CB, which
 * looks the same; mrkdwn has no escape for it), and a line break would end it too, so whitespace runs become one space.
 */
export function codeSafe(text: string): string {
  return text.replace(/`/g, '\u02CB').replace(/\s*[\r\n]\s*/g, ' ');
}

/** A piece of code (a verify query, say) marked as such in a Lifeline text. */
export function codeSpan(text: string): string {
  return `\`${codeSafe(text)}\``;
}

/** A person in a Lifeline sentence, by their Slack user id (or the system actor `lifeline`). */
export interface PersonPart {
  readonly person: string;
}

/**
 * A sentence of Lifeline's own that names people (an outcome, a refusal, a step's detail): its text parts follow the
 * rules above, and each person is a part of their own, so that every renderer shows them its own way (a mention in
 * Slack, the id in the terminal and the API) and no markup reaches the domain or the database.
 */
export type Said = readonly (string | PersonPart)[];

export function person(id: string): PersonPart {
  return { person: id };
}

/**
 * `said\`cancelled by ${person(actor)} before it started\``: literal parts and strings stay text, people stay people.
 */
export function said(literals: TemplateStringsArray, ...values: readonly (string | number | PersonPart)[]): Said {
  const parts: (string | PersonPart)[] = [];
  const push = (part: string | PersonPart): void => {
    const last = parts.at(-1);
    if (typeof part === 'string' && typeof last === 'string') parts[parts.length - 1] = last + part;
    else if (part !== '') parts.push(part);
  };
  literals.forEach((literal, i) => {
    push(literal);
    const value = values[i];
    if (value !== undefined) push(typeof value === 'object' ? value : String(value));
  });
  return parts;
}

/** The sentence as plain text, people by their id: for logs, and for places that show no mentions. */
export function plainSaid(sentence: Said): string {
  return sentence.map((part) => (typeof part === 'string' ? part : part.person)).join('');
}
