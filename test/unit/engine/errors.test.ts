/** Part 2 §6.6 response-code positions and their names. */
import { expect, test } from 'vitest';
import { TPM_RC } from '../../../src/tpm/constants.js';
import { formatRc, TpmError, withPosition } from '../../../src/tpm/errors.js';

test('format-1 codes get handle, parameter and session numbers', () => {
  expect(withPosition(TPM_RC.VALUE, { param: 1 })).toBe(0x1c4);
  expect(withPosition(TPM_RC.VALUE, { param: 15 })).toBe(0xfc4);
  expect(withPosition(TPM_RC.VALUE, { handle: 1 })).toBe(0x184);
  expect(withPosition(TPM_RC.BAD_AUTH, { session: 1 })).toBe(0x9a2);
  expect(withPosition(TPM_RC.AUTH_FAIL, { session: 3 })).toBe(0xb8e);
});

test('format-0 and already positioned codes are left alone', () => {
  expect(withPosition(TPM_RC.INITIALIZE, { param: 1 })).toBe(0x100);
  expect(withPosition(TPM_RC.LOCALITY, { param: 1 })).toBe(0x907);
  expect(new TpmError(0x1c4, { param: 2 }).rc).toBe(0x1c4);
});

test('formatRc names codes as the spec does', () => {
  expect(formatRc(0x1c4)).toBe('TPM_RC_VALUE+P1 (0x1c4)');
  expect(formatRc(0x9a2)).toBe('TPM_RC_BAD_AUTH+S1 (0x9a2)');
  expect(formatRc(0x184)).toBe('TPM_RC_VALUE+H1 (0x184)');
  expect(formatRc(0x100)).toBe('TPM_RC_INITIALIZE (0x100)');
});
