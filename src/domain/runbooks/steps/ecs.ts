// What ecs_scale and ecs_redeploy share: the service params and what the plan finds missing.
import { z } from 'zod';
import type { EcsService } from '../../../adapters/aws/port.js';
import { regionName } from './aws.js';

export const ecsService = {
  cluster: z.string().min(1, 'must not be empty'),
  service: z.string().min(1, 'must not be empty'),
};

/** Why the step cannot act on the service, if it cannot. */
export function serviceProblem(
  p: { readonly region?: string | undefined; readonly cluster: string; readonly service: string },
  found: EcsService | undefined,
): string | undefined {
  if (!found) return `no ECS service ${p.service} in cluster ${p.cluster} (${regionName(p.region)})`;
  if (found.status !== 'ACTIVE') return `ECS service ${p.service} in ${p.cluster} is ${found.status}, not ACTIVE`;
  return undefined;
}
