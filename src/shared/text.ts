// Lifeline's texts (plans, step details, results, refusals) are plain text in which backticks mark code, as in
// Markdown: the terminal prints them as they are, and Slack shows the marked parts as inline code, where nothing is
// formatted (a verify query's `COUNT(*)` must not turn bold). Escaping for Slack happens in src/delivery/slack/blocks.ts.

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
