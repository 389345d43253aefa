// The tests' AWS is the AWS stand-in the sandbox uses too (src/adapters/aws/stand-in.ts), under the tests' names.
import { SimulatedAws } from '../../src/adapters/aws/stand-in.js';

export { SimulatedAws as FakeAws, type SimulatedAwsCall as FakeAwsCall } from '../../src/adapters/aws/stand-in.js';

/**
 * Starts the stand-in and points this process's AWS SDK clients at it through the env, as production finds AWS
 * (AWS_ENDPOINT_URL_<SERVICE>, region, credentials; no profile or shared endpoint from the machine); `stop` puts the
 * env back and stops the stand-in.
 */
export async function startFakeAwsInEnv(): Promise<{ fake: SimulatedAws; stop(): Promise<void> }> {
  const fake = await new SimulatedAws().start();
  const vars: Record<string, string | undefined> = {
    ...fake.env(),
    AWS_ENDPOINT_URL: undefined,
    AWS_PROFILE: undefined,
    AWS_SESSION_TOKEN: undefined,
  };
  const saved = new Map(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Iterable<[string, string | undefined]>) => {
    for (const [name, value] of values) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(Object.entries(vars));
  return {
    fake,
    async stop() {
      await fake.stop();
      apply(saved);
    },
  };
}
