// In-memory RdsPort / EcsPort / LogsPort / Route53Port / SecretsPort (and AwsRegions over them) for unit tests. They
// answer like AWS does where tests care (AwsRefusedError for not-found / already-exists / wrong-state, statuses that
// move only when polled) and share the real adapters' polling loop, so a job's wait behaves the same here as in
// production.
import { AwsRefusedError, rdsPoll, waitFor, type PollResult } from './aws.js';
import type {
  AwsRegions,
  DbInstance,
  DbSnapshot,
  DnsChange,
  DnsRecord,
  EcsDeployment,
  EcsPort,
  EcsService,
  HostedZone,
  LogEvent,
  LogsPort,
  RdsPort,
  RestoreShape,
  Route53Port,
  SecretsPort,
  SecretValue,
  WaitOptions,
} from './port.js';

/** A call that changes something in AWS (create, restore, scale, redeploy), with its arguments. */
export interface MemoryAwsCall {
  readonly service: 'rds' | 'ecs' | 'route53' | 'secretsmanager';
  readonly method: string;
  readonly args: readonly unknown[];
}

export interface MemoryAwsOptions {
  /** Pass one array to several doubles to see their mutating calls in one order. */
  readonly calls?: MemoryAwsCall[];
  readonly now?: () => Date;
  /** The region the double stands for (ARNs, cross-region copies); default us-east-1. */
  readonly region?: string;
  /** Another region's RDS, where a cross-region CopyDBSnapshot finds its source. */
  readonly peers?: (region: string) => MemoryRds;
}

/** The account every ARN of the doubles and the stand-in names. */
export const MEMORY_ACCOUNT = '123456789012';
export const MEMORY_DEFAULT_REGION = 'us-east-1';

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
  /** What a snapshot made by copySnapshot reports on its next describes (it starts `pending`). */
  copiedSnapshotStatuses: string[] = statusesUntil(3, 'available', 'copying');
  readonly region: string;
  private readonly instances = new Map<string, Scripted<DbInstance>>();
  private readonly snapshots = new Map<string, Scripted<DbSnapshot>>();
  private readonly failures = new FailureQueue<RdsMethod>();
  private readonly now: () => Date;
  private readonly peers: ((region: string) => MemoryRds) | undefined;

  constructor(options: MemoryAwsOptions = {}) {
    this.calls = options.calls ?? [];
    this.now = options.now ?? (() => new Date());
    this.region = options.region ?? MEMORY_DEFAULT_REGION;
    this.peers = options.peers;
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
      arn: `arn:aws:rds:${this.region}:${MEMORY_ACCOUNT}:snapshot:${snapshot.id}`,
      encrypted: false,
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
      // A copy reports its progress as it goes; a new snapshot's progress is whatever the test set.
      percentProgress:
        status === 'available'
          ? 100
          : status === 'copying'
            ? Math.min(95, (value.percentProgress ?? 0) + 30)
            : value.percentProgress,
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

  async copySnapshot(sourceArn: string, targetSnapshotId: string, options?: { kmsKeyId?: string }): Promise<void> {
    this.mutate('copySnapshot', [sourceArn, targetSnapshotId, ...(options ? [options] : [])]);
    const arn = /^arn:aws[\w-]*:rds:([a-z0-9-]+):\d+:snapshot:(.+)$/.exec(sourceArn);
    const from = arn && (arn[1] === this.region ? this : this.peers?.(arn[1]!));
    const source = arn && from?.peekSnapshot(arn[2]!);
    if (!source) {
      throw new AwsRefusedError('rds', 'DBSnapshotNotFoundFault', `CopyDBSnapshot: DBSnapshot ${sourceArn} not found.`);
    }
    if (source.status !== 'available') {
      throw new AwsRefusedError(
        'rds',
        'InvalidDBSnapshotStateFault',
        `CopyDBSnapshot: Snapshot must have state available but actually has ${source.status}`,
      );
    }
    if (this.snapshots.has(targetSnapshotId)) {
      throw new AwsRefusedError(
        'rds',
        'DBSnapshotAlreadyExistsFault',
        `CopyDBSnapshot: Cannot copy the snapshot because a snapshot with the identifier ${targetSnapshotId} already exists.`,
      );
    }
    if (source.encrypted && arn[1] !== this.region && !options?.kmsKeyId) {
      throw new AwsRefusedError(
        'rds',
        'InvalidParameterCombination',
        'CopyDBSnapshot: KmsKeyId must be specified to copy an encrypted snapshot to another region.',
      );
    }
    this.setSnapshot(
      {
        ...source,
        id: targetSnapshotId,
        status: 'pending',
        percentProgress: 0,
        type: 'manual',
        arn: `arn:aws:rds:${this.region}:${MEMORY_ACCOUNT}:snapshot:${targetSnapshotId}`,
        createdAt: this.now(),
        originalCreatedAt: source.originalCreatedAt ?? source.createdAt,
      },
      this.copiedSnapshotStatuses,
    );
  }

  async restoreFromSnapshot(snapshotId: string, newInstanceId: string, like: RestoreShape): Promise<void> {
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

interface MemoryZone {
  readonly zone: HostedZone;
  records: DnsRecord[];
}

type Route53Method = keyof Route53Port;

/**
 * Route 53: a change applies at once and reads PENDING until `syncMs` after it was made, then INSYNC (as Route 53
 * reports propagation to its servers); refusals with Route 53's codes (NoSuchHostedZone, InvalidChangeBatch,
 * NoSuchChange).
 */
export class MemoryRoute53 implements Route53Port {
  readonly calls: MemoryAwsCall[];
  readonly reads: string[] = [];
  /** How long a change stays PENDING. */
  syncMs = 0;
  private readonly zones = new Map<string, MemoryZone>();
  private readonly changes = new Map<string, { submittedAt: number; syncAt: number }>();
  private readonly failures = new FailureQueue<Route53Method>();
  private changeCounter = 0;

  constructor(options: MemoryAwsOptions = {}) {
    this.calls = options.calls ?? [];
  }

  /** Adds or replaces a public hosted zone with these record sets (names without the trailing dot). */
  setZone(id: string, name: string, records: readonly DnsRecord[] = []): void {
    this.zones.set(id, { zone: { id, name: name.toLowerCase(), privateZone: false }, records: [...records] });
  }

  /** The zone's record sets as they are now, without counting as a read. */
  peekRecords(zoneId: string): readonly DnsRecord[] {
    return this.zones.get(zoneId)?.records ?? [];
  }

  failNext(method: Route53Method, error: Error): void {
    this.failures.add(method, error);
  }

  async getHostedZone(zoneId: string): Promise<HostedZone | undefined> {
    this.read('getHostedZone');
    return this.zones.get(zoneId)?.zone;
  }

  async recordsAt(zoneId: string, name: string): Promise<DnsRecord[]> {
    this.read('recordsAt');
    const wanted = name.toLowerCase().replace(/\.$/, '');
    return this.zoneOf(zoneId, 'ListResourceRecordSets').records.filter((r) => r.name === wanted);
  }

  async upsert(zoneId: string, record: DnsRecord, comment: string): Promise<DnsChange> {
    this.calls.push({ service: 'route53', method: 'upsert', args: [zoneId, record, comment] });
    this.failures.throwIfQueued('upsert');
    const zone = this.zoneOf(zoneId, 'ChangeResourceRecordSets');
    const name = record.name.toLowerCase().replace(/\.$/, '');
    const invalid = (why: string) =>
      new AwsRefusedError('route53', 'InvalidChangeBatch', `ChangeResourceRecordSets: [${why}]`);
    if (name !== zone.zone.name && !name.endsWith(`.${zone.zone.name}`)) {
      throw invalid(`RRSet with DNS name ${name}. is not permitted in zone ${zone.zone.name}.`);
    }
    const others = zone.records.filter((r) => r.name === name && r.type !== record.type);
    if (others.length > 0 && (record.type === 'CNAME' || others.some((r) => r.type === 'CNAME'))) {
      throw invalid(
        `RRSet of type ${record.type} with DNS name ${name}. is not permitted because a conflicting RRSet of type ${others[0]!.type} with the same DNS name already exists in zone ${zone.zone.name}.`,
      );
    }
    if (record.type === 'CNAME' && record.values.length !== 1) {
      throw invalid(`RRSet of type CNAME with DNS name ${name}. must have exactly one value`);
    }
    zone.records = [...zone.records.filter((r) => !(r.name === name && r.type === record.type)), { ...record, name }];
    const id = `C${String(++this.changeCounter).padStart(12, '0')}MEMORY`;
    const now = Date.now();
    this.changes.set(id, { submittedAt: now, syncAt: now + this.syncMs });
    return { id, status: 'PENDING' };
  }

  async getChange(changeId: string): Promise<DnsChange> {
    this.read('getChange');
    const change = this.changes.get(changeId);
    if (!change) {
      throw new AwsRefusedError(
        'route53',
        'NoSuchChange',
        `GetChange: A change with the specified change ID does not exist.`,
      );
    }
    return { id: changeId, status: Date.now() >= change.syncAt ? 'INSYNC' : 'PENDING' };
  }

  /** Every change made so far reads INSYNC from now on: a test that held them PENDING (a long syncMs) lets them go. */
  syncPending(): void {
    const now = Date.now();
    for (const change of this.changes.values()) change.syncAt = Math.min(change.syncAt, now);
  }

  /** When the change was made, for the stand-in's ChangeInfo. */
  submittedAt(changeId: string): Date {
    return new Date(this.changes.get(changeId)?.submittedAt ?? Date.now());
  }

  waitForChange(changeId: string, options: WaitOptions): Promise<void> {
    return waitFor(`Route 53 change ${changeId}`, options, async () => {
      const change = await this.getChange(changeId);
      return change.status === 'INSYNC'
        ? { state: 'done', status: change.status, value: undefined }
        : { state: 'pending', status: change.status };
    });
  }

  private zoneOf(zoneId: string, action: string): MemoryZone {
    const zone = this.zones.get(zoneId);
    if (!zone)
      throw new AwsRefusedError('route53', 'NoSuchHostedZone', `${action}: No hosted zone found with ID: ${zoneId}`);
    return zone;
  }

  private read(method: Route53Method): void {
    this.reads.push(method);
    this.failures.throwIfQueued(method);
  }
}

interface MemorySecret {
  readonly arn: string;
  readonly name: string;
  versions: Array<{ readonly id: string; readonly text: string }>;
}

type SecretsMethod = keyof SecretsPort;

/**
 * Secrets Manager: versions by ClientRequestToken (the token is the version id, as in AWS), so a put repeated with
 * its token and value makes no second version, and the same token with another value is refused.
 */
export class MemorySecrets implements SecretsPort {
  readonly calls: MemoryAwsCall[];
  readonly reads: string[] = [];
  readonly region: string;
  private readonly secrets = new Map<string, MemorySecret>();
  private readonly failures = new FailureQueue<SecretsMethod>();

  constructor(options: MemoryAwsOptions = {}) {
    this.calls = options.calls ?? [];
    this.region = options.region ?? MEMORY_DEFAULT_REGION;
  }

  /** Adds or replaces a secret with one version holding `text`. */
  setSecret(name: string, text: string): void {
    const arn = `arn:aws:secretsmanager:${this.region}:${MEMORY_ACCOUNT}:secret:${name}-AbCdEf`;
    this.secrets.set(name, { arn, name, versions: [{ id: `v-initial-${name}`, text }] });
  }

  /** Every version's text, oldest first, without counting as a read. */
  peekVersions(name: string): readonly string[] {
    return this.secrets.get(name)?.versions.map((v) => v.text) ?? [];
  }

  failNext(method: SecretsMethod, error: Error): void {
    this.failures.add(method, error);
  }

  async getSecret(secretId: string): Promise<SecretValue | undefined> {
    this.reads.push('getSecret');
    this.failures.throwIfQueued('getSecret');
    const secret = this.find(secretId);
    const current = secret?.versions.at(-1);
    return secret && current && { arn: secret.arn, name: secret.name, versionId: current.id, text: current.text };
  }

  async putSecret(secretId: string, text: string, clientRequestToken: string): Promise<{ versionId: string }> {
    this.calls.push({
      service: 'secretsmanager',
      method: 'putSecret',
      args: [secretId, '(value not recorded)', clientRequestToken],
    });
    this.failures.throwIfQueued('putSecret');
    const secret = this.find(secretId);
    if (!secret) {
      throw new AwsRefusedError(
        'secretsmanager',
        'ResourceNotFoundException',
        `PutSecretValue: Secrets Manager can't find the specified secret.`,
      );
    }
    const same = secret.versions.find((v) => v.id === clientRequestToken);
    if (same && same.text !== text) {
      throw new AwsRefusedError(
        'secretsmanager',
        'ResourceExistsException',
        `PutSecretValue: You can't modify an existing version, you can only create a new version.`,
      );
    }
    if (!same) secret.versions.push({ id: clientRequestToken, text });
    return { versionId: clientRequestToken };
  }

  private find(secretId: string): MemorySecret | undefined {
    return this.secrets.get(secretId) ?? [...this.secrets.values()].find((s) => s.arn === secretId);
  }
}

/**
 * AwsRegions over the doubles: one MemoryRds / MemoryEcs / MemorySecrets per region, made on first use, all writing
 * their changes into one `calls` list; RDS copies find their source in the region its ARN names.
 */
export class MemoryAwsRegions implements AwsRegions {
  readonly calls: MemoryAwsCall[];
  readonly defaultRegion: string;
  private readonly rdsByRegion = new Map<string, MemoryRds>();
  private readonly ecsByRegion = new Map<string, MemoryEcs>();
  private readonly secretsByRegion = new Map<string, MemorySecrets>();
  private readonly dns: MemoryRoute53;
  private readonly now: (() => Date) | undefined;

  constructor(options: MemoryAwsOptions = {}) {
    this.calls = options.calls ?? [];
    this.defaultRegion = options.region ?? MEMORY_DEFAULT_REGION;
    this.now = options.now;
    this.dns = new MemoryRoute53({ calls: this.calls });
  }

  rds(region: string = this.defaultRegion): MemoryRds {
    return made(
      this.rdsByRegion,
      region,
      () => new MemoryRds({ ...this.optionsFor(region), peers: (r) => this.rds(r) }),
    );
  }

  ecs(region: string = this.defaultRegion): MemoryEcs {
    return made(this.ecsByRegion, region, () => new MemoryEcs(this.optionsFor(region)));
  }

  secrets(region: string = this.defaultRegion): MemorySecrets {
    return made(this.secretsByRegion, region, () => new MemorySecrets(this.optionsFor(region)));
  }

  route53(): MemoryRoute53 {
    return this.dns;
  }

  private optionsFor(region: string): MemoryAwsOptions {
    return { calls: this.calls, region, ...(this.now ? { now: this.now } : {}) };
  }
}

function made<T>(map: Map<string, T>, key: string, make: () => T): T {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}
