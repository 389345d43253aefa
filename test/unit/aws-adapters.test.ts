import {
  CloudWatchLogsClient,
  CloudWatchLogsServiceException,
  FilterLogEventsCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-cloudwatch-logs';
import {
  AccessDeniedException,
  ClientException,
  DescribeServicesCommand,
  ECSClient,
  InvalidParameterException,
  ServerException,
  ServiceNotFoundException,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import {
  CreateDBSnapshotCommand,
  DBInstanceNotFoundFault,
  DBSnapshotNotFoundFault,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  RDSServiceException,
  RestoreDBInstanceFromDBSnapshotCommand,
  type DBInstance,
  type DBSnapshot,
} from '@aws-sdk/client-rds';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsRefusedError, AwsWaitTimeoutError } from '../../src/adapters/aws/aws.js';
import type { DbInstance, WaitOptions } from '../../src/adapters/aws/port.js';
import { createLogsClient, createLogsPort } from '../../src/adapters/aws/logs.js';
import { createEcsClient, createEcsPort } from '../../src/adapters/aws/ecs.js';
import { MemoryEcs, MemoryLogs, MemoryRds, statusesUntil } from '../../src/adapters/aws/memory.js';
import { createRdsClient, createRdsPort } from '../../src/adapters/aws/rds.js';
import { TransientError } from '../../src/shared/errors.js';

const clientConfig = { region: 'us-east-1', credentials: { accessKeyId: 'AKIDUNIT', secretAccessKey: 'unit-secret' } };
const rdsClient = new RDSClient(clientConfig);
const ecsClient = new ECSClient(clientConfig);
const logsClient = new CloudWatchLogsClient(clientConfig);
const rdsMock = mockClient(rdsClient);
const ecsMock = mockClient(ecsClient);
const logsMock = mockClient(logsClient);
const rds = createRdsPort(rdsClient);
const ecs = createEcsPort(ecsClient);
const logs = createLogsPort(logsClient);

afterEach(() => {
  rdsMock.reset();
  ecsMock.reset();
  logsMock.reset();
});

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
// What the SDK throws for an error code its model does not name (AccessDenied, Throttling...).
const rdsError = (name: string, status: number, fault: 'client' | 'server' = status >= 500 ? 'server' : 'client') =>
  new RDSServiceException({ name, $fault: fault, message: `${name} from the mock`, ...meta(status) });

const fast = (extra: Partial<WaitOptions> = {}): WaitOptions => ({ maxWaitSeconds: 2, pollSeconds: 0.005, ...extra });

const SOURCE: DBInstance = {
  DBInstanceIdentifier: 'production-db',
  DBInstanceStatus: 'available',
  Endpoint: { Address: 'production-db.abc.us-east-1.rds.amazonaws.com', Port: 5432 },
  Engine: 'postgres',
  EngineVersion: '16.4',
  DBInstanceClass: 'db.r6g.large',
  DBSubnetGroup: { DBSubnetGroupName: 'private-db' },
  VpcSecurityGroups: [
    { VpcSecurityGroupId: 'sg-1', Status: 'active' },
    { VpcSecurityGroupId: 'sg-2', Status: 'active' },
  ],
  MultiAZ: true,
  PubliclyAccessible: false,
};

const snap = (id: string, status: string, at?: string): DBSnapshot => ({
  DBSnapshotIdentifier: id,
  DBInstanceIdentifier: 'production-db',
  Status: status,
  SnapshotCreateTime: at ? new Date(at) : undefined,
  SnapshotType: 'manual',
  AllocatedStorage: 100,
  PercentProgress: status === 'available' ? 100 : 40,
});

describe('client policy', () => {
  it('every client gets 3 attempts and a NodeHttpHandler with connect and request timeouts that throw', async () => {
    for (const client of [createRdsClient(), createEcsClient(), createLogsClient()]) {
      expect(await client.config.maxAttempts()).toBe(3);
      const handler = client.config.requestHandler as unknown as NodeHttpHandler;
      expect(handler).toBeInstanceOf(NodeHttpHandler);
      // The handler resolves its options lazily; this is the promise its first request awaits.
      const cfg = await (handler as unknown as { configProvider: Promise<Record<string, unknown>> }).configProvider;
      expect(cfg.connectionTimeout).toBe(3_000);
      expect(cfg.requestTimeout).toBeGreaterThanOrEqual(15_000);
      expect(cfg.throwOnRequestTimeout).toBe(true);
      client.destroy();
    }
  });
});

describe('RdsPort (SDK)', () => {
  it('describeInstance sends the id and maps the answer, placement included', async () => {
    rdsMock.on(DescribeDBInstancesCommand).resolves({ DBInstances: [SOURCE] });
    const instance = await rds.describeInstance('production-db');
    expect(rdsMock.commandCalls(DescribeDBInstancesCommand)[0]!.args[0].input).toEqual({
      DBInstanceIdentifier: 'production-db',
    });
    expect(instance).toEqual({
      id: 'production-db',
      status: 'available',
      endpoint: { address: 'production-db.abc.us-east-1.rds.amazonaws.com', port: 5432 },
      engine: 'postgres',
      engineVersion: '16.4',
      instanceClass: 'db.r6g.large',
      subnetGroupName: 'private-db',
      vpcSecurityGroupIds: ['sg-1', 'sg-2'],
      multiAz: true,
      publiclyAccessible: false,
    });
  });

  it('describeInstance: no endpoint while creating; DBInstanceNotFound → undefined', async () => {
    rdsMock
      .on(DescribeDBInstancesCommand)
      .resolvesOnce({ DBInstances: [{ DBInstanceIdentifier: 'new-db', DBInstanceStatus: 'creating' }] });
    const creating = await rds.describeInstance('new-db');
    expect(creating).toMatchObject({ id: 'new-db', status: 'creating', endpoint: undefined, instanceClass: '' });
    expect(creating).not.toHaveProperty('subnetGroupName');
    rdsMock
      .on(DescribeDBInstancesCommand)
      .rejects(new DBInstanceNotFoundFault({ message: 'DBInstance gone not found.', ...meta(404) }));
    expect(await rds.describeInstance('gone')).toBeUndefined();
  });

  it('describeSnapshot maps the answer; DBSnapshotNotFound → undefined', async () => {
    rdsMock
      .on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: 'snap-1' })
      .resolves({ DBSnapshots: [snap('snap-1', 'available', '2025-01-02T03:04:05Z')] });
    rdsMock
      .on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: 'nope' })
      .rejects(new DBSnapshotNotFoundFault({ message: 'DBSnapshot nope not found.', ...meta(404) }));
    expect(await rds.describeSnapshot('snap-1')).toEqual({
      id: 'snap-1',
      instanceId: 'production-db',
      status: 'available',
      createdAt: new Date('2025-01-02T03:04:05Z'),
      type: 'manual',
      allocatedStorageGb: 100,
      percentProgress: 100,
    });
    expect(await rds.describeSnapshot('nope')).toBeUndefined();
  });

  it('listSnapshots follows Marker and returns newest first, unfinished ones last', async () => {
    rdsMock
      .on(DescribeDBSnapshotsCommand)
      .resolvesOnce({
        DBSnapshots: [snap('old', 'available', '2025-01-01T00:00:00Z'), snap('making', 'creating')],
        Marker: 'page-2',
      })
      .resolvesOnce({ DBSnapshots: [snap('new', 'available', '2025-01-03T00:00:00Z')] });
    const list = await rds.listSnapshots('production-db');
    expect(list.map((s) => s.id)).toEqual(['new', 'old', 'making']);
    const inputs = rdsMock.commandCalls(DescribeDBSnapshotsCommand).map((c) => c.args[0].input);
    expect(inputs).toEqual([
      { DBInstanceIdentifier: 'production-db', MaxRecords: 100, Marker: undefined },
      { DBInstanceIdentifier: 'production-db', MaxRecords: 100, Marker: 'page-2' },
    ]);
  });

  it('createSnapshot sends ids and tags (no Tags member without tags)', async () => {
    rdsMock.on(CreateDBSnapshotCommand).resolves({});
    await rds.createSnapshot('production-db', 'lifeline-1', { 'lifeline:job': 'J-1', requester: 'U1' });
    await rds.createSnapshot('production-db', 'lifeline-2');
    const inputs = rdsMock.commandCalls(CreateDBSnapshotCommand).map((c) => c.args[0].input);
    expect(inputs).toEqual([
      {
        DBInstanceIdentifier: 'production-db',
        DBSnapshotIdentifier: 'lifeline-1',
        Tags: [
          { Key: 'lifeline:job', Value: 'J-1' },
          { Key: 'requester', Value: 'U1' },
        ],
      },
      { DBInstanceIdentifier: 'production-db', DBSnapshotIdentifier: 'lifeline-2' },
    ]);
  });

  it('restoreFromSnapshot copies class, subnet group, security groups, Multi-AZ and public access from `like`', async () => {
    rdsMock.on(DescribeDBInstancesCommand).resolves({ DBInstances: [SOURCE] });
    rdsMock.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    const like = (await rds.describeInstance('production-db'))!;
    await rds.restoreFromSnapshot('snap-1', 'production-db-restored', like);
    expect(rdsMock.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0]!.args[0].input).toEqual({
      DBSnapshotIdentifier: 'snap-1',
      DBInstanceIdentifier: 'production-db-restored',
      DBInstanceClass: 'db.r6g.large',
      DBSubnetGroupName: 'private-db',
      VpcSecurityGroupIds: ['sg-1', 'sg-2'],
      MultiAZ: true,
      PubliclyAccessible: false,
    });
  });

  it('restoreFromSnapshot leaves out what `like` does not carry', async () => {
    rdsMock.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    const bare: DbInstance = {
      id: 'x',
      status: 'available',
      endpoint: undefined,
      engine: 'postgres',
      engineVersion: '16',
      instanceClass: '',
    };
    await rds.restoreFromSnapshot('snap-1', 'copy', bare);
    expect(rdsMock.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0]!.args[0].input).toEqual({
      DBSnapshotIdentifier: 'snap-1',
      DBInstanceIdentifier: 'copy',
    });
  });
});

describe('error mapping', () => {
  const refused: Array<[string, () => Promise<unknown>, Error]> = [
    ['rds AccessDenied', () => rds.createSnapshot('db', 's'), rdsError('AccessDenied', 403)],
    ['rds InvalidParameterValue', () => rds.createSnapshot('db', 's'), rdsError('InvalidParameterValue', 400)],
    [
      'rds DBInstanceNotFound on a mutation',
      () => rds.createSnapshot('db', 's'),
      new DBInstanceNotFoundFault({ message: 'not found', ...meta(404) }),
    ],
    ['rds UnauthorizedOperation', () => rds.restoreFromSnapshot('s', 'n', {}), rdsError('UnauthorizedOperation', 403)],
    [
      'ecs AccessDeniedException',
      () => ecs.setDesiredCount('c', 's', 2),
      new AccessDeniedException({ message: 'no', ...meta(400) }),
    ],
    [
      'ecs ClientException',
      () => ecs.forceNewDeployment('c', 's'),
      new ClientException({ message: 'bad', ...meta(400) }),
    ],
    [
      'ecs ServiceNotFoundException',
      () => ecs.setDesiredCount('c', 's', 2),
      new ServiceNotFoundException({ message: 'Service not found.', ...meta(400) }),
    ],
    [
      'ecs InvalidParameterException',
      () => ecs.describeService('c', 's'),
      new InvalidParameterException({ message: 'bad', ...meta(400) }),
    ],
    [
      'logs ResourceNotFoundException',
      () => logs.filter('/g', { since: new Date(0), limit: 10 }),
      new ResourceNotFoundException({ message: 'The specified log group does not exist.', ...meta(400) }),
    ],
    [
      'logs ValidationException',
      () => logs.filter('/g', { since: new Date(0), limit: 10 }),
      new CloudWatchLogsServiceException({
        name: 'ValidationException',
        $fault: 'client',
        message: 'bad',
        ...meta(400),
      }),
    ],
  ];
  for (const [label, run, error] of refused) {
    it(`${label} → AwsRefusedError (never retried)`, async () => {
      rdsMock.onAnyCommand().rejects(error);
      ecsMock.onAnyCommand().rejects(error);
      logsMock.onAnyCommand().rejects(error);
      const thrown = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(thrown).toBeInstanceOf(AwsRefusedError);
      expect((thrown as AwsRefusedError).code).toBe(error.name);
      expect((thrown as AwsRefusedError).message).toContain(error.message);
    });
  }

  const retryable: Array<[string, () => Promise<unknown>, Error]> = [
    ['rds Throttling (a 400)', () => rds.createSnapshot('db', 's'), rdsError('Throttling', 400)],
    ['rds InternalFailure (500)', () => rds.describeInstance('db'), rdsError('InternalFailure', 500)],
    ['rds 503 without a known name', () => rds.listSnapshots('db'), rdsError('Unknown', 503)],
    [
      'ecs ServerException',
      () => ecs.describeService('c', 's'),
      new ServerException({ message: 'oops', ...meta(500) }),
    ],
    [
      'ecs ThrottlingException',
      () => ecs.forceNewDeployment('c', 's'),
      Object.assign(new ClientException({ message: 'Rate exceeded', ...meta(400) }), { name: 'ThrottlingException' }),
    ],
    [
      'logs ThrottlingException',
      () => logs.filter('/g', { since: new Date(0), limit: 10 }),
      new CloudWatchLogsServiceException({
        name: 'ThrottlingException',
        $fault: 'client',
        message: 'Rate exceeded',
        ...meta(400),
      }),
    ],
    [
      'a network error (no answer)',
      () => ecs.setDesiredCount('c', 's', 1),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
    ],
    [
      'a request timeout',
      () => rds.describeSnapshot('s'),
      Object.assign(new Error('a request has exceeded the configured 15000 ms requestTimeout.'), {
        name: 'TimeoutError',
      }),
    ],
  ];
  for (const [label, run, error] of retryable) {
    it(`${label} → a plain (Transient) Error, not AwsRefusedError`, async () => {
      rdsMock.onAnyCommand().rejects(error);
      ecsMock.onAnyCommand().rejects(error);
      logsMock.onAnyCommand().rejects(error);
      const thrown = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(thrown).toBeInstanceOf(TransientError);
      expect(thrown).not.toBeInstanceOf(AwsRefusedError);
      expect((thrown as Error).cause).toBe(error);
    });
  }
});

describe('RDS waits', () => {
  it('waitForSnapshot resolves once the snapshot is available, reporting each poll', async () => {
    rdsMock
      .on(DescribeDBSnapshotsCommand)
      .resolvesOnce({ DBSnapshots: [snap('s1', 'creating')] })
      .resolvesOnce({ DBSnapshots: [snap('s1', 'creating')] })
      .resolves({ DBSnapshots: [snap('s1', 'available', '2025-01-01T00:00:00Z')] });
    const seen: string[] = [];
    const result = await rds.waitForSnapshot('s1', fast({ onPoll: (s) => void seen.push(s) }));
    expect(result).toMatchObject({ id: 's1', status: 'available' });
    expect(seen).toEqual(['creating', 'creating', 'available']);
    expect(rdsMock.commandCalls(DescribeDBSnapshotsCommand)).toHaveLength(3);
  });

  it('waitForSnapshot rejects for good on failed', async () => {
    rdsMock
      .on(DescribeDBSnapshotsCommand)
      .resolvesOnce({ DBSnapshots: [snap('s1', 'creating')] })
      .resolves({ DBSnapshots: [snap('s1', 'failed')] });
    const err = await rds.waitForSnapshot('s1', fast()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsRefusedError);
    expect((err as AwsRefusedError).code).toBe('failed');
  });

  it('waitForInstance resolves on available with the endpoint', async () => {
    rdsMock
      .on(DescribeDBInstancesCommand)
      .resolvesOnce({ DBInstances: [{ ...SOURCE, DBInstanceStatus: 'creating', Endpoint: undefined }] })
      .resolvesOnce({ DBInstances: [{ ...SOURCE, DBInstanceStatus: 'backing-up' }] })
      .resolves({ DBInstances: [SOURCE] });
    const seen: string[] = [];
    const instance = await rds.waitForInstance('production-db', fast({ onPoll: (s) => void seen.push(s) }));
    expect(instance.endpoint?.address).toBe('production-db.abc.us-east-1.rds.amazonaws.com');
    expect(seen).toEqual(['creating', 'backing-up', 'available']);
  });

  for (const status of ['failed', 'incompatible-restore', 'incompatible-network', 'deleting']) {
    it(`waitForInstance rejects on ${status}`, async () => {
      rdsMock
        .on(DescribeDBInstancesCommand)
        .resolvesOnce({ DBInstances: [{ ...SOURCE, DBInstanceStatus: 'creating' }] })
        .resolves({ DBInstances: [{ ...SOURCE, DBInstanceStatus: status }] });
      const err = await rds.waitForInstance('production-db', fast()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AwsRefusedError);
      expect((err as Error).message).toContain(status);
      expect(rdsMock.commandCalls(DescribeDBInstancesCommand)).toHaveLength(2);
    });
  }

  it('times out with AwsWaitTimeoutError naming the last status (not a refusal: the job may wait again)', async () => {
    rdsMock.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ ...SOURCE, DBInstanceStatus: 'modifying' }] });
    const started = Date.now();
    const err = await rds
      .waitForInstance('production-db', { maxWaitSeconds: 0.06, pollSeconds: 0.01 })
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(AwsWaitTimeoutError);
    expect(err).not.toBeInstanceOf(AwsRefusedError);
    expect((err as AwsWaitTimeoutError).lastStatus).toBe('modifying');
    expect(rdsMock.commandCalls(DescribeDBInstancesCommand).length).toBeGreaterThanOrEqual(3);
  });

  it('an abort stops the wait at once with the signal reason, mid-sleep', async () => {
    rdsMock.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snap('s1', 'creating')] });
    const controller = new AbortController();
    const reason = new Error('job cancelled');
    const waiting = rds.waitForSnapshot('s1', { maxWaitSeconds: 60, pollSeconds: 30, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 20));
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(rdsMock.commandCalls(DescribeDBSnapshotsCommand)).toHaveLength(1);
  });

  it('an already-aborted signal makes no call', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(rds.waitForSnapshot('s1', fast({ signal: controller.signal }))).rejects.toThrow('stop');
    expect(rdsMock.commandCalls(DescribeDBSnapshotsCommand)).toHaveLength(0);
  });

  it('rides out a throttled poll, but stops at once on a refusal', async () => {
    rdsMock
      .on(DescribeDBSnapshotsCommand)
      .resolvesOnce({ DBSnapshots: [snap('s1', 'creating')] })
      .rejectsOnce(rdsError('Throttling', 400))
      .resolves({ DBSnapshots: [snap('s1', 'available')] });
    const seen: string[] = [];
    await rds.waitForSnapshot('s1', fast({ onPoll: (s) => void seen.push(s) }));
    expect(seen[1]).toMatch(/^error: .*Throttling/);

    rdsMock.reset();
    rdsMock
      .on(DescribeDBSnapshotsCommand)
      .resolvesOnce({ DBSnapshots: [snap('s1', 'creating')] })
      .rejects(rdsError('AccessDenied', 403));
    await expect(rds.waitForSnapshot('s1', fast())).rejects.toBeInstanceOf(AwsRefusedError);
    expect(rdsMock.commandCalls(DescribeDBSnapshotsCommand)).toHaveLength(2);
  });

  it('tolerates a just-created snapshot being invisible for a poll or two, not for ever', async () => {
    const notFound = () => new DBSnapshotNotFoundFault({ message: 'not found', ...meta(404) });
    rdsMock
      .on(DescribeDBSnapshotsCommand)
      .rejectsOnce(notFound())
      .resolves({ DBSnapshots: [snap('s1', 'available')] });
    await expect(rds.waitForSnapshot('s1', fast())).resolves.toMatchObject({ status: 'available' });

    rdsMock.reset();
    rdsMock.on(DescribeDBSnapshotsCommand).rejects(notFound());
    const err = await rds.waitForSnapshot('s1', fast()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsRefusedError);
    expect(rdsMock.commandCalls(DescribeDBSnapshotsCommand)).toHaveLength(4);
  });
});

describe('EcsPort (SDK)', () => {
  const service = {
    serviceName: 'api',
    serviceArn: 'arn:aws:ecs:us-east-1:1:service/prod/api',
    status: 'ACTIVE',
    desiredCount: 3,
    runningCount: 2,
    pendingCount: 1,
    deployments: [
      {
        id: 'ecs-svc/2',
        status: 'PRIMARY',
        rolloutState: 'IN_PROGRESS' as const,
        rolloutStateReason: 'ECS deployment in progress.',
        desiredCount: 3,
        runningCount: 1,
        pendingCount: 1,
        createdAt: new Date('2025-01-01T00:00:00Z'),
      },
      {
        id: 'ecs-svc/1',
        status: 'ACTIVE',
        rolloutState: 'COMPLETED' as const,
        desiredCount: 3,
        runningCount: 1,
        pendingCount: 0,
      },
    ],
  };

  it('describeService sends cluster + [service] and maps counts and deployments', async () => {
    ecsMock.on(DescribeServicesCommand).resolves({ services: [service], failures: [] });
    const result = await ecs.describeService('prod', 'api');
    expect(ecsMock.commandCalls(DescribeServicesCommand)[0]!.args[0].input).toEqual({
      cluster: 'prod',
      services: ['api'],
    });
    expect(result).toEqual({
      name: 'api',
      status: 'ACTIVE',
      desired: 3,
      running: 2,
      pending: 1,
      deployments: [
        {
          id: 'ecs-svc/2',
          status: 'PRIMARY',
          rolloutState: 'IN_PROGRESS',
          rolloutStateReason: 'ECS deployment in progress.',
          desired: 3,
          running: 1,
          pending: 1,
          createdAt: new Date('2025-01-01T00:00:00Z'),
        },
        {
          id: 'ecs-svc/1',
          status: 'ACTIVE',
          rolloutState: 'COMPLETED',
          rolloutStateReason: undefined,
          desired: 3,
          running: 1,
          pending: 0,
          createdAt: undefined,
        },
      ],
    });
  });

  it('describeService: a MISSING failure is undefined; any other failure is a refusal', async () => {
    ecsMock.on(DescribeServicesCommand).resolvesOnce({ services: [], failures: [{ arn: 'arn:x', reason: 'MISSING' }] });
    expect(await ecs.describeService('prod', 'nope')).toBeUndefined();
    ecsMock
      .on(DescribeServicesCommand)
      .resolves({ services: [], failures: [{ arn: 'arn:x', reason: 'AccessDenied', detail: 'not yours' }] });
    await expect(ecs.describeService('prod', 'api')).rejects.toBeInstanceOf(AwsRefusedError);
  });

  it('setDesiredCount sends UpdateService with desiredCount only', async () => {
    ecsMock.on(UpdateServiceCommand).resolves({ service });
    await ecs.setDesiredCount('prod', 'api', 5);
    expect(ecsMock.commandCalls(UpdateServiceCommand)[0]!.args[0].input).toEqual({
      cluster: 'prod',
      service: 'api',
      desiredCount: 5,
    });
  });

  it('forceNewDeployment sends forceNewDeployment and returns the PRIMARY deployment id', async () => {
    ecsMock.on(UpdateServiceCommand).resolvesOnce({ service }).resolves({});
    expect(await ecs.forceNewDeployment('prod', 'api')).toBe('ecs-svc/2');
    expect(ecsMock.commandCalls(UpdateServiceCommand)[0]!.args[0].input).toEqual({
      cluster: 'prod',
      service: 'api',
      forceNewDeployment: true,
    });
    expect(await ecs.forceNewDeployment('prod', 'api')).toBeUndefined();
  });
});

describe('LogsPort (SDK)', () => {
  const ev = (t: number, message: string, stream = 'ecs/api/1') => ({
    timestamp: t,
    message,
    logStreamName: stream,
    eventId: String(t),
    ingestionTime: t,
  });

  it('sends group, times in ms, pattern and limit; follows nextToken; oldest first', async () => {
    logsMock
      .on(FilterLogEventsCommand)
      .resolvesOnce({ events: [ev(3_000, 'c', 'b'), ev(1_000, 'a')], nextToken: 't1' })
      .resolvesOnce({ events: [], nextToken: 't2' }) // AWS may answer empty pages while it scans
      .resolvesOnce({ events: [ev(2_000, 'b')] });
    const since = new Date(500);
    const until = new Date(9_000);
    const events = await logs.filter('/ecs/prod/api', { since, until, pattern: 'ERROR', limit: 100 });
    expect(events).toEqual([
      { at: new Date(1_000), stream: 'ecs/api/1', message: 'a' },
      { at: new Date(2_000), stream: 'ecs/api/1', message: 'b' },
      { at: new Date(3_000), stream: 'b', message: 'c' },
    ]);
    const inputs = logsMock.commandCalls(FilterLogEventsCommand).map((c) => c.args[0].input);
    expect(inputs).toEqual([
      { logGroupName: '/ecs/prod/api', startTime: 500, endTime: 9_000, filterPattern: 'ERROR', limit: 100 },
      {
        logGroupName: '/ecs/prod/api',
        startTime: 500,
        endTime: 9_000,
        filterPattern: 'ERROR',
        limit: 98,
        nextToken: 't1',
      },
      {
        logGroupName: '/ecs/prod/api',
        startTime: 500,
        endTime: 9_000,
        filterPattern: 'ERROR',
        limit: 98,
        nextToken: 't2',
      },
    ]);
  });

  it('stops at `limit` events even when more pages exist; no endTime/pattern when not given', async () => {
    logsMock
      .on(FilterLogEventsCommand)
      .resolvesOnce({ events: [ev(1, 'a'), ev(2, 'b')], nextToken: 't1' })
      .resolvesOnce({ events: [ev(3, 'c'), ev(4, 'd')], nextToken: 't2' })
      .resolves({ events: [ev(5, 'e')] });
    const events = await logs.filter('/g', { since: new Date(0), limit: 3 });
    expect(events.map((e) => e.message)).toEqual(['a', 'b', 'c']);
    const inputs = logsMock.commandCalls(FilterLogEventsCommand).map((c) => c.args[0].input);
    expect(inputs).toHaveLength(2);
    expect(inputs[0]).toEqual({ logGroupName: '/g', startTime: 0, limit: 3 });
  });

  it('stops when the endpoint hands back the same token again', async () => {
    logsMock.on(FilterLogEventsCommand).resolves({ events: [ev(1, 'a')], nextToken: 'same' });
    const events = await logs.filter('/g', { since: new Date(0), limit: 100 });
    expect(logsMock.commandCalls(FilterLogEventsCommand)).toHaveLength(2);
    expect(events).toHaveLength(2);
  });
});

describe('in-memory doubles', () => {
  it('MemoryRds: snapshot → wait → restore like the source, every change recorded, reads are not', async () => {
    const mem = new MemoryRds();
    const source = mem.setInstance({
      id: 'prod',
      subnetGroupName: 'private',
      vpcSecurityGroupIds: ['sg-1'],
      multiAz: true,
    });
    mem.newSnapshotStatuses = statusesUntil(3);
    await mem.describeInstance('prod');
    expect(mem.calls).toEqual([]);
    await mem.createSnapshot('prod', 'pre-restore', { job: 'J1' });
    const seen: string[] = [];
    await mem.waitForSnapshot('pre-restore', fast({ onPoll: (s) => void seen.push(s) }));
    expect(seen).toEqual(['creating', 'creating', 'available']);
    await mem.restoreFromSnapshot('pre-restore', 'prod-restored', source);
    const restored = await mem.waitForInstance('prod-restored', fast());
    expect(restored).toMatchObject({
      id: 'prod-restored',
      status: 'available',
      subnetGroupName: 'private',
      multiAz: true,
    });
    expect(restored.endpoint).toBeDefined();
    expect(mem.calls.map((c) => c.method)).toEqual(['createSnapshot', 'restoreFromSnapshot']);
    expect(mem.reads).toContain('describeSnapshot');
  });

  it('MemoryRds: refusals like AWS, scripted failures and failed restores', async () => {
    const mem = new MemoryRds();
    mem.setInstance({ id: 'prod' });
    await expect(mem.restoreFromSnapshot('nope', 'x', mem.peekInstance('prod')!)).rejects.toMatchObject({
      code: 'DBSnapshotNotFoundFault',
    });
    mem.setSnapshot({ id: 's', instanceId: 'prod' });
    mem.restoredInstanceStatuses = ['creating', 'incompatible-restore'];
    await mem.restoreFromSnapshot('s', 'x', mem.peekInstance('prod')!);
    await expect(mem.waitForInstance('x', fast())).rejects.toBeInstanceOf(AwsRefusedError);
    mem.failNext('createSnapshot', new Error('throttled'));
    await expect(mem.createSnapshot('prod', 's2')).rejects.toThrow('throttled');
    expect(mem.calls).toHaveLength(3); // attempts are recorded even when refused
    mem.setSnapshot({ id: 'slow', instanceId: 'prod', status: 'creating' }, ['creating']);
    await expect(mem.waitForSnapshot('slow', { maxWaitSeconds: 0.03, pollSeconds: 0.01 })).rejects.toBeInstanceOf(
      AwsWaitTimeoutError,
    );
  });

  it('MemoryEcs: running converges to desired over N describes; a rollout completes or FAILS', async () => {
    const mem = new MemoryEcs();
    mem.convergePolls = 3;
    mem.setService({ cluster: 'prod', name: 'api', desired: 1 });
    await mem.setDesiredCount('prod', 'api', 4);
    const running: number[] = [];
    for (let i = 0; i < 4; i++) running.push((await mem.describeService('prod', 'api'))!.running);
    expect(running).toEqual([2, 3, 4, 4]);

    const id = await mem.forceNewDeployment('prod', 'api');
    const first = (await mem.describeService('prod', 'api'))!;
    expect(first.deployments.find((d) => d.status === 'PRIMARY')).toMatchObject({ id, rolloutState: 'IN_PROGRESS' });
    const done = (await mem.describeService('prod', 'api'))!;
    expect(done.deployments).toHaveLength(1);
    expect(done.deployments[0]).toMatchObject({ id, rolloutState: 'COMPLETED', running: 4 });

    mem.rolloutOutcome = 'FAILED';
    mem.rolloutPolls = 1;
    const bad = await mem.forceNewDeployment('prod', 'api');
    const failed = (await mem.describeService('prod', 'api'))!;
    expect(failed.deployments.find((d) => d.id === bad)).toMatchObject({
      rolloutState: 'FAILED',
      rolloutStateReason: mem.rolloutFailureReason,
    });
    expect(mem.calls.map((c) => c.method)).toEqual(['setDesiredCount', 'forceNewDeployment', 'forceNewDeployment']);
    await expect(mem.setDesiredCount('prod', 'nope', 1)).rejects.toMatchObject({ code: 'ServiceNotFoundException' });
    expect(await mem.describeService('prod', 'nope')).toBeUndefined();
  });

  it('MemoryLogs: window, pattern, limit, oldest first; unknown group refused', async () => {
    const mem = new MemoryLogs();
    mem.addEvents('/g', [
      { at: 3_000, message: 'ERROR late' },
      { at: 1_000, message: 'ERROR early' },
      { at: 2_000, message: 'INFO fine' },
      { at: 100, message: 'ERROR too old' },
    ]);
    const got = await mem.filter('/g', { since: new Date(500), pattern: 'ERROR', limit: 10 });
    expect(got.map((e) => e.message)).toEqual(['ERROR early', 'ERROR late']);
    expect(await mem.filter('/g', { since: new Date(0), limit: 1 })).toHaveLength(1);
    await expect(mem.filter('/none', { since: new Date(0), limit: 1 })).rejects.toBeInstanceOf(AwsRefusedError);
    expect(mem.queries).toHaveLength(3);
  });
});
