import { expect } from 'vitest';

/** The error a promise rejects with; fails the test if it resolves or rejects with a non-Error. */
export async function failure(work: Promise<unknown>): Promise<Error> {
  const outcome = await work.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(Error);
  return outcome as Error;
}
