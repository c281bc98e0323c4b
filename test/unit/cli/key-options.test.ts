// --key / --migration-key parsing and key derivation (swtpm-compat §5.3). The passphrase
// answers were computed with `openssl kdf ... PBKDF2` and `sha512sum`, not with our code.
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseKeyOption } from '../../../src/cli/key-options.js';
import { UsageError } from '../../../src/cli/key-value.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpmd-keyopt-'));
function file(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}
const hex = (k: { bytes: Uint8Array }) => Buffer.from(k.bytes).toString('hex');
const HEX32 = '00112233445566778899aabbccddeeff';
const HEX64 = HEX32 + 'ffeeddccbbaa99887766554433221100';

describe('--key', () => {
  it('hex files: default mode aes-128-cbc; 0x prefix, trailing white space; digits must match the mode', () => {
    expect(hex(parseKeyOption(`file=${file('a', `${HEX32}\n`)}`, '--key'))).toBe(HEX32);
    expect(hex(parseKeyOption(`file=${file('b', `0x${HEX64} trailing words`)},mode=aes-256-cbc`, '--key'))).toBe(HEX64);
    expect(() => parseKeyOption(`file=${file('c', HEX32)},mode=aes-256-cbc`, '--key')).toThrow(/32 hex digits, the mode needs 64/);
    expect(() => parseKeyOption(`file=${file('d', HEX64)}`, '--key')).toThrow(/64 hex digits, the mode needs 32/);
    expect(() => parseKeyOption(`file=${file('e', 'zz')}`, '--key')).toThrow(/not a hex key/);
  });

  it('binary files, fd=, remove', () => {
    const bin = Buffer.from(HEX64, 'hex');
    expect(hex(parseKeyOption(`file=${file('f', bin)},format=binary,mode=aes-256-cbc`, '--key'))).toBe(HEX64);
    expect(() => parseKeyOption(`file=${file('g', bin)},format=binary`, '--key')).toThrow(/must be 16 bytes/);
    const fd = fs.openSync(file('h', HEX32), 'r');
    expect(hex(parseKeyOption(`fd=${fd}`, '--key'))).toBe(HEX32);
    expect(() => fs.fstatSync(fd)).toThrow(); // closed after reading
    const removable = file('i', HEX32);
    parseKeyOption(`file=${removable},remove=true`, '--key');
    expect(fs.existsSync(removable)).toBe(false);
  });

  it('passphrases (trailing newline included): PBKDF2-SHA512 salt "swtpm" ×1000 by default, or SHA-512', () => {
    const pw = file('pw', 'secret passphrase\n');
    expect(hex(parseKeyOption(`pwdfile=${pw},mode=aes-256-cbc`, '--key'))).toBe('34a18501d3b3a89ea7a4f53c562670f130d1468eee14c57fcd1a0bdf7198f931');
    expect(hex(parseKeyOption(`pwdfile=${pw},kdf=sha512`, '--key'))).toBe('b1f6c38fb2c38ee922ffe177044a4078');
    const fd = fs.openSync(pw, 'r');
    expect(hex(parseKeyOption(`pwdfd=${fd},kdf=sha512,mode=aes-256-cbc`, '--migration-key'))).toBe('b1f6c38fb2c38ee922ffe177044a4078629dd993296a88eb27e4fedf5908e705');
  });

  it('usage errors say what to fix and never echo key material', () => {
    const cases: [string, RegExp][] = [
      ['mode=aes-256-cbc', /give file=, fd=, pwdfile= or pwdfd=/],
      [`file=${file('j', HEX32)},pwdfile=x`, /only one of/],
      [`file=${file('k', HEX32)},mode=aes-192-cbc`, /unknown mode 'aes-192-cbc'/],
      [`file=${file('l', HEX32)},format=base64`, /unknown format 'base64'/],
      [`pwdfile=${file('m', 'pw')},kdf=scrypt`, /unknown kdf 'scrypt'/],
      [`file=${path.join(dir, 'missing')}`, /cannot read the key from .*missing: ENOENT/],
      ['file=x,colour=red', /unknown option 'colour=red'/],
    ];
    for (const [spec, msg] of cases) {
      let err: unknown;
      try {
        parseKeyOption(spec, '--key');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).not.toContain(HEX32);
    }
  });
});
