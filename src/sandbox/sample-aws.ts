// What the simulated AWS holds for the sample application: its RDS instance and snapshots, its ECS services,
// CloudWatch log lines that keep coming (with the odd error, so /dr logs --filter ERROR finds something), and what the
// region failover needs: a DR region with a copy of a snapshot and an idle ECS cluster, the API's DNS record, and the
// database secret. The sandbox plays a primary region whose API does not answer, so the failover has something to fix.
import type { SimulatedAws } from '../adapters/aws/stand-in.js';
import { SAMPLE_AWS, SAMPLE_DR } from './world.js';

const MINUTE = 60_000;

export function seedSampleAws(aws: SimulatedAws, now = Date.now()): void {
  const instance = SAMPLE_AWS.rdsInstance;
  aws.rds.setInstance({
    id: instance,
    engineVersion: '15.8',
    instanceClass: 'db.r6g.large',
    subnetGroupName: 'sandbox-shop-private',
    vpcSecurityGroupIds: ['sg-0sandboxshopdb'],
    multiAz: true,
    publiclyAccessible: false,
  });
  const day = (ago: number) => new Date(now - ago * 24 * 60 * MINUTE);
  aws.rds.setSnapshot({
    id: `rds:${instance}-${isoDay(day(0.5))}-03-00`,
    instanceId: instance,
    type: 'automated',
    createdAt: day(0.5),
  });
  aws.rds.setSnapshot({
    id: `rds:${instance}-${isoDay(day(1.5))}-03-00`,
    instanceId: instance,
    type: 'automated',
    createdAt: day(1.5),
  });
  aws.rds.setSnapshot({
    id: `${instance}-before-migration-42`,
    instanceId: instance,
    type: 'manual',
    createdAt: day(3),
  });
  aws.ecs.setService({ cluster: SAMPLE_AWS.cluster, name: 'shop-web', desired: 2 });
  aws.ecs.setService({ cluster: SAMPLE_AWS.cluster, name: 'shop-api', desired: 3 });
  aws.ecs.setService({ cluster: SAMPLE_AWS.cluster, name: 'shop-worker', desired: 1 });
  aws.logs.addEvents(SAMPLE_AWS.logGroup, []);
  // The last hour of logs, one batch a minute.
  for (let minute = 60; minute > 0; minute--) appendLogLines(aws, now - minute * MINUTE);
  seedDrRegion(aws, day(1.5));
}

function seedDrRegion(aws: SimulatedAws, copiedFrom: Date): void {
  const dr = SAMPLE_DR;
  const instance = SAMPLE_AWS.rdsInstance;
  // What cross-region backup replication keeps there: an older day's snapshot (the failover copies a newer one over).
  aws.regions.rds(dr.region).setSnapshot({
    id: `${instance}-replica-${isoDay(copiedFrom)}`,
    instanceId: instance,
    type: 'manual',
    createdAt: new Date(copiedFrom.getTime() + 20 * MINUTE),
    originalCreatedAt: copiedFrom,
  });
  aws.regions.ecs(dr.region).setService({ cluster: dr.cluster, name: dr.service, desired: 0 });
  aws.route53.setZone(dr.zoneId, dr.zone, [
    { name: dr.record, type: 'CNAME', ttl: 60, values: [dr.primaryTarget] },
    { name: dr.zone, type: 'A', ttl: 300, values: ['192.0.2.10'] },
  ]);
  aws.regions
    .secrets(dr.primaryRegion)
    .setSecret(
      dr.secretId,
      JSON.stringify({ DATABASE_HOST: `${instance}.memory.rds.amazonaws.com`, DATABASE_NAME: 'sandbox_shop' }),
    );
}

/**
 * The sample API as its users reach it, through its DNS record: the primary region's API does not answer (the outage
 * the region-failover runbook repairs); the DR region's answers once its database is available and it runs tasks.
 */
export function apiHealth(aws: SimulatedAws): { healthy: boolean; detail: string } {
  const dr = SAMPLE_DR;
  const record = aws.route53.peekRecords(dr.zoneId).find((r) => r.name === dr.record && r.type === 'CNAME');
  const target = record?.values[0]?.toLowerCase().replace(/\.$/, '');
  if (target !== dr.drTarget) {
    const where = target === dr.primaryTarget ? `${target} (${dr.primaryRegion})` : (target ?? 'nowhere');
    return { healthy: false, detail: `${dr.record} points at ${where}, which does not answer` };
  }
  const database = aws.regions.rds(dr.region).peekInstance(dr.instance);
  if (database?.status !== 'available') {
    return { healthy: false, detail: `${dr.instance} in ${dr.region} is ${database?.status ?? 'not there'}` };
  }
  const running = aws.regions.ecs(dr.region).peekService(dr.cluster, dr.service)?.running ?? 0;
  if (running === 0) return { healthy: false, detail: `${dr.service} in ${dr.cluster} runs no task` };
  return { healthy: true, detail: `ok: ${dr.service} in ${dr.region}, ${running} tasks` };
}

let batch = 0;

/** One batch of log lines at `at`: requests, a slow query now and then, and an error every few batches. */
export function appendLogLines(aws: SimulatedAws, at = Date.now()): void {
  batch++;
  const order = 4000 + batch;
  const lines = [
    { service: 'shop-web', message: `INFO  GET /checkout 200 ${40 + (batch % 17)}ms` },
    { service: 'shop-api', message: `INFO  POST /api/orders/${order} 201 ${25 + (batch % 23)}ms` },
    { service: 'shop-worker', message: `INFO  sent receipt for order ${order - 1}` },
  ];
  if (batch % 5 === 0) lines.push({ service: 'shop-api', message: `WARN  slow query on orders (${700 + batch}ms)` });
  if (batch % 7 === 0)
    lines.push({
      service: 'shop-api',
      message: `ERROR could not reach ${SAMPLE_AWS.rdsInstance}: connection timed out after 5000ms`,
    });
  aws.logs.addEvents(
    SAMPLE_AWS.logGroup,
    lines.map((l, i) => ({
      at: at + i * 150,
      stream: `${l.service}/${l.service}/0f3a${(batch % 4).toString(16)}`,
      message: l.message,
    })),
  );
}

function isoDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}
