// What the restore and drill kinds share: the backups of an env's store, the one a job is planned from (with the
// SHA-256 the catalogue holds for it), and the restore engine's state, as stored in the job's row.
import { z } from 'zod';
import type { BackupStore } from '../../../adapters/backup-store/port.js';
import type { EnvironmentConfig } from '../../../shared/config.js';
import type { Db } from '../../../shared/db/pool.js';
import { catalogueOf } from '../../backups/catalogue.js';
import { parseBackupName, type BackupName } from '../../backups/names.js';
import type * as engine from '../logical-restore/index.js';

export const plannedBackupSchema = z.object({
  name: z.string(),
  format: z.enum(['custom', 'sql.gz']),
  takenAt: z.string(),
  size: z.number(),
  /** The catalogue's SHA-256; absent for a backup made elsewhere. */
  sha256: z.string().optional(),
});
export type PlannedBackup = z.infer<typeof plannedBackupSchema>;

export const engineStateSchema: z.ZodType<engine.RestoreState> = z.object({
  version: z.literal(1).optional(),
  runId: z.string().optional(),
  targetDb: z.string().optional(),
  freshDb: z.string().optional(),
  oldDb: z.string().optional(),
  localDir: z.string().optional(),
  localFile: z.string().optional(),
  localSize: z.number().optional(),
  localSha256: z.string().optional(),
  localChecked: z.boolean().optional(),
  safetyCopy: z
    .object({
      name: z.string(),
      size: z.number(),
      sha256: z.string(),
      tableRows: z.record(z.string(), z.number()),
      durationMs: z.number(),
    })
    .optional(),
  restored: z.boolean().optional(),
  swapped: z.boolean().optional(),
  verified: z.boolean().optional(),
  putBack: z.boolean().optional(),
  cleanedUp: z.boolean().optional(),
});

export type ListedBackup = BackupName & { readonly size: number };

/** The env's backups in its store, by their names. */
export async function storedBackups(store: BackupStore, env: EnvironmentConfig): Promise<ListedBackup[]> {
  const listed = await store.list();
  return listed.flatMap((o) => {
    const parsed = parseBackupName(env.backups.prefix, o.name);
    return parsed ? [{ ...parsed, size: o.size }] : [];
  });
}

/** The backup a job restores, as its plan fixed it: a backup Lifeline made carries its catalogued SHA-256. */
export async function plannedBackup(db: Db, env: EnvironmentConfig, chosen: ListedBackup): Promise<PlannedBackup> {
  const sha256 = (await catalogueOf(db, env.backups.store)).get(chosen.name)?.sha256;
  return {
    name: chosen.name,
    format: chosen.format,
    takenAt: chosen.takenAt.toISOString(),
    size: chosen.size,
    ...(sha256 ? { sha256 } : {}),
  };
}
