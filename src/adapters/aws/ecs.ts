import {
  ECSClient,
  DescribeServicesCommand,
  UpdateServiceCommand,
  type Deployment,
  type Service,
} from '@aws-sdk/client-ecs';
import { boundedClientOptions, callerFor } from './client.js';
import { AwsRefusedError, type AwsClientLimits } from './aws.js';
import type { EcsDeployment, EcsPort, EcsService } from './port.js';

/**
 * No explicit endpoint: the SDK's chain applies (credentials, AWS_ENDPOINT_URL_ECS), and AWS_REGION unless `region`
 * is given. Bounded: 3 attempts, each with a connect and a whole-request timeout; the job decides about further
 * retries.
 */
export function createEcsClient(limits: AwsClientLimits = {}, region?: string): ECSClient {
  return new ECSClient({ ...boundedClientOptions(limits), ...(region ? { region } : {}) });
}

export function createEcsPort(client: ECSClient = createEcsClient()): EcsPort {
  const call = callerFor('ecs');

  return {
    async describeService(cluster, service) {
      const out = await call('DescribeServices', () =>
        client.send(new DescribeServicesCommand({ cluster, services: [service] })),
      );
      const found =
        out.services?.find((s) => s.serviceName === service || s.serviceArn === service) ?? out.services?.[0];
      if (found) return toService(found);
      // DescribeServices answers 200 with a `failures` entry rather than an error: MISSING means "no such
      // service"; anything else is a refusal we must not mistake for an empty answer.
      const failure = out.failures?.[0];
      if (!failure || failure.reason === 'MISSING') return undefined;
      throw new AwsRefusedError(
        'ecs',
        failure.reason ?? 'Failure',
        `DescribeServices: ${service}: ${failure.detail ?? failure.reason}`,
      );
    },

    async setDesiredCount(cluster, service, count) {
      await call('UpdateService', () =>
        client.send(new UpdateServiceCommand({ cluster, service, desiredCount: count })),
      );
    },

    async forceNewDeployment(cluster, service) {
      const out = await call('UpdateService', () =>
        client.send(new UpdateServiceCommand({ cluster, service, forceNewDeployment: true })),
      );
      return out.service?.deployments?.find((d) => d.status === 'PRIMARY')?.id;
    },
  };
}

function toService(s: Service): EcsService {
  return {
    name: s.serviceName ?? '',
    status: s.status ?? 'UNKNOWN',
    desired: s.desiredCount ?? 0,
    running: s.runningCount ?? 0,
    pending: s.pendingCount ?? 0,
    deployments: (s.deployments ?? []).map(toDeployment),
  };
}

function toDeployment(d: Deployment): EcsDeployment {
  return {
    id: d.id ?? '',
    status: d.status ?? 'UNKNOWN',
    rolloutState: d.rolloutState,
    rolloutStateReason: d.rolloutStateReason,
    desired: d.desiredCount ?? 0,
    running: d.runningCount ?? 0,
    pending: d.pendingCount ?? 0,
    createdAt: d.createdAt,
  };
}
