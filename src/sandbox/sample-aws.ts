// What the simulated AWS holds for the sample application: its RDS instance and snapshots, its ECS services, and
// CloudWatch log lines that keep coming (with the odd error, so /dr logs --filter ERROR finds something).
import type { SimulatedAws } from '../adapters/aws/stand-in.js';
import { SAMPLE_AWS } from './world.js';

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
