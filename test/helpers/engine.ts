/**
 * An in-process engine for unit tests (go-tpm-tools' simulator idea): deterministic entropy,
 * a clock the test moves, power events, and a command builder that speaks raw bytes.
 */
import { createHash } from 'node:crypto';
import { Engine, EngineEnv } from '../../src/tpm/engine.js';
import { TPM_CC, TPM_RS_PW, TPM_ST } from '../../src/tpm/constants.js';
import type { TpmProfile } from '../../src/tpm/profile.js';

export class TestClock {
  ms = 1_000_000;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** SHA-256 in counter mode over a seed: reproducible "randomness" for tests only. */
export function seededRandom(seed = 'vtpmd-test'): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, n - off)), off);
    }
    return out;
  };
}

export interface TestTpm {
  engine: Engine;
  env: EngineEnv & { logs: string[] };
  clock: TestClock;
  /** Sends raw bytes; returns the parsed response. */
  send(bytes: Uint8Array, locality?: number): Response;
  /** Builds and sends a command. */
  call(code: number, opts?: CallOptions): Response;
  /** Power cycle: _TPM_Init, as swtpm's INIT does. */
  powerCycle(): void;
}

export interface CallOptions {
  handles?: number[];
  /** Password sessions (one per auth handle); omitted = TPM_ST_NO_SESSIONS. */
  passwords?: (string | Uint8Array)[];
  params?: Uint8Array;
  locality?: number;
  tag?: number;
}

export interface Response {
  bytes: Uint8Array;
  tag: number;
  size: number;
  rc: number;
  /** Everything after the 10-byte header. */
  body: Uint8Array;
  /** The parameter area: after the handle (if any) and, for TPM_ST_SESSIONS, the parameterSize. */
  params(responseHandles?: number): Uint8Array;
}

export function parseResponse(bytes: Uint8Array): Response {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = view.getUint16(0);
  const size = view.getUint32(2);
  const rc = view.getUint32(6);
  const body = bytes.subarray(10);
  return {
    bytes,
    tag,
    size,
    rc,
    body,
    params(responseHandles = 0) {
      let off = responseHandles * 4;
      if (tag === TPM_ST.SESSIONS) {
        const n = new DataView(body.buffer, body.byteOffset + off).getUint32(0);
        return body.subarray(off + 4, off + 4 + n);
      }
      return body.subarray(off);
    },
  };
}

const enc = new TextEncoder();

export function buildCommand(code: number, opts: CallOptions = {}): Uint8Array {
  const parts: number[] = [];
  const u16 = (v: number) => parts.push(v >> 8, v & 0xff);
  const u32 = (v: number) => parts.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  const tag = opts.tag ?? (opts.passwords ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS);
  u16(tag);
  u32(0);
  u32(code);
  for (const h of opts.handles ?? []) u32(h);
  if (opts.passwords) {
    const area: number[] = [];
    for (const pw of opts.passwords) {
      const bytes = typeof pw === 'string' ? enc.encode(pw) : pw;
      area.push(...[TPM_RS_PW >>> 24, (TPM_RS_PW >>> 16) & 0xff, (TPM_RS_PW >>> 8) & 0xff, TPM_RS_PW & 0xff]);
      area.push(0, 0, 0x01, bytes.length >> 8, bytes.length & 0xff, ...bytes);
    }
    u32(area.length);
    parts.push(...area);
  }
  const out = new Uint8Array(parts.length + (opts.params?.length ?? 0));
  out.set(parts);
  if (opts.params) out.set(opts.params, parts.length);
  new DataView(out.buffer).setUint32(2, out.length);
  return out;
}

export function createTestTpm(opts: { started?: boolean; seed?: string; profile?: TpmProfile } = {}): TestTpm {
  const clock = new TestClock();
  const logs: string[] = [];
  const env = { random: seededRandom(opts.seed), now: () => clock.ms, log: (m: string) => logs.push(m), logs };
  const engine = Engine.manufacture(env, opts.profile);
  engine.init();
  const t = onEngine(engine, env, clock);
  if (opts.started !== false) {
    const r = t.call(TPM_CC.Startup, { params: new Uint8Array([0, 0]) });
    if (r.rc !== 0) throw new Error(`Startup failed: 0x${r.rc.toString(16)}`);
  }
  return t;
}

/**
 * A daemon restart: the same environment and clock on an engine restored from a permanent-state
 * blob (by default the one `t` would save now) and powered on; no Startup is sent.
 */
export function restoreTestTpm(t: TestTpm, permanent: Uint8Array = t.engine.permanentBlob()): TestTpm {
  const engine = Engine.restore(permanent, t.env);
  engine.init();
  return onEngine(engine, t.env, t.clock);
}

function onEngine(engine: Engine, env: TestTpm['env'], clock: TestClock): TestTpm {
  const send = (bytes: Uint8Array, locality = 0) => parseResponse(engine.execute(bytes, locality));
  return {
    engine,
    env,
    clock,
    send,
    call: (code, o = {}) => send(buildCommand(code, o), o.locality ?? 0),
    powerCycle: () => engine.init(),
  };
}

/** Big-endian helpers for building parameters in tests. */
export const be = {
  u8: (v: number) => new Uint8Array([v]),
  u16: (v: number) => new Uint8Array([v >> 8, v & 0xff]),
  u32: (v: number) => new Uint8Array([(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]),
  b2: (b: Uint8Array | string) => {
    const bytes = typeof b === 'string' ? enc.encode(b) : b;
    return cat(be.u16(bytes.length), bytes);
  },
};

export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
