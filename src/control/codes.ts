/**
 * swtpm's control-channel numbers (swtpm-compat §1.1–§1.4; swtpm include/swtpm/tpm_ioctl.h):
 * CMD_* codes, PTM_CAP_* bits, result words, flags. Declared once; the socket and CUSE front
 * ends and the handler table import them from here.
 */

/** Socket command codes; the CUSE ioctl nr is CMD − 1. */
export const CMD = {
  GET_CAPABILITY: 0x01,
  INIT: 0x02,
  SHUTDOWN: 0x03,
  GET_TPMESTABLISHED: 0x04,
  SET_LOCALITY: 0x05,
  HASH_START: 0x06,
  HASH_DATA: 0x07,
  HASH_END: 0x08,
  CANCEL_TPM_CMD: 0x09,
  STORE_VOLATILE: 0x0a,
  RESET_TPMESTABLISHED: 0x0b,
  GET_STATEBLOB: 0x0c,
  SET_STATEBLOB: 0x0d,
  STOP: 0x0e,
  GET_CONFIG: 0x0f,
  SET_DATAFD: 0x10,
  SET_BUFFERSIZE: 0x11,
  GET_INFO: 0x12,
  LOCK_STORAGE: 0x13,
} as const;
export type CmdCode = (typeof CMD)[keyof typeof CMD];

/** PTM_CAP_* bits reported by GET_CAPABILITY. */
export const PTM_CAP = {
  INIT: 1 << 0,
  SHUTDOWN: 1 << 1,
  GET_TPMESTABLISHED: 1 << 2,
  SET_LOCALITY: 1 << 3,
  HASHING: 1 << 4,
  CANCEL_TPM_CMD: 1 << 5,
  STORE_VOLATILE: 1 << 6,
  RESET_TPMESTABLISHED: 1 << 7,
  GET_STATEBLOB: 1 << 8,
  SET_STATEBLOB: 1 << 9,
  STOP: 1 << 10,
  GET_CONFIG: 1 << 11,
  SET_DATAFD: 1 << 12,
  SET_BUFFERSIZE: 1 << 13,
  GET_INFO: 1 << 14,
  SEND_COMMAND_HEADER: 1 << 15,
  LOCK_STORAGE: 1 << 16,
} as const;

/** The bits QEMU and cloud-hypervisor require of a TPM 2 emulator (0x348F). */
export const PTM_CAP_REQUIRED_BY_QEMU =
  PTM_CAP.INIT |
  PTM_CAP.SHUTDOWN |
  PTM_CAP.GET_TPMESTABLISHED |
  PTM_CAP.SET_LOCALITY |
  PTM_CAP.RESET_TPMESTABLISHED |
  PTM_CAP.SET_DATAFD |
  PTM_CAP.STOP |
  PTM_CAP.SET_BUFFERSIZE;

/** Result words in `tpm_result` (libtpms TPM 1.2-style codes, even for a TPM 2; §1.4). */
export const PTM_RES = {
  SUCCESS: 0x00,
  BAD_PARAMETER: 0x03,
  FAIL: 0x09,
  BAD_ORDINAL: 0x0a,
  KEYNOTFOUND: 0x0d,
  DECRYPT_ERROR: 0x21,
  BAD_KEY_PROPERTY: 0x28,
  IOERROR: 0x1f,
  BAD_TYPE: 0x34,
  BAD_LOCALITY: 0x3d,
  RETRY: 0x800,
} as const;

/** GET/SET_STATEBLOB blob types. */
export const PTM_BLOB_TYPE = { PERMANENT: 1, VOLATILE: 2, SAVESTATE: 3 } as const;

/** GET_STATEBLOB request DECRYPTED; GET response / SET request ENCRYPTED. */
export const PTM_STATE_FLAG = { DECRYPTED: 1, ENCRYPTED: 2 } as const;

/** Size of the data area of ptm_getstate / ptm_setstate (CUSE transfers in chunks of this). */
export const PTM_STATE_BLOB_SIZE = 3072;
/** Size of ptm_getinfo's buffer: GET_INFO returns at most this much per call. */
export const PTM_GETINFO_SIZE = 3072;
/** ptm_hdata's data area: the most one CUSE HASH_DATA ioctl carries. */
export const PTM_HDATA_SIZE = 4096;
/** swtpm refuses larger SET_STATEBLOB blobs with TPM_FAIL ("unreasonably large"). */
export const SET_STATEBLOB_MAX = 512 * 1024;
/**
 * vtpmd's limit for one socket HASH_DATA (swtpm streams any length; vtpmd buffers the command,
 * so it bounds it). Larger measurements are sent as several HASH_DATA commands.
 */
export const SOCKET_HASH_DATA_MAX = 16 * 1024 * 1024;

/** CMD_INIT init_flags. */
export const PTM_INIT_FLAG = { DELETE_VOLATILE: 1 } as const;

/** CMD_GET_CONFIG flags. */
export const PTM_CONFIG_FLAG = { FILE_KEY: 1, MIGRATION_KEY: 2 } as const;

/** Socket framing: swtpm reads at most 4 + 4100 bytes (sizeof struct input) per command, ... */
export const CTRL_MAX_REQUEST = 4 + 4100;
/** ... within 500 ms of the first byte (swtpm-compat §1.5). */
export const CTRL_RECV_BUDGET_MS = 500;
