// The volatile-state file and swtpm's state-blob envelope (swtpm-compat §5.1, §5.2).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../../src/storage/envelope.js';
import { exportStateBlob, importStateBlob, StateBlobError } from '../../../src/storage/state-blob.js';
import { DirStorage, StateFileError } from '../../../src/storage/storage.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const tempDir = tempDirs('vtpmd-vol-');
function storage() {
  const dir = tempDir();
  return { dir, s: new DirStorage({ dir, lock: false }) };
}

describe('volatile state file', () => {
  it('tpm2-00.volatilestate: stored atomically in the file envelope, loaded, deleted; absent → null', () => {
    const { dir, s } = storage();
    expect(s.loadVolatile()).toBeNull();
    s.storeVolatile(new Uint8Array([1, 2, 3]));
    const file = path.join(dir, 'tpm2-00.volatilestate');
    expect(existsSync(file)).toBe(true);
    expect(existsSync(path.join(dir, 'TMP2-00.volatilestate'))).toBe(false);
    // header v2/min1/10, flags 0, totlen 29; TLV 1 (3 bytes); TLV 0x7601 crc32
    expect(readFileSync(file).toString('hex')).toBe(
      '0201000a00000000001d' + '0001' + '00000003' + '010203' + '7601' + '00000004' + crc32(new Uint8Array([1, 2, 3])).toString(16).padStart(8, '0'),
    );
    expect(s.loadVolatile()).toEqual(new Uint8Array([1, 2, 3]));
    s.deleteVolatile();
    expect(existsSync(file)).toBe(false);
    s.deleteVolatile(); // absent: no error
  });

  it('a damaged volatile file is refused', async () => {
    const { dir, s } = storage();
    s.storeVolatile(new Uint8Array([1, 2, 3]));
    const fs = await import('node:fs');
    const file = path.join(dir, 'tpm2-00.volatilestate');
    const bytes = readFileSync(file);
    bytes[17] ^= 1;
    fs.writeFileSync(file, bytes);
    expect(() => s.loadVolatile()).toThrow(StateFileError);
  });
});

describe('state blob envelope', () => {
  it('export: flags 0x04, TLV 4 holding TLV 1 and the CRC (exact bytes); import round-trips', () => {
    const data = new Uint8Array([0xaa, 0xbb]);
    const { blob } = exportStateBlob(data);
    const crc = crc32(data).toString(16).padStart(8, '0');
    expect(Buffer.from(blob).toString('hex')).toBe('0201000a0004' + '00000022' + '0004' + '00000012' + '0001' + '00000002' + 'aabb' + '7601' + '00000004' + crc);
    expect(importStateBlob(blob)).toEqual(data);
  });

  it('import accepts the file layout (no 0x04, no CRC) as swtpm does', () => {
    const blob = Buffer.from('0201000a0000' + '00000012' + '0001' + '00000002' + 'aabb', 'hex');
    expect(importStateBlob(blob)).toEqual(new Uint8Array([0xaa, 0xbb]));
  });

  it('refuses encrypted blobs (reason encrypted) and damage (reason malformed)', () => {
    const { blob } = exportStateBlob(new Uint8Array([1]));
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof StateBlobError ? e.reason : String(e);
      }
      return 'accepted';
    };
    expect(reason(() => importStateBlob(blob, true))).toBe('encrypted');
    for (const flag of [1, 2]) {
      const b = blob.slice();
      b[5] = 0x04 | flag;
      expect(reason(() => importStateBlob(b))).toBe('encrypted');
    }
    expect(reason(() => importStateBlob(blob.subarray(0, 9)))).toBe('malformed');
    expect(reason(() => importStateBlob(blob.subarray(0, blob.length - 1)))).toBe('malformed');
    const badCrc = blob.slice();
    badCrc[badCrc.length - 1] ^= 1;
    expect(reason(() => importStateBlob(badCrc))).toBe('malformed');
    const v3 = blob.slice();
    v3[1] = 3; // min_version newer than we read
    expect(reason(() => importStateBlob(v3))).toBe('malformed');
  });
});
