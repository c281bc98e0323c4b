// Robustness: thousands of random and mutated TPM commands over the data socket. Every complete
// command must get a well-formed response in time; incomplete ones may be waited on, but the
// daemon must go on serving, and its state dir must still load after a restart.
// vtpmd only (VTPMD_FUZZ_IMPL=swtpm dry-runs the harness against swtpm without its assertions on
// error framing). VTPMD_FUZZ_SEED, VTPMD_FUZZ_COUNT override the defaults.
import { expect, it } from 'vitest';
import { describeImpls, type Impl, makeTempDir, startDaemon } from '../helpers/daemon.js';
import { ALG, CC, TPM_CAP, TPM_RH, TpmClient, cmd, command, dataTarget, parseResponse, W, type DataTarget } from '../helpers/tpm.js';

const SEED = Number(process.env.VTPMD_FUZZ_SEED ?? 0x5eed1234);
const COUNT = Number(process.env.VTPMD_FUZZ_COUNT ?? 3000);
const BUDGET_MS = 40_000;
const RESPONSE_TIMEOUT_MS = 2000;
const target: Impl = process.env.VTPMD_FUZZ_IMPL === 'swtpm' ? 'swtpm' : 'vtpmd';

/** mulberry32: small, seeded, good enough for fuzzing. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
    pick<T>(xs: readonly T[]): T {
      return xs[Math.floor(next() * xs.length)]!;
    },
  };
}
type Rng = ReturnType<typeof prng>;

function corpus(): Buffer[] {
  const all = Array.from({ length: 24 }, (_, i) => i);
  return [
    cmd.startup(),
    cmd.startup(1),
    cmd.getRandom(16),
    cmd.getRandom(64),
    cmd.stirRandom(Buffer.alloc(32, 1)),
    cmd.selfTest(true),
    cmd.getTestResult(),
    cmd.readClock(),
    cmd.pcrRead([{ alg: ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }]),
    cmd.pcrRead([{ alg: ALG.SHA1, pcrs: all }, { alg: ALG.SHA256, pcrs: all }]),
    cmd.pcrExtend(16, [{ alg: ALG.SHA256, digest: Buffer.alloc(32, 2) }]),
    cmd.pcrExtend(23, [{ alg: ALG.SHA1, digest: Buffer.alloc(20, 3) }, { alg: ALG.SHA256, digest: Buffer.alloc(32, 3) }]),
    cmd.pcrEvent(16, Buffer.from('event data')),
    cmd.pcrReset(16),
    cmd.hash(Buffer.from('hello world'), ALG.SHA256),
    cmd.hash(Buffer.alloc(1024, 7), ALG.SHA512, TPM_RH.NULL),
    cmd.hashSequenceStart(ALG.SHA256),
    cmd.hashSequenceStart(ALG.NULL, Buffer.from('pw')),
    cmd.sequenceUpdate(0x80000000, Buffer.alloc(100, 4)),
    cmd.sequenceComplete(0x80000000, Buffer.alloc(10, 5)),
    cmd.eventSequenceComplete(16, 0x80000001, Buffer.alloc(10, 6)),
    cmd.flushContext(0x80000000),
    cmd.getCapability(TPM_CAP.TPM_PROPERTIES, 0x100, 64),
    cmd.getCapability(TPM_CAP.ALGS, 0, 64),
    cmd.getCapability(TPM_CAP.COMMANDS, 0x11f, 200),
    cmd.getCapability(TPM_CAP.PCRS, 0, 1),
    cmd.getCapability(TPM_CAP.HANDLES, 0x80000000, 10),
    // commands with richer parameter structures, as templates for mutation
    command({ cc: 0x131 /* CreatePrimary */, handles: [TPM_RH.OWNER], auth: Buffer.from('000000094000000900000000000000', 'hex'),
      params: new W().u16(4).u16(0).u16(0).bytes(Buffer.from('0001000b00030072000000060080004300100800000000000000', 'hex')).u16(0).u32(0).build() }),
    command({ cc: 0x176 /* StartAuthSession */, params: new W().u32(TPM_RH.NULL).u32(TPM_RH.NULL).u16(16).bytes(Buffer.alloc(16)).u16(0).u8(1).u16(ALG.NULL).u16(ALG.SHA256).build() }),
    command({ cc: 0x16b /* NV_ReadPublic */, handles: [0x01c00002] }),
    command({ cc: 0x173 /* ReadPublic */, handles: [0x81000001] }),
    command({ cc: 0x17f /* PolicyGetDigest */, handles: [0x03000000] }),
  ];
}

const CCS = [...Object.values(CC), 0x131, 0x153, 0x157, 0x161, 0x162, 0x176, 0x16b, 0x173, 0x121, 0x12a, 0x12b, 0x130, 0x14e, 0x158, 0x15d, 0x160, 0x16e, 0x174, 0x177, 0x17f, 0x193, 0x199, 0x19a, 0x19b];

function mutate(r: Rng, seeds: Buffer[]): Buffer {
  const base = Buffer.from(r.pick(seeds));
  switch (r.int(10)) {
    case 0: { // bit flips
      const n = 1 + r.int(8);
      for (let i = 0; i < n; i++) {
        const p = r.int(base.length);
        base[p] = base[p]! ^ (1 << r.int(8));
      }
      return base;
    }
    case 1: { // random bytes overwritten after the header (size stays honest)
      const n = 1 + r.int(6);
      for (let i = 0; i < n && base.length > 10; i++) base[10 + r.int(base.length - 10)] = r.int(256);
      return base;
    }
    case 2: { // truncation with the size field fixed up (a consistent but short command)
      const len = 10 + r.int(Math.max(1, base.length - 10));
      const t = Buffer.from(base.subarray(0, len));
      t.writeUInt32BE(len, 2);
      return t;
    }
    case 3: { // extension with the size field fixed up
      const t = Buffer.concat([base, r.bytes(1 + r.int(64))]);
      t.writeUInt32BE(t.length, 2);
      return t;
    }
    case 4: { // size-field lies
      const lies = [0, 1, 9, 10, base.length - 1, base.length + 1, base.length + 100, 4096, 4097, 0xffff, 0xffffffff, r.int(0x10000)];
      base.writeUInt32BE(r.pick(lies) >>> 0, 2);
      return base;
    }
    case 5: // plain truncation (size field now larger than the bytes)
      return base.subarray(0, r.int(base.length));
    case 6: // other command code, same body
      base.writeUInt32BE(r.next() < 0.8 ? r.pick(CCS) : (r.int(0x10000) | (r.next() < 0.1 ? 0x20000000 : 0)) >>> 0, 6);
      return base;
    case 7: // other tag
      base.writeUInt16BE(r.pick([0x8001, 0x8002, 0x00c1, 0x8003, 0x0000, 0xffff, r.int(0x10000)]), 0);
      return base;
    case 8: { // random body behind a valid header
      const body = r.bytes(r.int(200));
      return new W().u16(r.pick([0x8001, 0x8002])).u32(10 + body.length).u32(r.pick(CCS)).bytes(body).build();
    }
    default: // pure garbage
      return r.bytes(r.int(80));
  }
}

type Kind = 'complete' | 'partial' | 'overlong' | 'tiny';
function classify(b: Buffer): Kind {
  if (b.length < 10) return 'tiny';
  const size = b.readUInt32BE(2);
  if (size === b.length) return 'complete';
  if (size > b.length) return 'partial';
  return 'overlong';
}

async function probe(t: DataTarget): Promise<number> {
  const c = await TpmClient.connect(t);
  try {
    return parseResponse(await c.transmit(cmd.getRandom(8), 5000)).rc;
  } finally {
    c.close();
  }
}

describeImpls('fuzz the data channel', (impl) => {
  it(`${COUNT} random/mutated commands (seed 0x${SEED.toString(16)}), then GetRandom, then restart`, async () => {
    const stateDir = makeTempDir();
    let d = await startDaemon({ impl, flags: ['not-need-init'], stateDir });
    const t = dataTarget(d);
    {
      const c = await TpmClient.connect(t);
      expect(parseResponse(await c.transmit(cmd.startup())).rc).toBe(0);
      c.close();
    }
    const r = prng(SEED);
    const seeds = corpus();
    const problems: string[] = [];
    const stats: Record<string, number> = {};
    const t0 = Date.now();
    let conn: TpmClient | undefined;
    let sent = 0;
    const recent: string[] = [];
    for (; sent < COUNT && Date.now() - t0 < BUDGET_MS; sent++) {
      const bytes = mutate(r, seeds);
      const kind = classify(bytes);
      recent.push(`${kind} ${bytes.toString('hex')}`);
      if (recent.length > 5) recent.shift();
      conn ??= await TpmClient.connect(t);
      if (kind === 'tiny' || kind === 'partial') {
        // the daemon may legitimately wait for the rest: abandon the connection
        conn.sock.write(bytes);
        conn.close();
        conn = undefined;
        stats[kind] = (stats[kind] ?? 0) + 1;
        continue;
      }
      try {
        const resp = await conn.transmit(bytes, RESPONSE_TIMEOUT_MS);
        const p = parseResponse(resp);
        stats[`rc=0x${p.rc.toString(16)}`] = (stats[`rc=0x${p.rc.toString(16)}`] ?? 0) + 1;
        if (impl === 'vtpmd' || process.env.VTPMD_FUZZ_STRICT === '1') {
          if (p.tag !== 0x8001 && p.tag !== 0x8002) problems.push(`bad response tag ${resp.toString('hex')} for ${bytes.toString('hex')}`);
          if (p.rc !== 0 && (p.tag !== 0x8001 || p.size !== 10)) problems.push(`error response not 10 bytes/0x8001: ${resp.toString('hex')} for ${bytes.toString('hex')}`);
          if (p.rc === 0x101) problems.push(`TPM_RC_FAILURE for ${bytes.toString('hex')}`);
        }
      } catch (e) {
        const msg = String(e);
        if (/timeout/.test(msg) && kind === 'complete') problems.push(`no response within ${RESPONSE_TIMEOUT_MS} ms to ${bytes.toString('hex')}`);
        else stats[`${kind}:${/timeout/.test(msg) ? 'timeout' : 'closed'}`] = (stats[`${kind}:${/timeout/.test(msg) ? 'timeout' : 'closed'}`] ?? 0) + 1;
        conn.close();
        conn = undefined;
        if (problems.length > 20) break;
      }
      if (kind === 'overlong') {
        // trailing bytes may be taken as the start of the next command: resynchronise
        conn?.close();
        conn = undefined;
      }
      if (sent % 500 === 499) {
        conn?.close(); // one data client at a time (swtpm)
        conn = undefined;
        const rc = await probe(t).catch((e) => `${e} after:\n${recent.join('\n')}`);
        expect(rc, `liveness after ${sent + 1} commands`).not.toBe(0x101);
        expect(typeof rc, `liveness after ${sent + 1} commands: ${rc}`).toBe('number');
      }
    }
    conn?.close();
    console.log(`[fuzz ${impl}] ${sent} commands in ${Date.now() - t0} ms: ${JSON.stringify(stats)}`);
    expect(problems, problems.slice(0, 10).join('\n')).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(Math.min(COUNT, 1000));

    // still serving
    expect(await probe(t)).toBe(0);
    expect(d.process.exitCode).toBeNull();

    // and the state dir still loads
    await d.stop();
    d = await startDaemon({ impl, flags: ['not-need-init'], stateDir });
    const c = await TpmClient.connect(dataTarget(d));
    try {
      const s = parseResponse(await c.transmit(cmd.startup())).rc;
      expect([0, 0x100]).toContain(s);
      const g = parseResponse(await c.transmit(cmd.getRandom(16)));
      expect(g.rc).toBe(0);
      expect(g.body.readUInt16BE(0)).toBe(16);
    } finally {
      c.close();
    }
  }, 120_000);
}, [target]);
