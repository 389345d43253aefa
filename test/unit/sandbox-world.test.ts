// The sandbox's lifeline.yml passes Lifeline's own checks, its runbooks included (every step against its kind, as at
// startup) and shaped as the example config's, and the region failover's resources exist in the simulated AWS.
import { describe, expect, test } from 'vitest';
import { SimulatedAws } from '../../src/adapters/aws/stand-in.js';
import { parseConfigText } from '../../src/shared/config.js';
import { loadRunbooks } from '../../src/domain/runbooks/definitions.js';
import { seedSampleAws } from '../../src/sandbox/sample-aws.js';
import { exampleFile } from './fixtures.js';
import { lifelineYaml, routingKeyVariable, SAMPLE_AWS, SAMPLE_DR } from '../../src/sandbox/world.js';

const yaml = lifelineYaml({
  backupsDir: '/tmp/sandbox-backups',
  backupPrefix: 'sandbox_shop',
  healthUrl: 'http://127.0.0.1:3000/shop/health',
  apiHealthUrl: 'http://127.0.0.1:3000/shop/api/health',
});
const env = {
  PRODUCTION_DATABASE_URL: 'postgres://127.0.0.1/sandbox_shop',
  STATUSPAGE_API_KEY: 'key',
  ALERTS_TOKEN: 'a-token-of-sixteen-or-more',
  ...Object.fromEntries(['oncall', 'engineering_lead', 'cto', 'ceo'].map((r) => [routingKeyVariable(r), `pd-${r}`])),
};

describe("the sandbox's runbooks", () => {
  test('they load, each step checked against its kind, and are the example config’s: names, approvals, step kinds', () => {
    const shape = (runbooks: ReturnType<typeof loadRunbooks>) =>
      [...runbooks.values()].map((r) => ({ name: r.name, approval: r.approval, kinds: r.steps.map((s) => s.kind.id) }));
    const sandbox = shape(loadRunbooks(parseConfigText(yaml, env)));
    expect(sandbox).toEqual(shape(loadRunbooks(exampleFile())));
    expect(sandbox.find((r) => r.name === 'region-failover')?.approval).toBe('each_step');
  });

  test('the failover’s resources are in the simulated AWS: a DR snapshot, the idle DR service, the record, the secret', async () => {
    const aws = new SimulatedAws();
    seedSampleAws(aws);
    const drSnapshots = await aws.regions.rds(SAMPLE_DR.region).listSnapshots(SAMPLE_AWS.rdsInstance);
    expect(drSnapshots).toHaveLength(1);
    expect(aws.regions.ecs(SAMPLE_DR.region).peekService(SAMPLE_DR.cluster, SAMPLE_DR.service)?.desired).toBe(0);
    expect(await aws.route53.recordsAt(SAMPLE_DR.zoneId, SAMPLE_DR.record)).toEqual([
      { name: SAMPLE_DR.record, type: 'CNAME', ttl: 60, values: [SAMPLE_DR.primaryTarget] },
    ]);
    const secret = await aws.regions.secrets(SAMPLE_DR.primaryRegion).getSecret(SAMPLE_DR.secretId);
    expect(JSON.parse(secret!.text!)).toMatchObject({ DATABASE_HOST: expect.stringContaining(SAMPLE_AWS.rdsInstance) });
  });
});
