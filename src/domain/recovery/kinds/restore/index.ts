// /dr restore: the plan's "Database Restore Runbook" (logical, from a backup file) and "Complete Database Failure"
// (RDS snapshot into a new instance).
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { RdsPort } from '../../../../adapters/aws/port.js';
import { markChecked, recordBackup } from '../../../backups/catalogue.js';
import { isInFuture, latestBackup, parseBackupName, safetyCopyFileName } from '../../../backups/names.js';
import type { BackupStore } from '../../../../adapters/backup-store/port.js';
import type { EnvironmentConfig } from '../../../../shared/config.js';
import type { Db } from '../../../../shared/db/pool.js';
import { UserError } from '../../../../shared/errors.js';
import { formatDuration, formatSize, formatUtc } from '../../../../shared/format.js';
import { defineKind, recorded, sizedDeadline, type StepContext, type StepDefinition } from '../../kind.js';
import { verifyQueries } from '../../format.js';
import { describeHealth, probeHealth } from '../../health-probe.js';
import * as engine from '../../logical-restore/index.js';
import type { RecoveryJob } from '../../model.js';
import {
  engineStateSchema,
  plannedBackup,
  plannedBackupSchema,
  storedBackups,
  type ListedBackup,
} from '../stored-backup.js';
import { dbInstanceSchema } from './db-instance.js';

export interface RestoreKindDeps {
  /** The backup catalogue: a backup Lifeline made is restored only if it still matches its SHA-256 there. */
  readonly db: Db;
  readonly storeFor: (url: string) => BackupStore;
  readonly rds: RdsPort;
  readonly parallelJobs: number;
  readonly pollSeconds: number;
  readonly maxWaitSeconds: number;
}

const STEP_NAMES = {
  // A logical restore, from a backup file.
  preflight: 'preflight: target reachable, backup readable and intact',
  'restore-fresh': 'restore into a fresh database',
  swap: 'swap the restored database in',
  verify: 'verify',
  'health-check': 'health check',
  analyze: 'planner statistics (ANALYZE)',
  'safety-copy': 'safety backup of the previous database',
  'clean-up': 'clean up',
  // An RDS snapshot restored into a new instance.
  'safety-snapshot': 'safety snapshot of the current instance',
  'start-instance': 'start the restore into a new instance',
  'wait-instance': 'wait until the new instance is available',
};
type RestoreStep = keyof typeof STEP_NAMES;

/** The steps after verify and the health check passed: whatever happens in them, the restore stands. */
const AFTER_VERIFIED: readonly RestoreStep[] = ['analyze', 'safety-copy', 'clean-up'];

const restoreState = z.object({
  /** A logical restore's backup, as planned. */
  backup: plannedBackupSchema.optional(),
  /** Fixed once, so a resumed job keeps writing (and later reporting) the same safety copy. */
  safetyCopyName: z.string().optional(),
  engine: engineStateSchema.optional(),
  verified: z.array(z.string()).optional(),
  /** A snapshot restore's names, fixed by its plan, and the instance the new one is made like. */
  safetySnapshot: z.string().optional(),
  newInstance: z.string().optional(),
  instance: dbInstanceSchema.optional(),
});
type RestoreState = z.infer<typeof restoreState>;
type RestoreContext = StepContext<RestoreState>;
type RestoreStepDefinition = StepDefinition<RestoreState, RestoreStep>;

/** What the plan says about the backup's checksum, from the catalogue entry's SHA-256 (if it has one). */
export function checksumLine(sha256: string | undefined): string {
  return sha256 !== undefined
    ? 'Lifeline made this backup: preflight checks that its SHA-256 still matches the catalogue ' +
        `(${sha256.slice(0, 12)}…) before anything is touched.`
    : "This backup is not in Lifeline's catalogue (it was made elsewhere), so its checksum could not be checked; " +
        'preflight checks that it reads whole.';
}

/** host:port/database, never the user or password. */
export function databaseLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return '(unparseable database URL)';
  }
}

function source(job: RecoveryJob) {
  if (job.params.kind !== 'restore') throw new Error(`not a restore job: ${job.params.kind}`);
  return job.params.source;
}

function snapshotOf(job: RecoveryJob): string {
  const from = source(job);
  if (from.type !== 'snapshot') throw new Error('not a snapshot restore');
  return from.id;
}

function dataLossLine(takenAt: Date, rpoMinutes: number): string {
  const age = Math.max(0, Date.now() - takenAt.getTime());
  const within = age <= rpoMinutes * 60_000;
  return `data-loss window ${formatDuration(age)} (now minus the backup's time), ${within ? 'inside' : '*over*'} the RPO of ${formatDuration(rpoMinutes * 60_000)}`;
}

export function restoreKind(deps: RestoreKindDeps) {
  return defineKind({
    id: 'restore',
    state: restoreState,
    stepNames: STEP_NAMES,
    async plan(ctx) {
      const from = source(ctx.job);
      return from.type === 'snapshot' ? planSnapshot(deps, ctx, from.id) : planLogical(deps, ctx);
    },
    steps(job, env) {
      return source(job).type === 'snapshot' ? snapshotSteps(deps) : logicalSteps(deps, env);
    },
    async onFailure(ctx, failedStep) {
      if (source(ctx.job).type === 'snapshot') return 'The existing instance was not changed.';
      const plan = logicalPlan(deps, ctx);
      const finish = async (sentence: string) => {
        await rm(plan.workDir, { recursive: true, force: true });
        return sentence;
      };
      if (failedStep === 'preflight')
        return finish('The target database was not changed: the restore had not started.');
      if (AFTER_VERIFIED.includes(failedStep)) {
        // The restore itself is done and verified: undoing it because the store or a cleanup failed (or because of a
        // late cancel) would repeat the outage.
        const cleaned = await engine.cleanup(plan, engineState(ctx));
        ctx.state.engine = cleaned.state;
        return finish(
          `The restore itself is done and verified: ${databaseLabel(ctx.env.database.url)} is the restored database. ${cleaned.detail}`,
        );
      }
      if (failedStep === 'restore-fresh') {
        const cleaned = await engine.cleanup(plan, engineState(ctx));
        ctx.state.engine = cleaned.state;
        return finish(`The target database was not changed (${cleaned.detail.replace(/\.$/, '')}).`);
      }
      // From the swap on, put the previous database back. putBack looks at the server, not only at the saved state:
      // a worker that died inside the swap after its rename committed never saved `swapped`.
      const back = await engine.putBack(plan, engineState(ctx));
      ctx.state.engine = back.state;
      const cleaned = await engine.cleanup(plan, back.state);
      ctx.state.engine = cleaned.state;
      return finish(`Put back: ${back.detail.replace(/\.$/, '')}; ${cleaned.detail}`);
    },
    summarise(ctx, succeeded) {
      const from = source(ctx.job);
      const what = from.type === 'snapshot' ? `snapshot ${from.id}` : (ctx.state.backup?.name ?? 'the backup');
      const verified = ctx.state.verified ?? [];
      return {
        headline: succeeded
          ? `Restored ${ctx.job.env} from ${what}.`
          : `Restore of ${ctx.job.env} from ${what} failed.`,
        verified,
      };
    },
  });
}

// ---- logical restore --------------------------------------------------------------------------------------------

async function planLogical(deps: RestoreKindDeps, ctx: RestoreContext): Promise<string> {
  const { env } = ctx;
  const store = deps.storeFor(env.backups.store);
  const backups = await storedBackups(store, env);
  const from = source(ctx.job);
  let chosen: ListedBackup | undefined;
  if (from.type === 'latest') {
    chosen = latestBackup(backups);
    if (!chosen) throw new UserError('bad_command', `There is no backup of ${ctx.job.env} in ${store.location}.`);
  } else if (from.type === 'file') {
    chosen = backups.find((b) => b.name === from.name);
    if (!chosen)
      throw new UserError(
        'bad_command',
        `${from.name} is not in ${store.location}. \`/dr restore ${ctx.job.env} list\` shows what is.`,
      );
  }
  if (!chosen) throw new Error('unreachable: snapshot source in logical plan');
  const backup = await plannedBackup(deps.db, env, chosen);
  ctx.state.backup = backup;
  const steps = logicalSteps(deps, env).map((s, i) => `${i + 1}. ${STEP_NAMES[s.id]}`);
  const future = isInFuture(chosen) ? ' Its name carries a time in the future: check the clock of what wrote it.' : '';
  const kind = chosen.safetyCopy ? ' (a safety copy)' : '';
  return [
    `Restore the ${ctx.job.env} database ${databaseLabel(env.database.url)} from ${chosen.name}${kind} ` +
      `(taken ${formatUtc(chosen.takenAt)}, ${formatSize(chosen.size)}).${future}`,
    checksumLine(backup.sha256),
    `${dataLossLine(chosen.takenAt, env.backups.rpo_minutes)}.`,
    `Steps: ${steps.join('; ')}.`,
    `Verify queries: ${verifyQueries(env.database.verify)}.`,
    'The restore goes into a fresh database and is swapped in only when it succeeded; the current database is set aside, not dropped, and copied to the store once the restored one is verified.',
  ].join('\n');
}

function logicalPlan(deps: RestoreKindDeps, ctx: RestoreContext): engine.LogicalRestorePlan {
  const backup = recorded(ctx.state.backup, 'the planned backup');
  ctx.state.safetyCopyName ??= safetyCopyFileName(ctx.env.backups.prefix, new Date());
  return {
    targetUrl: ctx.env.database.url,
    store: deps.storeFor(ctx.env.backups.store),
    backupName: backup.name,
    format: backup.format,
    ...(backup.sha256 ? { expectedSha256: backup.sha256 } : {}),
    safetyCopyName: ctx.state.safetyCopyName,
    verify: ctx.env.database.verify,
    workDir: workDirOf(ctx),
    parallelJobs: deps.parallelJobs,
    signal: ctx.signal,
  };
}

/** Unique per job and database (job numbers restart in a new database); removed when the job ends. */
function workDirOf(ctx: RestoreContext): string {
  return join(tmpdir(), `lifeline-job-${ctx.job.number}-${ctx.job.createdAt.getTime()}`);
}

function engineState(ctx: RestoreContext): engine.RestoreState {
  return ctx.state.engine ?? {};
}

interface EngineStepOptions {
  readonly destructive: boolean;
  readonly interruptible: boolean;
  readonly deadline?: (defaultMs: number, state: RestoreState) => number;
}

function engineStep(
  deps: RestoreKindDeps,
  id: RestoreStep,
  options: EngineStepOptions,
  call: (plan: engine.LogicalRestorePlan, state: engine.RestoreState) => Promise<engine.StepOutcome>,
): RestoreStepDefinition {
  return {
    id,
    ...options,
    async run(ctx) {
      const outcome = await call(logicalPlan(deps, ctx), engineState(ctx));
      ctx.state.engine = outcome.state;
      return outcome.detail;
    },
  };
}

/**
 * Interruptible (a cancel stops it at once) up to the swap and again for the read-only checks after it; the swap is
 * one transaction and the safety copy is what lets cleanup drop the previous database, so both are finished. Work
 * that grows with the data gets a deadline sized by the backup.
 */
function logicalSteps(deps: RestoreKindDeps, env: EnvironmentConfig): RestoreStepDefinition[] {
  const sized = (defaultMs: number, state: RestoreState) => sizedDeadline(state.backup?.size)(defaultMs);
  return [
    engineStep(deps, 'preflight', { destructive: false, interruptible: true, deadline: sized }, engine.preflight),
    engineStep(
      deps,
      'restore-fresh',
      { destructive: false, interruptible: true, deadline: sized },
      engine.restoreIntoFresh,
    ),
    engineStep(deps, 'swap', { destructive: true, interruptible: false }, engine.swap),
    {
      id: 'verify',
      destructive: false,
      interruptible: true,
      async run(ctx) {
        const outcome = await engine.verify(logicalPlan(deps, ctx), engineState(ctx));
        ctx.state.engine = outcome.state;
        ctx.state.verified = outcome.results.map(engine.verifiedLine);
        return outcome.detail;
      },
    },
    ...healthStep(env.health_url),
    engineStep(deps, 'analyze', { destructive: false, interruptible: true, deadline: sized }, engine.analyzeTarget),
    {
      id: 'safety-copy',
      destructive: false,
      interruptible: false,
      deadline: sized,
      async run(ctx) {
        const outcome = await engine.safetyBackup(logicalPlan(deps, ctx), engineState(ctx));
        ctx.state.engine = outcome.state;
        const copy = outcome.state.safetyCopy;
        if (!copy) throw new Error('the safety copy step returned no copy');
        // A backup like any other Lifeline takes: /dr backups shows its checksum as checked, a drill its row counts.
        await recordBackup(deps.db, {
          env: ctx.job.env,
          name: copy.name,
          store: ctx.env.backups.store,
          job: ctx.job.number,
          takenAt: parseBackupName(ctx.env.backups.prefix, copy.name)?.takenAt ?? new Date(),
          sizeBytes: copy.size,
          sha256: copy.sha256,
          durationMs: copy.durationMs,
          tableRows: copy.tableRows,
          safetyCopy: true,
        });
        await markChecked(deps.db, ctx.env.backups.store, copy.name);
        return outcome.detail;
      },
    },
    engineStep(deps, 'clean-up', { destructive: false, interruptible: false }, async (plan, state) => {
      const outcome = await engine.cleanup(plan, state);
      await rm(plan.workDir, { recursive: true, force: true });
      return outcome;
    }),
  ];
}

/** Only where the env has a health_url. */
function healthStep(url: string | undefined): RestoreStepDefinition[] {
  if (!url) return [];
  return [
    {
      id: 'health-check',
      destructive: false,
      interruptible: true,
      async run(ctx) {
        const result = await probeHealth(url);
        const line = describeHealth(url, result);
        ctx.state.verified = [...(ctx.state.verified ?? []), `health: ${line}`];
        if (!result.ok) throw new Error(line);
        return line;
      },
    },
  ];
}

// ---- RDS snapshot restore ---------------------------------------------------------------------------------------

function rdsInstance(ctx: RestoreContext): string {
  const id = ctx.env.database.rds_instance;
  if (!id)
    throw new UserError('bad_command', `Environment ${ctx.job.env} has no rds_instance; snapshot restores need one.`);
  return id;
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').slice(0, 15).replace('T', '-').toLowerCase();
}

async function planSnapshot(deps: RestoreKindDeps, ctx: RestoreContext, snapshotId: string): Promise<string> {
  const instanceId = rdsInstance(ctx);
  const [instance, snapshot] = await Promise.all([
    deps.rds.describeInstance(instanceId),
    deps.rds.describeSnapshot(snapshotId),
  ]);
  if (!instance) throw new UserError('bad_command', `RDS instance ${instanceId} was not found.`);
  if (!snapshot) throw new UserError('bad_command', `RDS snapshot ${snapshotId} was not found.`);
  if (snapshot.status !== 'available')
    throw new UserError('bad_command', `RDS snapshot ${snapshotId} is ${snapshot.status}, not available.`);
  const suffix = stamp();
  const safetySnapshot = `${instanceId}-pre-restore-${suffix}`.slice(0, 255);
  const newInstance = `${instanceId}-restored-${suffix}`.slice(0, 63);
  ctx.state.safetySnapshot = safetySnapshot;
  ctx.state.newInstance = newInstance;
  ctx.state.instance = instance;
  return [
    `Restore RDS snapshot ${snapshotId} of ${snapshot.instanceId}${snapshot.createdAt ? ` (taken ${formatUtc(snapshot.createdAt)})` : ''} into a NEW instance ${newInstance}, like ${instanceId} (${instance.instanceClass}).`,
    snapshot.createdAt
      ? `${dataLossLine(snapshot.createdAt, ctx.env.backups.rpo_minutes)}.`
      : 'The snapshot has no creation time.',
    `Steps: 1. safety snapshot ${safetySnapshot} of ${instanceId}; 2. start the restore; 3. wait until the new instance is available (up to ${formatDuration(deps.maxWaitSeconds * 1000)}).`,
    `${instanceId} itself is not changed: switching the application to the new endpoint is a separate, approved step.`,
  ].join('\n');
}

function snapshotSteps(deps: RestoreKindDeps): RestoreStepDefinition[] {
  const wait = (ctx: RestoreContext) => ({
    maxWaitSeconds: deps.maxWaitSeconds,
    pollSeconds: deps.pollSeconds,
    signal: ctx.signal,
    onPoll: (status: string) => ctx.note(status),
  });
  // The waits end by themselves after maxWaitSeconds; the deadline is only the backstop behind them.
  const waitDeadline = () => (deps.maxWaitSeconds + 2 * deps.pollSeconds) * 1000 + 60_000;
  return [
    {
      id: 'safety-snapshot',
      destructive: false,
      // Once asked for, the snapshot is being made either way: waiting for it leaves a usable way back.
      interruptible: false,
      deadline: waitDeadline,
      async run(ctx) {
        const id = recorded(ctx.state.safetySnapshot, 'the safety snapshot name');
        if (!(await deps.rds.describeSnapshot(id)))
          await deps.rds.createSnapshot(rdsInstance(ctx), id, {
            'created-by': 'lifeline',
            'lifeline-job': String(ctx.job.number),
          });
        await deps.rds.waitForSnapshot(id, wait(ctx));
        return `${id} is available`;
      },
    },
    {
      id: 'start-instance',
      destructive: true,
      interruptible: false,
      async run(ctx) {
        const from = snapshotOf(ctx.job);
        const created = recorded(ctx.state.newInstance, 'the new instance name');
        await deps.rds.restoreFromSnapshot(from, created, recorded(ctx.state.instance, 'the instance to copy'));
        return `${created} is being created from ${from}`;
      },
    },
    {
      id: 'wait-instance',
      destructive: false,
      // Stopping the wait changes nothing: the new instance goes on being created beside the untouched one.
      interruptible: true,
      deadline: waitDeadline,
      async run(ctx) {
        const ready = await deps.rds.waitForInstance(
          recorded(ctx.state.newInstance, 'the new instance name'),
          wait(ctx),
        );
        const endpoint = ready.endpoint ? `${ready.endpoint.address}:${ready.endpoint.port}` : '(no endpoint reported)';
        ctx.state.verified = [
          `new instance ${ready.id}: ${ready.status}, endpoint ${endpoint}`,
          `next (the plan's "Update DNS/Connection Strings"): point DATABASE_URL, the ECS task definitions and the secrets in Secrets Manager at ${endpoint}; ${rdsInstance(ctx)} is unchanged until then`,
        ];
        return `${ready.id} available at ${endpoint}`;
      },
    },
  ];
}
