import { TpmError } from '../../src/tpm/errors.js';

/** The response code of the TpmError `fn` throws; any other exception passes through, and no exception fails. */
export function tpmErrorRc(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof TpmError) return e.rc;
    throw e;
  }
  throw new Error('expected a TpmError');
}
