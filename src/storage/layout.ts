/**
 * Names of the files in a state directory, as swtpm's dir backend names them
 * (swtpm-compat §5.1): `tpm2-00.<name>`, temp files `TMP2-00.<name>`, and `.lock`.
 */

/** The state blobs a directory can hold (TPM 2 never has a `savestate`). */
export const STATE_NAMES = { permanent: 'permall', volatile: 'volatilestate' } as const;
export type StateName = (typeof STATE_NAMES)[keyof typeof STATE_NAMES];

/** The TPM number in file names: always 0, two hex digits. */
const TPM_NUMBER = '00';

export function stateFileName(name: StateName): string {
  return `tpm2-${TPM_NUMBER}.${name}`;
}

export function tempFileName(name: StateName): string {
  return `TMP2-${TPM_NUMBER}.${name}`;
}

/**
 * The permanent state's journal (ours; swtpm has none): the newest permanent state while it is
 * not yet folded into `tpm2-00.permall` (storage/journal.ts).
 */
export function journalFileName(): string {
  return `${stateFileName(STATE_NAMES.permanent)}.journal`;
}

export const LOCK_FILE_NAME = '.lock';
