// The runbook steps' AWS calls through the real SDK clients and waiters against the AWS stand-in over HTTP: RDS in
// two regions (CopyDBSnapshot pre-signed by the SDK for the source region), Route 53 (REST-XML, the SDK's
// waitUntilResourceRecordSetsChanged), Secrets Manager (JSON 1.1), and then the step kinds themselves over them.
// Endpoints come from AWS_ENDPOINT_URL_<SERVICE>.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AwsRefusedError, AwsWaitTimeoutError } from '../../src/adapters/aws/aws.js';
import type { AwsRegions } from '../../src/adapters/aws/port.js';
import { createAwsRegions } from '../../src/adapters/aws/regions.js';
import { dnsSwitchKind } from '../../src/domain/runbooks/steps/dns-switch/index.js';
import { rdsRestoreSnapshotKind } from '../../src/domain/runbooks/steps/rds-restore-snapshot/index.js';
import { startFakeAwsInEnv, type FakeAws } from '../support/fake-aws.js';
import { attempt, planStep } from '../support/step-harness.js';

let fake: FakeAws;
let aws: AwsRegions;
let stopFake: () => Promise<void> = async () => undefined;
const fast = { maxWaitSeconds: 5, pollSeconds: 0.01 };

beforeAll(async () => {
  ({ fake, stop: stopFake } = await startFakeAwsInEnv());
  aws = createAwsRegions();
});

afterAll(async () => {
  await stopFake();
});

beforeEach(() => {
  fake.calls.length = 0;
});

describe('RDS across regions', () => {
  const takenAt = new Date('2026-12-03T04:00:00Z');
  beforeAll(() => {
    fake.regions.rds('us-east-1').setSnapshot({
      id: 'rds:production-db-2026-12-03-04-00',
      instanceId: 'production-db',
      type: 'automated',
      encrypted: true,
      createdAt: takenAt,
    });
  });

  it('each region is its own RDS, chosen by the region the request was signed for', async () => {
    const east = await aws.rds('us-east-1').listSnapshots('production-db');
    expect(east.map((s) => [s.id, s.arn, s.encrypted])).toEqual([
      [
        'rds:production-db-2026-12-03-04-00',
        'arn:aws:rds:us-east-1:123456789012:snapshot:rds:production-db-2026-12-03-04-00',
        true,
      ],
    ]);
    expect(await aws.rds('us-west-2').listSnapshots('production-db')).toEqual([]);
    expect(fake.callsTo('DescribeDBSnapshots').map((c) => c.region)).toEqual(['us-east-1', 'us-west-2']);
  });

  it('CopyDBSnapshot in the target region names the source by ARN; the SDK pre-signs it for the source region', async () => {
    const [source] = await aws.rds('us-east-1').listSnapshots('production-db');
    await aws.rds('us-west-2').copySnapshot(source!.arn!, 'production-db-dr-copy', { kmsKeyId: 'alias/dr-key' });
    const copy = fake.callsTo('CopyDBSnapshot')[0]!;
    expect(copy.region).toBe('us-west-2');
    expect(copy.params).toMatchObject({
      SourceDBSnapshotIdentifier: source!.arn,
      TargetDBSnapshotIdentifier: 'production-db-dr-copy',
      KmsKeyId: 'alias/dr-key',
      CopyTags: 'true',
    });
    const presigned = new URL(String(copy.params.PreSignedUrl));
    expect(presigned.hostname).toBe('rds.us-east-1.amazonaws.com');
    expect(presigned.searchParams.get('Action')).toBe('CopyDBSnapshot');
    expect(presigned.searchParams.get('DestinationRegion')).toBe('us-west-2');
    expect(presigned.searchParams.get('X-Amz-Credential')).toMatch(/\/us-east-1\/rds\/aws4_request$/);
    expect(presigned.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);

    const seen: string[] = [];
    const copied = await aws
      .rds('us-west-2')
      .waitForSnapshot('production-db-dr-copy', { ...fast, onPoll: (s) => void seen.push(s) });
    expect(seen).toEqual(['copying', 'copying', 'available']);
    expect(copied).toMatchObject({
      instanceId: 'production-db',
      arn: 'arn:aws:rds:us-west-2:123456789012:snapshot:production-db-dr-copy',
      encrypted: true,
      originalCreatedAt: takenAt,
    });

    await aws.rds('us-west-2').restoreFromSnapshot('production-db-dr-copy', 'production-db-dr', {});
    expect(fake.callsTo('RestoreDBInstanceFromDBSnapshot')[0]).toMatchObject({
      region: 'us-west-2',
      params: { DBSnapshotIdentifier: 'production-db-dr-copy', DBInstanceIdentifier: 'production-db-dr' },
    });
    const dr = await aws.rds('us-west-2').waitForInstance('production-db-dr', fast);
    expect(dr.endpoint?.address).toBe('production-db-dr.memory.rds.amazonaws.com');
    expect(await aws.rds('us-east-1').describeInstance('production-db-dr')).toBeUndefined();
  });

  it("AWS's refusals: a missing source (DBSnapshotNotFound), an encrypted copy without a KMS key", async () => {
    const missing = 'arn:aws:rds:us-east-1:123456789012:snapshot:nope';
    await expect(aws.rds('us-west-2').copySnapshot(missing, 'x')).rejects.toMatchObject({
      code: 'DBSnapshotNotFoundFault',
    });
    const [source] = await aws.rds('us-east-1').listSnapshots('production-db');
    const err = await aws
      .rds('us-west-2')
      .copySnapshot(source!.arn!, 'no-key')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsRefusedError);
    expect(err).toMatchObject({ code: 'InvalidParameterCombination' });
  });
});

describe('Route 53 over REST-XML', () => {
  beforeAll(() => {
    fake.route53.setZone('Z0EXAMPLE', 'solosuccess.ai', [
      { name: 'api.solosuccess.ai', type: 'CNAME', ttl: 300, values: ['api-primary.solosuccess.ai'] },
      { name: 'solosuccess.ai', type: 'A', ttl: 300, values: ['192.0.2.10'] },
      { name: '*.solosuccess.ai', type: 'A', ttl: 300, values: ['192.0.2.11'] },
    ]);
  });

  it('GetHostedZone and ListResourceRecordSets: the zone, the record sets at one name; a missing zone is undefined', async () => {
    const dns = aws.route53();
    expect(await dns.getHostedZone('Z0EXAMPLE')).toEqual({
      id: 'Z0EXAMPLE',
      name: 'solosuccess.ai',
      privateZone: false,
    });
    expect(await dns.getHostedZone('ZNOPE')).toBeUndefined();
    expect(await dns.recordsAt('Z0EXAMPLE', 'api.solosuccess.ai')).toEqual([
      { name: 'api.solosuccess.ai', type: 'CNAME', ttl: 300, values: ['api-primary.solosuccess.ai'] },
    ]);
    expect(await dns.recordsAt('Z0EXAMPLE', '*.solosuccess.ai')).toHaveLength(1);
    expect(await dns.recordsAt('Z0EXAMPLE', 'www.solosuccess.ai')).toEqual([]);
    expect(fake.callsTo('ListResourceRecordSets')[0]!.params).toMatchObject({
      HostedZoneId: 'Z0EXAMPLE',
      name: 'api.solosuccess.ai',
    });
    await expect(dns.recordsAt('ZNOPE', 'api.solosuccess.ai')).rejects.toMatchObject({ code: 'NoSuchHostedZone' });
  });

  it("UPSERT answers PENDING; the SDK's waiter polls GetChange until INSYNC; exactly one change call", async () => {
    fake.route53.syncMs = 150;
    const dns = aws.route53();
    const change = await dns.upsert(
      'Z0EXAMPLE',
      { name: 'api.solosuccess.ai', type: 'CNAME', ttl: 60, values: ['api-dr.solosuccess.ai'] },
      'Lifeline RUN-3',
    );
    expect(change).toEqual({ id: expect.stringMatching(/^C\w+$/), status: 'PENDING' });
    expect(fake.callsTo('ChangeResourceRecordSets')[0]!.params).toMatchObject({
      HostedZoneId: 'Z0EXAMPLE',
      action: 'UPSERT',
      name: 'api.solosuccess.ai',
      type: 'CNAME',
      ttl: '60',
      values: ['api-dr.solosuccess.ai'],
      comment: 'Lifeline RUN-3',
    });
    expect((await dns.getChange(change.id)).status).toBe('PENDING');
    await dns.waitForChange(change.id, { maxWaitSeconds: 5, pollSeconds: 0.02 });
    expect((await dns.getChange(change.id)).status).toBe('INSYNC');
    expect(fake.callsTo('GetChange').length).toBeGreaterThanOrEqual(3);
    expect(fake.callsTo('GetChange')[0]!.params).toMatchObject({ Id: change.id });
    expect(fake.callsTo('ChangeResourceRecordSets')).toHaveLength(1);
    expect(await dns.recordsAt('Z0EXAMPLE', 'api.solosuccess.ai')).toEqual([
      { name: 'api.solosuccess.ai', type: 'CNAME', ttl: 60, values: ['api-dr.solosuccess.ai'] },
    ]);
  });

  it('a change that stays PENDING past the wait is a wait timeout, not a refusal', async () => {
    fake.route53.syncMs = 60_000;
    const dns = aws.route53();
    const change = await dns.upsert(
      'Z0EXAMPLE',
      { name: 'solosuccess.ai', type: 'A', ttl: 60, values: ['192.0.2.20'] },
      'slow',
    );
    await expect(dns.waitForChange(change.id, { maxWaitSeconds: 0.2, pollSeconds: 0.05 })).rejects.toBeInstanceOf(
      AwsWaitTimeoutError,
    );
  });

  it('InvalidChangeBatch (an A record beside a CNAME) and NoSuchHostedZone are refusals', async () => {
    const dns = aws.route53();
    const record = { name: 'api.solosuccess.ai', type: 'A', ttl: 60, values: ['192.0.2.30'] };
    await expect(dns.upsert('Z0EXAMPLE', record, 'x')).rejects.toMatchObject({
      code: 'InvalidChangeBatch',
      message: expect.stringContaining('conflicting RRSet of type CNAME'),
    });
    await expect(dns.upsert('ZNOPE', record, 'x')).rejects.toMatchObject({ code: 'NoSuchHostedZone' });
  });
});

describe('Secrets Manager over JSON 1.1', () => {
  beforeAll(() => {
    fake.regions.secrets('us-west-2').setSecret('prod/app', JSON.stringify({ DATABASE_URL: 'postgres://old' }));
  });

  it('GetSecretValue in the named region; a missing secret (ResourceNotFoundException) is undefined', async () => {
    const secret = await aws.secrets('us-west-2').getSecret('prod/app');
    expect(secret).toMatchObject({
      name: 'prod/app',
      arn: expect.stringMatching(/^arn:aws:secretsmanager:us-west-2:123456789012:secret:prod\/app-/),
      text: '{"DATABASE_URL":"postgres://old"}',
    });
    expect(await aws.secrets('us-east-1').getSecret('prod/app')).toBeUndefined();
  });

  it('PutSecretValue with the same ClientRequestToken twice makes one version; another value under it is refused', async () => {
    const secrets = aws.secrets('us-west-2');
    const token = '8d7a2c3e-1b4f-4e5a-9c6d-0f1e2d3c4b5a';
    const text = JSON.stringify({ DATABASE_URL: 'postgres://new' });
    expect(await secrets.putSecret('prod/app', text, token)).toEqual({ versionId: token });
    await secrets.putSecret('prod/app', text, token);
    expect(fake.regions.secrets('us-west-2').peekVersions('prod/app')).toEqual([
      '{"DATABASE_URL":"postgres://old"}',
      text,
    ]);
    expect(fake.callsTo('PutSecretValue')[0]!.params).toEqual({
      SecretId: 'prod/app',
      SecretString: text,
      ClientRequestToken: token,
    });
    await expect(secrets.putSecret('prod/app', '{}', token)).rejects.toMatchObject({ code: 'ResourceExistsException' });
    await expect(secrets.putSecret('nope', '{}', token)).rejects.toMatchObject({ code: 'ResourceNotFoundException' });
  });
});

describe('ECS per region', () => {
  it('a service of the DR region is found only there', async () => {
    fake.regions.ecs('us-west-2').setService({ cluster: 'solosuccess-dr', name: 'api', desired: 0 });
    expect(await aws.ecs('us-west-2').describeService('solosuccess-dr', 'api')).toMatchObject({ desired: 0 });
    expect(await aws.ecs('us-east-1').describeService('solosuccess-dr', 'api')).toBeUndefined();
    expect(await aws.ecs().describeService('solosuccess-dr', 'api')).toBeUndefined();
  });
});

describe('the step kinds through the real clients', () => {
  const deps = () => ({
    aws,
    pollMs: 10,
    postNotice: () => Promise.reject(new Error('the AWS kinds post nothing')),
  });

  it('dns_switch: an attempt resumed with its recorded change id waits on GetChange: one ChangeResourceRecordSets', async () => {
    fake.route53.setZone('Z0FAILOVER', 'failover.test', [
      { name: 'api.failover.test', type: 'CNAME', ttl: 300, values: ['primary.failover.test'] },
    ]);
    fake.route53.syncMs = 100;
    const params = {
      zone_id: 'Z0FAILOVER',
      record: 'api.failover.test',
      type: 'CNAME',
      value: 'dr.failover.test',
      ttl: 60,
    };
    const first = attempt(dnsSwitchKind, params, deps());
    await first.run();
    // The first attempt's process dies here, while the change is PENDING; the next one starts from its stored state.
    const again = attempt(dnsSwitchKind, params, deps(), first.stored());
    await again.run();
    const result = await again.check();
    expect(result.outputs.change_id).toMatch(/^C\w+$/);
    expect(fake.callsTo('ChangeResourceRecordSets')).toHaveLength(1);
    expect(fake.callsTo('GetChange').length).toBeGreaterThanOrEqual(2);
  });

  it('dns_switch and rds_restore_snapshot plans make read calls only', async () => {
    fake.route53.setZone('Z0DRY', 'dry.test', []);
    const plan = await planStep(
      dnsSwitchKind,
      { zone_id: 'Z0DRY', record: 'api.dry.test', type: 'A', value: '192.0.2.1', ttl: 60 },
      deps(),
    );
    expect(plan.missing).toEqual(['no A record api.dry.test in zone dry.test (Z0DRY)']);
    const rdsPlan = await planStep(
      rdsRestoreSnapshotKind,
      { from_region: 'us-east-1', source_instance: 'nothing-db', region: 'us-west-2', target_instance: 'nothing-dr' },
      deps(),
    );
    expect(rdsPlan.missing).toEqual(['no available snapshot of nothing-db in us-east-1 or us-west-2']);
    expect(fake.calls.length).toBeGreaterThan(0);
    expect(fake.mutatingCalls()).toEqual([]);
  });

  it('rds_restore_snapshot across regions: copy, restore, outputs; CopyDBSnapshot signed for the target region', async () => {
    fake.regions
      .rds('eu-west-1')
      .setSnapshot({ id: 'nightly', instanceId: 'shop-db', createdAt: new Date(Date.now() - 60_000) });
    const params = {
      from_region: 'eu-west-1',
      source_instance: 'shop-db',
      region: 'eu-central-1',
      target_instance: 'shop-db-dr',
    };
    const step = attempt(rdsRestoreSnapshotKind, params, deps());
    await step.run();
    const result = await step.check();
    expect(result.outputs).toEqual({
      instance: 'shop-db-dr',
      endpoint: 'shop-db-dr.memory.rds.amazonaws.com',
      port: '5432',
    });
    expect(result.dataAgeMs).toBeGreaterThanOrEqual(60_000);
    expect(fake.mutatingCalls().map((c) => [c.action, c.region])).toEqual([
      ['CopyDBSnapshot', 'eu-central-1'],
      ['RestoreDBInstanceFromDBSnapshot', 'eu-central-1'],
    ]);
  });
});
