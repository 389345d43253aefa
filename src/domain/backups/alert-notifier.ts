// What the alert desk needs from delivery to tell people about an alert. The desk hands over what happened (the
// env, its newest backup and that backup's age, the RPO); delivery decides how it looks
// (src/delivery/slack/alert-notifier.ts).
import { formatDuration, formatUtc } from '../../shared/format.js';

/** An env's newest backup is older than its RPO allows, or there is none: on-call has just been paged. */
export interface RpoBreach {
  readonly kind: 'rpo_breach';
  readonly env: string;
  /** Undefined when the store holds no backup of the env. */
  readonly newest: { readonly name: string; readonly takenAt: Date; readonly ageMs: number } | undefined;
  /** Where the backups were looked for. */
  readonly location: string;
  readonly rpoMs: number;
}

/** A fresh backup ended a breach: the page was resolved. */
export interface RpoMet {
  readonly kind: 'rpo_met';
  readonly env: string;
  readonly newest: { readonly name: string; readonly ageMs: number };
  readonly rpoMs: number;
}

export type AlertNotice = RpoBreach | RpoMet;

export interface AlertNotifier {
  /** Throws when people could not be told, so that the desk tries again on its next call. */
  tell(notice: AlertNotice): Promise<void>;
}

/** The breach in plain words: both the page's summary and the first sentence people read in Slack. */
export function rpoBreachSummary(breach: RpoBreach): string {
  const { env, newest } = breach;
  const what = newest
    ? `the newest backup of ${env} (${newest.name}, ${formatUtc(newest.takenAt)}) is ${formatDuration(newest.ageMs)}` +
      ' old'
    : `there is no backup of ${env} in ${breach.location}`;
  return `RPO breach: ${what}; the RPO is ${formatDuration(breach.rpoMs)}`;
}
