// The AWS calls Lifeline makes, and nothing more: RDS, ECS and CloudWatch Logs as the domain sees them.

export interface DbInstance {
  readonly id: string;
  /** RDS status: available, backing-up, creating, modifying, ... */
  readonly status: string;
  readonly endpoint: { readonly address: string; readonly port: number } | undefined;
  readonly engine: string;
  readonly engineVersion: string;
  readonly instanceClass: string;
  // Placement copied onto an instance restored "like" this one; absent where RDS did not report them
  // (and in hand-built values), in which case RDS's defaults apply to the restore.
  readonly subnetGroupName?: string;
  readonly vpcSecurityGroupIds?: readonly string[];
  readonly multiAz?: boolean;
  readonly publiclyAccessible?: boolean;
}

export interface DbSnapshot {
  readonly id: string;
  readonly instanceId: string;
  readonly status: string;
  readonly createdAt: Date | undefined;
  readonly type: string;
  readonly allocatedStorageGb: number | undefined;
  readonly percentProgress: number | undefined;
}

export interface WaitOptions {
  readonly maxWaitSeconds: number;
  /** Seconds between polls (fractional allowed, for tests). */
  readonly pollSeconds: number;
  /** Called after each poll with what was seen, for live progress. */
  readonly onPoll?: (status: string) => void | Promise<void>;
  readonly signal?: AbortSignal;
}

export interface RdsPort {
  /** Undefined when RDS says there is no such instance. */
  describeInstance(instanceId: string): Promise<DbInstance | undefined>;
  /** Manual and automated snapshots of the instance, newest first (snapshots still being created last). */
  listSnapshots(instanceId: string): Promise<DbSnapshot[]>;
  /** Undefined when RDS says there is no such snapshot. */
  describeSnapshot(snapshotId: string): Promise<DbSnapshot | undefined>;
  createSnapshot(instanceId: string, snapshotId: string, tags?: Readonly<Record<string, string>>): Promise<void>;
  /** Deletes a manual snapshot; a snapshot that is already gone counts as deleted. */
  deleteSnapshot(snapshotId: string): Promise<void>;
  /** Resolves when the snapshot is `available`; rejects on `failed` or after maxWaitSeconds. */
  waitForSnapshot(snapshotId: string, options: WaitOptions): Promise<DbSnapshot>;
  /**
   * Starts a new instance from a snapshot, with the source instance's class, subnet group, security groups,
   * Multi-AZ and public accessibility (those of them `like` carries).
   */
  restoreFromSnapshot(snapshotId: string, newInstanceId: string, like: DbInstance): Promise<void>;
  /** Resolves when the instance is `available`; rejects on a failed state or after maxWaitSeconds. */
  waitForInstance(instanceId: string, options: WaitOptions): Promise<DbInstance>;
}

export interface EcsDeployment {
  readonly id: string;
  /** PRIMARY, ACTIVE, INACTIVE */
  readonly status: string;
  /** IN_PROGRESS, COMPLETED, FAILED (absent for services without the deployment circuit breaker) */
  readonly rolloutState: string | undefined;
  readonly rolloutStateReason: string | undefined;
  readonly desired: number;
  readonly running: number;
  readonly pending: number;
  readonly createdAt: Date | undefined;
}

export interface EcsService {
  readonly name: string;
  readonly status: string;
  readonly desired: number;
  readonly running: number;
  readonly pending: number;
  readonly deployments: readonly EcsDeployment[];
}

export interface EcsPort {
  /** Undefined when ECS reports the service MISSING; a deleted service may still come back with status INACTIVE. */
  describeService(cluster: string, service: string): Promise<EcsService | undefined>;
  setDesiredCount(cluster: string, service: string, count: number): Promise<void>;
  /** Returns the new PRIMARY deployment's id when ECS reports it. */
  forceNewDeployment(cluster: string, service: string): Promise<string | undefined>;
}

export interface LogEvent {
  readonly at: Date;
  readonly stream: string;
  readonly message: string;
}

export interface LogsPort {
  /** Oldest first, at most `limit` events (following nextToken as needed); `signal` stops it between and in calls. */
  filter(
    logGroup: string,
    query: { readonly since: Date; readonly until?: Date; readonly pattern?: string; readonly limit: number },
    signal?: AbortSignal,
  ): Promise<LogEvent[]>;
}
