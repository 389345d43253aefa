// Which psql may restore a plain-SQL backup: one whose restricted mode (\restrict) is there and cannot be left.
import { RestoreFailedError } from './errors.js';
import type { PlainSqlRefusal } from './plain-sql-guard.js';
import type { ToolVersion } from './process.js';

/**
 * The first minor release of each major whose psql has a restricted mode a backup cannot leave: \restrict came in the
 * August 2025 releases (CVE-2025-8714), but until the August 2026 ones psql still ran backquoted shell commands in
 * \unrestrict's argument while restricted (CVE-2026-18408, fixed in 15.19 per Debian's changelog; the other branches
 * were released with it on the same day, in step since 14.23/15.18/16.14/17.10/18.4 in May 2026). 13 reached its
 * end of life before the second fix; 19 and newer have both.
 */
const SOUND_RESTRICT_SINCE: Readonly<Record<number, number>> = { 14: 24, 15: 19, 16: 15, 17: 11, 18: 5 };
const FIRST_MAJOR_AFTER_THE_FIX = 19;

/** psql's restricted mode (\restrict) is there and holds: a plain-SQL backup can then never make psql run code. */
function psqlHasRestrict(version: ToolVersion): boolean {
  if (version.major >= FIRST_MAJOR_AFTER_THE_FIX) return true;
  const minor = SOUND_RESTRICT_SINCE[version.major];
  return minor !== undefined && version.minor >= minor;
}

/** The psql a plain-SQL restore needs, for a refusal's message: the fixed release of `major`, or the list of them. */
function psqlRestrictNeeded(major: number): string {
  const minor = SOUND_RESTRICT_SINCE[major];
  if (minor !== undefined) return `psql ${major}.${minor} or newer`;
  const all = Object.entries(SOUND_RESTRICT_SINCE).map(([m, n]) => `${m}.${n}`);
  return `psql ${all.join(', ')} (or newer in the same major) or ${FIRST_MAJOR_AFTER_THE_FIX}+`;
}

/** A plain-SQL restore needs a psql whose restricted mode holds; anything older is refused before anything is done. */
export function checkPsql(version: ToolVersion): void {
  if (psqlHasRestrict(version)) return;
  throw new RestoreFailedError(
    `psql ${version.major}.${version.minor} (${version.text}) cannot restore a plain-SQL backup safely: ` +
      'its restricted mode (\\restrict), which keeps a backup from running shell commands, is missing or can be ' +
      `escaped. Install ${psqlRestrictNeeded(version.major)}`,
  );
}

/** Why a plain-SQL backup is refused, in the words a restore or drill reports. */
export function refusedBackup(name: string, refusal: PlainSqlRefusal): RestoreFailedError {
  return new RestoreFailedError(
    `backup ${name} is refused: ${refusal.message}. A restore never runs a psql meta-command from a backup ` +
      `(only pg_dump's own leading \\restrict and trailing \\unrestrict lines are allowed, and replaced); ` +
      'nothing was restored',
  );
}
