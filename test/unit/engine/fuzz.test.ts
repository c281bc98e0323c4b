/**
 * Seeded fuzzing of the engine in-process: mutated and random commands must always produce a
 * well-formed response, never an exception, and never reach the internal-error path (which
 * would mean a handler trusted input it should have validated).
 */
import { expect, test } from 'vitest';
import { TPM_CC } from '../../../src/tpm/constants.js';
import { be, buildCommand, cat, createTestTpm, unhex } from '../../helpers/engine.js';
import { xorshift32 } from '../../helpers/xorshift.js';


const d32 = new Uint8Array(32).fill(0x5a);
const SEEDS: Uint8Array[] = [
  buildCommand(TPM_CC.GetRandom, { params: be.u16(16) }),
  buildCommand(TPM_CC.PCR_Read, { params: cat(be.u32(2), be.u16(0xb), be.u8(3), new Uint8Array([0xff, 0xff, 0xff]), be.u16(4), be.u8(3), new Uint8Array([1, 0, 0])) }),
  buildCommand(TPM_CC.PCR_Extend, { handles: [16], passwords: [''], params: cat(be.u32(1), be.u16(0xb), d32) }),
  buildCommand(TPM_CC.PCR_Event, { handles: [16], passwords: [''], params: be.b2('event') }),
  buildCommand(TPM_CC.PCR_Reset, { handles: [16], passwords: [''] }),
  buildCommand(TPM_CC.Hash, { params: cat(be.b2('data'), be.u16(0xb), be.u32(0x40000001)) }),
  buildCommand(TPM_CC.HashSequenceStart, { params: cat(be.b2('pw'), be.u16(0xb)) }),
  buildCommand(TPM_CC.HashSequenceStart, { params: cat(be.b2(''), be.u16(0x10)) }),
  buildCommand(TPM_CC.SequenceUpdate, { handles: [0x80000000], passwords: ['pw'], params: be.b2('more') }),
  buildCommand(TPM_CC.SequenceComplete, { handles: [0x80000000], passwords: ['pw'], params: cat(be.b2('end'), be.u32(0x40000001)) }),
  buildCommand(TPM_CC.EventSequenceComplete, { handles: [16, 0x80000001], passwords: ['', ''], params: be.b2('end') }),
  buildCommand(TPM_CC.GetCapability, { params: cat(be.u32(6), be.u32(0x100), be.u32(80)) }),
  buildCommand(TPM_CC.GetCapability, { params: cat(be.u32(1), be.u32(0x40000000), be.u32(10)) }),
  buildCommand(TPM_CC.IncrementalSelfTest, { params: cat(be.u32(2), be.u16(0xb), be.u16(4)) }),
  buildCommand(TPM_CC.SelfTest, { params: be.u8(1) }),
  buildCommand(TPM_CC.StirRandom, { params: be.b2('entropy') }),
  buildCommand(TPM_CC.ReadClock),
  buildCommand(TPM_CC.Shutdown, { params: be.u16(1) }),
  // An ECC P-256 storage key template (swtpm's, unique emptied), then what can be done with it.
  buildCommand(TPM_CC.CreatePrimary, {
    handles: [0x40000001],
    passwords: [''],
    params: cat(
      be.b2(cat(be.b2(''), be.b2(''))),
      be.b2(unhex('0023000b00030072000000060080004300100003001000000000')),
      be.b2(''),
      cat(be.u32(1), be.u16(0xb), be.u8(3), new Uint8Array([1, 0, 0])),
    ),
  }),
  buildCommand(TPM_CC.ReadPublic, { handles: [0x80000000] }),
  buildCommand(TPM_CC.ContextSave, { handles: [0x80000000] }),
  buildCommand(TPM_CC.ContextLoad, { params: cat(be.u32(0), be.u32(1), be.u32(0x80000000), be.u32(0x40000001), be.b2(new Uint8Array(120).fill(7))) }),
  buildCommand(TPM_CC.FlushContext, { params: be.u32(0x80000000) }),
  buildCommand(TPM_CC.Startup, { params: be.u16(0) }),
  // NV: an ordinary index and a counter with owner and index authorization, then their uses.
  buildCommand(TPM_CC.NV_DefineSpace, { handles: [0x40000001], passwords: [''], params: cat(be.b2('pw'), be.b2(cat(be.u32(0x01000001), be.u16(0xb), be.u32(0x00060006), be.b2(''), be.u16(16)))) }),
  buildCommand(TPM_CC.NV_DefineSpace, { handles: [0x40000001], passwords: [''], params: cat(be.b2(''), be.b2(cat(be.u32(0x01000002), be.u16(0xb), be.u32(0x04020012), be.b2(''), be.u16(8)))) }),
  buildCommand(TPM_CC.NV_Write, { handles: [0x01000001, 0x01000001], passwords: ['pw'], params: cat(be.b2('data'), be.u16(2)) }),
  buildCommand(TPM_CC.NV_Read, { handles: [0x40000001, 0x01000001], passwords: [''], params: cat(be.u16(6), be.u16(0)) }),
  buildCommand(TPM_CC.NV_Increment, { handles: [0x40000001, 0x01000002], passwords: [''] }),
  buildCommand(TPM_CC.NV_ReadPublic, { handles: [0x01000002] }),
  buildCommand(TPM_CC.NV_UndefineSpace, { handles: [0x40000001, 0x01000001], passwords: [''] }),
];

function mutate(seed: Uint8Array, rnd: () => number): Uint8Array {
  const pick = Math.floor(rnd() * 6);
  let out: Uint8Array = seed.slice();
  switch (pick) {
    case 0: // flip bits
      for (let i = 0, n = 1 + Math.floor(rnd() * 4); i < n; i++) out[Math.floor(rnd() * out.length)]! ^= 1 << Math.floor(rnd() * 8);
      break;
    case 1: // truncate, keeping the size field honest or not
      out = out.subarray(0, Math.floor(rnd() * out.length));
      if (rnd() < 0.5 && out.length >= 6) new DataView(out.buffer, out.byteOffset).setUint32(2, out.length);
      break;
    case 2: // extend with junk
      out = cat(out, new Uint8Array(Math.floor(rnd() * 64)).map(() => Math.floor(rnd() * 256)));
      if (rnd() < 0.5) new DataView(out.buffer).setUint32(2, out.length);
      break;
    case 3: // overwrite a 16-bit field after the header with an extreme value
      if (out.length > 12) new DataView(out.buffer).setUint16(10 + Math.floor(rnd() * (out.length - 12)), rnd() < 0.5 ? 0xffff : 0);
      break;
    case 4: // random bytes with a plausible header
      out = cat(seed.subarray(0, 10), new Uint8Array(Math.floor(rnd() * 80)).map(() => Math.floor(rnd() * 256)));
      new DataView(out.buffer).setUint32(2, out.length);
      break;
    default: // pure noise
      out = new Uint8Array(Math.floor(rnd() * 40)).map(() => Math.floor(rnd() * 256));
  }
  return out;
}

// About 7 s on an idle machine; the timeout leaves room for one shared with other test runs.
test('20,000 mutated commands: every response is well-formed and no internal error occurs', { timeout: 120_000 }, () => {
  const seed = 0x7f4a7c15;
  const rnd = xorshift32(seed);
  const t = createTestTpm();
  for (let i = 0; i < 20_000; i++) {
    const cmd = mutate(SEEDS[Math.floor(rnd() * SEEDS.length)]!, rnd);
    const r = t.send(cmd, Math.floor(rnd() * 5));
    expect(r.bytes.length, `seed ${seed} iteration ${i}`).toBeGreaterThanOrEqual(10);
    expect(r.size).toBe(r.bytes.length);
    expect([0x8001, 0x8002]).toContain(r.tag);
    if (r.rc !== 0) expect(r.bytes.length).toBe(10);
    // Power events now and then, as a VM reset would cause.
    if (rnd() < 0.002) t.powerCycle();
  }
  expect(t.env.logs).toEqual([]);
  // Still answers.
  if (!t.engine.started) t.call(TPM_CC.Startup, { params: be.u16(0) });
  expect(t.call(TPM_CC.GetRandom, { params: be.u16(8) }).rc).toBe(0);
});
