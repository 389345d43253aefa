// /dr drill and the weekly drill schedule: the plan's "Weekly Backup Restore Test". The latest backup is restored
// into a scratch database beside the env's own (which is never touched), checked against the SHA-256 and the row
// counts recorded when Lifeline took it and with the env's verify queries, and dropped again, also when the drill
// fails. A check it could not make (a backup made elsewhere has no checksum or row counts) is reported as skipped,
// in the headline too: such a drill passes, but not fully.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { z } from 'zod';
import { audit } from '../../../audit/store.js';
import { catalogueOf, recordDrill, type SkippedCheck } from '../../../backups/catalogue.js';
import { latestBackup, safetyCopyFileName } from '../../../backups/names.js';
import type { BackupStore } from '../../../../adapters/backup-store/port.js';
import type { Db } from '../../../../shared/db/pool.js';
import { PermanentError, UserError } from '../../../../shared/errors.js';
import { againstTarget, formatDuration, formatSize, formatUtc } from '../../../../shared/format.js';
import { defineKind, recorded, sizedDeadline, type StepContext, type StepDefinition } from '../../kind.js';
import * as engine from '../../logical-restore/index.js';
import { connectClient } from '../../../../pgtools/client.js';
import { throwIfAborted } from '../../../../pgtools/errors.js';
import { parsePostgresUrl, withDatabase } from '../../../../shared/db/connection.js';
import { verifyQueries } from '../../format.js';
import { engineStateSchema, plannedBackup, plannedBackupSchema, storedBackups } from '../stored-backup.js';

export interface DrillKindDeps {
  readonly db: Db;
  readonly storeFor: (url: string) => BackupStore;
  readonly parallelJobs: number;
  /** Last result, restore time and how many checks were skipped, for /metrics. */
  readonly observe: (env: string, passed: boolean, restoreMs: number | undefined, skippedChecks: number) => void;
}

const NOT_RECORDED = 'the backup was not taken by Lifeline, so none were recorded';

const STEP_NAMES = {
  preflight: 'preflight: latest backup readable',
  restore: 'restore into a scratch database',
  checks: 'checks: verify queries and row counts',
  drop: 'drop the scratch database',
};
type DrillStep = keyof typeof STEP_NAMES;

const drillState = z.object({
  backup: plannedBackupSchema.optional(),
  /** When the drill began (ms since the epoch): the backup's age is measured against it. */
  startedAt: z.number().optional(),
  engine: engineStateSchema.optional(),
  restoreMs: z.number().optional(),
  checks: z.array(z.string()).optional(),
  skipped: z.array(z.object({ check: z.string(), why: z.string() })).optional(),
});
type DrillState = z.infer<typeof drillState>;
type DrillContext = StepContext<DrillState>;

function backupOf(ctx: DrillContext) {
  return recorded(ctx.state.backup, 'the planned backup');
}

function planOf(deps: DrillKindDeps, ctx: DrillContext): engine.LogicalRestorePlan {
  const backup = backupOf(ctx);
  return {
    targetUrl: ctx.env.database.url,
    store: deps.storeFor(ctx.env.backups.store),
    backupName: backup.name,
    format: backup.format,
    ...(backup.sha256 ? { expectedSha256: backup.sha256 } : {}),
    // A drill never replaces the env's database, so it never takes a safety copy; the engine wants a valid name.
    safetyCopyName: safetyCopyFileName(ctx.env.backups.prefix, new Date(backup.takenAt)),
    verify: ctx.env.database.verify,
    workDir: join(tmpdir(), `lifeline-drill-${ctx.job.number}-${ctx.job.createdAt.getTime()}`),
    parallelJobs: deps.parallelJobs,
    signal: ctx.signal,
  };
}

function engineState(ctx: DrillContext): engine.RestoreState {
  return ctx.state.engine ?? {};
}

function checks(ctx: DrillContext): string[] {
  return ctx.state.checks ?? [];
}

function skippedOf(ctx: DrillContext): SkippedCheck[] {
  return ctx.state.skipped ?? [];
}

/** "2 checks were skipped: checksum and row counts (why)", checks that share a reason named together. */
export function skippedSentence(skipped: readonly SkippedCheck[]): string {
  const byWhy = new Map<string, string[]>();
  for (const { check, why } of skipped) byWhy.set(why, [...(byWhy.get(why) ?? []), check]);
  const and = (items: string[]) =>
    items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items.at(-1)}` : (items[0] ?? '');
  const groups = [...byWhy].map(([why, names]) => `${and(names)} (${why})`);
  return `${skipped.length} check${skipped.length === 1 ? ' was' : 's were'} skipped: ${groups.join('; ')}`;
}

/** RPO achieved (the backup's age when the drill began) and RTO achieved (fetch + restore), against the plan. */
function objectives(ctx: DrillContext): string[] {
  const backup = backupOf(ctx);
  const startedAt = ctx.state.startedAt ?? Date.now();
  const ageMs = startedAt - new Date(backup.takenAt).getTime();
  const lines = [`RPO achieved (the backup's age): ${againstTarget(ageMs, ctx.env.backups.rpo_minutes)}`];
  const restoreMs = ctx.state.restoreMs;
  if (restoreMs !== undefined)
    lines.push(`RTO achieved (fetch and restore): ${againstTarget(restoreMs, ctx.env.backups.rto_minutes)}`);
  return lines;
}

async function countRows(
  url: string,
  database: string,
  tables: readonly string[],
  signal: AbortSignal,
): Promise<Map<string, number | string>> {
  const client = await connectClient(withDatabase(parsePostgresUrl(url), database), {
    queryTimeoutMs: 10 * 60_000,
    applicationName: 'lifeline-drill',
  });
  const counts = new Map<string, number | string>();
  // A stopped drill must not wait for a count of a big table: closing the session ends it.
  const stop = (): void => void client.end().catch(() => undefined);
  signal.addEventListener('abort', stop, { once: true });
  try {
    for (const table of tables) {
      try {
        const { rows } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
        counts.set(table, Number(rows[0]?.n ?? 0));
      } catch (err) {
        throwIfAborted(signal, 'counting the rows');
        counts.set(table, `error: ${(err as Error).message}`);
      }
    }
  } finally {
    signal.removeEventListener('abort', stop);
    await client.end().catch(() => undefined);
  }
  return counts;
}

async function record(deps: DrillKindDeps, ctx: DrillContext, passed: boolean): Promise<void> {
  const backup = backupOf(ctx);
  const restoreMs = ctx.state.restoreMs;
  const lines = [...objectives(ctx), ...checks(ctx)];
  const skipped = skippedOf(ctx);
  await recordDrill(deps.db, {
    env: ctx.job.env,
    job: ctx.job.number,
    backupName: backup.name,
    store: ctx.env.backups.store,
    passed,
    backupAgeMs: (ctx.state.startedAt ?? Date.now()) - new Date(backup.takenAt).getTime(),
    restoreMs,
    checks: lines,
    skippedChecks: skipped,
  });
  const verdict = passed ? (skipped.length > 0 ? `passed, but ${skippedSentence(skipped)}` : 'passed') : 'failed';
  const detail = `${verdict}: ${backup.name}; ${lines.join('; ')}`;
  await audit(deps.db, { env: ctx.job.env, job: ctx.job.number, actor: 'lifeline', action: 'drill', detail });
  deps.observe(ctx.job.env, passed, restoreMs, skipped.length);
}

export function drillKind(deps: DrillKindDeps) {
  return defineKind({
    id: 'drill',
    state: drillState,
    stepNames: STEP_NAMES,
    async plan(ctx) {
      const { env } = ctx;
      const store = deps.storeFor(env.backups.store);
      const chosen = latestBackup(await storedBackups(store, env));
      if (!chosen)
        throw new UserError('bad_command', `There is no backup of ${ctx.job.env} in ${store.location} to drill.`);
      const { sha256 } = (ctx.state.backup = await plannedBackup(deps.db, env, chosen));
      return [
        `Restore drill of ${ctx.job.env}: restore ${chosen.name} (taken ${formatUtc(chosen.takenAt)}, ${formatSize(chosen.size)}) into a scratch database on the same server; ${ctx.job.env}'s own database is not touched.`,
        sha256 !== undefined
          ? `Checks: its SHA-256 against the catalogue, the verify queries (${verifyQueries(env.database.verify)}), ` +
            "and each table's row count against the counts recorded when Lifeline took it; then the scratch database " +
            'is dropped.'
          : `Checks: the verify queries (${verifyQueries(env.database.verify)}); then the scratch database is dropped. ` +
            'Lifeline did not take this backup, so its checksum and row counts cannot be checked: the report will say ' +
            'those checks were skipped.',
        `Judged against the RPO of ${formatDuration(env.backups.rpo_minutes * 60_000)} and the RTO of ${formatDuration(env.backups.rto_minutes * 60_000)}.`,
      ].join('\n');
    },
    steps: () => drillSteps(deps),
    async onFailure(ctx, _failedStep, reason) {
      const plan = planOf(deps, ctx);
      const cleaned = await engine.cleanup(plan, engineState(ctx)).catch((err: Error) => ({
        state: engineState(ctx),
        detail: `dropping the scratch database failed: ${err.message}`,
      }));
      ctx.state.engine = cleaned.state;
      await rm(plan.workDir, { recursive: true, force: true });
      // A cancelled drill neither passed nor failed: it proves nothing about the backup, so it is not recorded.
      if (reason === 'failed') await record(deps, ctx, false);
      return `${cleaned.detail} ${ctx.job.env}'s own database was not touched.`;
    },
    summarise(ctx, succeeded) {
      const backup = ctx.state.backup;
      const verdict = succeeded ? 'passed' : 'FAILED';
      const skipped = succeeded ? skippedOf(ctx) : [];
      return {
        headline:
          `Restore drill of ${ctx.job.env} ${verdict}${backup ? ` with ${backup.name}` : ''}` +
          `${skipped.length > 0 ? `, but ${skippedSentence(skipped)}` : ''}.`,
        verified: backup ? [...objectives(ctx), ...checks(ctx)] : [],
        ...(skipped.length > 0 ? { incomplete: true } : {}),
      };
    },
  });
}

/** Everything but dropping the scratch database may be interrupted: the env's own database is never touched. */
function drillSteps(deps: DrillKindDeps): StepDefinition<DrillState, DrillStep>[] {
  const sized = (defaultMs: number, state: DrillState) => sizedDeadline(state.backup?.size)(defaultMs);
  return [
    {
      id: 'preflight',
      destructive: false,
      interruptible: true,
      deadline: sized,
      async run(ctx) {
        ctx.state.startedAt ??= Date.now();
        const outcome = await engine.preflight(planOf(deps, ctx), engineState(ctx));
        ctx.state.engine = outcome.state;
        return outcome.detail;
      },
    },
    {
      id: 'restore',
      destructive: false,
      interruptible: true,
      deadline: sized,
      async run(ctx) {
        const outcome = await engine.restoreIntoFresh(planOf(deps, ctx), engineState(ctx));
        ctx.state.engine = outcome.state;
        ctx.state.restoreMs = Date.now() - recorded(ctx.state.startedAt, "the drill's start");
        return `${outcome.detail.replace(/\.$/, '')} (the scratch database).`;
      },
    },
    {
      id: 'checks',
      destructive: false,
      interruptible: true,
      // Counting every table's rows grows with the data.
      deadline: sized,
      async run(ctx) {
        const scratch = engineState(ctx).freshDb;
        if (!scratch) throw new Error('the restore step has not recorded its scratch database');
        const backup = backupOf(ctx);
        const lines: string[] = [];
        const skipped: SkippedCheck[] = [];
        let failures = 0;
        // Preflight refused a file that does not match: reaching this step means it matched.
        if (backup.sha256 !== undefined) {
          lines.push(`✓ checksum: sha256 ${backup.sha256.slice(0, 12)} matches the catalogue`);
        } else {
          skipped.push({ check: 'checksum', why: NOT_RECORDED });
          lines.push(`– checksum: skipped (${NOT_RECORDED})`);
        }
        const verified = await engine.verifyDatabase(
          ctx.env.database.url,
          scratch,
          ctx.env.database.verify,
          ctx.signal,
        );
        for (const r of verified.results)
          lines.push(`${r.value.startsWith('error:') ? '✗' : '✓'} ${engine.verifiedLine(r)}`);
        failures += verified.failures;
        const recorded = (await catalogueOf(deps.db, ctx.env.backups.store)).get(backup.name)?.tableRows;
        if (!recorded) {
          skipped.push({ check: 'row counts', why: NOT_RECORDED });
          lines.push(`– row counts: skipped (${NOT_RECORDED})`);
        } else {
          const counted = await countRows(ctx.env.database.url, scratch, Object.keys(recorded), ctx.signal);
          const wrong = Object.entries(recorded).filter(([table, rows]) => counted.get(table) !== rows);
          failures += wrong.length;
          const total = Object.values(recorded).reduce((a, b) => a + b, 0);
          lines.push(
            wrong.length === 0
              ? `✓ row counts: all ${Object.keys(recorded).length} tables match the backup (${total.toLocaleString('en-US')} rows)`
              : `✗ row counts: ${wrong.map(([table, rows]) => `${table} has ${String(counted.get(table))}, the backup had ${rows}`).join('; ')}`,
          );
        }
        ctx.state.checks = lines;
        ctx.state.skipped = skipped;
        if (failures > 0)
          throw new PermanentError(
            `${failures} check${failures === 1 ? '' : 's'} failed: ${lines.filter((l) => l.startsWith('✗')).join('; ')}`,
          );
        return lines.join('; ');
      },
    },
    {
      id: 'drop',
      destructive: false,
      interruptible: false,
      async run(ctx) {
        const plan = planOf(deps, ctx);
        const outcome = await engine.cleanup(plan, engineState(ctx));
        ctx.state.engine = outcome.state;
        await rm(plan.workDir, { recursive: true, force: true });
        await record(deps, ctx, true);
        return outcome.detail;
      },
    },
  ];
}
