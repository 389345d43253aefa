// The AWS runbook step kinds against the in-memory AWS (every region's RDS, ECS, Secrets Manager, and Route 53):
// plan (read calls only), run + check, a resumed attempt that finds its recorded change and does not make it again,
// undo, and bad params named by path at startup.
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryAwsRegions } from '../../src/adapters/aws/memory.js';
import { loadRunbooks } from '../../src/domain/runbooks/definitions.js';
import { dnsSwitchKind } from '../../src/domain/runbooks/steps/dns-switch/index.js';
import { ecsRedeployKind } from '../../src/domain/runbooks/steps/ecs-redeploy/index.js';
import { ecsScaleKind } from '../../src/domain/runbooks/steps/ecs-scale/index.js';
import type { StepDeps } from '../../src/domain/runbooks/steps/index.js';
import { rdsRestoreSnapshotKind } from '../../src/domain/runbooks/steps/rds-restore-snapshot/index.js';
import { secretUpdateKind } from '../../src/domain/runbooks/steps/secret-update/index.js';
import { ConfigError } from '../../src/shared/config.js';
import { attempt, planStep } from '../support/step-harness.js';

let aws: MemoryAwsRegions;
let deps: Pick<StepDeps, 'aws' | 'pollMs' | 'postNotice'>;

beforeEach(() => {
  aws = new MemoryAwsRegions();
  deps = {
    aws,
    pollMs: 1,
    postNotice: () => Promise.reject(new Error('the AWS kinds post nothing')),
  };
});

const HOUR = 3_600_000;

describe('rds_restore_snapshot', () => {
  const failover = {
    from_region: 'us-east-1',
    source_instance: 'production-db',
    region: 'us-west-2',
    target_instance: 'production-db-dr',
    kms_key_id: 'arn:aws:kms:us-west-2:123456789012:key/dr',
  };
  let takenAt: Date;

  beforeEach(() => {
    takenAt = new Date(Date.now() - 3 * HOUR);
    const east = aws.rds('us-east-1');
    east.setSnapshot({ id: 'manual-old', instanceId: 'production-db', createdAt: new Date(Date.now() - 30 * HOUR) });
    east.setSnapshot({
      id: 'rds:production-db-auto',
      instanceId: 'production-db',
      type: 'automated',
      createdAt: takenAt,
    });
    east.setSnapshot({ id: 'in-progress', instanceId: 'production-db', status: 'creating', createdAt: new Date() });
  });

  it('plan: the newest available snapshot, its age, the copy; read calls only', async () => {
    const plan = await planStep(rdsRestoreSnapshotKind, failover, deps);
    expect(plan).toEqual({
      does: 'would restore production-db-dr in us-west-2 from snapshot rds:production-db-auto in us-east-1 (taken 3 h ago), copying it to us-west-2 first',
      missing: [],
    });
    expect(aws.calls).toEqual([]);
  });

  it('plan: no available snapshot, an existing target instance, an encrypted snapshot without kms_key_id', async () => {
    aws.rds('us-west-2').setInstance({ id: 'production-db-dr' });
    const noKey = { ...failover, kms_key_id: undefined };
    expect((await planStep(rdsRestoreSnapshotKind, { ...noKey, source_instance: 'other-db' }, deps)).missing).toEqual([
      'no available snapshot of other-db in us-east-1 or us-west-2',
      'an instance production-db-dr already exists in us-west-2',
    ]);
    aws.rds('us-east-1').setSnapshot({ id: 'enc', instanceId: 'production-db', encrypted: true });
    const plan = await planStep(rdsRestoreSnapshotKind, noKey, deps);
    expect(plan.missing).toContain(
      'the snapshot is encrypted: kms_key_id (a KMS key in us-west-2) is needed to copy it there',
    );
    expect(plan.does).toContain('from snapshot enc in us-east-1 (taken 0 s ago, encrypted)');
  });

  it('run copies into the target region and restores, each recorded before it is made; check gives the outputs and the data age', async () => {
    const first = attempt(rdsRestoreSnapshotKind, failover, deps);
    await first.run();
    const copyId = 'lifeline-run-7-production-db-dr';
    const sourceArn = 'arn:aws:rds:us-east-1:123456789012:snapshot:rds:production-db-auto';
    expect(first.changes).toEqual([
      {
        what: `CopyDBSnapshot: ${sourceArn} to us-west-2 as ${copyId}`,
        state: expect.objectContaining({ copy: copyId, snapshot: expect.objectContaining({ arn: sourceArn }) }),
      },
      {
        what: `RestoreDBInstanceFromDBSnapshot: production-db-dr in us-west-2 from snapshot ${copyId}`,
        state: expect.objectContaining({ restoreStarted: true }),
      },
    ]);
    expect(aws.calls.map((c) => [c.method, c.args.slice(0, 2)])).toEqual([
      ['copySnapshot', [sourceArn, copyId]],
      ['restoreFromSnapshot', [copyId, 'production-db-dr']],
    ]);
    expect(aws.calls[0]!.args[2]).toEqual({ kmsKeyId: failover.kms_key_id });
    expect(aws.rds('us-west-2').peekSnapshot(copyId)?.status).toBe('available');
    expect(first.notes).toContain(`copy ${copyId} in us-west-2: copying`);

    const result = await first.check();
    expect(result.outputs).toEqual({
      instance: 'production-db-dr',
      endpoint: 'production-db-dr.memory.rds.amazonaws.com',
      port: '5432',
    });
    expect(result.dataAgeMs).toBeGreaterThanOrEqual(3 * HOUR);
    expect(result.dataAgeMs).toBeLessThan(3 * HOUR + 5_000);
    expect(result.detail).toBe(
      'production-db-dr is available at production-db-dr.memory.rds.amazonaws.com:5432 in us-west-2, restored from snapshot rds:production-db-auto (its data 3 h old)',
    );
    expect(aws.rds('us-east-1').peekInstance('production-db-dr')).toBeUndefined();
  });

  it('a resumed attempt waits on the recorded copy and restore: no second CopyDBSnapshot or restore', async () => {
    const first = attempt(rdsRestoreSnapshotKind, failover, deps);
    await first.run();
    const again = attempt(rdsRestoreSnapshotKind, failover, deps, first.stored());
    await again.run();
    expect((await again.check()).outputs.instance).toBe('production-db-dr');
    expect(again.changes).toEqual([]);
    expect(aws.calls.map((c) => c.method)).toEqual(['copySnapshot', 'restoreFromSnapshot']);
  });

  it('a copy recorded but never made (the process died first) is made under the recorded name, once', async () => {
    const first = attempt(rdsRestoreSnapshotKind, failover, deps);
    aws.rds('us-west-2').failNext('copySnapshot', new Error('connection reset'));
    await expect(first.run()).rejects.toThrow('connection reset');
    expect(first.changes.map((c) => c.what)).toEqual([expect.stringMatching(/^CopyDBSnapshot: /)]);
    const again = attempt(rdsRestoreSnapshotKind, failover, deps, first.stored());
    await again.run();
    expect(aws.calls.map((c) => [c.method, c.args[1]])).toEqual([
      ['copySnapshot', 'lifeline-run-7-production-db-dr'],
      ['copySnapshot', 'lifeline-run-7-production-db-dr'],
      ['restoreFromSnapshot', 'production-db-dr'],
    ]);
  });

  it('a copy already in the target region with newer data is restored as it is: no CopyDBSnapshot', async () => {
    aws.rds('us-west-2').setSnapshot({
      id: 'copied-earlier',
      instanceId: 'production-db',
      createdAt: new Date(),
      originalCreatedAt: new Date(Date.now() - HOUR),
    });
    expect((await planStep(rdsRestoreSnapshotKind, failover, deps)).does).toBe(
      'would restore production-db-dr in us-west-2 from snapshot copied-earlier in us-west-2 (taken 1 h ago)',
    );
    const step = attempt(rdsRestoreSnapshotKind, failover, deps);
    await step.run();
    expect(aws.calls.map((c) => [c.method, c.args[0]])).toEqual([['restoreFromSnapshot', 'copied-earlier']]);
    expect((await step.check()).dataAgeMs).toBeGreaterThanOrEqual(HOUR);
  });

  it('a source region that cannot be read (it is the one down) is passed over for the copies in the target region', async () => {
    aws.rds('us-west-2').setSnapshot({
      id: 'copied-last-week',
      instanceId: 'production-db',
      originalCreatedAt: new Date(Date.now() - 7 * 24 * HOUR),
    });
    aws.rds('us-east-1').failNext('listSnapshots', new Error('connect ETIMEDOUT rds.us-east-1.amazonaws.com'));
    expect((await planStep(rdsRestoreSnapshotKind, failover, deps)).does).toBe(
      'would restore production-db-dr in us-west-2 from snapshot copied-last-week in us-west-2 (taken 7 d 0 h ago); us-east-1 could not be read (connect ETIMEDOUT rds.us-east-1.amazonaws.com), so only the snapshots in us-west-2 were looked at',
    );
    aws.rds('us-east-1').failNext('listSnapshots', new Error('connect ETIMEDOUT rds.us-east-1.amazonaws.com'));
    const step = attempt(rdsRestoreSnapshotKind, failover, deps);
    await step.run();
    expect(step.notes[0]).toBe(
      'us-east-1 could not be read (connect ETIMEDOUT rds.us-east-1.amazonaws.com); restoring from copied-last-week in us-west-2',
    );
    expect(aws.calls.map((c) => c.method)).toEqual(['restoreFromSnapshot']);
    aws.rds('us-east-1').failNext('listSnapshots', new Error('down'));
    aws.rds('us-west-2').failNext('listSnapshots', new Error('also down'));
    await expect(planStep(rdsRestoreSnapshotKind, failover, deps)).rejects.toThrow('also down');
  });

  it('in one region there is no copy: the snapshot itself is restored, with the instance class asked for', async () => {
    const local = { ...failover, from_region: undefined, region: 'us-east-1', instance_class: 'db.r6g.large' };
    const step = attempt(rdsRestoreSnapshotKind, local, deps);
    await step.run();
    expect(aws.calls).toEqual([
      {
        service: 'rds',
        method: 'restoreFromSnapshot',
        args: ['rds:production-db-auto', 'production-db-dr', { instanceClass: 'db.r6g.large' }],
      },
    ]);
    expect((await step.check()).outputs.port).toBe('5432');
  });

  it('run refuses an existing target instance and a source without an available snapshot, changing nothing', async () => {
    aws.rds('us-west-2').setInstance({ id: 'production-db-dr' });
    await expect(attempt(rdsRestoreSnapshotKind, failover, deps).run()).rejects.toThrow(
      'an instance production-db-dr already exists in us-west-2',
    );
    const other = { ...failover, source_instance: 'other-db', target_instance: 'other-dr' };
    await expect(attempt(rdsRestoreSnapshotKind, other, deps).run()).rejects.toThrow(
      'no available snapshot of other-db in us-east-1 or us-west-2',
    );
    expect(aws.calls).toEqual([]);
  });
});

describe('ecs_scale', () => {
  const dr = { region: 'us-west-2', cluster: 'solosuccess-dr', service: 'api', count: 3 };
  beforeEach(() => aws.ecs('us-west-2').setService({ cluster: 'solosuccess-dr', name: 'api', desired: 0 }));

  it('plan reads the service in its region; a missing one is missing', async () => {
    expect(await planStep(ecsScaleKind, dr, deps)).toEqual({
      does: 'would set api in solosuccess-dr (us-west-2) to 3 tasks (now running 0/0 desired)',
      missing: [],
    });
    expect((await planStep(ecsScaleKind, { ...dr, region: 'eu-west-1' }, deps)).missing).toEqual([
      'no ECS service api in cluster solosuccess-dr (eu-west-1)',
    ]);
    expect(aws.calls).toEqual([]);
  });

  it('run sets the count once; check waits until running = desired; a resumed attempt only waits', async () => {
    const step = attempt(ecsScaleKind, dr, deps);
    await step.run();
    expect(step.changes.map((c) => c.what)).toEqual([
      'UpdateService: api in solosuccess-dr (us-west-2) desired count 3',
    ]);
    expect((await step.check()).detail).toBe('api in solosuccess-dr (us-west-2): running 3/3 desired');
    const again = attempt(ecsScaleKind, dr, deps, step.stored());
    await again.run();
    await again.check();
    expect(aws.calls).toEqual([{ service: 'ecs', method: 'setDesiredCount', args: ['solosuccess-dr', 'api', 3] }]);
  });
});

describe('ecs_redeploy', () => {
  const svc = { cluster: 'solosuccess-production', service: 'api' };
  beforeEach(() => aws.ecs().setService({ cluster: svc.cluster, name: 'api', desired: 2 }));

  it('forces one deployment, records its id, follows it to COMPLETED; a resumed attempt follows the same one', async () => {
    const step = attempt(ecsRedeployKind, svc, deps);
    await step.run();
    const id = (step.stored() as { deployment: string }).deployment;
    expect(step.changes).toEqual([
      {
        what: `UpdateService: forced new deployment ${id} of api in solosuccess-production (the default region)`,
        state: { deployment: id },
      },
    ]);
    expect((await step.check()).detail).toBe(
      `api in solosuccess-production (the default region): deployment ${id} COMPLETED, running 2/2 desired`,
    );
    const again = attempt(ecsRedeployKind, svc, deps, step.stored());
    await again.run();
    expect(aws.calls.map((c) => c.method)).toEqual(['forceNewDeployment']);
  });

  it('a rollout the circuit breaker fails fails the check with its reason', async () => {
    aws.ecs().rolloutOutcome = 'FAILED';
    const step = attempt(ecsRedeployKind, svc, deps);
    await step.run();
    await expect(step.check()).rejects.toThrow('rollout FAILED: ECS deployment circuit breaker');
  });
});

describe('dns_switch', () => {
  const cname = {
    zone_id: 'Z0EXAMPLE',
    record: 'api.solosuccess.ai',
    type: 'CNAME',
    value: 'api-dr.solosuccess.ai',
    ttl: 60,
  };
  beforeEach(() => {
    aws.route53().setZone('Z0EXAMPLE', 'solosuccess.ai', [
      { name: 'api.solosuccess.ai', type: 'CNAME', ttl: 300, values: ['api-primary.solosuccess.ai'] },
      { name: 'solosuccess.ai', type: 'TXT', ttl: 300, values: ['"v=spf1 -all"'] },
    ]);
    aws.route53().syncMs = 20;
  });

  it('plan reads the zone and the record: from what to what', async () => {
    expect(await planStep(dnsSwitchKind, cname, deps)).toEqual({
      does: 'would change CNAME api.solosuccess.ai in zone solosuccess.ai from api-primary.solosuccess.ai (TTL 300) to api-dr.solosuccess.ai (TTL 60) and wait until Route 53 has it everywhere (INSYNC)',
      missing: [],
    });
    expect(aws.calls).toEqual([]);
  });

  it('plan names what is missing: the zone, a name outside it, the record, a CNAME beside another type', async () => {
    const missing = async (over: object) => (await planStep(dnsSwitchKind, { ...cname, ...over }, deps)).missing;
    expect(await missing({ zone_id: 'ZNOPE' })).toEqual(['no Route 53 hosted zone ZNOPE']);
    expect(await missing({ record: 'api.example.com' })).toEqual([
      'api.example.com is not in zone solosuccess.ai (Z0EXAMPLE)',
    ]);
    expect(await missing({ record: 'www.solosuccess.ai' })).toEqual([
      'no CNAME record www.solosuccess.ai in zone solosuccess.ai (Z0EXAMPLE)',
    ]);
    expect(await missing({ type: 'A', value: '192.0.2.7' })).toEqual([
      'no A record api.solosuccess.ai in zone solosuccess.ai (Z0EXAMPLE)',
      'api.solosuccess.ai also has CNAME records: Route 53 allows no other record beside a CNAME',
    ]);
  });

  it('run makes one UPSERT and records its change id; check waits for INSYNC and reads the record back', async () => {
    const step = attempt(dnsSwitchKind, cname, deps);
    await step.run();
    const change = (step.stored() as { change: string }).change;
    expect(step.changes).toEqual([
      {
        what: `Route 53 UPSERT CNAME api.solosuccess.ai -> api-dr.solosuccess.ai (TTL 60) in zone Z0EXAMPLE: change ${change}`,
        state: { change },
      },
    ]);
    expect((await aws.route53().getChange(change)).status).toBe('PENDING');
    const result = await step.check();
    expect(result).toEqual({
      detail: `CNAME api.solosuccess.ai -> api-dr.solosuccess.ai (TTL 60); change ${change} INSYNC`,
      outputs: { change_id: change },
    });
    expect(aws.route53().reads.filter((r) => r === 'getChange').length).toBeGreaterThanOrEqual(2);
  });

  it('a resumed attempt with a recorded change id waits on GetChange and never changes the record again', async () => {
    const first = attempt(dnsSwitchKind, cname, deps);
    await first.run();
    const again = attempt(dnsSwitchKind, cname, deps, first.stored());
    await again.run();
    expect((await again.check()).outputs.change_id).toBe((first.stored() as { change: string }).change);
    expect(again.changes).toEqual([]);
    expect(aws.calls.filter((c) => c.method === 'upsert')).toHaveLength(1);
  });

  it('a TXT value is quoted as Route 53 holds it; a record changed by someone else meanwhile fails the check', async () => {
    const txt = { ...cname, record: 'solosuccess.ai', type: 'TXT', value: 'v=spf1 include:dr -all' };
    const step = attempt(dnsSwitchKind, txt, deps);
    await step.run();
    expect(aws.calls[0]!.args[1]).toMatchObject({ values: ['"v=spf1 include:dr -all"'] });
    await step.check();
    const other = attempt(dnsSwitchKind, cname, deps);
    await other.run();
    await aws
      .route53()
      .upsert('Z0EXAMPLE', { name: 'api.solosuccess.ai', type: 'CNAME', ttl: 60, values: ['elsewhere.example'] }, '');
    await expect(other.check()).rejects.toThrow('reads elsewhere.example (TTL 60), not api-dr.solosuccess.ai');
  });
});

describe('secret_update', () => {
  const OLD = 'postgres://app:old-pass@primary:5432/app';
  const NEW = 'postgres://app:new-pass@dr:5432/app';
  const update = { region: 'us-west-2', secret_id: 'prod/app', key: 'DATABASE_URL', value: NEW };
  const secrets = () => aws.secrets('us-west-2');
  const current = () => JSON.parse(secrets().peekVersions('prod/app').at(-1)!) as Record<string, unknown>;
  beforeEach(() =>
    secrets().setSecret('prod/app', JSON.stringify({ DATABASE_URL: OLD, REDIS_URL: 'redis://r', PORT: 3000 })),
  );

  it('plan: which key, kept keys; no value shown; missing: no secret, not a JSON object', async () => {
    const plan = await planStep(secretUpdateKind, update, deps);
    expect(plan).toEqual({
      does: 'would set key DATABASE_URL of secret prod/app (us-west-2) (replacing its value), keeping its 2 other keys',
      missing: [],
    });
    expect((await planStep(secretUpdateKind, { ...update, secret_id: 'nope' }, deps)).missing).toEqual([
      'no secret nope (us-west-2)',
    ]);
    secrets().setSecret('list', '["a"]');
    secrets().setSecret('plain', 'hunter2');
    expect((await planStep(secretUpdateKind, { ...update, secret_id: 'list' }, deps)).missing).toEqual([
      'secret list (us-west-2) is not a JSON object',
    ]);
    expect((await planStep(secretUpdateKind, { ...update, secret_id: 'plain' }, deps)).missing).toEqual([
      'secret plain (us-west-2) is not JSON',
    ]);
    expect(aws.calls).toEqual([]);
  });

  it('run sets the key and keeps the rest; the old value is in the state only, the token recorded before the put', async () => {
    const step = attempt(secretUpdateKind, update, deps);
    await step.run();
    expect(current()).toEqual({ DATABASE_URL: NEW, REDIS_URL: 'redis://r', PORT: 3000 });
    const state = step.stored() as { token: string; hadKey: boolean; old: string };
    expect(state).toEqual({ token: expect.any(String), hadKey: true, old: JSON.stringify(OLD) });
    expect(step.changes).toEqual([
      {
        what: `PutSecretValue: key DATABASE_URL of secret prod/app (us-west-2) (request ${state.token})`,
        state,
      },
    ]);
    const result = await step.check();
    expect(result.detail).toBe('key DATABASE_URL of secret prod/app (us-west-2) set; read back');
    const said = JSON.stringify([step.changes.map((c) => c.what), step.notes, result, aws.calls]);
    expect(said).not.toContain('pass@');
  });

  it('a resumed attempt puts with the recorded token: no second version', async () => {
    const first = attempt(secretUpdateKind, update, deps);
    await first.run();
    const again = attempt(secretUpdateKind, update, deps, first.stored());
    await again.run();
    await again.check();
    expect(secrets().peekVersions('prod/app')).toHaveLength(2);
    expect(again.changes).toEqual([]);
  });

  it('undo puts the old value back (once, however often it is asked), or removes a key the step added', async () => {
    const step = attempt(secretUpdateKind, update, deps);
    await step.run();
    expect(await step.undo()).toBe('put back the earlier value of key DATABASE_URL of secret prod/app (us-west-2)');
    expect(current()).toEqual({ DATABASE_URL: OLD, REDIS_URL: 'redis://r', PORT: 3000 });
    const resumed = attempt(secretUpdateKind, update, deps, step.stored());
    await resumed.undo();
    expect(secrets().peekVersions('prod/app')).toHaveLength(3);

    const added = attempt(secretUpdateKind, { ...update, key: 'DR_MODE', value: 'on' }, deps);
    await added.run();
    expect(current().DR_MODE).toBe('on');
    expect(await added.undo()).toBe('removed key DR_MODE of secret prod/app (us-west-2), which the step had added');
    expect(current()).not.toHaveProperty('DR_MODE');
    expect(await attempt(secretUpdateKind, update, deps).undo()).toBeUndefined();
  });
});

describe('the AWS kinds in a runbook, checked at startup', () => {
  const runbook = (steps: Record<string, unknown>[]) => ({
    runbooks: { 'region-failover': { title: 'Fail over', approval: 'once' as const, steps } },
  });

  it('takes the contract example, outputs of rds_restore_snapshot used by later steps', () => {
    const loaded = loadRunbooks(
      runbook([
        {
          id: 'dr_db',
          rds_restore_snapshot: {
            from_region: 'us-east-1',
            source_instance: 'production-solosuccess-db',
            region: 'us-west-2',
            target_instance: 'production-solosuccess-db-dr',
          },
        },
        { ecs_scale: { region: 'us-west-2', cluster: 'solosuccess-dr', service: 'solosuccess-ai-service', count: 3 } },
        {
          secret_update: {
            region: 'us-west-2',
            secret_id: 'prod/app',
            key: 'DB_HOST',
            value: '{{steps.dr_db.endpoint}}',
          },
        },
        { ecs_redeploy: { region: 'us-west-2', cluster: 'solosuccess-dr', service: 'solosuccess-ai-service' } },
        {
          dns_switch: {
            zone_id: 'Z0EXAMPLE',
            record: 'db.solosuccess.ai',
            type: 'CNAME',
            value: '{{steps.dr_db.endpoint}}',
            ttl: 60,
          },
        },
      ]),
    );
    expect(loaded.get('region-failover')!.steps.map((s) => s.kind.id)).toEqual([
      'rds_restore_snapshot',
      'ecs_scale',
      'secret_update',
      'ecs_redeploy',
      'dns_switch',
    ]);
  });

  it('names every bad param by its path', () => {
    let problems: readonly string[] = [];
    try {
      loadRunbooks(
        runbook([
          {
            dns_switch: {
              zone_id: 'example',
              record: 'api.solosuccess.ai',
              type: 'CNAMEX',
              value: 'x',
              ttl: 60,
              extra: 1,
            },
          },
          { rds_restore_snapshot: { source_instance: 'db--1', region: 'mars', target_instance: 'dr' } },
          { ecs_scale: { cluster: 'c', service: 's', count: -1 } },
          { secret_update: { secret_id: 's', key: 'k', value: '{{steps.dr_db.port}}' } },
        ]),
      );
    } catch (err) {
      problems = err instanceof ConfigError ? err.problems : [];
    }
    const at = 'runbooks.region-failover.steps';
    expect(problems).toEqual([
      `${at}[0].dns_switch.zone_id: must be a Route 53 hosted zone id (Z…)`,
      `${at}[0].dns_switch.type: Invalid option: expected one of "A"|"AAAA"|"CNAME"|"TXT"|"MX"|"NS"|"SRV"|"CAA"|"PTR"|"NAPTR"|"DS"|"SPF"`,
      `${at}[0].dns_switch.extra: unknown key`,
      `${at}[1].rds_restore_snapshot.source_instance: must be an RDS identifier: a letter, then letters, digits and single hyphens, up to 63 characters`,
      `${at}[1].rds_restore_snapshot.region: must be an AWS region such as us-west-2`,
      `${at}[2].ecs_scale.count: must be at least 0`,
      `${at}[3].secret_update.value: {{steps.dr_db.port}} names no earlier step "dr_db"`,
    ]);
  });
});
