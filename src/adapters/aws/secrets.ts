import { SecretsManagerClient, GetSecretValueCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { boundedClientOptions, callerFor } from './client.js';
import { AwsRefusedError, type AwsClientLimits } from './aws.js';
import type { SecretsPort } from './port.js';

/**
 * No explicit endpoint: the SDK's chain applies (credentials, AWS_ENDPOINT_URL_SECRETS_MANAGER), and AWS_REGION unless
 * `region` is given. Bounded like every client of ours.
 */
export function createSecretsClient(limits: AwsClientLimits = {}, region?: string): SecretsManagerClient {
  return new SecretsManagerClient({ ...boundedClientOptions(limits), ...(region ? { region } : {}) });
}

export function createSecretsPort(client: SecretsManagerClient = createSecretsClient()): SecretsPort {
  const call = callerFor('secretsmanager');
  return {
    async getSecret(secretId) {
      try {
        const out = await call('GetSecretValue', () => client.send(new GetSecretValueCommand({ SecretId: secretId })));
        return {
          arn: out.ARN ?? '',
          name: out.Name ?? secretId,
          versionId: out.VersionId ?? '',
          text: out.SecretString,
        };
      } catch (err) {
        if (err instanceof AwsRefusedError && err.code === 'ResourceNotFoundException') return undefined;
        throw err;
      }
    },

    async putSecret(secretId, text, clientRequestToken) {
      const out = await call('PutSecretValue', () =>
        client.send(
          new PutSecretValueCommand({ SecretId: secretId, SecretString: text, ClientRequestToken: clientRequestToken }),
        ),
      );
      return { versionId: out.VersionId ?? clientRequestToken };
    },
  };
}
