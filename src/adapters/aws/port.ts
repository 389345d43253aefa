// The AWS calls Lifeline makes, and nothing more: RDS, ECS, CloudWatch Logs, Route 53 and Secrets Manager as the domain
// sees them, and AwsRegions for the runbook steps that name a region.

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
  /** The full ARN, which a copy into another region names its source by (absent only in hand-built values). */
  readonly arn?: string;
  /** A copy's: when its source was taken, which is how old its data is (a copy's createdAt is the copy's time). */
  readonly originalCreatedAt?: Date;
  /** A copy of an encrypted snapshot into another region needs a KMS key of that region. */
  readonly encrypted?: boolean;
}

/** What a restore copies onto the new instance; an absent field is left to RDS's default. */
export type RestoreShape = Partial<
  Pick<DbInstance, 'instanceClass' | 'subnetGroupName' | 'vpcSecurityGroupIds' | 'multiAz' | 'publiclyAccessible'>
>;

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
  restoreFromSnapshot(snapshotId: string, newInstanceId: string, like: RestoreShape): Promise<void>;
  /**
   * CopyDBSnapshot into this port's region from `sourceArn` (a snapshot of any region, named by its full ARN; the SDK
   * pre-signs the request for the source region). `kmsKeyId`, a key of this region, is needed for an encrypted one.
   */
  copySnapshot(sourceArn: string, targetSnapshotId: string, options?: { readonly kmsKeyId?: string }): Promise<void>;
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

/** One record set of a hosted zone, as the runbook's dns_switch reads and writes it. */
export interface DnsRecord {
  /** Without the trailing dot, lower case. */
  readonly name: string;
  readonly type: string;
  readonly ttl: number | undefined;
  readonly values: readonly string[];
  /** The alias's target when the record is a Route 53 alias (then `values` is empty). */
  readonly aliasTarget?: string;
}

export interface HostedZone {
  readonly id: string;
  /** The zone's domain, without the trailing dot. */
  readonly name: string;
  readonly privateZone: boolean;
}

export interface DnsChange {
  readonly id: string;
  /** PENDING, then INSYNC once every Route 53 server has it. */
  readonly status: string;
}

export interface Route53Port {
  /** Undefined when Route 53 says there is no such zone (NoSuchHostedZone). */
  getHostedZone(zoneId: string): Promise<HostedZone | undefined>;
  /** The record sets named `name` (any type: a CNAME there forbids every other type). */
  recordsAt(zoneId: string, name: string): Promise<DnsRecord[]>;
  /** ChangeResourceRecordSets with one UPSERT; the change starts PENDING. */
  upsert(zoneId: string, record: DnsRecord, comment: string): Promise<DnsChange>;
  getChange(changeId: string): Promise<DnsChange>;
  /** Resolves when the change is INSYNC; rejects after maxWaitSeconds or on the signal. */
  waitForChange(changeId: string, options: WaitOptions): Promise<void>;
}

export interface SecretValue {
  readonly arn: string;
  readonly name: string;
  readonly versionId: string;
  /** SecretString; undefined for a binary secret. */
  readonly text: string | undefined;
}

export interface SecretsPort {
  /** The AWSCURRENT version; undefined when Secrets Manager says there is no such secret. */
  getSecret(secretId: string): Promise<SecretValue | undefined>;
  /**
   * PutSecretValue: a new AWSCURRENT version (the old one stays as AWSPREVIOUS). The same `clientRequestToken` with
   * the same value makes no second version, so a call repeated after a crash is harmless.
   */
  putSecret(secretId: string, text: string, clientRequestToken: string): Promise<{ readonly versionId: string }>;
}

/** The AWS ports per region: `undefined` is the SDK chain's region (AWS_REGION), the one /dr jobs use. */
export interface AwsRegions {
  rds(region?: string): RdsPort;
  ecs(region?: string): EcsPort;
  secrets(region?: string): SecretsPort;
  /** Route 53 is global. */
  route53(): Route53Port;
}
