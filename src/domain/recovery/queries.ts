// Read-only lookups for /dr restore list, /dr status and /dr logs. They run on workers (AWS and the stores can be
// slow) and return plain data; src/delivery/slack/recovery-replies.ts renders it.
import type { DbSnapshot, EcsPort, EcsService, LogEvent, LogsPort, RdsPort } from '../../adapters/aws/port.js';
import { isInFuture, latestBackup, parseBackupName, sortNewestFirst, type BackupName } from '../backups/names.js';
import type { BackupStore } from '../../adapters/backup-store/port.js';
import type { EnvironmentConfig, FileConfig } from '../../shared/config.js';
import { probeHealth, type HealthProbeResult } from './health-probe.js';
import { catalogueOf, lastDrillOf, lastDrills, type CatalogueEntry, type DrillRecord } from '../backups/catalogue.js';
import { sidecarName } from '../backups/take.js';
import type { Db } from '../../shared/db/pool.js';

export type QueryRequest = { readonly responseUrl: string; readonly user: string; readonly channel: string } & (
  | { readonly kind: 'restore-list'; readonly env: string }
  | { readonly kind: 'backups'; readonly env: string }
  | { readonly kind: 'status'; readonly env: string | undefined }
  | {
      readonly kind: 'logs';
      readonly env: string;
      readonly service: string;
      readonly sinceMs: number;
      readonly filter: string | undefined;
    }
);

/** A query as the command describes it; the dispatcher adds who asked and where to answer. */
export type QueryWhat = QueryRequest extends infer Q
  ? Q extends unknown
    ? Omit<Q, 'responseUrl' | 'user' | 'channel'>
    : never
  : never;

export interface QueryDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly storeFor: (url: string) => BackupStore;
  readonly rds: RdsPort;
  readonly ecs: EcsPort;
  readonly logs: LogsPort;
}

export interface ListedBackup extends BackupName {
  readonly size: number;
  readonly withinRpo: boolean;
  /** Its name's time is more than 5 minutes ahead: listed, restorable by name, never `latest`. */
  readonly inFuture: boolean;
}

export interface BackupListing {
  readonly env: string;
  readonly location: string;
  readonly rpoMinutes: number;
  readonly backups: readonly ListedBackup[];
  readonly snapshots: readonly DbSnapshot[] | undefined;
  readonly snapshotError: string | undefined;
}

export async function listBackups(deps: QueryDeps, envName: string): Promise<BackupListing> {
  const env = envOf(deps.file, envName);
  const store = deps.storeFor(env.backups.store);
  const now = new Date();
  const objects = await store.list();
  const backups = sortNewestFirst(
    objects.flatMap((o) => {
      const parsed = parseBackupName(env.backups.prefix, o.name);
      if (!parsed) return [];
      return [{ ...parsed, size: o.size, withinRpo: withinRpo(parsed, now, env), inFuture: isInFuture(parsed, now) }];
    }),
  );
  let snapshots: DbSnapshot[] | undefined;
  let snapshotError: string | undefined;
  if (env.database.rds_instance) {
    try {
      snapshots = (await deps.rds.listSnapshots(env.database.rds_instance)).sort(
        (a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0),
      );
    } catch (err) {
      snapshotError = (err as Error).message;
    }
  }
  return {
    env: envName,
    location: store.location,
    rpoMinutes: env.backups.rpo_minutes,
    backups,
    snapshots,
    snapshotError,
  };
}

export interface CataloguedBackup extends ListedBackup {
  /** Lifeline's record of it; undefined for a backup another tool wrote. */
  readonly catalogue: CatalogueEntry | undefined;
  readonly hasSidecar: boolean;
  readonly lastDrill: DrillRecord | undefined;
}

export interface BackupCatalogue {
  readonly env: string;
  readonly location: string;
  readonly rpoMinutes: number;
  readonly retentionDays: number;
  readonly backups: readonly CataloguedBackup[];
  readonly lastDrill: DrillRecord | undefined;
}

/** /dr backups: the store's backups with what the catalogue knows of each (checksum, drills). */
export async function backupCatalogue(deps: QueryDeps, envName: string): Promise<BackupCatalogue> {
  const env = envOf(deps.file, envName);
  const store = deps.storeFor(env.backups.store);
  const now = new Date();
  const [objects, catalogue, drills, lastDrill] = await Promise.all([
    store.list(),
    catalogueOf(deps.db, env.backups.store),
    lastDrills(deps.db, env.backups.store),
    lastDrillOf(deps.db, envName),
  ]);
  const names = new Set(objects.map((o) => o.name));
  const backups = sortNewestFirst(
    objects.flatMap((o) => {
      const parsed = parseBackupName(env.backups.prefix, o.name);
      if (!parsed) return [];
      return [
        {
          ...parsed,
          size: o.size,
          withinRpo: withinRpo(parsed, now, env),
          inFuture: isInFuture(parsed, now),
          catalogue: catalogue.get(o.name),
          hasSidecar: names.has(sidecarName(o.name)),
          lastDrill: drills.get(o.name),
        },
      ];
    }),
  );
  return {
    env: envName,
    location: store.location,
    rpoMinutes: env.backups.rpo_minutes,
    retentionDays: env.backups.retention_days,
    backups,
    lastDrill,
  };
}

export interface EnvStatus {
  readonly env: string;
  readonly rds:
    | { readonly instance: string; readonly status: string }
    | { readonly instance: string; readonly error: string }
    | undefined;
  readonly newestBackup: { readonly name: string; readonly ageMs: number; readonly breached: boolean } | undefined;
  readonly backupError: string | undefined;
  readonly rpoMinutes: number;
  readonly services: readonly ({ readonly name: string } & (
    { readonly service: EcsService } | { readonly error: string }
  ))[];
  readonly health: { readonly url: string; readonly result: HealthProbeResult } | undefined;
}

export async function environmentStatus(deps: QueryDeps, envName: string): Promise<EnvStatus> {
  const env = envOf(deps.file, envName);
  const [rds, backup, services, health] = await Promise.all([
    env.database.rds_instance
      ? deps.rds.describeInstance(env.database.rds_instance).then(
          (i) => ({ instance: env.database.rds_instance!, status: i?.status ?? 'not found' }),
          (err: Error) => ({ instance: env.database.rds_instance!, error: err.message }),
        )
      : Promise.resolve(undefined),
    deps
      .storeFor(env.backups.store)
      .list()
      .then(
        (objects) => {
          const newest = latestBackup(objects.flatMap((o) => parseBackupName(env.backups.prefix, o.name) ?? []));
          if (!newest) return { newest: undefined, error: undefined };
          const ageMs = Date.now() - newest.takenAt.getTime();
          return {
            newest: { name: newest.name, ageMs, breached: ageMs > env.backups.rpo_minutes * 60_000 },
            error: undefined,
          };
        },
        (err: Error) => ({ newest: undefined, error: err.message }),
      ),
    Promise.all(
      (env.ecs?.services ?? []).map((name) =>
        deps.ecs.describeService(env.ecs!.cluster, name).then(
          (service) => (service ? { name, service } : { name, error: 'not found' }),
          (err: Error) => ({ name, error: err.message }),
        ),
      ),
    ),
    env.health_url
      ? probeHealth(env.health_url).then((result) => ({ url: env.health_url!, result }))
      : Promise.resolve(undefined),
  ]);
  return {
    env: envName,
    rds,
    newestBackup: backup.newest,
    backupError: backup.error,
    rpoMinutes: env.backups.rpo_minutes,
    services,
    health,
  };
}

export async function recentLogs(
  deps: QueryDeps,
  request: Extract<QueryWhat, { kind: 'logs' }>,
  signal?: AbortSignal,
): Promise<LogEvent[]> {
  const env = envOf(deps.file, request.env);
  const group = env.ecs?.log_group;
  if (!group) throw new Error(`environment ${request.env} has no log_group`);
  return deps.logs.filter(
    group,
    {
      since: new Date(Date.now() - request.sinceMs),
      ...(request.filter ? { pattern: quotePattern(request.filter) } : {}),
      limit: 2_000,
    },
    signal,
  );
}

/** Free text becomes one quoted term of a CloudWatch filter pattern, so its words are matched literally. */
export function quotePattern(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Young enough for the RPO; a name in the future never is (it says nothing true about the data's age). */
function withinRpo(backup: BackupName, now: Date, env: EnvironmentConfig): boolean {
  const age = now.getTime() - backup.takenAt.getTime();
  return !isInFuture(backup, now) && age <= env.backups.rpo_minutes * 60_000;
}

function envOf(file: FileConfig, name: string): EnvironmentConfig {
  const env = file.environments[name];
  if (!env) throw new Error(`unknown environment ${name}`);
  return env;
}
