// The real adapters and the real SDK clients against FakeAws over HTTP: proves every call the adapters make is
// serialised the way the fake (modelled on the AWS wire formats) expects, and every answer and error parses
// back into the port's types and our error classes. Endpoints come from AWS_ENDPOINT_URL_<SERVICE>, as in
// production, not from a client option.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AwsRefusedError } from '../../src/adapters/aws/aws.js';
import type { EcsPort, LogsPort, RdsPort } from '../../src/adapters/aws/port.js';
import { createEcsClient, createEcsPort } from '../../src/adapters/aws/ecs.js';
import { createLogsClient, createLogsPort } from '../../src/adapters/aws/logs.js';
import { createRdsClient, createRdsPort } from '../../src/adapters/aws/rds.js';
import { statusesUntil } from '../../src/adapters/aws/memory.js';
import { TransientError } from '../../src/shared/errors.js';
import { startFakeAwsInEnv, type FakeAws } from '../support/fake-aws.js';

let fake: FakeAws;
let rds: RdsPort;
let ecs: EcsPort;
let logs: LogsPort;
let stopFake: () => Promise<void> = async () => undefined;
const fast = { maxWaitSeconds: 5, pollSeconds: 0.01 };

beforeAll(async () => {
  ({ fake, stop: stopFake } = await startFakeAwsInEnv());
  // Production clients (default limits): the SDK finds the endpoint, region and credentials in the env.
  rds = createRdsPort();
  ecs = createEcsPort();
  logs = createLogsPort();
});

afterAll(async () => {
  await stopFake();
});

beforeEach(() => {
  fake.calls.length = 0;
});

describe('RDS over the query protocol', () => {
  beforeAll(() => {
    fake.rds.setInstance({
      id: 'production-db',
      instanceClass: 'db.r6g.large',
      endpoint: { address: 'production-db.abc.us-east-1.rds.amazonaws.com', port: 5432 },
      subnetGroupName: 'private-db',
      vpcSecurityGroupIds: ['sg-1', 'sg-2'],
      multiAz: true,
      publiclyAccessible: false,
    });
  });

  it('DescribeDBInstances: request fields and every mapped field', async () => {
    const instance = await rds.describeInstance('production-db');
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
    expect(fake.calls).toEqual([
      expect.objectContaining({
        service: 'rds',
        action: 'DescribeDBInstances',
        params: { Action: 'DescribeDBInstances', Version: '2014-10-31', DBInstanceIdentifier: 'production-db' },
      }),
    ]);
  });

  it('a missing instance or snapshot (404 DBInstanceNotFound / DBSnapshotNotFound) is undefined', async () => {
    expect(await rds.describeInstance('nope')).toBeUndefined();
    expect(await rds.describeSnapshot('nope')).toBeUndefined();
  });

  it('CreateDBSnapshot with tags, then DescribeDBSnapshots until available after N describes', async () => {
    fake.rds.newSnapshotStatuses = statusesUntil(3);
    await rds.createSnapshot('production-db', 'lifeline-pre-restore-1', { 'lifeline:job': 'J-7', requester: 'U0LEAD' });
    const create = fake.callsTo('CreateDBSnapshot')[0]!;
    expect(create.params).toMatchObject({
      DBInstanceIdentifier: 'production-db',
      DBSnapshotIdentifier: 'lifeline-pre-restore-1',
      'Tags.Tag.1.Key': 'lifeline:job',
      'Tags.Tag.1.Value': 'J-7',
      'Tags.Tag.2.Key': 'requester',
      'Tags.Tag.2.Value': 'U0LEAD',
    });
    const seen: string[] = [];
    const snapshot = await rds.waitForSnapshot('lifeline-pre-restore-1', { ...fast, onPoll: (s) => void seen.push(s) });
    expect(seen).toEqual(['creating', 'creating', 'available']);
    expect(snapshot).toMatchObject({
      id: 'lifeline-pre-restore-1',
      instanceId: 'production-db',
      status: 'available',
      type: 'manual',
      percentProgress: 100,
    });
    expect(snapshot.createdAt).toBeInstanceOf(Date);
    expect(fake.callsTo('DescribeDBSnapshots').map((c) => c.params.DBSnapshotIdentifier)).toEqual(
      Array(3).fill('lifeline-pre-restore-1'),
    );
  });

  it('DescribeDBSnapshots by instance follows Marker pages, newest first', async () => {
    for (let i = 1; i <= 5; i++) {
      fake.rds.setSnapshot({
        id: `rds:production-db-2025-01-0${i}`,
        instanceId: 'production-db',
        type: 'automated',
        createdAt: new Date(`2025-01-0${i}T00:00:00Z`),
      });
    }
    // The adapter asks for 100 a page (the fake honours MaxRecords), so 100 more make a second page.
    for (let i = 0; i < 100; i++)
      fake.rds.setSnapshot({
        id: `old-${i}`,
        instanceId: 'production-db',
        createdAt: new Date(Date.UTC(2024, 0, 1, 0, i)),
      });
    const list = await rds.listSnapshots('production-db');
    expect(list.length).toBeGreaterThanOrEqual(105);
    expect(list[1]!.id).toBe('rds:production-db-2025-01-05');
    expect(list[1]!.type).toBe('automated');
    const pages = fake.callsTo('DescribeDBSnapshots');
    expect(pages).toHaveLength(2);
    expect(pages[0]!.params).toMatchObject({ DBInstanceIdentifier: 'production-db', MaxRecords: '100' });
    expect(pages[1]!.params).toMatchObject({ Marker: '100' });
  });

  it('RestoreDBInstanceFromDBSnapshot copies placement from the source; waitForInstance sees it come up', async () => {
    fake.rds.restoredInstanceStatuses = ['creating', 'backing-up', 'available'];
    const like = (await rds.describeInstance('production-db'))!;
    await rds.restoreFromSnapshot('lifeline-pre-restore-1', 'production-db-restored', like);
    expect(fake.callsTo('RestoreDBInstanceFromDBSnapshot')[0]!.params).toEqual({
      Action: 'RestoreDBInstanceFromDBSnapshot',
      Version: '2014-10-31',
      DBSnapshotIdentifier: 'lifeline-pre-restore-1',
      DBInstanceIdentifier: 'production-db-restored',
      DBInstanceClass: 'db.r6g.large',
      DBSubnetGroupName: 'private-db',
      'VpcSecurityGroupIds.VpcSecurityGroupId.1': 'sg-1',
      'VpcSecurityGroupIds.VpcSecurityGroupId.2': 'sg-2',
      MultiAZ: 'true',
      PubliclyAccessible: 'false',
    });
    const seen: string[] = [];
    const restored = await rds.waitForInstance('production-db-restored', { ...fast, onPoll: (s) => void seen.push(s) });
    expect(seen).toEqual(['creating', 'backing-up', 'available']);
    expect(restored).toMatchObject({
      id: 'production-db-restored',
      instanceClass: 'db.r6g.large',
      subnetGroupName: 'private-db',
      multiAz: true,
    });
    expect(restored.endpoint?.port).toBe(5432);
  });

  it('a restore that ends incompatible-restore rejects the wait for good', async () => {
    fake.rds.restoredInstanceStatuses = ['creating', 'incompatible-restore'];
    await rds.restoreFromSnapshot('lifeline-pre-restore-1', 'doomed', (await rds.describeInstance('production-db'))!);
    await expect(rds.waitForInstance('doomed', fast)).rejects.toBeInstanceOf(AwsRefusedError);
  });

  it('modelled RDS faults parse by name: DBSnapshotAlreadyExists, DBSnapshotNotFound on restore', async () => {
    const dup = await rds.createSnapshot('production-db', 'lifeline-pre-restore-1').catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(AwsRefusedError);
    expect((dup as AwsRefusedError).code).toBe('DBSnapshotAlreadyExistsFault');
    const missing = await rds
      .restoreFromSnapshot('no-such-snap', 'x', (await rds.describeInstance('production-db'))!)
      .catch((e: unknown) => e);
    expect((missing as AwsRefusedError).code).toBe('DBSnapshotNotFoundFault');
  });

  it('AccessDenied (403 in the query error shape) → AwsRefusedError, made once (the SDK does not retry it)', async () => {
    fake.failNext('CreateDBSnapshot');
    const err = await rds.createSnapshot('production-db', 'denied').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsRefusedError);
    expect(err).toMatchObject({ service: 'rds', code: 'AccessDenied' });
    expect((err as Error).message).toContain('not authorized to perform: CreateDBSnapshot');
    expect(fake.callsTo('CreateDBSnapshot')).toHaveLength(1);
  });

  it('a 500 is retried by the SDK (3 attempts in all), then surfaces as a retryable error', async () => {
    fake.failNext('DescribeDBInstances', { code: 'InternalFailure', status: 500, message: 'boom', times: 3 });
    const err = await rds.describeInstance('production-db').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(fake.callsTo('DescribeDBInstances')).toHaveLength(3);
    fake.failNext('DescribeDBInstances', { code: 'Throttling', status: 400, message: 'Rate exceeded', times: 1 });
    expect(await rds.describeInstance('production-db')).toMatchObject({ status: 'available' }); // retried by the SDK
  });
});

describe('ECS over JSON 1.1', () => {
  beforeAll(() => {
    fake.ecs.setService({ cluster: 'solosuccess-production', name: 'solosuccess-ai-service', desired: 2 });
  });

  it('DescribeServices maps counts and deployments; MISSING → undefined', async () => {
    const svc = await ecs.describeService('solosuccess-production', 'solosuccess-ai-service');
    expect(svc).toMatchObject({ name: 'solosuccess-ai-service', status: 'ACTIVE', desired: 2, running: 2, pending: 0 });
    expect(svc!.deployments).toHaveLength(1);
    expect(svc!.deployments[0]).toMatchObject({ status: 'PRIMARY', rolloutState: 'COMPLETED', desired: 2, running: 2 });
    expect(svc!.deployments[0]!.createdAt).toBeInstanceOf(Date);
    expect(fake.calls[0]).toMatchObject({
      service: 'ecs',
      action: 'DescribeServices',
      params: { cluster: 'solosuccess-production', services: ['solosuccess-ai-service'] },
    });
    expect(await ecs.describeService('solosuccess-production', 'nope')).toBeUndefined();
  });

  it('UpdateService desiredCount; running converges over N describes', async () => {
    fake.ecs.convergePolls = 2;
    await ecs.setDesiredCount('solosuccess-production', 'solosuccess-ai-service', 4);
    expect(fake.mutatingCalls()).toEqual([
      expect.objectContaining({
        action: 'UpdateService',
        params: { cluster: 'solosuccess-production', service: 'solosuccess-ai-service', desiredCount: 4 },
      }),
    ]);
    const running: number[] = [];
    for (let i = 0; i < 3; i++)
      running.push((await ecs.describeService('solosuccess-production', 'solosuccess-ai-service'))!.running);
    expect(running).toEqual([3, 4, 4]);
  });

  it('UpdateService forceNewDeployment returns the new PRIMARY id; rollout IN_PROGRESS → COMPLETED', async () => {
    fake.ecs.rolloutPolls = 2;
    fake.ecs.rolloutOutcome = 'COMPLETED';
    const id = await ecs.forceNewDeployment('solosuccess-production', 'solosuccess-ai-service');
    expect(id).toMatch(/^ecs-svc\//);
    expect(fake.callsTo('UpdateService')[0]!.params).toEqual({
      cluster: 'solosuccess-production',
      service: 'solosuccess-ai-service',
      forceNewDeployment: true,
    });
    const states: Array<string | undefined> = [];
    for (let i = 0; i < 2; i++) {
      const svc = await ecs.describeService('solosuccess-production', 'solosuccess-ai-service');
      states.push(svc!.deployments.find((d) => d.id === id)?.rolloutState);
    }
    expect(states).toEqual(['IN_PROGRESS', 'COMPLETED']);
  });

  it('a FAILED rollout carries its reason', async () => {
    fake.ecs.rolloutPolls = 1;
    fake.ecs.rolloutOutcome = 'FAILED';
    const id = await ecs.forceNewDeployment('solosuccess-production', 'solosuccess-ai-service');
    const svc = await ecs.describeService('solosuccess-production', 'solosuccess-ai-service');
    expect(svc!.deployments.find((d) => d.id === id)).toMatchObject({
      rolloutState: 'FAILED',
      rolloutStateReason: fake.ecs.rolloutFailureReason,
    });
    fake.ecs.rolloutOutcome = 'COMPLETED';
  });

  it('ServiceNotFoundException and an injected AccessDeniedException → AwsRefusedError', async () => {
    const missing = await ecs.setDesiredCount('solosuccess-production', 'nope', 1).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'AwsRefusedError', service: 'ecs', code: 'ServiceNotFoundException' });
    fake.failNext('UpdateService');
    const denied = await ecs
      .forceNewDeployment('solosuccess-production', 'solosuccess-ai-service')
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AwsRefusedError);
    expect(denied).toMatchObject({ code: 'AccessDeniedException' });
    expect(fake.callsTo('UpdateService')).toHaveLength(2);
  });

  it('a ServerException (500) is retried, then retryable', async () => {
    fake.failNext('DescribeServices', { code: 'ServerException', status: 500, times: 3 });
    await expect(ecs.describeService('solosuccess-production', 'solosuccess-ai-service')).rejects.toBeInstanceOf(
      TransientError,
    );
    expect(fake.callsTo('DescribeServices')).toHaveLength(3);
  });
});

describe('CloudWatch Logs over JSON 1.1', () => {
  const group = '/ecs/production/solosuccess-ai-service';
  beforeAll(() => {
    fake.logs.addEvents(
      group,
      Array.from({ length: 7 }, (_, i) => ({
        at: Date.UTC(2025, 0, 1, 0, 0, i),
        stream: `ecs/app/${i % 2}`,
        message: `${i % 2 ? 'ERROR' : 'INFO'} line ${i}`,
      })),
    );
  });

  it('FilterLogEvents: ms times, pattern, nextToken pages, oldest first', async () => {
    fake.logPageSize = 2;
    const since = new Date(Date.UTC(2025, 0, 1, 0, 0, 1));
    const until = new Date(Date.UTC(2025, 0, 1, 0, 0, 6));
    const events = await logs.filter(group, { since, until, pattern: 'ERROR', limit: 50 });
    expect(events.map((e) => e.message)).toEqual(['ERROR line 1', 'ERROR line 3', 'ERROR line 5']);
    expect(events[0]).toEqual({
      at: new Date(Date.UTC(2025, 0, 1, 0, 0, 1)),
      stream: 'ecs/app/1',
      message: 'ERROR line 1',
    });
    const pages = fake.callsTo('FilterLogEvents').map((c) => c.params);
    expect(pages).toEqual([
      { logGroupName: group, startTime: since.getTime(), endTime: until.getTime(), filterPattern: 'ERROR', limit: 50 },
      {
        logGroupName: group,
        startTime: since.getTime(),
        endTime: until.getTime(),
        filterPattern: 'ERROR',
        limit: 48,
        nextToken: 'page-2',
      },
    ]);
  });

  it('stops at limit across pages', async () => {
    fake.logPageSize = 2;
    const events = await logs.filter(group, { since: new Date(0), limit: 5 });
    expect(events.map((e) => e.message)).toEqual([
      'INFO line 0',
      'ERROR line 1',
      'INFO line 2',
      'ERROR line 3',
      'INFO line 4',
    ]);
    expect(fake.callsTo('FilterLogEvents').map((c) => c.params.limit)).toEqual([5, 3, 1]);
  });

  it('an unknown group (ResourceNotFoundException) and an injected AccessDeniedException are refusals', async () => {
    await expect(logs.filter('/nope', { since: new Date(0), limit: 5 })).rejects.toMatchObject({
      code: 'ResourceNotFoundException',
    });
    fake.failNext('FilterLogEvents');
    await expect(logs.filter(group, { since: new Date(0), limit: 5 })).rejects.toBeInstanceOf(AwsRefusedError);
  });
});

describe('client limits', () => {
  it('a hung endpoint fails within the request timeout on every attempt, as a retryable error', async () => {
    const slowRds = createRdsPort(createRdsClient({ requestTimeoutMs: 150 }));
    fake.delayMs = 600;
    try {
      const started = Date.now();
      const err = await slowRds.describeInstance('production-db').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransientError);
      expect(((err as Error).cause as Error).name).toBe('TimeoutError');
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      fake.delayMs = 0;
    }
  });

  it('createEcsClient / createLogsClient accept limits too (smoke)', async () => {
    const quickEcs = createEcsPort(createEcsClient({ requestTimeoutMs: 2_000 }));
    const quickLogs = createLogsPort(createLogsClient({ requestTimeoutMs: 2_000 }));
    expect(await quickEcs.describeService('solosuccess-production', 'nope')).toBeUndefined();
    expect(
      await quickLogs.filter('/ecs/production/solosuccess-ai-service', { since: new Date(0), limit: 1 }),
    ).toHaveLength(1);
  });
});
