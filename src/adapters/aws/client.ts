// What every AWS client of ours shares: a bounded retry and timeout policy, and one error classification.
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { classifyAwsError, type AwsClientLimits } from './aws.js';

/**
 * No explicit endpoint or region: the SDK's chain applies (AWS_REGION, credentials, AWS_ENDPOINT_URL_<SERVICE>).
 * Bounded: 3 attempts, each with a connect and a whole-request timeout, so a hung endpoint cannot hold a job for
 * the SDK's default of "forever"; the job decides about further retries. throwOnRequestTimeout: without it this
 * handler version only logs a warning when requestTimeout passes.
 */
export function boundedClientOptions(limits: AwsClientLimits, defaultRequestTimeoutMs = 15_000) {
  return {
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: limits.connectionTimeoutMs ?? 3_000,
      requestTimeout: limits.requestTimeoutMs ?? defaultRequestTimeoutMs,
      throwOnRequestTimeout: true,
    }),
  };
}

/** Runs one SDK call and turns its failure into AwsRefusedError (never retried) or TransientError. */
export function callerFor(service: string): <T>(action: string, work: () => Promise<T>) => Promise<T> {
  return async (action, work) => {
    try {
      return await work();
    } catch (err) {
      throw classifyAwsError(service, action, err);
    }
  };
}
