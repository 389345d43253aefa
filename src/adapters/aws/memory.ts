// In-memory RdsPort / EcsPort / LogsPort for unit tests. They answer like AWS does where tests care
// (AwsRefusedError for not-found / already-exists / wrong-state, statuses that move only when polled) and
// share the real adapters' polling loop, so a job's wait behaves the same here as in production.
import { AwsRefusedError, rdsPoll, waitFor, type PollResult } from './aws.js';
import type {
  DbInstance,
  DbSnapshot,
  EcsDeployment,
  EcsPort,
  EcsService,
  LogEvent,
  LogsPort,
  RdsPort,
  WaitOptions,
} from './port.js';

/** A call that changes something in AWS (create, restore, scale, redeploy), with its arguments. */
export interface MemoryAwsCall {
  readonly service: 'rds' | 'ecs';
  readonly method: string;
  readonly args: readonly unknown[];
}

export interface MemoryAwsOptions {
  /** Pass one array to several doubles to see their mutating calls in one order. */
  readonly calls?: MemoryAwsCall[];
  readonly now?: () => Date;
}

/**
 * Statuses for the next `polls` describes that end in `final`: `statusesUntil(3)` is
 * creating, creating, available — the third poll sees it available.
 */
export function statusesUntil(polls: number, final = 'available', meanwhile = 'creating'): string[] {
  return [...Array<string>(Math.max(0, polls - 1)).fill(meanwhile), final];
}

/** Queued failures per method: `failNext('createSnapshot', err)` makes the next createSnapshot throw err. */
class FailureQueue<M extends string> {
  private readonly queued = new Map<M, Error[]>();

  add(method: M, error: Error): void {
    const list = this.queued.get(method) ?? [];
    list.push(error);
    this.queued.set(method, list);
  }

  throwIfQueued(method: M): void {
    const error = this.queued.get(method)?.shift();
    if (error) throw error;
  }
}

interface Scripted<T> {
  value: T;
  /** Statuses the next describes report, one each; the last one stays. */
  next: string[];
}

/** What a describe reports: the entry moved on to its next scripted status, if one is left. */
function advance<T>(entry: Scripted<T> | undefined, withStatus: (value: T, status: string) => T): T | undefined {
  if (!entry) return undefined;
  const status = entry.next.shift();
  if (status !== undefined) entry.value = withStatus(entry.value, status);
  return entry.value;
}

type RdsMethod = keyof RdsPort;

export class MemoryRds implements RdsPort {
  /** Every call that changes something, refused or not, in order. Empty = "no AWS change was attempted". */
  readonly calls: MemoryAwsCall[];
  /** Names of every read call, wait polls included. */
  readonly reads: string[] = [];
  /** What a snapshot made by createSnapshot reports on its next describes (it starts `creating`). */
  newSnapshotStatuses: string[] = statusesUntil(2);
  /** What an instance made by restoreFromSnapshot reports on its next describes (it starts `creating`). */
  restoredInstanceStatuses: string[] = ['creating', 'backing-up', 'available'];
  private readonly instances = new Map<string, Scripted<DbInstance>>();
  private readonly snapshots = new Map<string, Scripted<DbSnapshot>>();
  private readonly failures = new FailureQueue<RdsMethod>();
  private readonly now: () => Date;

  constructor(options: MemoryAwsOptions = {}) {
    this.calls = options.calls ?? [];
    this.now = options.now ?? (() => new Date());
  }

  /** Adds or replaces an instance (default: available postgres with an endpoint); `next` scripts its statuses. */
  setInstance(instance: Partial<DbInstance> & { readonly id: string }, next: string[] = []): DbInstance {
    const value: DbInstance = {
      status: 'available',
      endpoint: { address: `${instance.id}.memory.rds.amazonaws.com`, port: 5432 },
      engine: 'postgres',
      engineVersion: '16.4',
      instanceClass: 'db.t3.medium',
      ...instance,
    };
    this.instances.set(instance.id, { value, next: [...next] });
    return value;
  }

  /** Adds or replaces a snapshot (default: available, manual, taken now); `next` scripts its statuses. */
  setSnapshot(
    snapshot: Partial<DbSnapshot> & { readonly id: string; readonly instanceId: string },
    next: string[] = [],
  ): DbSnapshot {
    const value: DbSnapshot = {
      status: 'available',
      createdAt: this.now(),
      type: 'manual',
      allocatedStorageGb: 20,
      percentProgress: 100,
      ...snapshot,
    };
    this.snapshots.set(snapshot.id, { value, next: [...next] });
    return value;
  }

  /** The current state, without counting as a poll. */
  peekInstance(id: string): DbInstance | undefined {
    return this.instances.get(id)?.value;
  }

  peekSnapshot(id: string): DbSnapshot | undefined {
    return this.snapshots.get(id)?.value;
  }

  /** Every instance and snapshot as they are now, without counting as polls (the sandbox's page shows them). */
  peekAll(): { instances: DbInstance[]; snapshots: DbSnapshot[] } {
    return {
      instances: [...this.instances.values()].map((i) => i.value),
      snapshots: [...this.snapshots.values()].map((s) => s.value),
    };
  }

  failNext(method: RdsMethod, error: Error): void {
    this.failures.add(method, error);
  }

  async describeInstance(instanceId: string): Promise<DbInstance | undefined> {
    this.read('describeInstance');
    // RDS reports no endpoint until the instance has one to give.
    return advance(this.instances.get(instanceId), (value, status) => ({
      ...value,
      status,
      endpoint:
        value.endpoint ??
        (status === 'available' ? { address: `${instanceId}.memory.rds.amazonaws.com`, port: 5432 } : undefined),
    }));
  }

  async listSnapshots(instanceId: string): Promise<DbSnapshot[]> {
    this.read('listSnapshots');
    return [...this.snapshots.values()]
      .map((s) => s.value)
      .filter((s) => s.instanceId === instanceId)
      .sort(
        (a, b) =>
          (b.createdAt?.getTime() ?? -Infinity) - (a.createdAt?.getTime() ?? -Infinity) || a.id.localeCompare(b.id),
      );
  }

  async describeSnapshot(snapshotId: string): Promise<DbSnapshot | undefined> {
    this.read('describeSnapshot');
    return advance(this.snapshots.get(snapshotId), (value, status) => ({
      ...value,
      status,
      percentProgress: status === 'available' ? 100 : value.percentProgress,
    }));
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    this.mutate('deleteSnapshot', [snapshotId]);
    this.snapshots.delete(snapshotId);
  }

  async createSnapshot(instanceId: string, snapshotId: string, tags?: Readonly<Record<string, string>>): Promise<void> {
    this.mutate('createSnapshot', [instanceId, snapshotId, ...(tags ? [tags] : [])]);
    const instance = this.instances.get(instanceId)?.value;
    if (!instance)
      throw new AwsRefusedError(
        'rds',
        'DBInstanceNotFoundFault',
        `CreateDBSnapshot: DBInstance ${instanceId} not found.`,
      );
    if (this.snapshots.has(snapshotId)) {
      throw new AwsRefusedError(
        'rds',
        'DBSnapshotAlreadyExistsFault',
        `CreateDBSnapshot: Cannot create the snapshot because a snapshot with the identifier ${snapshotId} already exists.`,
      );
    }
    if (instance.status !== 'available') {
      throw new AwsRefusedError(
        'rds',
        'InvalidDBInstanceStateFault',
        `CreateDBSnapshot: Cannot create a snapshot because the database instance ${instanceId} is not currently in the available state.`,
      );
    }
    this.setSnapshot({ id: snapshotId, instanceId, status: 'creating', percentProgress: 0 }, this.newSnapshotStatuses);
  }

  waitForSnapshot(snapshotId: string, options: WaitOptions): Promise<DbSnapshot> {
    this.failures.throwIfQueued('waitForSnapshot');
    return waitFor(`RDS snapshot ${snapshotId}`, options, async () => {
      const snapshot = await this.describeSnapshot(snapshotId);
      return this.pollResult(snapshot, `snapshot ${snapshotId}`, 'DBSnapshotNotFoundFault');
    });
  }

  async restoreFromSnapshot(snapshotId: string, newInstanceId: string, like: DbInstance): Promise<void> {
    this.mutate('restoreFromSnapshot', [snapshotId, newInstanceId, like]);
    const snapshot = this.snapshots.get(snapshotId)?.value;
    if (!snapshot)
      throw new AwsRefusedError(
        'rds',
        'DBSnapshotNotFoundFault',
        `RestoreDBInstanceFromDBSnapshot: DBSnapshot ${snapshotId} not found.`,
      );
    if (snapshot.status !== 'available') {
      throw new AwsRefusedError(
        'rds',
        'InvalidDBSnapshotStateFault',
        `RestoreDBInstanceFromDBSnapshot: DBSnapshot ${snapshotId} is ${snapshot.status}.`,
      );
    }
    if (this.instances.has(newInstanceId)) {
      throw new AwsRefusedError(
        'rds',
        'DBInstanceAlreadyExistsFault',
        `RestoreDBInstanceFromDBSnapshot: DB instance already exists`,
      );
    }
    this.setInstance(
      {
        ...like,
        id: newInstanceId,
        status: 'creating',
        endpoint: undefined,
      },
      this.restoredInstanceStatuses,
    );
  }

  waitForInstance(instanceId: string, options: WaitOptions): Promise<DbInstance> {
    this.failures.throwIfQueued('waitForInstance');
    return waitFor(`RDS instance ${instanceId}`, options, async () => {
      const instance = await this.describeInstance(instanceId);
      return this.pollResult(instance, `instance ${instanceId}`, 'DBInstanceNotFoundFault');
    });
  }

  private pollResult<T extends { readonly status: string }>(
    seen: T | undefined,
    what: string,
    notFound: string,
  ): PollResult<T> {
    if (!seen) throw new AwsRefusedError('rds', notFound, `${what} not found`);
    return rdsPoll(seen.status, seen, what);
  }

  private read(method: RdsMethod): void {
    this.reads.push(method);
    this.failures.throwIfQueued(method);
  }

  private mutate(method: RdsMethod, args: unknown[]): void {
    this.calls.push({ service: 'rds', method, args });
    this.failures.throwIfQueued(method);
  }
}

interface MemoryServiceState {
  cluster: string;
  name: string;
  status: string;
  desired: number;
  running: number;
  /** Describes left until running reaches desired; running moves a share of the way on each. */
  convergeLeft: number;
  deployments: EcsDeployment[];
  rollout: { left: number; outcome: 'COMPLETED' | 'FAILED' } | undefined;
}

type EcsMethod = keyof EcsPort;

export class MemoryEcs implements EcsPort {
  readonly calls: MemoryAwsCall[];
  readonly reads: string[] = [];
  /** Describes after setDesiredCount until running == desired (running moves step by step meanwhile). */
  convergePolls = 2;
  /** Describes after forceNewDeployment until the new deployment's rollout ends. */
  rolloutPolls = 2;
  /** How the next rollouts end; FAILED is what the deployment circuit breaker reports. */
  rolloutOutcome: 'COMPLETED' | 'FAILED' = 'COMPLETED';
  rolloutFailureReason = 'ECS deployment circuit breaker: tasks failed to start.';
  private readonly services = new Map<string, MemoryServiceState>();
  private readonly failures = new FailureQueue<EcsMethod>();
  private readonly now: () => Date;
  private deploymentCounter = 0;

  constructor(options: MemoryAwsOptions = {}) {
    this.calls = options.calls ?? [];
    this.now = options.now ?? (() => new Date());
  }

  /** Adds or replaces a service with one completed PRIMARY deployment (running defaults to desired). */
  setService(init: { cluster: string; name: string; desired?: number; running?: number; status?: string }): void {
    const desired = init.desired ?? 2;
    const running = init.running ?? desired;
    this.services.set(key(init.cluster, init.name), {
      cluster: init.cluster,
      name: init.name,
      status: init.status ?? 'ACTIVE',
      desired,
      running,
      convergeLeft: running === desired ? 0 : this.convergePolls,
      deployments: [this.deployment('PRIMARY', 'COMPLETED', desired, running)],
      rollout: undefined,
    });
  }

  /** The current state, without counting as a poll. */
  peekService(cluster: string, name: string): EcsService | undefined {
    const state = this.services.get(key(cluster, name));
    return state && snapshotOf(state);
  }

  /** Every service as it is now, without counting as a poll. */
  peekAll(): (EcsService & { readonly cluster: string })[] {
    return [...this.services.values()].map((state) => ({ cluster: state.cluster, ...snapshotOf(state) }));
  }

  failNext(method: EcsMethod, error: Error): void {
    this.failures.add(method, error);
  }

  async describeService(cluster: string, service: string): Promise<EcsService | undefined> {
    this.reads.push('describeService');
    this.failures.throwIfQueued('describeService');
    const state = this.services.get(key(cluster, service));
    if (!state) return undefined;
    this.advance(state);
    return snapshotOf(state);
  }

  async setDesiredCount(cluster: string, service: string, count: number): Promise<void> {
    this.calls.push({ service: 'ecs', method: 'setDesiredCount', args: [cluster, service, count] });
    this.failures.throwIfQueued('setDesiredCount');
    const state = this.activeService(cluster, service);
    if (!Number.isInteger(count) || count < 0) {
      throw new AwsRefusedError(
        'ecs',
        'InvalidParameterException',
        `UpdateService: desiredCount must be a non-negative integer`,
      );
    }
    state.desired = count;
    state.convergeLeft = state.running === count ? 0 : this.convergePolls;
    state.deployments = state.deployments.map((d) => (d.status === 'PRIMARY' ? { ...d, desired: count } : d));
  }

  async forceNewDeployment(cluster: string, service: string): Promise<string | undefined> {
    this.calls.push({ service: 'ecs', method: 'forceNewDeployment', args: [cluster, service] });
    this.failures.throwIfQueued('forceNewDeployment');
    const state = this.activeService(cluster, service);
    const fresh = this.deployment('PRIMARY', 'IN_PROGRESS', state.desired, 0);
    state.deployments = [
      fresh,
      ...state.deployments.map((d) => (d.status === 'PRIMARY' ? { ...d, status: 'ACTIVE' } : d)),
    ];
    state.rollout = { left: this.rolloutPolls, outcome: this.rolloutOutcome };
    return fresh.id;
  }

  private activeService(cluster: string, service: string): MemoryServiceState {
    const state = this.services.get(key(cluster, service));
    if (!state) throw new AwsRefusedError('ecs', 'ServiceNotFoundException', `UpdateService: Service not found.`);
    if (state.status !== 'ACTIVE')
      throw new AwsRefusedError('ecs', 'ServiceNotActiveException', `UpdateService: Service was not ACTIVE.`);
    return state;
  }

  private advance(state: MemoryServiceState): void {
    if (state.convergeLeft > 0) {
      state.running += Math.round((state.desired - state.running) / state.convergeLeft);
      state.convergeLeft--;
    }
    if (state.rollout) {
      state.rollout.left--;
      if (state.rollout.left <= 0) {
        const outcome = state.rollout.outcome;
        state.rollout = undefined;
        state.deployments = state.deployments.flatMap((d) => {
          if (d.status !== 'PRIMARY') return outcome === 'COMPLETED' ? [] : [d];
          return [
            outcome === 'COMPLETED'
              ? {
                  ...d,
                  rolloutState: 'COMPLETED',
                  rolloutStateReason: 'ECS deployment completed.',
                  running: state.desired,
                  desired: state.desired,
                }
              : { ...d, rolloutState: 'FAILED', rolloutStateReason: this.rolloutFailureReason, running: 0 },
          ];
        });
        return;
      }
    }
    if (!state.rollout) {
      state.deployments = state.deployments.map((d) =>
        d.status === 'PRIMARY' && d.rolloutState !== 'FAILED'
          ? {
              ...d,
              desired: state.desired,
              running: state.running,
              pending: Math.max(0, state.desired - state.running),
            }
          : d,
      );
    }
  }

  private deployment(status: string, rolloutState: string, desired: number, running: number): EcsDeployment {
    return {
      id: `ecs-svc/${String(++this.deploymentCounter).padStart(19, '0')}`,
      status,
      rolloutState,
      rolloutStateReason: undefined,
      desired,
      running,
      pending: Math.max(0, desired - running),
      createdAt: this.now(),
    };
  }
}

function key(cluster: string, service: string): string {
  return `${cluster}/${service}`;
}

function snapshotOf(state: MemoryServiceState): EcsService {
  return {
    name: state.name,
    status: state.status,
    desired: state.desired,
    running: state.running,
    pending: Math.max(0, state.desired - state.running),
    deployments: state.deployments.map((d) => ({ ...d })),
  };
}

export interface MemoryLogsQuery {
  readonly logGroup: string;
  readonly query: { readonly since: Date; readonly until?: Date; readonly pattern?: string; readonly limit: number };
}

export class MemoryLogs implements LogsPort {
  /** Every filter call, in order (reads only: logs never change anything). */
  readonly queries: MemoryLogsQuery[] = [];
  private readonly groups = new Map<string, LogEvent[]>();
  private readonly failures = new FailureQueue<'filter'>();

  /** Adds events to a group (creating it); an unknown group answers ResourceNotFoundException, as AWS does. */
  addEvents(
    logGroup: string,
    events: ReadonlyArray<{ at: Date | number; stream?: string; message: string }> = [],
  ): void {
    const list = this.groups.get(logGroup) ?? [];
    for (const e of events) list.push({ at: new Date(e.at), stream: e.stream ?? 'ecs/app/0', message: e.message });
    this.groups.set(logGroup, list);
  }

  failNext(error: Error): void {
    this.failures.add('filter', error);
  }

  async filter(logGroup: string, query: MemoryLogsQuery['query']): Promise<LogEvent[]> {
    this.queries.push({ logGroup, query });
    this.failures.throwIfQueued('filter');
    const events = this.groups.get(logGroup);
    if (!events)
      throw new AwsRefusedError(
        'logs',
        'ResourceNotFoundException',
        `FilterLogEvents: The specified log group does not exist.`,
      );
    const matches = patternMatcher(query.pattern);
    return events
      .filter((e) => e.at >= query.since && (!query.until || e.at <= query.until) && matches(e.message))
      .sort((a, b) => a.at.getTime() - b.at.getTime())
      .slice(0, Math.max(0, query.limit));
  }
}

/**
 * The part of CloudWatch's filter-pattern syntax tests need: a "quoted phrase" matches as a whole; otherwise
 * every space-separated term must appear (case-sensitive, like CloudWatch).
 */
function patternMatcher(pattern: string | undefined): (message: string) => boolean {
  const p = pattern?.trim();
  if (!p) return () => true;
  const quoted = /^"(.*)"$/.exec(p);
  if (quoted) return (m) => m.includes(quoted[1]!);
  const terms = p.split(/\s+/);
  return (m) => terms.every((t) => m.includes(t.replace(/^"|"$/g, '')));
}
