/**
 * The commands provisioning sends, as a client sends them (swtpm-compat §6.2): bytes built here,
 * responses parsed here, every authorization the empty password (TPM_RS_PW). Provisioning
 * never reaches into the engine; it only sees what any TPM client would see.
 */
import { TPM_CAP, TPM_CC, TPM_RH, TPM_RS_PW, TPM_ST, TPM_SU } from '../tpm/constants.js';

/** Part 2 §6.5.2 TPM_CC_FIRST. */
const FIRST_COMMAND_CODE = 0x11f;

/** Whatever runs one TPM command: the Device in-process, or a socket. */
export interface TpmTransport {
  executeTpm(command: Uint8Array): Promise<Uint8Array>;
}

/** A TPM command answered with a non-zero response code. */
export class TpmCommandError extends Error {
  readonly code = 'VTPMD_TPM_COMMAND';
  constructor(
    readonly command: string,
    readonly rc: number,
  ) {
    super(`${command} failed with TPM response code 0x${rc.toString(16).padStart(3, '0')}`);
  }
}

/** Big-endian bytes, grown as needed. */
export class Bytes {
  private parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16(v >>> 16).u16(v);
  }
  raw(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  /** TPM2B: u16 size, then the bytes. */
  sized(b: Uint8Array): this {
    return this.u16(b.length).raw(b);
  }
  build(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** Big-endian reader over a response. */
export class Reader {
  off = 0;
  constructor(readonly b: Uint8Array) {}
  u8(): number {
    if (this.off >= this.b.length) throw new Error('TPM response too short');
    return this.b[this.off++]!;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  u32(): number {
    return ((this.u16() << 16) | this.u16()) >>> 0;
  }
  bytes(n: number): Uint8Array {
    if (this.off + n > this.b.length) throw new Error('TPM response too short');
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  sized(): Uint8Array {
    return this.bytes(this.u16());
  }
}

/** The empty-password session for each authorized handle. */
function passwordAuth(count: number): Uint8Array {
  const one = new Bytes().u32(TPM_RS_PW).sized(new Uint8Array(0)).u8(0).sized(new Uint8Array(0)).build();
  const all = new Bytes();
  for (let i = 0; i < count; i++) all.raw(one);
  const area = all.build();
  return new Bytes().u32(area.length).raw(area).build();
}

function build(cc: number, handles: number[], authorized: number, params: Uint8Array): Uint8Array {
  const body = new Bytes();
  for (const h of handles) body.u32(h);
  if (authorized > 0) body.raw(passwordAuth(authorized));
  body.raw(params);
  const b = body.build();
  return new Bytes()
    .u16(authorized > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS)
    .u32(10 + b.length)
    .u32(cc)
    .raw(b)
    .build();
}

/** Runs a command; returns the response after the header, or throws TpmCommandError. */
async function call(t: TpmTransport, name: string, command: Uint8Array): Promise<Reader> {
  const rsp = await t.executeTpm(command);
  if (rsp.length < 10) throw new Error(`${name}: short TPM response`);
  const rc = new DataView(rsp.buffer, rsp.byteOffset, rsp.byteLength).getUint32(6);
  if (rc !== 0) throw new TpmCommandError(name, rc);
  return new Reader(rsp.subarray(10));
}

/** GetCapability, following moreData; returns the raw capability data items of each answer. */
async function capability(t: TpmTransport, cap: number, first: number, next: (r: Reader, n: number) => number): Promise<void> {
  let property = first;
  for (;;) {
    const r = await call(t, 'GetCapability', build(TPM_CC.GetCapability, [], 0, new Bytes().u32(cap).u32(property).u32(256).build()));
    const more = r.u8();
    r.u32();
    const count = r.u32();
    const last = next(r, count);
    if (!more || count === 0) return;
    property = last + 1;
  }
}

/** The command codes the TPM implements (TPM_CAP_COMMANDS). */
export async function implementedCommands(t: TpmTransport): Promise<Set<number>> {
  const out = new Set<number>();
  await capability(t, TPM_CAP.COMMANDS, FIRST_COMMAND_CODE, (r, n) => {
    let last = 0;
    for (let i = 0; i < n; i++) {
      last = r.u32() & 0xffff;
      out.add(last);
    }
    return last;
  });
  return out;
}

/** The algorithms the TPM implements (TPM_CAP_ALGS). */
export async function implementedAlgorithms(t: TpmTransport): Promise<Set<number>> {
  const out = new Set<number>();
  await capability(t, TPM_CAP.ALGS, 0, (r, n) => {
    let last = 0;
    for (let i = 0; i < n; i++) {
      last = r.u16();
      r.u32();
      out.add(last);
    }
    return last;
  });
  return out;
}

/** TPM properties (TPM_CAP_TPM_PROPERTIES) from `first`, `count` of them. */
export async function tpmProperties(t: TpmTransport, first: number, count: number): Promise<Map<number, number>> {
  const r = await call(t, 'GetCapability', build(TPM_CC.GetCapability, [], 0, new Bytes().u32(TPM_CAP.TPM_PROPERTIES).u32(first).u32(count).build()));
  r.u8();
  r.u32();
  const out = new Map<number, number>();
  for (let i = r.u32(); i > 0; i--) out.set(r.u32(), r.u32());
  return out;
}

/** The PCR banks (TPM_CAP_PCRS): hash algorithm → pcrSelect bitmap. */
export async function pcrBanks(t: TpmTransport): Promise<Map<number, Uint8Array>> {
  const r = await call(t, 'GetCapability', build(TPM_CC.GetCapability, [], 0, new Bytes().u32(TPM_CAP.PCRS).u32(0).u32(1).build()));
  r.u8();
  r.u32();
  const out = new Map<number, Uint8Array>();
  for (let i = r.u32(); i > 0; i--) {
    const alg = r.u16();
    out.set(alg, r.bytes(r.u8()).slice());
  }
  return out;
}

/** CreatePrimary with an empty inSensitive, outsideInfo and creationPCR: the handle and TPMT_PUBLIC. */
export async function createPrimary(t: TpmTransport, hierarchy: number, template: Uint8Array): Promise<{ handle: number; publicArea: Uint8Array }> {
  const params = new Bytes()
    .u16(4) // TPM2B_SENSITIVE_CREATE: empty userAuth and data
    .u16(0)
    .u16(0)
    .sized(template)
    .u16(0)
    .u32(0)
    .build();
  const cmd = build(TPM_CC.CreatePrimary, [hierarchy], 1, params);
  const r = await call(t, 'CreatePrimary', cmd);
  const handle = r.u32();
  r.u32(); // parameterSize
  return { handle, publicArea: r.sized().slice() };
}

export async function evictControl(t: TpmTransport, objectHandle: number, persistentHandle: number): Promise<void> {
  await call(t, 'EvictControl', build(TPM_CC.EvictControl, [TPM_RH.OWNER, objectHandle], 1, new Bytes().u32(persistentHandle).build()));
}

export async function flushContext(t: TpmTransport, handle: number): Promise<void> {
  await call(t, 'FlushContext', build(TPM_CC.FlushContext, [], 0, new Bytes().u32(handle).build()));
}

/** NV_DefineSpace(TPM_RH_PLATFORM) with an empty auth, SHA-256 name and no policy. */
export async function nvDefineSpace(t: TpmTransport, index: number, attributes: number, size: number): Promise<void> {
  const nvPublic = new Bytes().u32(index).u16(0x000b).u32(attributes).u16(0).u16(size).build();
  const params = new Bytes().u16(0).sized(nvPublic).build();
  await call(t, 'NV_DefineSpace', build(TPM_CC.NV_DefineSpace, [TPM_RH.PLATFORM], 1, params));
}

/** swtpm_setup writes NV in chunks of this size (swtpm-compat §6.2). */
export const NV_WRITE_CHUNK = 1024;

/** NV_Write(TPM_RH_PLATFORM) of `data` from offset 0, 1024 bytes per command. */
export async function nvWrite(t: TpmTransport, index: number, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length; off += NV_WRITE_CHUNK) {
    const chunk = data.subarray(off, off + NV_WRITE_CHUNK);
    await call(t, 'NV_Write', build(TPM_CC.NV_Write, [TPM_RH.PLATFORM, index], 1, new Bytes().sized(chunk).u16(off).build()));
  }
}

export async function nvWriteLock(t: TpmTransport, index: number): Promise<void> {
  await call(t, 'NV_WriteLock', build(TPM_CC.NV_WriteLock, [TPM_RH.PLATFORM, index], 1, new Uint8Array(0)));
}

/**
 * PCR_Allocate(TPM_RH_PLATFORM): `active` banks get all PCRs (ff ff ff), every other bank the
 * TPM has none (00 00 00), as swtpm_setup asks. Returns allocationSuccess.
 */
export async function pcrAllocate(t: TpmTransport, banks: Iterable<number>, active: Set<number>): Promise<boolean> {
  const list = [...banks];
  const sel = new Bytes().u32(list.length);
  for (const alg of list) sel.u16(alg).u8(3).raw(active.has(alg) ? Uint8Array.of(0xff, 0xff, 0xff) : Uint8Array.of(0, 0, 0));
  const r = await call(t, 'PCR_Allocate', build(TPM_CC.PCR_Allocate, [TPM_RH.PLATFORM], 1, sel.build()));
  r.u32();
  return r.u8() === 1;
}

export async function shutdown(t: TpmTransport, type: 'clear' | 'state' = 'clear'): Promise<void> {
  await call(t, 'Shutdown', build(TPM_CC.Shutdown, [], 0, new Bytes().u16(type === 'clear' ? TPM_SU.CLEAR : TPM_SU.STATE).build()));
}
