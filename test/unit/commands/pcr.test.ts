/** Part 3 §22 PCR commands under the PC Client PCR attributes. */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { be, cat, createTestTpm, hex, TestTpm } from '../../helpers/engine.js';

const ALGS: [number, string, number][] = [
  [TPM_ALG.SHA1, 'sha1', 20],
  [TPM_ALG.SHA256, 'sha256', 32],
  [TPM_ALG.SHA384, 'sha384', 48],
  [TPM_ALG.SHA512, 'sha512', 64],
];
const digest = (name: string, ...parts: Uint8Array[]) => {
  const h = createHash(name);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** PCR_Read of one PCR in one bank; returns the value (or undefined) and the update counter. */
function read(t: TestTpm, alg: number, pcr: number): { value?: string; counter: number } {
  const select = new Uint8Array(3);
  select[pcr >> 3] = 1 << (pcr & 7);
  const r = t.call(TPM_CC.PCR_Read, { params: cat(be.u32(1), be.u16(alg), be.u8(3), select) });
  expect(r.rc).toBe(0);
  const v = new DataView(r.body.buffer, r.body.byteOffset);
  const counter = v.getUint32(0);
  // pcrSelectionOut: count(4) hash(2) size(1) select(3); then TPML_DIGEST count(4), size(2), value.
  const count = v.getUint32(4 + 4 + 6);
  if (count === 0) return { counter };
  const size = v.getUint16(18);
  return { value: hex(r.body.subarray(20, 20 + size)), counter };
}

function extend(t: TestTpm, pcr: number, digests: [number, Uint8Array][], locality = 0) {
  const body = cat(be.u32(digests.length), ...digests.map(([alg, d]) => cat(be.u16(alg), d)));
  return t.call(TPM_CC.PCR_Extend, { handles: [pcr], passwords: [''], params: body, locality });
}

describe('initial values after Startup(CLEAR)', () => {
  const t = createTestTpm();
  test.each(ALGS)('bank 0x%s: PCRs 0-16 and 23 are zero, 17-22 all ones', (alg, _name, size) => {
    for (let pcr = 0; pcr < 24; pcr++) {
      const fill = pcr >= 17 && pcr <= 22 ? 'ff' : '00';
      expect(read(t, alg, pcr).value).toBe(fill.repeat(size));
    }
  });

  test('PCR 0 records a Startup at locality 3', () => {
    const u = createTestTpm({ started: false });
    expect(u.call(TPM_CC.Startup, { params: be.u16(0), locality: 3 }).rc).toBe(0);
    expect(read(u, TPM_ALG.SHA256, 0).value).toBe('00'.repeat(31) + '03');
  });
});

describe('PCR_Extend', () => {
  test('new value = H(old || digest), per bank, and the update counter moves', () => {
    const t = createTestTpm();
    const d1 = new Uint8Array(20).fill(0xab);
    const d256 = new Uint8Array(32).fill(0xcd);
    const before = read(t, TPM_ALG.SHA256, 7).counter;
    expect(extend(t, 7, [[TPM_ALG.SHA1, d1], [TPM_ALG.SHA256, d256]]).rc).toBe(0);
    expect(read(t, TPM_ALG.SHA1, 7).value).toBe(hex(digest('sha1', new Uint8Array(20), d1)));
    expect(read(t, TPM_ALG.SHA256, 7).value).toBe(hex(digest('sha256', new Uint8Array(32), d256)));
    // Banks not named keep their value.
    expect(read(t, TPM_ALG.SHA384, 7).value).toBe('00'.repeat(48));
    // One change per bank extended, as libtpms counts.
    expect(read(t, TPM_ALG.SHA256, 7).counter).toBe(before + 2);
  });

  test('PCR 16 and 23 do not move the update counter', () => {
    const t = createTestTpm();
    const before = read(t, TPM_ALG.SHA256, 0).counter;
    expect(extend(t, 16, [[TPM_ALG.SHA256, new Uint8Array(32)]]).rc).toBe(0);
    expect(extend(t, 23, [[TPM_ALG.SHA256, new Uint8Array(32)]]).rc).toBe(0);
    expect(read(t, TPM_ALG.SHA256, 0).counter).toBe(before);
  });

  test('locality rules: PCR 17 needs locality 2-4, PCR 21 locality 2', () => {
    const t = createTestTpm();
    const d = new Uint8Array(32);
    expect(extend(t, 17, [[TPM_ALG.SHA256, d]], 0).rc).toBe(TPM_RC.LOCALITY);
    expect(extend(t, 17, [[TPM_ALG.SHA256, d]], 2).rc).toBe(0);
    expect(extend(t, 21, [[TPM_ALG.SHA256, d]], 3).rc).toBe(TPM_RC.LOCALITY);
    expect(extend(t, 21, [[TPM_ALG.SHA256, d]], 2).rc).toBe(0);
  });

  test('TPM_RH_NULL is accepted and changes nothing', () => {
    const t = createTestTpm();
    expect(extend(t, TPM_RH.NULL, [[TPM_ALG.SHA256, new Uint8Array(32)]]).rc).toBe(0);
  });

  test('a digest of the wrong size for its algorithm is rejected as a parameter', () => {
    const t = createTestTpm();
    const r = t.call(TPM_CC.PCR_Extend, { handles: [16], passwords: [''], params: cat(be.u32(1), be.u16(TPM_ALG.SHA256), new Uint8Array(20)) });
    expect(r.rc).toBe(0x1da); // TPM_RC_INSUFFICIENT + P1
  });

  test('PCR 24 does not exist', () => {
    const t = createTestTpm();
    expect(extend(t, 24, [[TPM_ALG.SHA256, new Uint8Array(32)]]).rc).toBe(0x184);
  });
});

describe('PCR_Event', () => {
  test('returns the event digest in every bank and extends each one', () => {
    const t = createTestTpm();
    const data = new TextEncoder().encode('boot event');
    const r = t.call(TPM_CC.PCR_Event, { handles: [10], passwords: [''], params: be.b2(data) });
    expect(r.rc).toBe(0);
    const params = r.params();
    expect(new DataView(params.buffer, params.byteOffset).getUint32(0)).toBe(4);
    let off = 4;
    for (const [alg, name, size] of ALGS) {
      expect(new DataView(params.buffer, params.byteOffset + off).getUint16(0)).toBe(alg);
      expect(hex(params.subarray(off + 2, off + 2 + size))).toBe(hex(digest(name, data)));
      off += 2 + size;
      expect(read(t, alg, 10).value).toBe(hex(digest(name, new Uint8Array(size), digest(name, data))));
    }
  });

  test('with TPM_RH_NULL only the digests come back', () => {
    const t = createTestTpm();
    const r = t.call(TPM_CC.PCR_Event, { handles: [TPM_RH.NULL], passwords: [''], params: be.b2('x') });
    expect(r.rc).toBe(0);
  });

  test('an event over 1024 bytes is TPM_RC_SIZE+P1', () => {
    const t = createTestTpm();
    const r = t.call(TPM_CC.PCR_Event, { handles: [10], passwords: [''], params: be.b2(new Uint8Array(1025)) });
    expect(r.rc).toBe(0x1d5);
  });
});

describe('pcrUpdateCounter', () => {
  test('Startup(CLEAR) counts every PCR outside the no-increment group: 20 (as libtpms)', () => {
    const t = createTestTpm();
    expect(read(t, TPM_ALG.SHA256, 0).counter).toBe(20);
  });
});

describe('PCR_Read', () => {
  test('returns at most eight values and a selection that says which', () => {
    const t = createTestTpm();
    const r = t.call(TPM_CC.PCR_Read, {
      params: cat(be.u32(2), be.u16(TPM_ALG.SHA256), be.u8(3), new Uint8Array([0xff, 0x0f, 0]), be.u16(TPM_ALG.SHA1), be.u8(3), new Uint8Array([1, 0, 0])),
    });
    expect(r.rc).toBe(0);
    // counter, then selection out: sha256 ff 00 00 (eight values), sha1 00 00 00.
    expect(hex(r.body.subarray(4, 4 + 4 + 12))).toBe('00000002' + '000b03ff0000' + '000403000000');
    expect(new DataView(r.body.buffer, r.body.byteOffset).getUint32(20)).toBe(8);
  });
});

describe('PCR_Reset', () => {
  test('PCR 16 resets from locality 0; PCR 0 never; PCR 20 from locality 2 but not 1', () => {
    const t = createTestTpm();
    extend(t, 16, [[TPM_ALG.SHA256, new Uint8Array(32).fill(1)]]);
    expect(t.call(TPM_CC.PCR_Reset, { handles: [16], passwords: [''] }).rc).toBe(0);
    expect(read(t, TPM_ALG.SHA256, 16).value).toBe('00'.repeat(32));
    expect(t.call(TPM_CC.PCR_Reset, { handles: [0], passwords: [''] }).rc).toBe(TPM_RC.LOCALITY);
    expect(t.call(TPM_CC.PCR_Reset, { handles: [20], passwords: [''], locality: 1 }).rc).toBe(TPM_RC.LOCALITY);
    expect(t.call(TPM_CC.PCR_Reset, { handles: [20], passwords: [''], locality: 2 }).rc).toBe(0);
    // A DRTM PCR resets to all ones (its initial value), not zero.
    expect(read(t, TPM_ALG.SHA256, 20).value).toBe('ff'.repeat(32));
  });
});
