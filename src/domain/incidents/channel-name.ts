// Incident channel names: `<prefix>-<n>-<slug>` within Slack's rules: lower case, only
// [a-z0-9-_], at most 80 characters. The slug is the title's letters and digits, lower-cased, with accents dropped
// (`Café` → `cafe`), every other run of characters replaced by one `-`, and trimmed. A clash gets `-2`, `-3`...,
// still within 80 characters, and a name never ends in `-`.

/** Slack's limit on a channel name. */
export const CHANNEL_NAME_MAX = 80;

/** The title's letters and digits, lower-cased, other runs as `-`, trimmed: '' when nothing is left (emoji only). */
export function titleSlug(title: string): string {
  return title
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** The channel name for incident `n`; `attempt` 2, 3... for the names tried after `name_taken`. */
export function channelName(prefix: string, n: number, title: string, attempt = 1): string {
  const slug = titleSlug(title);
  const base = slug === '' ? `${prefix}-${n}` : `${prefix}-${n}-${slug}`;
  const suffix = attempt > 1 ? `-${attempt}` : '';
  const cut = base.slice(0, CHANNEL_NAME_MAX - suffix.length).replace(/[-_]+$/, '');
  return `${cut}${suffix}`;
}
