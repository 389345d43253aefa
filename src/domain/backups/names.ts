// Backup file names, exactly as the README defines them. Anything else in a store is not a backup.

export type BackupFormat = 'custom' | 'sql.gz';

export interface BackupName {
  readonly name: string;
  readonly takenAt: Date;
  readonly format: BackupFormat;
  /** The copy taken just before a restore overwrote the database: restorable, never `latest`. */
  readonly safetyCopy: boolean;
}

const STAMP = '(\\d{4})(\\d{2})(\\d{2})_(\\d{2})(\\d{2})(\\d{2})';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Parses a file name for an env's prefix; undefined when it is not a backup of that env (or not a backup at all). */
export function parseBackupName(prefix: string, name: string): BackupName | undefined {
  const regular = new RegExp(`^${escapeRegExp(prefix)}_${STAMP}\\.(sql\\.gz|dump)$`).exec(name);
  const safety = regular ? null : new RegExp(`^${escapeRegExp(prefix)}_pre-restore_${STAMP}\\.dump$`).exec(name);
  const match = regular ?? safety;
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const takenAt = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Reject impossible dates (20240231_...) rather than let Date roll them over into March.
  if (
    takenAt.getUTCFullYear() !== year ||
    takenAt.getUTCMonth() !== month - 1 ||
    takenAt.getUTCDate() !== day ||
    takenAt.getUTCHours() !== hour ||
    takenAt.getUTCMinutes() !== minute ||
    takenAt.getUTCSeconds() !== second
  ) {
    return undefined;
  }
  const format: BackupFormat = regular && match[7] === 'sql.gz' ? 'sql.gz' : 'custom';
  return { name, takenAt, format, safetyCopy: safety !== null };
}

function stamp(at: Date): string {
  const iso = at.toISOString(); // 2026-11-25T21:29:27.123Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

export function backupFileName(prefix: string, at: Date): string {
  return `${prefix}_${stamp(at)}.dump`;
}

export function safetyCopyFileName(prefix: string, at: Date): string {
  return `${prefix}_pre-restore_${stamp(at)}.dump`;
}

/** Newest first; safety copies are listed but never chosen as `latest`. */
export function sortNewestFirst<T extends BackupName>(backups: readonly T[]): T[] {
  return [...backups].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || a.name.localeCompare(b.name));
}

/** How far ahead of this machine's clock a backup's time may be (the writer's clock may run a little fast). */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

/**
 * A name whose time is more than FUTURE_TOLERANCE_MS ahead of `now`: a clock gone wrong or a hand-made name. It would
 * stay `latest` (and keep the RPO watch quiet) until its time came, so it never is.
 */
export function isInFuture(backup: BackupName, now: Date = new Date()): boolean {
  return backup.takenAt.getTime() > now.getTime() + FUTURE_TOLERANCE_MS;
}

export function latestBackup<T extends BackupName>(backups: readonly T[], now: Date = new Date()): T | undefined {
  return sortNewestFirst(backups.filter((b) => !b.safetyCopy && !isInFuture(b, now)))[0];
}

const PENDING = /^(.+)\.pending-([0-9a-f]{8})$/;

/**
 * Where a backup is written until its check passes: `<name>.pending-<8 hex>`, which never parses as a backup name, so
 * listings, `latest` and retention never see it. The random part keeps two writers of one name apart.
 */
export function pendingName(finalName: string, random: string): string {
  if (!/^[0-9a-f]{8}$/.test(random)) throw new Error('the random part of a pending name is 8 lowercase hex digits');
  return `${finalName}.pending-${random}`;
}

/** The backup name a pending object is waiting to become; undefined for any other name. */
export function pendingFinalName(name: string): string | undefined {
  return PENDING.exec(name)?.[1];
}
