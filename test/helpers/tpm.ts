// Raw TPM 2.0 data-channel client and a small command builder for integration tests.
// Deliberately independent of src/ (the engine's codecs): these bytes are what a client sends.
import type net from 'node:net';
import { BufferedSocket, connectSocket } from './buffered-socket.js';

export const TPM_ST = { NO_SESSIONS: 0x8001, SESSIONS: 0x8002 } as const;
export const TPM_SU = { CLEAR: 0x0000, STATE: 0x0001 } as const;
export const TPM_RS_PW = 0x40000009;
export const TPM_RH = { OWNER: 0x40000001, NULL: 0x40000007, ENDORSEMENT: 0x4000000b, PLATFORM: 0x4000000c } as const;
export const TPM_CAP = { ALGS: 0, HANDLES: 1, COMMANDS: 2, PCRS: 5, TPM_PROPERTIES: 6, ECC_CURVES: 8 } as const;

export const ALG = { SHA1: 0x0004, SHA256: 0x000b, SHA384: 0x000c, SHA512: 0x000d, NULL: 0x0010 } as const;
export const ALG_NAME: Record<number, string> = { 0x0004: 'sha1', 0x000b: 'sha256', 0x000c: 'sha384', 0x000d: 'sha512' };
export const DIGEST_SIZE: Record<number, number> = { 0x0004: 20, 0x000b: 32, 0x000c: 48, 0x000d: 64 };

export const CC = {
  NV_UndefineSpaceSpecial: 0x11f,
  EvictControl: 0x120,
  Clear: 0x126,
  PCR_Event: 0x13c,
  PCR_Reset: 0x13d,
  SequenceComplete: 0x13e,
  IncrementalSelfTest: 0x142,
  SelfTest: 0x143,
  Startup: 0x144,
  Shutdown: 0x145,
  StirRandom: 0x146,
  SequenceUpdate: 0x15c,
  FlushContext: 0x165,
  GetCapability: 0x17a,
  GetRandom: 0x17b,
  GetTestResult: 0x17c,
  Hash: 0x17d,
  PCR_Read: 0x17e,
  ReadClock: 0x181,
  PCR_Extend: 0x182,
  EventSequenceComplete: 0x185,
  HashSequenceStart: 0x186,
} as const;

/**
 * What vtpmd implements this round (the issue: capabilities list exactly what is implemented and
 * grow as later issues add commands). Tests check vtpmd's lists against these and against its
 * behaviour; swtpm lists far more. Extend these as the engine grows.
 */
export const VTPMD_BASELINE_COMMANDS: Record<string, number> = {
  Startup: 0x144, Shutdown: 0x145, SelfTest: 0x143, IncrementalSelfTest: 0x142, GetTestResult: 0x17c,
  GetRandom: 0x17b, StirRandom: 0x146, GetCapability: 0x17a, PCR_Read: 0x17e, PCR_Extend: 0x182,
  PCR_Event: 0x13c, PCR_Reset: 0x13d, Hash: 0x17d, HashSequenceStart: 0x186, SequenceUpdate: 0x15c,
  SequenceComplete: 0x13e, EventSequenceComplete: 0x185, ReadClock: 0x181,
  StartAuthSession: 0x176, FlushContext: 0x165, CreatePrimary: 0x131, ReadPublic: 0x173,
  ContextSave: 0x162, ContextLoad: 0x161, HierarchyChangeAuth: 0x129,
  Create: 0x153, Load: 0x157, LoadExternal: 0x167, CreateLoaded: 0x191, Unseal: 0x15e, ObjectChangeAuth: 0x150,
  EvictControl: 0x120, RSA_Encrypt: 0x174, RSA_Decrypt: 0x159, Sign: 0x15d, VerifySignature: 0x177,
  NV_DefineSpace: 0x12a, NV_UndefineSpace: 0x122, NV_UndefineSpaceSpecial: 0x11f, NV_ReadPublic: 0x169,
  NV_Write: 0x137, NV_Increment: 0x134, NV_Extend: 0x136, NV_SetBits: 0x135, NV_WriteLock: 0x138,
  NV_GlobalWriteLock: 0x132, NV_Read: 0x14e, NV_ReadLock: 0x14f, NV_ChangeAuth: 0x13b,
  PCR_Allocate: 0x12b,
  PolicyRestart: 0x180, PolicyGetDigest: 0x189, PolicyCommandCode: 0x16c, PolicyAuthValue: 0x16b,
  PolicyPassword: 0x18c, PolicyPhysicalPresence: 0x187, PolicyLocality: 0x16f, PolicyPCR: 0x17f,
  PolicyOR: 0x171, PolicyCpHash: 0x16e, PolicyNameHash: 0x170, PolicyTemplate: 0x190,
  PolicyNvWritten: 0x18f, PolicyDuplicationSelect: 0x188, PolicyCounterTimer: 0x16d,
  PolicySecret: 0x151, PolicyTicket: 0x172, PolicyAuthorize: 0x16a, SetPrimaryPolicy: 0x12e,
  DictionaryAttackLockReset: 0x139, DictionaryAttackParameters: 0x13a,
  PolicySigned: 0x160, PolicyNV: 0x149, PolicyAuthorizeNV: 0x192, SetCommandCodeAuditStatus: 0x140,
  HierarchyControl: 0x121, Clear: 0x126, ClearControl: 0x127, ChangeEPS: 0x124, ChangePPS: 0x125,
  PCR_SetAuthPolicy: 0x12c, PCR_SetAuthValue: 0x183, PP_Commands: 0x12d, ClockSet: 0x128, ClockRateAdjust: 0x130,
  MakeCredential: 0x168, ActivateCredential: 0x147, Duplicate: 0x14b, Rewrap: 0x152, Import: 0x156,
  HMAC: 0x155, HMAC_Start: 0x15b, EncryptDecrypt: 0x164, EncryptDecrypt2: 0x193, ECDH_KeyGen: 0x163,
  ECDH_ZGen: 0x154, ECC_Parameters: 0x178, TestParms: 0x18a,
  Certify: 0x148, CertifyCreation: 0x14a, Quote: 0x158, GetTime: 0x14c, NV_Certify: 0x184,
  CertifyX509: 0x197,
  GetSessionAuditDigest: 0x14d, GetCommandAuditDigest: 0x133,
  SetAlgorithmSet: 0x13f,
  EC_Ephemeral: 0x18e, ZGen_2Phase: 0x18d,
};
/** Commands being added to the engine now: may or may not be listed yet. */
export const VTPMD_IN_PROGRESS_COMMANDS: Record<string, number> = {};
/** Commands no vtpmd engine has yet: never listed, always TPM_RC_COMMAND_CODE. */
export const VTPMD_NOT_YET_COMMANDS: Record<string, number> = {};
/**
 * What vtpmd's GetCapability(ALGS) lists this round, keyed by tpm2_getcap's names. TPM_ALG_NULL
 * is implemented (accepted wherever the spec allows it) but, as in libtpms and the reference
 * code, it is not an algorithm the ALGS capability lists.
 */
export const VTPMD_ALGS: Record<string, number> = {
  rsa: 0x0001, sha1: 0x0004, hmac: 0x0005, aes: 0x0006, keyedhash: 0x0008, xor: 0x000a, sha256: 0x000b, sha384: 0x000c,
  sha512: 0x000d, rsassa: 0x0014, rsaes: 0x0015, rsapss: 0x0016, oaep: 0x0017, ecdsa: 0x0018, ecdh: 0x0019, ecschnorr: 0x001c, kdf1_sp800_108: 0x0022, ecc: 0x0023,
  symcipher: 0x0025, ctr: 0x0040, ofb: 0x0041, cbc: 0x0042, cfb: 0x0043, ecb: 0x0044,
};
/** The ECC curves vtpmd has keys for: NIST P-256, P-384, P-521. */
export const VTPMD_ECC_CURVES: number[] = [0x0003, 0x0004, 0x0005];
/** Every command code a TPM 2.0 (libtpms 0.9/0.10, spec 1.83) may have: TPM_CC_FIRST..0x1AF. */
export const ALL_SPEC_COMMAND_CODES: number[] = Array.from({ length: 0x1af - 0x11f + 1 }, (_, i) => 0x11f + i);

export const RC = {
  SUCCESS: 0x000,
  BAD_TAG: 0x01e,
  INITIALIZE: 0x100,
  FAILURE: 0x101,
  SEQUENCE: 0x103,
  COMMAND_SIZE: 0x142,
  COMMAND_CODE: 0x143,
  LOCALITY: 0x907,
} as const;

// ---------------------------------------------------------------------------------------------
// builder

/** Big-endian byte writer. */
export class W {
  private parts: Buffer[] = [];
  u8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v & 0xffff);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  bytes(b: Uint8Array): this {
    this.parts.push(Buffer.from(b));
    return this;
  }
  /** TPM2B: u16 size + bytes. */
  tpm2b(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }
  get length(): number {
    return this.parts.reduce((n, p) => n + p.length, 0);
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Password authorization area (TPM_RS_PW, empty nonce, attributes 0, the given password). */
export function pwAuthArea(password: Uint8Array = new Uint8Array(0), count = 1): Buffer {
  const one = new W().u32(TPM_RS_PW).tpm2b(new Uint8Array(0)).u8(0).tpm2b(password).build();
  const all = Buffer.concat(Array.from({ length: count }, () => one));
  return new W().u32(all.length).bytes(all).build();
}

export interface CommandSpec {
  cc: number;
  handles?: number[];
  /** Authorization area (with its u32 size). When given, tag defaults to TPM_ST_SESSIONS. */
  auth?: Uint8Array;
  params?: Uint8Array;
  /** Override the tag. */
  tag?: number;
  /** Override the header size field (for malformed-command tests). */
  sizeField?: number;
}

/** Assemble header (tag, size, cc) + handles + auth area + parameters. */
export function command(spec: CommandSpec): Buffer {
  const body = new W();
  for (const h of spec.handles ?? []) body.u32(h);
  if (spec.auth) body.bytes(spec.auth);
  if (spec.params) body.bytes(spec.params);
  const b = body.build();
  const tag = spec.tag ?? (spec.auth ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS);
  return new W().u16(tag).u32(spec.sizeField ?? 10 + b.length).u32(spec.cc).bytes(b).build();
}

/** TPML_PCR_SELECTION from { alg: [pcr, ...] } (sizeofSelect 3). */
export function pcrSelection(sel: { alg: number; pcrs: number[]; sizeofSelect?: number }[]): Buffer {
  const w = new W().u32(sel.length);
  for (const s of sel) {
    const n = s.sizeofSelect ?? 3;
    const bits = Buffer.alloc(n);
    for (const p of s.pcrs) bits[p >> 3] |= 1 << (p & 7);
    w.u16(s.alg).u8(n).bytes(bits);
  }
  return w.build();
}

/** TPML_DIGEST_VALUES. */
export function digestValues(d: { alg: number; digest: Uint8Array }[]): Buffer {
  const w = new W().u32(d.length);
  for (const e of d) w.u16(e.alg).bytes(e.digest);
  return w.build();
}

export const cmd = {
  startup: (su: number = TPM_SU.CLEAR) => command({ cc: CC.Startup, params: new W().u16(su).build() }),
  shutdown: (su: number = TPM_SU.CLEAR) => command({ cc: CC.Shutdown, params: new W().u16(su).build() }),
  selfTest: (full = true) => command({ cc: CC.SelfTest, params: new W().u8(full ? 1 : 0).build() }),
  getTestResult: () => command({ cc: CC.GetTestResult }),
  getRandom: (n: number) => command({ cc: CC.GetRandom, params: new W().u16(n).build() }),
  stirRandom: (data: Uint8Array) => command({ cc: CC.StirRandom, params: new W().tpm2b(data).build() }),
  readClock: () => command({ cc: CC.ReadClock }),
  getCapability: (cap: number, property: number, count: number) =>
    command({ cc: CC.GetCapability, params: new W().u32(cap).u32(property).u32(count).build() }),
  pcrRead: (sel: { alg: number; pcrs: number[]; sizeofSelect?: number }[]) =>
    command({ cc: CC.PCR_Read, params: pcrSelection(sel) }),
  pcrExtend: (pcr: number, digests: { alg: number; digest: Uint8Array }[]) =>
    command({ cc: CC.PCR_Extend, handles: [pcr], auth: pwAuthArea(), params: digestValues(digests) }),
  pcrEvent: (pcr: number, data: Uint8Array) =>
    command({ cc: CC.PCR_Event, handles: [pcr], auth: pwAuthArea(), params: new W().tpm2b(data).build() }),
  pcrReset: (pcr: number) => command({ cc: CC.PCR_Reset, handles: [pcr], auth: pwAuthArea() }),
  hash: (data: Uint8Array, alg: number, hierarchy: number = TPM_RH.OWNER) =>
    command({ cc: CC.Hash, params: new W().tpm2b(data).u16(alg).u32(hierarchy).build() }),
  hashSequenceStart: (alg: number, auth: Uint8Array = new Uint8Array(0)) =>
    command({ cc: CC.HashSequenceStart, params: new W().tpm2b(auth).u16(alg).build() }),
  sequenceUpdate: (handle: number, data: Uint8Array) =>
    command({ cc: CC.SequenceUpdate, handles: [handle], auth: pwAuthArea(), params: new W().tpm2b(data).build() }),
  sequenceComplete: (handle: number, data: Uint8Array, hierarchy: number = TPM_RH.OWNER) =>
    command({ cc: CC.SequenceComplete, handles: [handle], auth: pwAuthArea(), params: new W().tpm2b(data).u32(hierarchy).build() }),
  eventSequenceComplete: (pcr: number, handle: number, data: Uint8Array) =>
    command({ cc: CC.EventSequenceComplete, handles: [pcr, handle], auth: pwAuthArea(new Uint8Array(0), 2), params: new W().tpm2b(data).build() }),
  flushContext: (handle: number) => command({ cc: CC.FlushContext, params: new W().u32(handle).build() }),
  incrementalSelfTest: (algs: number[]) => {
    const w = new W().u32(algs.length);
    for (const a of algs) w.u16(a);
    return command({ cc: CC.IncrementalSelfTest, params: w.build() });
  },
};

// ---------------------------------------------------------------------------------------------
// response parsing

export interface Response {
  tag: number;
  size: number;
  rc: number;
  /** Everything after the 10-byte header. */
  body: Buffer;
  raw: Buffer;
}

export function parseResponse(raw: Buffer): Response {
  if (raw.length < 10) throw new Error(`short TPM response (${raw.length} bytes): ${raw.toString('hex')}`);
  return { tag: raw.readUInt16BE(0), size: raw.readUInt32BE(2), rc: raw.readUInt32BE(6), body: raw.subarray(10), raw };
}

/** Big-endian reader over a response body. */
export class R {
  off = 0;
  constructor(readonly b: Buffer) {}
  u8(): number {
    return this.b.readUInt8(this.off++);
  }
  u16(): number {
    const v = this.b.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    const v = this.b.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  bytes(n: number): Buffer {
    if (this.off + n > this.b.length) throw new Error(`read past end (${this.off}+${n} > ${this.b.length})`);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  tpm2b(): Buffer {
    return this.bytes(this.u16());
  }
  get remaining(): number {
    return this.b.length - this.off;
  }
}

/** Skip the parameterSize u32 of a TPM_ST_SESSIONS response. */
export function paramsOf(resp: Response): R {
  const r = new R(resp.body);
  if (resp.tag === TPM_ST.SESSIONS) r.u32();
  return r;
}

/** Parse a PCR_Read response: update counter, selection, and the digests in order. */
export function parsePcrRead(resp: Response): { updateCounter: number; selection: { alg: number; select: Buffer }[]; digests: Buffer[] } {
  const r = new R(resp.body);
  const updateCounter = r.u32();
  const n = r.u32();
  const selection: { alg: number; select: Buffer }[] = [];
  for (let i = 0; i < n; i++) {
    const alg = r.u16();
    selection.push({ alg, select: r.bytes(r.u8()) });
  }
  const count = r.u32();
  const digests: Buffer[] = [];
  for (let i = 0; i < count; i++) digests.push(r.tpm2b());
  return { updateCounter, selection, digests };
}

/** Parse a Hash / SequenceComplete response: digest + TPMT_TK_HASHCHECK. */
export function parseHash(resp: Response): { digest: Buffer; ticket: { tag: number; hierarchy: number; digest: Buffer } } {
  const r = paramsOf(resp);
  const digest = r.tpm2b();
  const ticket = { tag: r.u16(), hierarchy: r.u32(), digest: r.tpm2b() };
  return { digest, ticket };
}

// ---------------------------------------------------------------------------------------------
// client

export type DataTarget = { port: number; host?: string } | { dataPath: string };

/** A data-channel connection; one response per command, framed by the header's size field. */
export class TpmClient extends BufferedSocket {
  private constructor(sock: net.Socket) {
    super(sock);
    sock.setNoDelay(true);
  }

  static async connect(target: DataTarget): Promise<TpmClient> {
    return new TpmClient(await connectSocket('dataPath' in target && typeof target.dataPath === 'string'
      ? { path: target.dataPath }
      : { port: (target as { port: number }).port, host: (target as { host?: string }).host }));
  }

  /** Bytes received but not consumed by a previous `transmit` (should be empty). */
  get leftover(): Buffer {
    return this.buf;
  }

  /**
   * Send one command and read one response (10-byte header, then size − 10). Rejects on timeout
   * or when the peer closes before a full response.
   */
  async transmit(command: Uint8Array, timeoutMs = 10_000): Promise<Buffer> {
    if (this.closed) throw new Error('connection closed');
    this.sock.write(command);
    return this.readResponse(timeoutMs);
  }

  async readResponse(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 10) {
        const size = this.buf.readUInt32BE(2);
        if (size < 10) {
          const bad = this.buf;
          this.buf = Buffer.alloc(0);
          throw new Error(`response size field ${size} < 10: ${bad.toString('hex')}`);
        }
        if (this.buf.length >= size) {
          const out = Buffer.from(this.buf.subarray(0, size));
          this.buf = this.buf.subarray(size);
          return out;
        }
      }
      if (this.closed) throw new Error(`connection closed after ${this.buf.length} response bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for a TPM response (${this.buf.length} bytes so far)`);
      await this.waitForBytes(Math.min(left, 100));
    }
  }

  /** Send and parse. */
  async call(command: Uint8Array, timeoutMs?: number): Promise<Response> {
    return parseResponse(await this.transmit(command, timeoutMs));
  }
}

/** One command on a fresh connection (the tpm2-tss way). */
export async function transmitOnce(target: DataTarget, command: Uint8Array, timeoutMs?: number): Promise<Response> {
  const c = await TpmClient.connect(target);
  try {
    return await c.call(command, timeoutMs);
  } finally {
    c.close();
  }
}

/** A daemon handle's data target. */
export function dataTarget(d: { port: number; dataPath?: string }): DataTarget {
  return d.dataPath ? { dataPath: d.dataPath } : { port: d.port };
}

/** GetCapability(COMMANDS): every TPMA_CC, following moreData. */
export async function listCommands(c: TpmClient): Promise<number[]> {
  const out: number[] = [];
  let next = 0x11f;
  for (;;) {
    const r = await c.call(cmd.getCapability(TPM_CAP.COMMANDS, next, 256));
    if (r.rc !== 0) throw new Error(`GetCapability(COMMANDS, 0x${next.toString(16)}) rc ${rcHex(r.rc)}`);
    const rd = new R(r.body);
    const more = rd.u8();
    rd.u32();
    const n = rd.u32();
    for (let i = 0; i < n; i++) out.push(rd.u32());
    if (!more || n === 0) return out;
    next = (out[out.length - 1]! & 0xffff) + 1 + ((out[out.length - 1]! & 0x20000000) ? 0x20000000 : 0);
  }
}

/** GetCapability(ALGS): [algorithm, attributes], following moreData. */
export async function listAlgs(c: TpmClient): Promise<[number, number][]> {
  const out: [number, number][] = [];
  let next = 0;
  for (;;) {
    const r = await c.call(cmd.getCapability(TPM_CAP.ALGS, next, 128));
    if (r.rc !== 0) throw new Error(`GetCapability(ALGS, 0x${next.toString(16)}) rc ${rcHex(r.rc)}`);
    const rd = new R(r.body);
    const more = rd.u8();
    rd.u32();
    const n = rd.u32();
    for (let i = 0; i < n; i++) out.push([rd.u16(), rd.u32()]);
    if (!more || n === 0) return out;
    next = out[out.length - 1]![0] + 1;
  }
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
export const rcHex = (rc: number) => `0x${rc.toString(16).padStart(3, '0')}`;
