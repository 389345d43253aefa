// What ecs_scale and ecs_redeploy share: the service params, the plan's look at the service, and the check's.
import { z } from 'zod';
import type { EcsService } from '../../../adapters/aws/port.js';
import { counts, describe } from '../../recovery/kinds/ecs-service.js';
import type { StepPlan } from '../step-kind.js';
import { regionName, type AwsStepDeps } from './aws.js';

interface ServiceParams {
  readonly region?: string | undefined;
  readonly cluster: string;
  readonly service: string;
}

export const ecsService = {
  cluster: z.string().min(1, 'must not be empty'),
  service: z.string().min(1, 'must not be empty'),
};

/** The plan: `does`, with the service's counts now, and the service missing (or not ACTIVE) when it is. */
export async function planOnService(p: ServiceParams, deps: AwsStepDeps, does: string): Promise<StepPlan> {
  const current = await deps.aws.ecs(p.region).describeService(p.cluster, p.service);
  const problem = serviceProblem(p, current);
  return { does: `${does}${current ? ` (now ${counts(current)})` : ''}`, missing: problem ? [problem] : [] };
}

/** One look at the service while the check waits (a missing service ends the wait). */
export function lookAt(p: ServiceParams, deps: AwsStepDeps): () => Promise<EcsService> {
  return () => describe({ ecs: deps.aws.ecs(p.region) }, p.cluster, p.service);
}

function serviceProblem(p: ServiceParams, found: EcsService | undefined): string | undefined {
  if (!found) return `no ECS service ${p.service} in cluster ${p.cluster} (${regionName(p.region)})`;
  if (found.status !== 'ACTIVE') return `ECS service ${p.service} in ${p.cluster} is ${found.status}, not ACTIVE`;
  return undefined;
}
