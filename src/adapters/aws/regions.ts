// The AWS ports per region, for the runbook steps that name one (`region: us-west-2`): one client per service and
// region, made on first use and kept. No region is the SDK chain's (AWS_REGION), the same as the /dr jobs' clients.
import type { AwsClientLimits } from './aws.js';
import { createEcsClient, createEcsPort } from './ecs.js';
import type { AwsRegions, EcsPort, RdsPort, Route53Port, SecretsPort } from './port.js';
import { createRdsClient, createRdsPort } from './rds.js';
import { createRoute53Client, createRoute53Port } from './route53.js';
import { createSecretsClient, createSecretsPort } from './secrets.js';

export function createAwsRegions(limits: AwsClientLimits = {}): AwsRegions {
  const perRegion = <T>(make: (region: string | undefined) => T) => {
    const made = new Map<string, T>();
    return (region?: string): T => {
      const key = region ?? '';
      let port = made.get(key);
      if (!port) made.set(key, (port = make(region)));
      return port;
    };
  };
  const rds = perRegion<RdsPort>((region) => createRdsPort(createRdsClient(limits, region)));
  const ecs = perRegion<EcsPort>((region) => createEcsPort(createEcsClient(limits, region)));
  const secrets = perRegion<SecretsPort>((region) => createSecretsPort(createSecretsClient(limits, region)));
  const route53 = perRegion<Route53Port>(() => createRoute53Port(createRoute53Client(limits)));
  return { rds, ecs, secrets, route53: () => route53() };
}
