// /dr backup and each `schedule` slot: the plan's "Database Backup Runbook" — pg_dump into the store, the stored
// copy read back and checked, the daily RDS snapshot, then retention. A failure pages on-call (warning).
import { z } from 'zod';
import type { RdsPort } from '../../../../adapters/aws/port.js';
import { audit } from '../../../audit/store.js';
import type { AlertDesk } from '../../../backups/alerts.js';
import {
  catalogueOf,
  lastDrills,
  markChecked,
  markDeleted,
  markSnapshotDeleted,
  recordBackup,
  recordSnapshot,
  snapshotsOf,
} from '../../../backups/catalogue.js';
import { backupFileName, parseBackupName } from '../../../backups/names.js';
import { decideRetention } from '../../../backups/retention.js';
import type { RpoWatch } from '../../../backups/rpo-watch.js';
import type { BackupStore } from '../../../../adapters/backup-store/port.js';
import {
  publishBackup,
  removeBackupLeftovers,
  removeStalePending,
  sidecarName,
  takeBackup,
  type TakenBackup,
} from '../../../backups/take.js';
import type { EnvironmentConfig } from '../../../../shared/config.js';
import type { Db } from '../../../../shared/db/pool.js';
import { PermanentError } from '../../../../shared/errors.js';
import { formatDuration, formatSize } from '../../../../shared/format.js';
import type { Logger } from '../../../../shared/log.js';
import { defineKind, recorded, type StepContext, type StepDefinition } from '../../kind.js';
import { databaseLabel } from '../restore/index.js';

export interface BackupKindDeps {
  readonly db: Db;
  readonly storeFor: (url: string) => BackupStore;
  readonly rds: RdsPort;
  readonly alerts: AlertDesk;
  readonly rpo: RpoWatch;
  /** Backup duration and size, for /metrics. */
  readonly observe: (env: string, backup: TakenBackup) => void;
  readonly log: Logger;
}

const STEP_NAMES = {
  dump: 'pg_dump into the store',
  check: 'check the stored backup',
  'rds-snapshot': 'daily RDS snapshot',
  retention: 'retention',
};
type BackupStep = keyof typeof STEP_NAMES;

const takenSchema: z.ZodType<TakenBackup> = z.object({
  name: z.string(),
  pendingName: z.string(),
  size: z.number(),
  sha256: z.string(),
  tableRows: z.record(z.string(), z.number()),
  durationMs: z.number(),
});

const backupState = z.object({
  /** The dump, once it is in the store under its pending name. */
  taken: takenSchema.optional(),
  verified: z.array(z.string()).optional(),
});
export type BackupState = z.infer<typeof backupState>;
type BackupContext = StepContext<BackupState>;

function takenOf(ctx: BackupContext): TakenBackup {
  return recorded(ctx.state.taken, 'the dump');
}

function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

function rowsLine(rows: Readonly<Record<string, number>>): string {
  const tables = Object.keys(rows).length;
  const total = Object.values(rows).reduce((a, b) => a + b, 0);
  return `${tables} table${tables === 1 ? '' : 's'}, ${total.toLocaleString('en-US')} rows`;
}

export function backupKind(deps: BackupKindDeps) {
  const scheduled = (ctx: BackupContext) => ctx.job.params.kind === 'backup' && ctx.job.params.trigger === 'schedule';
  return defineKind({
    id: 'backup',
    state: backupState,
    stepNames: STEP_NAMES,
    async plan(ctx) {
      const { env } = ctx;
      const lines = [
        `Back up the ${ctx.job.env} database ${databaseLabel(env.database.url)} into ${env.backups.store} ` +
          '(pg_dump custom format) under a pending name, read the stored copy back (SHA-256, pg_restore --list), ' +
          `and only then name it ${env.backups.prefix}_<now>.dump, with its checksum beside it and in the catalogue.`,
        `Then retention: backups older than ${env.backups.retention_days} days are deleted, never the newest one nor the newest that passed a drill.`,
      ];
      if (scheduled(ctx) && env.database.rds_instance)
        lines.push(`The day's first slot also takes an RDS snapshot of ${env.database.rds_instance}.`);
      return lines.join('\n');
    },
    steps(job, env) {
      return backupSteps(deps, env, job.params.kind === 'backup' && job.params.trigger === 'schedule');
    },
    async onFailure(ctx, failedStep, reason) {
      if (reason === 'cancelled') {
        // Somebody stopped it on purpose: nothing to page anyone about.
        return failedStep === 'dump' ? 'No file was left under a backup name.' : undefined;
      }
      const what = `${scheduled(ctx) ? 'Scheduled backup' : 'Backup'} of ${ctx.job.env}`;
      const summary = `${what} failed at "${STEP_NAMES[failedStep]}"`;
      // Slack hears it from the job's own result message; on-call hears it here, once while it stays failed.
      const taken = ctx.state.taken;
      const files =
        failedStep === 'dump'
          ? 'No file was left under a backup name.'
          : failedStep === 'check'
            ? ''
            : `The backup itself, ${taken?.name ?? '(unnamed)'}, is stored and checked.`;
      try {
        await deps.alerts.raise('backup_failed', ctx.job.env, summary, undefined);
        return `On-call was paged (warning).${files ? ` ${files}` : ''}`;
      } catch (err) {
        deps.log.error({ env: ctx.job.env, err: (err as Error).message }, 'could not page about a failed backup');
        return `Paging on-call failed too: ${(err as Error).message}.`;
      }
    },
    summarise(ctx, succeeded) {
      const taken = ctx.state.taken;
      if (!succeeded || !taken) return { headline: `Backup of ${ctx.job.env} failed.`, verified: [] };
      return {
        headline: `Backed up ${ctx.job.env}: ${taken.name} (${formatSize(taken.size)}, sha256 ${taken.sha256.slice(0, 12)}) in ${formatDuration(taken.durationMs)}.`,
        verified: ctx.state.verified ?? [],
      };
    },
  });
}

function backupSteps(
  deps: BackupKindDeps,
  env: EnvironmentConfig,
  scheduled: boolean,
): StepDefinition<BackupState, BackupStep>[] {
  const store = (ctx: BackupContext) => deps.storeFor(ctx.env.backups.store);
  const steps: StepDefinition<BackupState, BackupStep>[] = [
    {
      id: 'dump',
      destructive: false,
      // The store writes atomically: a stopped dump leaves nothing under a backup name.
      interruptible: true,
      async run(ctx) {
        // The name carries the time the dump starts (a resumed job starts a new dump, and names it anew).
        const name = backupFileName(ctx.env.backups.prefix, new Date());
        const taken = await takeBackup(ctx.env.database.url, store(ctx), name, { signal: ctx.signal });
        await recordBackup(deps.db, {
          env: ctx.job.env,
          name,
          store: ctx.env.backups.store,
          job: ctx.job.number,
          takenAt: parseBackupName(ctx.env.backups.prefix, name)!.takenAt,
          sizeBytes: taken.size,
          sha256: taken.sha256,
          durationMs: taken.durationMs,
          tableRows: taken.tableRows,
        });
        ctx.state.taken = taken;
        deps.observe(ctx.job.env, taken);
        return `${name}: ${formatSize(taken.size)}, sha256 ${taken.sha256.slice(0, 12)}, ${rowsLine(taken.tableRows)}, in ${formatDuration(taken.durationMs)}`;
      },
    },
    {
      id: 'check',
      destructive: false,
      // A check cut short would remove a good backup (only checked backups may stay): it is finished.
      interruptible: false,
      async run(ctx) {
        const taken = takenOf(ctx);
        const where = store(ctx);
        try {
          const checked = await publishBackup(where, taken, ctx.env.database.url, { signal: ctx.signal });
          await markChecked(deps.db, ctx.env.backups.store, taken.name);
          const named = checked.alreadyNamed ? 'already under its name' : `then renamed from ${taken.pendingName}`;
          const line =
            `${taken.name}: sha256 matches (${formatSize(checked.size)} read back), ` +
            `pg_restore --list reads ${checked.entries} entries, ` +
            `${named}; ${sidecarName(taken.name)} written`;
          ctx.state.verified = [line];
          return line;
        } catch (err) {
          // Only a checked backup may become `latest`: whatever stopped the check, nothing of it stays.
          const removal = await removeBackupLeftovers(where, taken).then(
            () => undefined,
            (removeErr: Error) => removeErr.message,
          );
          if (removal === undefined) {
            await markDeleted(deps.db, ctx.env.backups.store, taken.name);
            await audit(deps.db, {
              env: ctx.job.env,
              job: ctx.job.number,
              actor: 'lifeline',
              action: 'backup_deleted',
              detail: `${taken.name}: its check did not pass`,
            });
          }
          const outcome =
            removal === undefined
              ? `the unchecked dump ${taken.pendingName} was removed from the store; nothing is under ${taken.name}`
              : `the unchecked dump could not be removed from the store (${removal}): ` +
                `delete ${taken.pendingName} and ${taken.name} by hand if they are there`;
          const message = `${(err as Error).message}; ${outcome}`;
          throw err instanceof PermanentError ? new PermanentError(message) : new Error(message, { cause: err });
        }
      },
    },
  ];
  if (scheduled && env.database.rds_instance) {
    steps.push({
      id: 'rds-snapshot',
      destructive: false,
      interruptible: false,
      async run(ctx) {
        const instance = ctx.env.database.rds_instance!;
        const today = utcDay(new Date());
        const taken = (await snapshotsOf(deps.db, ctx.job.env)).find((s) => utcDay(s.createdAt) === today);
        if (taken) return `already taken today: ${taken.id}`;
        const id = `${instance}-lifeline-${today.replace(/-/g, '')}`.slice(0, 255);
        // Recorded first, so a worker that dies right after the call still finds (and later expires) it.
        await recordSnapshot(deps.db, { id, env: ctx.job.env, instance });
        if (!(await deps.rds.describeSnapshot(id)))
          await deps.rds.createSnapshot(instance, id, { 'created-by': 'lifeline', 'lifeline-env': ctx.job.env });
        return `CreateDBSnapshot ${id} of ${instance} (it completes in the background)`;
      },
    });
  }
  steps.push({
    id: 'retention',
    destructive: false,
    interruptible: false,
    async run(ctx) {
      const lines = [await applyRetention(deps, ctx)];
      // This backup is fresh: whatever alert was open about the env's backups is over.
      await deps.alerts.clear('backup_failed', ctx.job.env, undefined);
      const reading = await deps.rpo.check(ctx.job.env);
      if (!reading.overdue) lines.push('RPO met');
      return lines.join('; ');
    },
  });
  return steps;
}

async function applyRetention(deps: BackupKindDeps, ctx: BackupContext): Promise<string> {
  const { env } = ctx;
  const where = deps.storeFor(env.backups.store);
  // Left by a job that died between writing a dump and checking it: never a backup, and nobody else removes them.
  const stale = await removeStalePending(where, env.backups.prefix);
  for (const name of stale) {
    const detail = `${name}: an unchecked dump older than a day`;
    const { number: job } = ctx.job;
    await audit(deps.db, { env: ctx.job.env, job, actor: 'lifeline', action: 'backup_deleted', detail });
  }
  const listed = await where.list();
  const backups = listed.flatMap((o) => parseBackupName(env.backups.prefix, o.name) ?? []);
  const drills = await lastDrills(deps.db, env.backups.store);
  const decision = decideRetention(
    backups,
    new Date(),
    env.backups.retention_days,
    (name) => drills.get(name)?.passed === true,
  );
  const names = new Set(listed.map((o) => o.name));
  const catalogue = await catalogueOf(deps.db, env.backups.store);
  for (const backup of decision.remove) {
    await where.remove(backup.name);
    if (names.has(sidecarName(backup.name))) await where.remove(sidecarName(backup.name));
    if (catalogue.has(backup.name)) await markDeleted(deps.db, env.backups.store, backup.name);
    await audit(deps.db, {
      env: ctx.job.env,
      job: ctx.job.number,
      actor: 'lifeline',
      action: 'backup_deleted',
      detail: `${backup.name}: older than ${env.backups.retention_days} days`,
    });
  }
  let snapshots = '';
  if (env.database.rds_instance) {
    const cutoff = Date.now() - env.backups.retention_days * 86_400_000;
    const own = await snapshotsOf(deps.db, ctx.job.env);
    // Never the newest one Lifeline took.
    const expired = own.slice(1).filter((s) => s.createdAt.getTime() < cutoff);
    for (const snapshot of expired) {
      await deps.rds.deleteSnapshot(snapshot.id);
      await markSnapshotDeleted(deps.db, snapshot.id);
      await audit(deps.db, {
        env: ctx.job.env,
        job: ctx.job.number,
        actor: 'lifeline',
        action: 'snapshot_deleted',
        detail: `${snapshot.id}: older than ${env.backups.retention_days} days`,
      });
    }
    if (expired.length > 0) snapshots = `; ${expired.length} RDS snapshot${expired.length === 1 ? '' : 's'} deleted`;
  }
  const kept = decision.kept.map((k) => `kept ${k.backup.name} (${k.why})`);
  const removed =
    decision.remove.length === 0
      ? 'nothing older than'
      : `${decision.remove.length} backup${decision.remove.length === 1 ? '' : 's'} older than`;
  const dumps = `${stale.length} unchecked dump${stale.length === 1 ? '' : 's'}`;
  const unchecked = stale.length > 0 ? `; ${dumps} older than a day deleted (${stale.join(', ')})` : '';
  const which = decision.remove.length > 0 ? ` (${decision.remove.map((b) => b.name).join(', ')})` : '';
  const keptText = kept.length > 0 ? `; ${kept.join('; ')}` : '';
  return `${removed} ${env.backups.retention_days} days deleted${which}${keptText}${snapshots}${unchecked}`;
}
