// The tests' AWS is the simulated AWS the sandbox ships (src/sandbox/simulated-aws.ts), under the tests' names.
export { SimulatedAws as FakeAws, type SimulatedAwsCall as FakeAwsCall } from '../../src/sandbox/simulated-aws.js';
