import {
  RDSClient,
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  type DBInstance,
  type DBSnapshot,
} from '@aws-sdk/client-rds';
import { boundedClientOptions, callerFor } from './client.js';
import { AwsRefusedError, type AwsClientLimits, rdsPoll, waitFor, type PollResult } from './aws.js';
import type { DbInstance, DbSnapshot, RdsPort } from './port.js';

// A resource we just created can be invisible to Describe* for a moment (eventual consistency), so a wait
// tolerates this many "not found" polls in a row before calling it gone.
const MISSING_POLLS_TOLERATED = 3;

/**
 * No explicit endpoint: the SDK's chain applies (credentials, AWS_ENDPOINT_URL_RDS), and AWS_REGION unless `region`
 * is given. Bounded: 3 attempts, each with a connect and a whole-request timeout, so a hung endpoint cannot hold a
 * restore job for the SDK's default of "forever"; the job decides about further retries.
 */
export function createRdsClient(limits: AwsClientLimits = {}, region?: string): RDSClient {
  return new RDSClient({ ...boundedClientOptions(limits), ...(region ? { region } : {}) });
}

export function createRdsPort(client: RDSClient = createRdsClient()): RdsPort {
  const call = callerFor('rds');

  async function describeInstance(instanceId: string, signal?: AbortSignal): Promise<DbInstance | undefined> {
    try {
      const out = await call('DescribeDBInstances', () =>
        client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }), { abortSignal: signal }),
      );
      const found = out.DBInstances?.find((i) => i.DBInstanceIdentifier === instanceId) ?? out.DBInstances?.[0];
      return found ? toInstance(found) : undefined;
    } catch (err) {
      if (isRefused(err, 'DBInstanceNotFound')) return undefined;
      throw err;
    }
  }

  async function describeSnapshot(snapshotId: string, signal?: AbortSignal): Promise<DbSnapshot | undefined> {
    try {
      const out = await call('DescribeDBSnapshots', () =>
        client.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId }), { abortSignal: signal }),
      );
      const found = out.DBSnapshots?.find((s) => s.DBSnapshotIdentifier === snapshotId) ?? out.DBSnapshots?.[0];
      return found ? toSnapshot(found) : undefined;
    } catch (err) {
      if (isRefused(err, 'DBSnapshotNotFound')) return undefined;
      throw err;
    }
  }

  return {
    describeInstance: (instanceId) => describeInstance(instanceId),
    describeSnapshot: (snapshotId) => describeSnapshot(snapshotId),

    async listSnapshots(instanceId) {
      const snapshots: DbSnapshot[] = [];
      let marker: string | undefined;
      // Marker pagination; the page cap only guards against an endpoint that hands back markers forever.
      for (let page = 0; page < 100; page++) {
        const out = await call('DescribeDBSnapshots', () =>
          client.send(
            new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: instanceId, MaxRecords: 100, Marker: marker }),
          ),
        );
        for (const s of out.DBSnapshots ?? []) snapshots.push(toSnapshot(s));
        if (!out.Marker || out.Marker === marker) break;
        marker = out.Marker;
      }
      return snapshots.sort(newestFirst);
    },

    async createSnapshot(instanceId, snapshotId, tags) {
      const tagList = Object.entries(tags ?? {}).map(([Key, Value]) => ({ Key, Value }));
      await call('CreateDBSnapshot', () =>
        client.send(
          new CreateDBSnapshotCommand({
            DBInstanceIdentifier: instanceId,
            DBSnapshotIdentifier: snapshotId,
            ...(tagList.length > 0 ? { Tags: tagList } : {}),
          }),
        ),
      );
    },

    async deleteSnapshot(snapshotId) {
      try {
        await call('DeleteDBSnapshot', () =>
          client.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: snapshotId })),
        );
      } catch (err) {
        if (err instanceof AwsRefusedError && err.code.startsWith('DBSnapshotNotFound')) return;
        throw err;
      }
    },

    waitForSnapshot(snapshotId, options) {
      return waitFor(
        `RDS snapshot ${snapshotId}`,
        options,
        missingTolerant('DBSnapshotNotFound', `snapshot ${snapshotId}`, async (signal) => {
          const snapshot = await describeSnapshot(snapshotId, signal);
          return snapshot && { status: snapshot.status, value: snapshot };
        }),
      );
    },

    async restoreFromSnapshot(snapshotId, newInstanceId, like) {
      await call('RestoreDBInstanceFromDBSnapshot', () =>
        client.send(
          new RestoreDBInstanceFromDBSnapshotCommand({
            DBSnapshotIdentifier: snapshotId,
            DBInstanceIdentifier: newInstanceId,
            ...(like.instanceClass ? { DBInstanceClass: like.instanceClass } : {}),
            ...(like.subnetGroupName ? { DBSubnetGroupName: like.subnetGroupName } : {}),
            ...(like.vpcSecurityGroupIds && like.vpcSecurityGroupIds.length > 0
              ? { VpcSecurityGroupIds: [...like.vpcSecurityGroupIds] }
              : {}),
            ...(like.multiAz !== undefined ? { MultiAZ: like.multiAz } : {}),
            ...(like.publiclyAccessible !== undefined ? { PubliclyAccessible: like.publiclyAccessible } : {}),
          }),
        ),
      );
    },

    async copySnapshot(sourceArn, targetSnapshotId, options) {
      // No SourceRegion field in SDK v3: its RDS middleware reads the source region from the ARN and adds the
      // PreSignedUrl itself when that region is not the client's.
      await call('CopyDBSnapshot', () =>
        client.send(
          new CopyDBSnapshotCommand({
            SourceDBSnapshotIdentifier: sourceArn,
            TargetDBSnapshotIdentifier: targetSnapshotId,
            CopyTags: true,
            ...(options?.kmsKeyId ? { KmsKeyId: options.kmsKeyId } : {}),
          }),
        ),
      );
    },

    waitForInstance(instanceId, options) {
      return waitFor(
        `RDS instance ${instanceId}`,
        options,
        missingTolerant('DBInstanceNotFound', `instance ${instanceId}`, async (signal) => {
          const instance = await describeInstance(instanceId, signal);
          return instance && { status: instance.status, value: instance };
        }),
      );
    },
  };
}

/** One wait poll: available → done; a dead status → failed; missing for too long → refused. */
function missingTolerant<T>(
  notFoundCode: string,
  what: string,
  describe: (signal: AbortSignal | undefined) => Promise<{ status: string; value: T } | undefined>,
): (signal: AbortSignal | undefined) => Promise<PollResult<T>> {
  let missing = 0;
  return async (signal) => {
    const seen = await describe(signal);
    if (!seen) {
      if (++missing > MISSING_POLLS_TOLERATED) {
        throw new AwsRefusedError('rds', notFoundCode, `${what} not found`);
      }
      return { state: 'pending', status: 'not-found' };
    }
    missing = 0;
    return rdsPoll(seen.status, seen.value, what);
  };
}

function isRefused(err: unknown, code: string): boolean {
  // The SDK names the modelled faults DBInstanceNotFoundFault / DBSnapshotNotFoundFault.
  return err instanceof AwsRefusedError && (err.code === code || err.code === `${code}Fault`);
}

function newestFirst(a: DbSnapshot, b: DbSnapshot): number {
  // Snapshots without a creation time are still being created: they go last, as they cannot be restored yet.
  const at = a.createdAt?.getTime() ?? -Infinity;
  const bt = b.createdAt?.getTime() ?? -Infinity;
  return bt === at ? a.id.localeCompare(b.id) : bt - at;
}

function toInstance(i: DBInstance): DbInstance {
  const securityGroups = (i.VpcSecurityGroups ?? []).flatMap((g) =>
    g.VpcSecurityGroupId ? [g.VpcSecurityGroupId] : [],
  );
  return {
    id: i.DBInstanceIdentifier ?? '',
    status: i.DBInstanceStatus ?? 'unknown',
    endpoint:
      i.Endpoint?.Address !== undefined ? { address: i.Endpoint.Address, port: i.Endpoint.Port ?? 5432 } : undefined,
    engine: i.Engine ?? '',
    engineVersion: i.EngineVersion ?? '',
    instanceClass: i.DBInstanceClass ?? '',
    ...(i.DBSubnetGroup?.DBSubnetGroupName ? { subnetGroupName: i.DBSubnetGroup.DBSubnetGroupName } : {}),
    ...(securityGroups.length > 0 ? { vpcSecurityGroupIds: securityGroups } : {}),
    ...(i.MultiAZ !== undefined ? { multiAz: i.MultiAZ } : {}),
    ...(i.PubliclyAccessible !== undefined ? { publiclyAccessible: i.PubliclyAccessible } : {}),
  };
}

function toSnapshot(s: DBSnapshot): DbSnapshot {
  return {
    id: s.DBSnapshotIdentifier ?? '',
    instanceId: s.DBInstanceIdentifier ?? '',
    status: s.Status ?? 'unknown',
    createdAt: s.SnapshotCreateTime,
    type: s.SnapshotType ?? '',
    allocatedStorageGb: s.AllocatedStorage,
    percentProgress: s.PercentProgress,
    ...(s.DBSnapshotArn ? { arn: s.DBSnapshotArn } : {}),
    ...(s.OriginalSnapshotCreateTime ? { originalCreatedAt: s.OriginalSnapshotCreateTime } : {}),
    ...(s.Encrypted !== undefined ? { encrypted: s.Encrypted } : {}),
  };
}
