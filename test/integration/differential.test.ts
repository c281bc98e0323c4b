// Differential tests: the same raw command sequence against vtpmd and Debian's swtpm side by side,
// compared byte for byte wherever the TPM is deterministic (PCR values, digests, response codes,
// capability data). A swtpm-vs-swtpm run of the same script checks that the script itself is
// deterministic, so it runs whenever swtpm is installed. VTPMD_DIFF_VERBOSE=1 prints every result.
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { implementations, startDaemon, swtpmAvailable, type Daemon, type Impl } from '../helpers/daemon.js';
import {
  ALG, CC, DIGEST_SIZE, TPM_CAP, TPM_RH, TPM_ST, TpmClient, W, cmd, command, dataTarget, parseHash, parseResponse, pwAuthArea,
} from '../helpers/tpm.js';

const VERBOSE = process.env.VTPMD_DIFF_VERBOSE === '1';
const BANKS = [ALG.SHA1, ALG.SHA256, ALG.SHA384, ALG.SHA512];
const NODE_ALG: Record<number, string> = { [ALG.SHA1]: 'sha1', [ALG.SHA256]: 'sha256', [ALG.SHA384]: 'sha384', [ALG.SHA512]: 'sha512' };

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Send bytes on a fresh connection; the result as hex, or `closed` / `timeout`. */
async function rawOnce(d: Daemon, bytes: Uint8Array, timeoutMs = 1500): Promise<string> {
  const c = await TpmClient.connect(dataTarget(d));
  try {
    c.sock.write(bytes);
    return (await c.readResponse(timeoutMs)).toString('hex');
  } catch (e) {
    return /timeout/.test(String(e)) ? 'timeout' : 'closed';
  } finally {
    c.close();
  }
}

interface Step {
  name: string;
  bytes: Uint8Array;
  /** Reduce the response to its deterministic part (default: the whole response). */
  normalize?: (resp: Buffer) => string;
  /** Send on a fresh connection with a short timeout (malformed input may make the peer wait or close). */
  fresh?: boolean;
  /** Timeout for a fresh-connection step (default 1500 ms). */
  timeoutMs?: number;
  /** A known, intended vtpmd-vs-swtpm difference (see DEVIATIONS); byte equality is not required. */
  deviation?: Deviation;
}

/**
 * An intended difference between vtpmd and swtpm. `check` returns null when vtpmd's answer is
 * the intended one, else what is wrong with it. Accepted deviations are printed in the test
 * output, so a reader sees every place where vtpmd does not answer as swtpm does.
 */
interface Deviation {
  why: string;
  check(swtpm: string, vtpmd: string): string | null;
}

const rcAndSize = (resp: Buffer) => `rc=${resp.readUInt32BE(6).toString(16)} size=${resp.length}`;
const hashResult = (resp: Buffer) => {
  const r = parseResponse(resp);
  if (r.rc !== 0) return `rc=${r.rc.toString(16)}`;
  const h = parseHash(r);
  // the ticket HMAC depends on the TPM's secret proof value; compare its shape only
  return `digest=${h.digest.toString('hex')} ticket=${h.ticket.tag.toString(16)}/${h.ticket.hierarchy.toString(16)}/${h.ticket.digest.length}`;
};

const allBanksDigests = (data: Uint8Array) =>
  BANKS.map((alg) => ({ alg, digest: createHash(NODE_ALG[alg]!).update(data).digest() }));

/** GetCapability response → [moreData, capability, entries as hex strings of `entrySize` bytes]. */
function capEntries(respHex: string, entrySize: number): { rc: number; more: number; cap: number; entries: string[] } | null {
  if (!/^[0-9a-f]+$/.test(respHex) || respHex.length < 20) return null;
  const b = Buffer.from(respHex, 'hex');
  const rc = b.readUInt32BE(6);
  if (rc !== 0) return { rc, more: 0, cap: 0, entries: [] };
  const n = b.readUInt32BE(15);
  if (b.length !== 19 + n * entrySize) return null;
  const entries = Array.from({ length: n }, (_, i) => b.subarray(19 + i * entrySize, 19 + (i + 1) * entrySize).toString('hex'));
  return { rc, more: b[10]!, cap: b.readUInt32BE(11), entries };
}

/**
 * A capability list: vtpmd lists only what it implements (the issue), so it may be a subset of
 * swtpm's; every entry vtpmd does list must be byte-identical to swtpm's entry for it (same
 * algorithm attributes, same TPMA_CC bits), in the same order, and the list must be complete
 * (moreData 0).
 */
function subsetOfSwtpm(what: string, entrySize: number, keyBytes: number): Deviation {
  return {
    why: `${what}: vtpmd lists only what it implements (a subset of libtpms'); common entries must be identical`,
    check(sw, vt) {
      const a = capEntries(sw, entrySize);
      const b = capEntries(vt, entrySize);
      if (!a || !b || a.rc !== 0 || b.rc !== 0) return 'not a successful, well-formed GetCapability response';
      if (b.more !== 0) return 'vtpmd says moreData';
      if (a.cap !== b.cap) return 'capability differs';
      const swByKey = new Map(a.entries.map((e) => [e.slice(0, keyBytes * 2), e]));
      const bad = b.entries.filter((e) => swByKey.get(e.slice(0, keyBytes * 2)) !== e);
      if (bad.length) return `entries not identical to swtpm's: ${bad.map((e) => `${e} (swtpm ${swByKey.get(e.slice(0, keyBytes * 2)) ?? 'none'})`).join(', ')}`;
      const sorted = [...b.entries].sort();
      if (sorted.join() !== b.entries.join()) return 'vtpmd list is not sorted';
      console.log(`  ${what}: swtpm ${a.entries.length} entries, vtpmd ${b.entries.length}; only in swtpm: ${a.entries.filter((e) => !b.entries.some((x) => x.slice(0, keyBytes * 2) === e.slice(0, keyBytes * 2))).map((e) => e.slice(0, keyBytes * 2)).join(' ')}`);
      return null;
    },
  };
}

const DEVIATIONS = {
  algs: subsetOfSwtpm('GetCapability(ALGS)', 6, 2),
  // TPMA_CC: commandIndex is the low 16 bits, V (vendor) bit 29: key on the whole u32's
  // index part by comparing the last 2 bytes; the attribute bits must match too
  commands: ((): Deviation => {
    const base = subsetOfSwtpm('GetCapability(COMMANDS)', 4, 4);
    return {
      why: base.why,
      check(sw, vt) {
        // key on commandIndex (low 16 bits) so differing attribute bits are reported, not hidden
        const a = capEntries(sw, 4);
        const b = capEntries(vt, 4);
        if (!a || !b || a.rc !== 0 || b.rc !== 0) return 'not a successful, well-formed GetCapability response';
        if (b.more !== 0) return 'vtpmd says moreData';
        const idx = (e: string) => e.slice(4);
        const swByIdx = new Map(a.entries.map((e) => [idx(e), e]));
        const bad = b.entries.filter((e) => swByIdx.get(idx(e)) !== e);
        if (bad.length) return `TPMA_CC not identical to swtpm's: ${bad.map((e) => `vtpmd ${e} swtpm ${swByIdx.get(idx(e)) ?? 'none'}`).join(', ')}`;
        console.log(`  GetCapability(COMMANDS): swtpm ${a.entries.length} commands, vtpmd ${b.entries.length}: ${b.entries.map((e) => '0x' + idx(e)).join(' ')}`);
        return null;
      },
    };
  })(),
  eccCurves: {
    why: 'GetCapability(ECC_CURVES): vtpmd lists the NIST curves it has keys for (P-256, P-384, P-521); swtpm also lists the BN and SM2 curves',
    // moreData 0, TPM_CAP_ECC_CURVES, count 3, 0x0003 0x0004 0x0005
    check: (_sw, vt) =>
      vt === '80010000001900000000' + '00' + '00000008' + '00000003' + '000300040005' ? null : `expected P-256, P-384, P-521, got ${vt}`,
  } satisfies Deviation,
  incrementalSelfTest: {
    why: 'IncrementalSelfTest: libtpms tests algorithms one by one and returns the still-untested ones as toDoList; vtpmd tests everything at once and returns an empty toDoList',
    check(sw, vt) {
      if (!sw.startsWith('8001') || sw.slice(12, 20) !== '00000000') return `swtpm did not succeed: ${sw}`;
      return vt === '80010000000e00000000' + '00000000' ? null : 'expected success with an empty toDoList';
    },
  } satisfies Deviation,
  truncatedHeader: {
    why: 'fewer than 10 bytes: swtpm waits for the rest of the header for ever; vtpmd answers what arrived (TPM_RC_COMMAND_SIZE) after 2 s of silence',
    check: (sw, vt) => (sw === 'timeout' && vt === '80010000000a00000142' ? null : 'expected swtpm to wait and vtpmd to answer 0x142'),
  } satisfies Deviation,
};

/** The deterministic well-formed part of the script (after Startup(CLEAR)). */
function wellFormedSteps(): Step[] {
  const steps: Step[] = [];
  steps.push({ name: 'Startup(CLEAR)', bytes: cmd.startup() });
  // before anything has used an algorithm, so libtpms has a to-do list
  steps.push({ name: 'IncrementalSelfTest(sha256) on a fresh TPM', bytes: cmd.incrementalSelfTest([ALG.SHA256]), deviation: DEVIATIONS.incrementalSelfTest });
  steps.push({ name: 'IncrementalSelfTest(empty list)', bytes: cmd.incrementalSelfTest([]), deviation: DEVIATIONS.incrementalSelfTest });
  for (const pcr of [0, 7, 10, 16, 23]) {
    steps.push({ name: `PCR_Extend(${pcr}, all banks)`, bytes: cmd.pcrExtend(pcr, allBanksDigests(Buffer.from(`extend ${pcr}`))) });
    steps.push({ name: `PCR_Extend(${pcr}, sha256 only)`, bytes: cmd.pcrExtend(pcr, [{ alg: ALG.SHA256, digest: pattern(32, pcr) }]) });
  }
  for (const [pcr, n] of [[8, 0], [8, 1], [14, 1024], [15, 100]] as const) {
    steps.push({ name: `PCR_Event(${pcr}, ${n} bytes)`, bytes: cmd.pcrEvent(pcr, pattern(n, pcr * 1000 + n)) });
  }
  for (const alg of BANKS) {
    for (const first of [0, 8, 16]) {
      const pcrs = Array.from({ length: 8 }, (_, i) => first + i);
      steps.push({ name: `PCR_Read(${NODE_ALG[alg]} ${first}-${first + 7})`, bytes: cmd.pcrRead([{ alg, pcrs }]) });
    }
  }
  // more than 8 digests requested: the TPM returns the first 8 and says which
  steps.push({
    name: 'PCR_Read(sha1 0-23 + sha256 0-23) truncated to 8',
    bytes: cmd.pcrRead([{ alg: ALG.SHA1, pcrs: Array.from({ length: 24 }, (_, i) => i) }, { alg: ALG.SHA256, pcrs: Array.from({ length: 24 }, (_, i) => i) }]),
  });
  steps.push({ name: 'PCR_Read(empty selection)', bytes: cmd.pcrRead([]) });
  steps.push({ name: 'PCR_Reset(16)', bytes: cmd.pcrReset(16) });
  steps.push({ name: 'PCR_Read(sha256 16)', bytes: cmd.pcrRead([{ alg: ALG.SHA256, pcrs: [16] }]) });
  for (const alg of BANKS) {
    for (const n of [0, 1, 55, 64, 65, 1024]) {
      steps.push({ name: `Hash(${NODE_ALG[alg]}, ${n} bytes)`, bytes: cmd.hash(pattern(n, n + alg), alg), normalize: hashResult });
    }
  }
  steps.push({ name: 'Hash(sha256, hierarchy NULL)', bytes: cmd.hash(pattern(100, 1), ALG.SHA256, TPM_RH.NULL) });
  steps.push({ name: 'Hash(sha256, TPM_GENERATED_VALUE prefix)', bytes: cmd.hash(Buffer.concat([Buffer.from('ff544347', 'hex'), pattern(50, 2)]), ALG.SHA256) });
  steps.push({ name: 'Hash(sha256, endorsement)', bytes: cmd.hash(pattern(10, 3), ALG.SHA256, TPM_RH.ENDORSEMENT), normalize: hashResult });
  // hash sequence: sequence handles are deterministic (first free transient slot)
  steps.push({ name: 'HashSequenceStart(sha256)', bytes: cmd.hashSequenceStart(ALG.SHA256) });
  for (let i = 0; i < 3; i++) steps.push({ name: `SequenceUpdate #${i}`, bytes: cmd.sequenceUpdate(0x80000000, pattern(1024, 77 + i)) });
  steps.push({ name: 'SequenceComplete(100 bytes)', bytes: cmd.sequenceComplete(0x80000000, pattern(100, 80)), normalize: hashResult });
  steps.push({ name: 'SequenceUpdate on the completed sequence', bytes: cmd.sequenceUpdate(0x80000000, pattern(4, 1)) });
  // event sequence into PCR 9 (all banks)
  steps.push({ name: 'HashSequenceStart(NULL) = event sequence', bytes: cmd.hashSequenceStart(ALG.NULL) });
  steps.push({ name: 'SequenceUpdate(event)', bytes: cmd.sequenceUpdate(0x80000000, pattern(1024, 5)) });
  steps.push({ name: 'EventSequenceComplete(PCR 9)', bytes: cmd.eventSequenceComplete(9, 0x80000000, pattern(33, 6)) });
  steps.push({ name: 'PCR_Read(sha1,sha256,sha384,sha512 PCR 9)', bytes: cmd.pcrRead(BANKS.map((alg) => ({ alg, pcrs: [9] }))) });
  // random: only the shape is deterministic
  for (const n of [0, 1, 32, 48, 64, 100, 0xffff]) steps.push({ name: `GetRandom(${n})`, bytes: cmd.getRandom(n), normalize: rcAndSize });
  steps.push({ name: 'StirRandom(64)', bytes: cmd.stirRandom(pattern(64, 9)) });
  steps.push({ name: 'SelfTest(full)', bytes: cmd.selfTest(true) });
  steps.push({ name: 'GetTestResult', bytes: cmd.getTestResult() });
  // capabilities that do not depend on the implementation's version/date
  steps.push({ name: 'GetCapability(PCRS)', bytes: cmd.getCapability(TPM_CAP.PCRS, 0, 10) });
  steps.push({ name: 'GetCapability(PT_PCR_COUNT, 2)', bytes: cmd.getCapability(TPM_CAP.TPM_PROPERTIES, 0x112, 2) });
  steps.push({ name: 'GetCapability(PT_MAX_COMMAND_SIZE, 4)', bytes: cmd.getCapability(TPM_CAP.TPM_PROPERTIES, 0x11e, 4) });
  steps.push({ name: 'GetCapability(PT_INPUT_BUFFER)', bytes: cmd.getCapability(TPM_CAP.TPM_PROPERTIES, 0x10d, 1) });
  steps.push({ name: 'GetCapability(PT_NV_BUFFER_MAX)', bytes: cmd.getCapability(TPM_CAP.TPM_PROPERTIES, 0x12c, 1) });
  steps.push({ name: 'GetCapability(PT_MANUFACTURER..VENDOR_STRING_4)', bytes: cmd.getCapability(TPM_CAP.TPM_PROPERTIES, 0x105, 5) });
  steps.push({ name: 'GetCapability(HANDLES persistent)', bytes: cmd.getCapability(TPM_CAP.HANDLES, 0x81000000, 20) });
  steps.push({ name: 'GetCapability(ECC_CURVES)', bytes: cmd.getCapability(TPM_CAP.ECC_CURVES, 0, 20), deviation: DEVIATIONS.eccCurves });
  steps.push({ name: 'GetCapability(ALGS)', bytes: cmd.getCapability(TPM_CAP.ALGS, 0, 128), deviation: DEVIATIONS.algs });
  steps.push({ name: 'GetCapability(COMMANDS)', bytes: cmd.getCapability(TPM_CAP.COMMANDS, 0x11f, 256), deviation: DEVIATIONS.commands });
  // after SelfTest(full) nothing is left to do in either
  steps.push({ name: 'IncrementalSelfTest(sha256) after SelfTest(full)', bytes: cmd.incrementalSelfTest([ALG.SHA256]) });
  return steps;
}

/** Malformed or refused commands; each on its own connection. */
function malformedSteps(): Step[] {
  const gr = cmd.getRandom(8); // 80 01 00 00 00 0c 00 00 01 7b 00 08
  const withSize = (b: Buffer, size: number) => {
    const c = Buffer.from(b);
    c.writeUInt32BE(size >>> 0, 2);
    return c;
  };
  const s: Step[] = [
    { name: 'truncated header (6 bytes)', bytes: gr.subarray(0, 6), timeoutMs: 2600, deviation: DEVIATIONS.truncatedHeader },
    { name: 'size field bigger than the buffer', bytes: withSize(gr, 16) },
    { name: 'size field smaller than the buffer', bytes: withSize(gr, 10) },
    { name: 'size field < 10', bytes: withSize(gr, 4) },
    { name: 'size field 0xFFFFFFFF', bytes: withSize(gr, 0xffffffff) },
    { name: 'size field 4097 (> max command size)', bytes: Buffer.concat([withSize(gr, 4097), Buffer.alloc(4085)]) },
    { name: 'bad tag 0x1234', bytes: command({ cc: CC.GetRandom, tag: 0x1234, params: new W().u16(8).build() }) },
    { name: 'tag 0x8002 without an auth area', bytes: command({ cc: CC.GetRandom, tag: TPM_ST.SESSIONS, params: new W().u16(8).build() }) },
    { name: 'unknown command code 0xFFFF', bytes: command({ cc: 0xffff }) },
    { name: 'command code 0 ', bytes: command({ cc: 0 }) },
    { name: 'vendor command code 0x20000000', bytes: command({ cc: 0x20000000 }) },
    { name: 'trailing parameter bytes (GetRandom + 2)', bytes: command({ cc: CC.GetRandom, params: new W().u16(8).u16(0).build() }) },
    { name: 'missing parameter (GetRandom, no bytesRequested)', bytes: command({ cc: CC.GetRandom }) },
    { name: 'Hash with bad alg 0x1234', bytes: cmd.hash(Buffer.from('abc'), 0x1234) },
    { name: 'Hash with alg NULL', bytes: cmd.hash(Buffer.from('abc'), ALG.NULL) },
    { name: 'Hash with bad hierarchy', bytes: cmd.hash(Buffer.from('abc'), ALG.SHA256, 0x12345678) },
    { name: 'Hash of 1025 bytes (> MAX_DIGEST_BUFFER)', bytes: cmd.hash(pattern(1025, 1), ALG.SHA256) },
    { name: 'Hash with TPM2B size beyond the buffer', bytes: command({ cc: CC.Hash, params: new W().u16(100).bytes(Buffer.from('abc')).build() }) },
    { name: 'PCR_Read sizeofSelect 5', bytes: cmd.pcrRead([{ alg: ALG.SHA256, pcrs: [0], sizeofSelect: 5 }]) },
    { name: 'PCR_Read sizeofSelect 0', bytes: cmd.pcrRead([{ alg: ALG.SHA256, pcrs: [], sizeofSelect: 0 }]) },
    { name: 'PCR_Read sizeofSelect 4 (PCR 24-31)', bytes: cmd.pcrRead([{ alg: ALG.SHA256, pcrs: [0, 31], sizeofSelect: 4 }]) },
    { name: 'PCR_Read unknown bank 0x1234', bytes: cmd.pcrRead([{ alg: 0x1234, pcrs: [0] }]) },
    { name: 'PCR_Read count 17', bytes: command({ cc: CC.PCR_Read, params: new W().u32(17).build() }) },
    { name: 'PCR_Extend PCR 24 (bad handle)', bytes: cmd.pcrExtend(24, [{ alg: ALG.SHA256, digest: Buffer.alloc(32) }]) },
    { name: 'PCR_Extend without sessions (tag 0x8001)', bytes: command({ cc: CC.PCR_Extend, handles: [16], params: new W().u32(0).build() }) },
    { name: 'PCR_Extend with wrong password', bytes: command({ cc: CC.PCR_Extend, handles: [16], auth: pwAuthArea(Buffer.from('x')), params: new W().u32(0).build() }) },
    { name: 'PCR_Extend with unknown alg in the list', bytes: cmd.pcrExtend(16, [{ alg: 0x1234, digest: Buffer.alloc(32) }]) },
    { name: 'PCR_Extend digest list count 9', bytes: command({ cc: CC.PCR_Extend, handles: [16], auth: pwAuthArea(), params: new W().u32(9).build() }) },
    { name: 'PCR_Event of 1025 bytes', bytes: cmd.pcrEvent(16, pattern(1025, 2)) },
    { name: 'PCR_Reset(0) at locality 0', bytes: cmd.pcrReset(0) },
    { name: 'authSize larger than the command', bytes: command({ cc: CC.PCR_Reset, handles: [16], auth: new W().u32(100).build() }) },
    { name: 'Startup twice', bytes: cmd.startup() },
    { name: 'Startup(STATE) when started', bytes: cmd.startup(1) },
    { name: 'Startup with bad su 5', bytes: cmd.startup(5) },
    { name: 'Shutdown with bad su 5', bytes: cmd.shutdown(5) },
    { name: 'SelfTest(fullTest = 2)', bytes: command({ cc: CC.SelfTest, params: new W().u8(2).build() }) },
    { name: 'GetCapability bad capability 0x99', bytes: cmd.getCapability(0x99, 0, 1) },
    { name: 'GetCapability(TPM_PROPERTIES, count 0)', bytes: cmd.getCapability(TPM_CAP.TPM_PROPERTIES, 0x100, 0) },
    { name: 'SequenceUpdate on a bad handle', bytes: cmd.sequenceUpdate(0x80ffffff, Buffer.from('x')) },
    { name: 'FlushContext of an unknown handle', bytes: cmd.flushContext(0x80000005) },
    { name: 'FlushContext of a PCR handle', bytes: cmd.flushContext(0x00000001) },
    { name: 'StirRandom of 129 bytes', bytes: cmd.stirRandom(pattern(129, 4)) },
    { name: 'all-zero 10 bytes', bytes: Buffer.alloc(10) },
    { name: 'all-0xFF 12 bytes', bytes: Buffer.alloc(12, 0xff) },
  ];
  return s.map((x) => ({ ...x, fresh: true }));
}

async function runScript(d: Daemon, steps: Step[]): Promise<string[]> {
  const out: string[] = [];
  // swtpm serves one data connection at a time: the kept one is closed before a fresh one opens
  let kept: TpmClient | undefined;
  try {
    for (const st of steps) {
      let res: string;
      if (st.fresh) {
        kept?.close();
        kept = undefined;
        res = await rawOnce(d, st.bytes, st.timeoutMs);
        if (st.normalize && /^[0-9a-f]+$/.test(res) && res.length >= 20) res = st.normalize(Buffer.from(res, 'hex'));
      } else {
        kept ??= await TpmClient.connect(dataTarget(d));
        const resp = await kept.transmit(st.bytes, 10_000);
        res = st.normalize ? st.normalize(resp) : resp.toString('hex');
      }
      out.push(res);
      if (VERBOSE) console.log(`[${d.impl}:${d.pid}] ${st.name}: ${res.length > 200 ? res.slice(0, 200) + '…' : res}`);
    }
  } finally {
    kept?.close();
  }
  return out;
}

async function collect(impl: Impl): Promise<{ wellFormed: string[]; malformed: string[]; afterwards: string[] }> {
  const d = await startDaemon({ impl, flags: ['not-need-init'] });
  const wellFormed = await runScript(d, wellFormedSteps());
  const malformed = await runScript(d, malformedSteps());
  // the daemon survived: PCR state and a hash are still right
  const afterwards = await runScript(d, [
    { name: 'PCR_Read(sha256 0-7) afterwards', bytes: cmd.pcrRead([{ alg: ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }]) },
    { name: 'Hash afterwards', bytes: cmd.hash(Buffer.from('abc'), ALG.SHA256), normalize: hashResult },
  ]);
  await d.stop();
  return { wellFormed, malformed, afterwards };
}

function compare(name: string, steps: Step[], a: string[], b: string[], labels: [string, string], allowDeviations = false) {
  const diffs: string[] = [];
  const accepted: string[] = [];
  steps.forEach((st, i) => {
    if (VERBOSE) console.log(`[${name}] ${st.name}: ${labels[1]}=${b[i]}`);
    if (a[i] === b[i]) return;
    if (allowDeviations && st.deviation) {
      const problem = st.deviation.check(a[i]!, b[i]!);
      if (problem === null) {
        accepted.push(`${st.name}: ${st.deviation.why}\n    ${labels[0]}: ${a[i]}\n    ${labels[1]}: ${b[i]}`);
        return;
      }
      diffs.push(`${st.name} (deviation check failed: ${problem})\n    ${labels[0]}: ${a[i]}\n    ${labels[1]}: ${b[i]}`);
      return;
    }
    diffs.push(`${st.name}\n    ${labels[0]}: ${a[i]}\n    ${labels[1]}: ${b[i]}`);
  });
  if (accepted.length) console.log(`[${name}] ${accepted.length} intended deviations (${labels[1]} vs ${labels[0]}):\n  ${accepted.join('\n  ')}`);
  expect(diffs, `${diffs.length} differences:\n  ${diffs.join('\n  ')}`).toEqual([]);
}

describe.skipIf(!swtpmAvailable())('differential self-check [swtpm vs swtpm]', () => {
  let a: Awaited<ReturnType<typeof collect>>;
  let b: Awaited<ReturnType<typeof collect>>;
  beforeAll(async () => {
    a = await collect('swtpm');
    if (VERBOSE) return;
    b = await collect('swtpm');
  }, 180_000);
  it('the well-formed script is deterministic', () => compare('wellformed', wellFormedSteps(), a.wellFormed, b.wellFormed, ['swtpm#1', 'swtpm#2']));
  it('the malformed commands are deterministic', () => compare('malformed', malformedSteps(), a.malformed, b.malformed, ['swtpm#1', 'swtpm#2']));
  it('digests in the script equal node:crypto', () => {
    const steps = wellFormedSteps();
    steps.forEach((st, i) => {
      const m = /^Hash\((sha\d+), (\d+) bytes\)$/.exec(st.name);
      if (!m) return;
      const alg = { sha1: ALG.SHA1, sha256: ALG.SHA256, sha384: ALG.SHA384, sha512: ALG.SHA512 }[m[1] as 'sha1']!;
      const want = createHash(m[1]!).update(pattern(Number(m[2]), Number(m[2]) + alg)).digest('hex');
      expect(a.wellFormed[i]).toContain(`digest=${want} `);
      expect(a.wellFormed[i]).toMatch(new RegExp(` ticket=8024/40000001/${DIGEST_SIZE[ALG.SHA512]}$`));
    });
  });
});

const skipDiff = implementations().find((i) => i.skip !== false)?.skip ?? false;
describe.skipIf(skipDiff !== false)(
  `differential [vtpmd vs swtpm]${skipDiff ? ` (skipped: ${skipDiff})` : ''}`,
  () => {
    let sw: Awaited<ReturnType<typeof collect>>;
    let vt: Awaited<ReturnType<typeof collect>>;
    beforeAll(async () => {
      [sw, vt] = await Promise.all([collect('swtpm'), collect('vtpmd')]);
    });
    it('PCR extends/events/reads, hashes, sequences, capabilities: identical responses', () =>
      compare('wellformed', wellFormedSteps(), sw.wellFormed, vt.wellFormed, ['swtpm', 'vtpmd'], true));
    it('malformed and refused commands: identical response codes and bytes', () =>
      compare('malformed', malformedSteps(), sw.malformed, vt.malformed, ['swtpm', 'vtpmd'], true));
    it('still serving correctly afterwards', () =>
      compare('afterwards', [{ name: 'PCR_Read', bytes: Buffer.alloc(0) }, { name: 'Hash', bytes: Buffer.alloc(0) }], sw.afterwards, vt.afterwards, ['swtpm', 'vtpmd']));
  },
);
