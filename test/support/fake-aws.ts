// The tests' AWS is the AWS stand-in the sandbox uses too (src/adapters/aws/stand-in.ts), under the tests' names.
export { SimulatedAws as FakeAws, type SimulatedAwsCall as FakeAwsCall } from '../../src/adapters/aws/stand-in.js';
