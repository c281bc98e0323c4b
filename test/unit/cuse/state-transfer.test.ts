// CUSE-only transfers (swtpm-compat §1.6): state blobs in 3072-byte ioctl parts, GET mode through
// read(), SET mode through write(), and HASH_DATA inside its 4100-byte struct.
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/log.js';
import { Device } from '../../../src/device/device.js';
import { realEngines } from '../../../src/device/engine-factory.js';
import { CuseSession } from '../../../src/frontends/cuse/session.js';
import { DirStorage } from '../../../src/storage/storage.js';
import * as k from './kernel-messages.js';
import { hex, parseReply, u32le } from './kernel-messages.js';

const INIT = 0xc0045001;
const STOP = 0x8004500d;
const HASH_START = 0x80045005;
const HASH_DATA = 0xd0045006;
const HASH_END = 0x80045007;
const GET_STATEBLOB = 0xcc10500b;
const SET_STATEBLOB = 0xcc0c500c;
const PERMANENT = 1;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpmd-cuse-st-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const device = new Device({ storage: new DirStorage({ dir }), engines: realEngines() });
  cleanups.push(() => void device.close());
  const replies: Uint8Array[] = [];
  const session = new CuseSession({ device, name: 'vtpm0', log: silentLogger, send: (b) => replies.push(Uint8Array.from(b)) });
  let unique = 1000n;
  const send = async (req: Uint8Array) => {
    session.handle(req);
    await session.settled();
    const out = replies.splice(0);
    expect(out.length).toBe(1);
    return parseReply(out[0]!);
  };
  /** An ioctl as the kernel sends it: in_size/out_size from the number; returns the struct. */
  const ptm = async (cmd: number, input: Uint8Array = new Uint8Array(0)) => {
    const size = (cmd >>> 16) & 0x3fff;
    const inSize = (cmd >>> 30) & 1 ? size : 0;
    const padded = new Uint8Array(inSize);
    padded.set(input.subarray(0, inSize));
    const r = await send(k.ioctl((unique += 2n), cmd, padded, size));
    expect(r.error).toBe(0);
    return r.payload.subarray(16);
  };
  const result = (struct: Uint8Array) => Buffer.from(struct).readUInt32LE(0);
  return { device, session, send, ptm, result, next: () => (unique += 2n) };
}

describe('state blobs over CUSE', () => {
  it('GET_STATEBLOB: totlength, parts by offset, and the rest through read() (GET mode)', async () => {
    const t = setup();
    expect(t.result(await t.ptm(INIT, u32le(0)))).toBe(0);
    const first = await t.ptm(GET_STATEBLOB, k.le([1, 4], [PERMANENT, 4], [0, 4]));
    const v = Buffer.from(first);
    expect(v.readUInt32LE(0)).toBe(0);
    const tot = v.readUInt32LE(8);
    const len = v.readUInt32LE(12);
    expect(tot).toBeGreaterThan(0);
    expect(len).toBe(Math.min(tot, 3072));
    const blob = Buffer.from(first.subarray(16, 16 + len));
    // The same blob, part by part with offsets, as swtpm_ioctl --save does.
    const byOffset = [blob];
    for (let off = len; off < tot; ) {
      const part = Buffer.from(await t.ptm(GET_STATEBLOB, k.le([1, 4], [PERMANENT, 4], [off, 4])));
      expect(part.readUInt32LE(8)).toBe(tot);
      const n = part.readUInt32LE(12);
      byOffset.push(part.subarray(16, 16 + n));
      off += n;
    }
    const whole = Buffer.concat(byOffset);
    expect(whole.length).toBe(tot);
    if (tot > 3072) {
      // After the offset-0 part the device is in GET mode: read() returns the rest.
      await t.ptm(GET_STATEBLOB, k.le([1, 4], [PERMANENT, 4], [0, 4]));
      const r = await t.send(k.read(t.next(), 1 << 20));
      expect(hex(r.payload)).toBe(hex(whole.subarray(3072)));
    }
  });

  it('SET_STATEBLOB: refused while running; 3072-byte parts then a short one commit; INIT loads it', async () => {
    const t = setup();
    await t.ptm(INIT, u32le(0));
    const blob = await getWhole(t);
    expect(t.result(await t.ptm(SET_STATEBLOB, k.le([0, 4], [PERMANENT, 4], [0, 4])))).toBe(0x0a);
    expect(t.result(await t.ptm(STOP))).toBe(0);
    for (let off = 0; ; off += 3072) {
      const part = blob.subarray(off, off + 3072);
      const res = t.result(await t.ptm(SET_STATEBLOB, Buffer.concat([k.le([0, 4], [PERMANENT, 4], [part.length, 4]), part])));
      expect(res).toBe(0);
      if (part.length < 3072) break;
    }
    expect(t.result(await t.ptm(INIT, u32le(0)))).toBe(0);
  });

  it("SET_STATEBLOB: QEMU's flow ioctl(length 0), write(blob), ioctl(length 0); read() in SET mode is EIO", async () => {
    const t = setup();
    await t.ptm(INIT, u32le(0));
    const blob = await getWhole(t);
    await t.ptm(STOP);
    expect(t.result(await t.ptm(SET_STATEBLOB, k.le([0, 4], [PERMANENT, 4], [0, 4])))).toBe(0);
    const w = await t.send(k.write(t.next(), blob));
    expect(hex(w.payload)).toBe(hex(k.le([blob.length, 4], [0, 4])));
    expect(t.result(await t.ptm(SET_STATEBLOB, k.le([0, 4], [PERMANENT, 4], [0, 4])))).toBe(0);
    expect(t.result(await t.ptm(INIT, u32le(0)))).toBe(0);
    await t.ptm(STOP);
    await t.ptm(SET_STATEBLOB, k.le([0, 4], [PERMANENT, 4], [0, 4]));
    expect((await t.send(k.read(t.next(), 100))).error).toBe(-5);
  });

  it('SET_STATEBLOB: a length above 3072 is TPM_BAD_PARAMETER', async () => {
    const t = setup();
    expect(t.result(await t.ptm(SET_STATEBLOB, k.le([0, 4], [PERMANENT, 4], [3073, 4])))).toBe(0x03);
  });
});

describe('large blobs (the device stubbed: real blobs are < 3072 bytes today)', () => {
  const big = Buffer.alloc(7000).map((_, i) => (i * 7) & 0xff);

  it('GET: part at offset 0, then read() returns the rest and the first short read ends GET mode', async () => {
    const t = setup();
    await t.ptm(INIT, u32le(0));
    t.device.getStateBlob = async () => ({ ok: true, blob: Uint8Array.from(big), encrypted: false });
    const first = Buffer.from(await t.ptm(GET_STATEBLOB, k.le([1, 4], [PERMANENT, 4], [0, 4])));
    expect([first.readUInt32LE(0), first.readUInt32LE(8), first.readUInt32LE(12)]).toEqual([0, 7000, 3072]);
    expect(hex(first.subarray(16))).toBe(hex(big.subarray(0, 3072)));
    expect(hex((await t.send(k.read(t.next(), 4000))).payload)).toBe(hex(big.subarray(3072, 7000)));
    // The read was short (3928 < 4000): back in command mode, writes are TPM commands again.
    const w = await t.send(k.write(t.next(), Buffer.from('80010000000c000001440000', 'hex')));
    expect(w.error).toBe(0);
  });

  it('GET mode: a write() gets EIO and leaves it', async () => {
    const t = setup();
    await t.ptm(INIT, u32le(0));
    t.device.getStateBlob = async () => ({ ok: true, blob: Uint8Array.from(big), encrypted: false });
    await t.ptm(GET_STATEBLOB, k.le([1, 4], [PERMANENT, 4], [0, 4]));
    expect((await t.send(k.write(t.next(), Uint8Array.of(1, 2, 3)))).error).toBe(-5);
    expect((await t.send(k.read(t.next(), 100))).payload.length).toBe(0); // command mode, no response
  });

  it('SET: 3072 + 3072 + 856 bytes arrive as one blob', async () => {
    const t = setup();
    const got: Uint8Array[] = [];
    t.device.setStateBlob = async (_type, blob) => void got.push(blob);
    for (const off of [0, 3072, 6144]) {
      const part = big.subarray(off, off + 3072);
      const r = t.result(await t.ptm(SET_STATEBLOB, Buffer.concat([k.le([0, 4], [PERMANENT, 4], [part.length, 4]), part])));
      expect(r).toBe(0);
      expect(got.length).toBe(off === 6144 ? 1 : 0);
    }
    expect(hex(got[0]!)).toBe(hex(big));
  });
});

describe('HASH_DATA over CUSE', () => {
  it('carries length + data in ptm_hdata; more than 4096 bytes is TPM_FAIL', async () => {
    const t = setup();
    await t.ptm(INIT, u32le(0));
    expect(t.result(await t.ptm(HASH_START))).toBe(0);
    expect(t.result(await t.ptm(HASH_DATA, Buffer.concat([u32le(4), Buffer.from('1234')])))).toBe(0);
    expect(t.result(await t.ptm(HASH_DATA, u32le(5000)))).toBe(0x09);
    expect(t.result(await t.ptm(HASH_END))).toBe(0);
  });
});

async function getWhole(t: ReturnType<typeof setup>): Promise<Buffer> {
  const parts: Buffer[] = [];
  let tot = 1;
  for (let off = 0; off < tot; ) {
    const part = Buffer.from(await t.ptm(GET_STATEBLOB, k.le([1, 4], [PERMANENT, 4], [off, 4])));
    expect(part.readUInt32LE(0)).toBe(0);
    tot = part.readUInt32LE(8);
    const n = part.readUInt32LE(12);
    parts.push(part.subarray(16, 16 + n));
    off += n;
  }
  // Leave GET mode (a short read ends it) so later writes are commands again.
  await t.send(k.read(t.next(), 1 << 20));
  return Buffer.concat(parts);
}
