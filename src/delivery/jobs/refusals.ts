// What every job worker does with a refusal: bad input and denied permission never succeed later, so BullMQ must not
// try them again (UnrecoverableError); anything else (network trouble, a busy row) is thrown on to be retried.
import { UnrecoverableError } from 'bullmq';
import { PermanentError, UserError } from '../../shared/errors.js';

export async function notRetryingRefusals<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof PermanentError || err instanceof UserError) throw new UnrecoverableError(err.message);
    throw err;
  }
}
