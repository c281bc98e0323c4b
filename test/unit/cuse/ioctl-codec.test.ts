// The PTM_* ioctl numbers derived in src/control/ioctl-codec.ts against swtpm-compat §1.1's
// table (computed there by compiling tpm_ioctl.h on x86_64), and the host-endian codec.
import { describe, expect, it } from 'vitest';
import { CMD } from '../../../src/control/codes.js';
import { decodeIoctlFields, encodeIoctlReply, PTM_IOCTL_TO_CMD, ptmIoctl } from '../../../src/control/ioctl-codec.js';

const TABLE: [keyof typeof CMD, number][] = [
  ['GET_CAPABILITY', 0x80085000], ['INIT', 0xc0045001], ['SHUTDOWN', 0x80045002],
  ['GET_TPMESTABLISHED', 0x80085003], ['SET_LOCALITY', 0xc0045004], ['HASH_START', 0x80045005],
  ['HASH_DATA', 0xd0045006], ['HASH_END', 0x80045007], ['CANCEL_TPM_CMD', 0x80045008],
  ['STORE_VOLATILE', 0x80045009], ['RESET_TPMESTABLISHED', 0xc004500a], ['GET_STATEBLOB', 0xcc10500b],
  ['SET_STATEBLOB', 0xcc0c500c], ['STOP', 0x8004500d], ['GET_CONFIG', 0x8008500e],
  ['SET_DATAFD', 0x8004500f], ['SET_BUFFERSIZE', 0xc0105010], ['GET_INFO', 0xcc105011],
  ['LOCK_STORAGE', 0xc0045012],
];

describe('PTM ioctl numbers', () => {
  it.each(TABLE)('%s is 0x%s', (name, number) => {
    expect(ptmIoctl(CMD[name]).toString(16)).toBe(number.toString(16));
    expect(PTM_IOCTL_TO_CMD.get(number)).toBe(CMD[name]);
  });
  it('covers every CMD exactly once', () => {
    expect(PTM_IOCTL_TO_CMD.size).toBe(Object.keys(CMD).length);
  });
});

describe('host-endian codec', () => {
  it('decodes request fields little-endian from offset 0', () => {
    const input = Uint8Array.of(0xa0, 0x0f, 0, 0, 0xff, 0xff, 0xff, 0xff);
    expect(decodeIoctlFields(input, [{ name: 'bufferSize', size: 4 }])).toEqual({ bufferSize: 4000 });
    expect(decodeIoctlFields(Uint8Array.of(3, 9, 9, 9), [{ name: 'loc', size: 1 }])).toEqual({ loc: 3 });
  });
  it('encodes result + fields, zero-padded to the struct size; errors carry the result only', () => {
    const fields = [{ name: 'bit', size: 1 as const }, { pad: 3 }];
    expect(Buffer.from(encodeIoctlReply(CMD.GET_TPMESTABLISHED, { result: 0, fields: { bit: 1 } }, fields, 8)).toString('hex')).toBe('0000000001000000');
    expect(Buffer.from(encodeIoctlReply(CMD.GET_TPMESTABLISHED, { result: 0x0a }, fields, 8)).toString('hex')).toBe('0a00000000000000');
    expect(Buffer.from(encodeIoctlReply(CMD.GET_CAPABILITY, { result: 0, fields: { caps: 0x16fff } }, [], 8)).toString('hex')).toBe('ff6f010000000000');
  });
});
