// What the AWS step kinds share: their deps, the region param, and how they wait on AWS.
import { z } from 'zod';
import type { AwsRegions, WaitOptions } from '../../../adapters/aws/port.js';
import type { EcsPolling } from '../../recovery/kinds/ecs-service.js';

export interface AwsStepDeps {
  /** The AWS ports of any region a step names (none: AWS_REGION's). */
  readonly aws: AwsRegions;
  readonly pollMs: number;
}

export const awsRegion = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, 'must be an AWS region such as us-west-2');

/** How a step names a region in what it says. */
export function regionName(region: string | undefined): string {
  return region ?? 'the default region';
}

/** The waits of a step: polls `deps.pollMs` apart, for up to `maxWaitMs`, stopped by the step's signal. */
export function waitOptions(
  deps: AwsStepDeps,
  ctx: { readonly signal: AbortSignal },
  maxWaitMs: number,
  onPoll?: (status: string) => void,
): WaitOptions {
  return {
    maxWaitSeconds: maxWaitMs / 1000,
    pollSeconds: deps.pollMs / 1000,
    signal: ctx.signal,
    ...(onPoll ? { onPoll } : {}),
  };
}

/** The same for a wait on an ECS service. */
export function ecsPolling(
  deps: AwsStepDeps,
  ctx: { readonly signal: AbortSignal; note(detail: string): void },
  maxWaitMs: number,
): EcsPolling {
  return { pollMs: deps.pollMs, maxWaitMs, signal: ctx.signal, note: (detail) => ctx.note(detail) };
}
