// Which backups retention deletes: those older than retention_days, but never the newest backup and never the
// newest one that passed a drill (the last copy known to restore).
import { latestBackup, sortNewestFirst, type BackupName } from './names.js';

export interface RetentionDecision<T extends BackupName> {
  readonly remove: readonly T[];
  /** Old enough to go, kept anyway, and why. */
  readonly kept: readonly { readonly backup: T; readonly why: string }[];
}

export function decideRetention<T extends BackupName>(
  backups: readonly T[],
  now: Date,
  retentionDays: number,
  passedDrill: (name: string) => boolean,
): RetentionDecision<T> {
  const cutoff = now.getTime() - retentionDays * 86_400_000;
  const newest = latestBackup(backups, now);
  const newestDrilled = sortNewestFirst(backups.filter((b) => !b.safetyCopy && passedDrill(b.name)))[0];
  const remove: T[] = [];
  const kept: { backup: T; why: string }[] = [];
  for (const backup of sortNewestFirst(backups)) {
    if (backup.takenAt.getTime() >= cutoff) continue;
    if (backup === newest) kept.push({ backup, why: 'the newest backup' });
    else if (backup === newestDrilled) kept.push({ backup, why: 'the newest backup that passed a drill' });
    else remove.push(backup);
  }
  return { remove, kept };
}
