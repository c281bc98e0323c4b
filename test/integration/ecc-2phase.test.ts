// EC_Ephemeral and ZGen_2Phase against vtpmd and Debian's swtpm: a key pair made here is loaded
// with tpm2_loadexternal, tpm2_ecephemeral makes the ephemeral keys, and the other party's side of
// each ECDH exchange (d_sB·QsA and d_eB·Q_ephemeral) is computed here with @noble/curves.
// Differential: the same counters, a byte-identical outZ1 and the same response codes on both
// TPMs, except for SM2 and ECMQV, which libtpms implements and vtpmd refuses.
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, it } from 'vitest';
import { describeImpls, implementations, makeTempDir, startDaemon, type Daemon } from '../helpers/daemon.js';
import { tpm2 } from '../helpers/tools.js';
import { TpmClient, W, command, dataTarget, pwAuthArea } from '../helpers/tpm.js';

const START = { flags: ['not-need-init', 'startup-clear'] };
type Point = { x: bigint; y: bigint };

/** Fixed P-256 scalars: A's static key (loaded into the TPM), B's static and ephemeral keys. */
const scalar = (seed: number) => BigInt(`0x${'5a'.repeat(31)}${seed.toString(16).padStart(2, '0')}`) % p256.Point.Fn.ORDER;
const pair = (seed: number) => ({ d: scalar(seed), Q: p256.Point.BASE.multiply(scalar(seed)).toAffine() });
const A = pair(1);
const SB = pair(2);
const EB = pair(3);
const mul = (d: bigint, q: Point) => p256.Point.fromAffine(q).multiply(d).toAffine();

const coord = (v: bigint) => Buffer.from(v.toString(16).padStart(64, '0'), 'hex');
/** TPM2B_ECC_POINT, as the tools read and write it. */
function pointFile(q: { x: Buffer; y: Buffer }): Buffer {
  const body = Buffer.concat([Buffer.from([0, q.x.length]), q.x, Buffer.from([0, q.y.length]), q.y]);
  return Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body]);
}
function readPointFile(b: Buffer): Point {
  const xs = b.readUInt16BE(2);
  const x = b.subarray(4, 4 + xs);
  const y = b.subarray(6 + xs, 6 + xs + b.readUInt16BE(4 + xs));
  return { x: BigInt(`0x${x.toString('hex')}`), y: BigInt(`0x${y.toString('hex')}`) };
}
function privatePem(d: bigint): string {
  const q = p256.Point.BASE.multiply(d).toAffine();
  const b64 = (v: bigint) => coord(v).toString('base64url');
  const jwk = { kty: 'EC', crv: 'P-256', d: b64(d), x: b64(q.x), y: b64(q.y) };
  return createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'sec1', format: 'pem' }) as string;
}

interface Outcome {
  /** Each step: "ok" or the response code. */
  codes: Record<string, string>;
  counters: number[];
  /** outZ1 and outZ2 of each successful exchange, and the ephemeral points. */
  z: Record<string, { z1: Point; z2: Point }>;
  qe: Point[];
  z1Bytes: string;
}

const u16 = (v: number) => new W().u16(v).build();
const eccPoint = (q: Point) => new W().tpm2b(new W().tpm2b(coord(q.x)).tpm2b(coord(q.y)).build()).build();
const OFF_CURVE = { x: SB.Q.x, y: SB.Q.x };
const ECDH = 0x0019;
const ECMQV = 0x001d;

/** Reads a TPM2B_ECC_POINT at `at`; returns it and the offset after it. */
function readPoint(b: Buffer, at: number): [Point, number] {
  const xs = b.readUInt16BE(at + 2);
  const x = b.subarray(at + 4, at + 4 + xs);
  const ys = b.readUInt16BE(at + 4 + xs);
  const y = b.subarray(at + 6 + xs, at + 6 + xs + ys);
  return [{ x: BigInt(`0x${x.toString('hex')}`), y: BigInt(`0x${y.toString('hex')}`) }, at + 2 + b.readUInt16BE(at)];
}

/**
 * tpm2-tools 5.4's tpm2_zgen2phase sends only the SM2 scheme (it parses -s as a signing scheme),
 * so the tools make the ephemeral keys and show that refusal; the ECDH exchanges are raw commands.
 */
async function script(d: Daemon): Promise<Outcome> {
  const work = makeTempDir();
  const file = (n: string) => path.join(work, n);
  writeFileSync(file('a.pem'), privatePem(A.d));
  writeFileSync(file('qsb'), pointFile({ x: coord(SB.Q.x), y: coord(SB.Q.y) }));
  writeFileSync(file('qeb'), pointFile({ x: coord(EB.Q.x), y: coord(EB.Q.y) }));
  const out: Outcome = { codes: {}, counters: [], z: {}, qe: [], z1Bytes: '' };
  const tool = async (name: string, t: string, args: string[]) => {
    const r = await tpm2(t, d.tcti, args);
    out.codes[name] = r.code === 0 ? 'ok' : (r.stderr.match(/0x[0-9a-f]+/i)?.[0]?.toLowerCase() ?? `exit ${r.code}: ${r.stderr}`);
    return r.code === 0;
  };
  await tool('tpm2_loadexternal', 'loadexternal', ['-C', 'n', '-G', 'ecc', '-r', file('a.pem'), '-a', 'decrypt|userwithauth', '-c', file('a.ctx')]);
  for (let i = 0; i < 2; i++) {
    if (await tool(`tpm2_ecephemeral ${i}`, 'ecephemeral', ['-u', file(`qe${i}`), '-t', file(`counter${i}`), 'ecc256'])) {
      out.counters.push(readFileSync(file(`counter${i}`)).readUInt16BE(0));
      out.qe.push(readPointFile(readFileSync(file(`qe${i}`))));
    }
  }
  // Count 5 was never given: libtpms, which has the SM2 and ECMQV exchanges, gets as far as the
  // count (TPM_RC_VALUE+P4); vtpmd refuses the scheme first (TPM_RC_SCHEME+P3).
  await tool('tpm2_zgen2phase sm2', 'zgen2phase', ['-c', file('a.ctx'), '-s', 'sm2', '-t', '5',
    '--static-public', file('qsb'), '--ephemeral-public', file('qeb'), '--output-Z1', file('z1'), '--output-Z2', file('z2')]);
  const keyA = 0x80000000; // the tool's loadexternal left A loaded in the first transient slot
  const c = await TpmClient.connect(dataTarget(d));
  const zgen = async (name: string, qs: Point, qe: Point, scheme: number, counter: number) => {
    const r = await c.transmit(command({ cc: 0x18d, handles: [keyA], auth: pwAuthArea(), params: Buffer.concat([eccPoint(qs), eccPoint(qe), u16(scheme), u16(counter)]) }));
    const rc = r.readUInt32BE(6);
    out.codes[name] = rc === 0 ? 'ok' : `0x${rc.toString(16)}`;
    if (rc !== 0) return;
    const [z1, at] = readPoint(r, 14);
    out.z[name] = { z1, z2: readPoint(r, at)[0] };
    if (!out.z1Bytes) out.z1Bytes = r.subarray(14, at).toString('hex');
  };
  await zgen('zgen counter 1', SB.Q, EB.Q, ECDH, 1);
  await zgen('zgen counter 1 again', SB.Q, EB.Q, ECDH, 1);
  await zgen('zgen counter never given', SB.Q, EB.Q, ECDH, 5);
  await zgen('zgen ecmqv', SB.Q, EB.Q, ECMQV, 5);
  await zgen('zgen scheme NULL on a NULL-scheme key', SB.Q, EB.Q, 0x0010, 0);
  await zgen('zgen static point off the curve', OFF_CURVE, EB.Q, ECDH, 0);
  await zgen('zgen ephemeral point off the curve', SB.Q, OFF_CURVE, ECDH, 0);
  await zgen('zgen counter 0', SB.Q, EB.Q, ECDH, 0);
  const bad = await c.transmit(command({ cc: 0x18e, params: u16(0x0777) }));
  out.codes['EC_Ephemeral unknown curve'] = `0x${bad.readUInt32BE(6).toString(16)}`;
  c.close();
  return out;
}

const EXPECTED_CODES = {
  tpm2_loadexternal: 'ok',
  'tpm2_ecephemeral 0': 'ok',
  'tpm2_ecephemeral 1': 'ok',
  'tpm2_zgen2phase sm2': '0x3d2', // TPM_RC_SCHEME + P3: SM2 is not implemented (libtpms: 0x4c4)
  'zgen counter 1': 'ok',
  'zgen counter 1 again': '0x4c4', // TPM_RC_VALUE + P4
  'zgen counter never given': '0x4c4',
  'zgen ecmqv': '0x3d2', // ECMQV is not implemented either (libtpms: 0x4c4)
  'zgen scheme NULL on a NULL-scheme key': '0x3d2',
  'zgen static point off the curve': '0x1e7', // TPM_RC_ECC_POINT + P1
  'zgen ephemeral point off the curve': '0x2e7', // TPM_RC_ECC_POINT + P2
  'zgen counter 0': 'ok',
  'EC_Ephemeral unknown curve': '0x1e6', // TPM_RC_CURVE + P1
};

/** The schemes vtpmd does not implement and libtpms does: the one difference in the codes. */
const VTPMD_ONLY = { 'tpm2_zgen2phase sm2': '0x3d2', 'zgen ecmqv': '0x3d2' };
const LIBTPMS_ONLY = { 'tpm2_zgen2phase sm2': '0x4c4', 'zgen ecmqv': '0x4c4' };

describeImpls('EC_Ephemeral and ZGen_2Phase with tpm2-tools', (impl) => {
  it('outZ1 = d_A·QsB = d_sB·QsA and outZ2 = r·QeB = d_eB·Q_ephemeral, once per counter; refusals with their codes', async () => {
    const d = await startDaemon({ impl, ...START });
    const o = await script(d);
    await d.stop();
    expect(o.codes).toEqual({ ...EXPECTED_CODES, ...(impl === 'swtpm' ? LIBTPMS_ONLY : VTPMD_ONLY) });
    expect(o.counters).toEqual([0, 1]);
    expect(o.z['zgen counter 1']!.z1).toEqual(mul(SB.d, A.Q));
    expect(o.z['zgen counter 1']!.z2).toEqual(mul(EB.d, o.qe[1]!));
    expect(o.z['zgen counter 0']!.z1).toEqual(mul(SB.d, A.Q));
    expect(o.z['zgen counter 0']!.z2).toEqual(mul(EB.d, o.qe[0]!));
  });
});

describe.skipIf(implementations().some((i) => i.skip))('differential: tpm2_ecephemeral and tpm2_zgen2phase', () => {
  it('the same codes (but for SM2 and ECMQV), counters and outZ1 bytes on vtpmd and swtpm', async () => {
    const results: Outcome[] = [];
    for (const impl of ['vtpmd', 'swtpm'] as const) {
      const d = await startDaemon({ impl, ...START });
      results.push(await script(d));
      await d.stop();
    }
    const [v, s] = results as [Outcome, Outcome];
    expect({ ...v.codes, ...LIBTPMS_ONLY }).toEqual(s.codes);
    expect({ ...s.codes, ...VTPMD_ONLY }).toEqual(v.codes);
    expect(v.counters).toEqual(s.counters);
    expect(v.z1Bytes).toBe(s.z1Bytes);
    expect(v.z1Bytes.length).toBeGreaterThan(0);
  });
});
