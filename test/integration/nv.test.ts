// NV indices through tpm2-tools 5.4 and raw commands, on vtpmd and Debian's swtpm side by side:
// the same tool transcript (names, read-backs, response codes), indices that survive restarts and
// SIGKILL, and NV that fills up at the same point.
import { describe, expect, it } from 'vitest';
import { describeImpls, startDaemon, swtpmAvailable, vtpmdAvailable, makeTempDir, type Daemon, type Impl } from '../helpers/daemon.js';
import { tpm2, tpm2ok } from '../helpers/tools.js';
import { TpmClient, W, command, cmd, dataTarget, pwAuthArea, R, TPM_RH } from '../helpers/tpm.js';

const FLAGS = ['not-need-init', 'startup-clear'];
const NV = { DefineSpace: 0x12a, UndefineSpace: 0x122, Write: 0x137, Read: 0x14e, ReadPublic: 0x169 } as const;

/** Runs one tool and records what a user would compare: exit code, output, the TPM's RC. */
async function step(d: Daemon, tool: string, args: string[], input?: string): Promise<string> {
  const r = await tpm2(tool, d.tcti, args, input !== undefined ? { input } : {});
  const rc = /\((0x[0-9A-Fa-f]+)\)/.exec(r.stderr)?.[1]?.toLowerCase();
  const out = r.stdoutBytes.length && /[^\x09\x0a\x0d\x20-\x7e]/.test(r.stdout) ? r.stdoutBytes.toString('hex') : r.stdout.trim();
  return `${tool} ${args.join(' ')} -> ${r.code}${rc ? ` rc=${rc}` : ''}${out ? `\n${out}` : ''}`;
}

/** Every NV tool tpm2-tools 5.4 has (but nvcertify), its success and its refusals. */
async function transcript(d: Daemon): Promise<string[]> {
  const log: string[] = [];
  const s = async (tool: string, args: string[], input?: string) => log.push(await step(d, tool, args, input));
  await s('nvdefine', ['0x1000001', '-C', 'o', '-s', '32', '-a', 'ownerread|ownerwrite|authread|authwrite', '-p', 'pass']);
  await s('nvreadpublic', ['0x1000001']);
  await s('nvwrite', ['0x1000001', '-C', 'o', '-i-'], 'hello');
  await s('nvread', ['0x1000001', '-C', 'o', '-s', '5']);
  await s('nvread', ['0x1000001', '-C', '0x1000001', '-P', 'pass', '-s', '3', '--offset', '2']);
  await s('nvwrite', ['0x1000001', '-C', '0x1000001', '-P', 'pass', '--offset', '30', '-i-'], 'xyz');
  await s('nvread', ['0x1000001', '-C', '0x1000001', '-P', 'wrong', '-s', '5']);
  await s('nvread', ['0x1000001', '-C', 'p', '-s', '5']);
  await s('nvreadpublic', ['0x1000001']);
  await s('nvdefine', ['0x1000002', '-C', 'o', '-a', 'ownerread|ownerwrite|nt=counter']);
  await s('nvread', ['0x1000002', '-C', 'o']);
  await s('nvincrement', ['0x1000002', '-C', 'o']);
  await s('nvincrement', ['0x1000002', '-C', 'o']);
  await s('nvread', ['0x1000002', '-C', 'o']);
  await s('nvread', ['0x1000002', '-C', '0x1000002']);
  await s('nvdefine', ['0x1000003', '-C', 'o', '-a', 'ownerread|ownerwrite|nt=extend', '-g', 'sha256']);
  await s('nvextend', ['0x1000003', '-C', 'o', '-i-'], 'abc');
  await s('nvread', ['0x1000003', '-C', 'o']);
  await s('nvdefine', ['0x1000004', '-C', 'o', '-a', 'ownerread|ownerwrite|nt=bits']);
  await s('nvsetbits', ['0x1000004', '-C', 'o', '-i', '0x1122']);
  await s('nvsetbits', ['0x1000004', '-C', 'o', '-i', '0x100000000']);
  await s('nvread', ['0x1000004', '-C', 'o']);
  await s('nvdefine', ['0x1000005', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite|read_stclear|writedefine']);
  await s('nvreadlock', ['0x1000005', '-C', 'o']);
  await s('nvwrite', ['0x1000005', '-C', 'o', '-i-'], '12345678');
  await s('nvwritelock', ['0x1000005', '-C', 'o']);
  await s('nvwrite', ['0x1000005', '-C', 'o', '-i-'], '12345678');
  await s('nvread', ['0x1000005', '-C', 'o']);
  await s('nvdefine', ['0x1000006', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite|globallock']);
  await s('nvwritelock', ['--global', '-C', 'o']);
  await s('nvwrite', ['0x1000006', '-C', 'o', '-i-'], '12345678');
  await s('nvreadpublic', ['0x1000006']);
  await s('nvdefine', ['0x1000001', '-C', 'o', '-s', '32', '-a', 'ownerread|ownerwrite']);
  await s('nvdefine', ['0x1000007', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite|platformcreate']);
  await s('nvdefine', ['0x1400001', '-C', 'p', '-s', '32', '-a', 'ppread|ppwrite|platformcreate|ownerread']);
  await s('nvwrite', ['0x1400001', '-C', 'o', '-i-'], 'plat');
  await s('nvwrite', ['0x1400001', '-C', 'p', '-i-'], 'plat');
  await s('nvread', ['0x1400001', '-C', 'o', '-s', '4']);
  await s('nvundefine', ['0x1400001', '-C', 'o']);
  await s('nvundefine', ['0x1400001', '-C', 'p']);
  await s('getcap', ['handles-nv-index']);
  await s('nvundefine', ['0x1000009', '-C', 'o']);
  await s('nvundefine', ['0x1000002', '-C', 'o']);
  await s('nvdefine', ['0x1000002', '-C', 'o', '-a', 'ownerread|ownerwrite|nt=counter']);
  await s('nvincrement', ['0x1000002', '-C', 'o']);
  await s('nvread', ['0x1000002', '-C', 'o']);
  return log;
}

describe.skipIf(!vtpmdAvailable() || !swtpmAvailable())('NV with tpm2-tools: vtpmd and swtpm give the same transcript', () => {
  it('define, read back, names, counters, bits, extend, locks, platform indices and their errors', async () => {
    const [vt, sw] = await Promise.all((['vtpmd', 'swtpm'] as Impl[]).map((impl) => startDaemon({ impl, flags: FLAGS })));
    const a = await transcript(vt!);
    const b = await transcript(sw!);
    expect(a.join('\n')).toBe(b.join('\n'));
    // The transcript did test something: names, counters across deletion, refusals.
    const text = a.join('\n');
    expect(text).toMatch(/name: 000b[0-9a-f]{64}/);
    expect(text).toMatch(/rc=0x148/); // NV_LOCKED
    expect(text).toMatch(/rc=0x149/); // NV_AUTHORIZATION
    expect(text).toMatch(/rc=0x14c/); // NV_DEFINED
    expect(text).toMatch(/rc=0x14a/); // NV_UNINITIALIZED
    expect(text).toMatch(/rc=0x98e/); // AUTH_FAIL
    expect(text.split('\n').at(-1)).toBe('0000000000000003'); // the new counter starts above the deleted one
  }, 120_000);
});

const nvPublic = (handle: number, attributes: number, size: number) =>
  new W().u32(handle).u16(0x000b).u32(attributes).tpm2b(new Uint8Array(0)).u16(size).build();
const defineCmd = (handle: number, attributes: number, size: number, hierarchy: number = TPM_RH.OWNER) =>
  command({ cc: NV.DefineSpace, handles: [hierarchy], auth: pwAuthArea(), params: new W().tpm2b(new Uint8Array(0)).tpm2b(nvPublic(handle, attributes, size)).build() });
const writeCmd = (handle: number, data: Uint8Array, offset = 0) =>
  command({ cc: NV.Write, handles: [TPM_RH.OWNER, handle], auth: pwAuthArea(), params: new W().tpm2b(data).u16(offset).build() });
const readCmd = (handle: number, size: number) =>
  command({ cc: NV.Read, handles: [TPM_RH.OWNER, handle], auth: pwAuthArea(), params: new W().u16(size).u16(0).build() });
const OWNER_RW = 0x00020002;
/** Index data that names its index, so a mix-up shows. */
const pattern = (handle: number, size: number) => Buffer.alloc(size, (handle & 0xff) + 1);

async function readBack(c: TpmClient, handle: number, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let off = 0; off < size; off += 1024) {
    const n = Math.min(1024, size - off);
    const r = await c.call(command({ cc: NV.Read, handles: [TPM_RH.OWNER, handle], auth: pwAuthArea(), params: new W().u16(n).u16(off).build() }));
    expect(r.rc, `read 0x${handle.toString(16)} at ${off}`).toBe(0);
    const p = new R(r.body);
    p.u32();
    parts.push(Buffer.from(p.tpm2b()));
  }
  return Buffer.concat(parts);
}

describeImpls('NV persistence', (impl) => {
  it('fills NV until TPM_RC_NV_SPACE (68 × 2048 bytes, as libtpms), then a restart finds every index intact', async () => {
    const stateDir = makeTempDir();
    let d = await startDaemon({ impl, flags: FLAGS, stateDir });
    let c = await TpmClient.connect(dataTarget(d));
    const defined: number[] = [];
    for (let i = 0; ; i++) {
      const h = 0x01000000 + i;
      const r = await c.call(defineCmd(h, OWNER_RW, 2048));
      if (r.rc !== 0) {
        expect(r.rc).toBe(0x14b);
        break;
      }
      defined.push(h);
      for (let off = 0; off < 2048; off += 1024) expect((await c.call(writeCmd(h, pattern(h, 1024), off))).rc).toBe(0);
    }
    expect(defined.length).toBe(68);
    // What is left, as libtpms counts it: the reserve for 7 persistent objects, 20 counters.
    const prop = async (pt: number) => {
      const r = new R((await c.call(cmd.getCapability(6, pt, 1))).body);
      r.bytes(9);
      expect(r.u32()).toBe(pt);
      return r.u32();
    };
    expect([await prop(0x202), await prop(0x209), await prop(0x20a), await prop(0x20b)]).toEqual([68, 7, 0, 20]);
    c.close();
    await d.stop();
    d = await startDaemon({ impl, flags: FLAGS, stateDir });
    c = await TpmClient.connect(dataTarget(d));
    const handles = await c.call(cmd.getCapability(1, 0x01000000, 200));
    const list = new R(handles.body);
    list.u8();
    list.u32();
    expect(list.u32()).toBe(68);
    for (const h of defined) expect((await readBack(c, h, 2048)).equals(pattern(h, 2048)), `0x${h.toString(16)}`).toBe(true);
    expect((await c.call(defineCmd(0x01800000, OWNER_RW, 2048))).rc).toBe(0x14b);
    c.close();
  }, 180_000);

  it('every NV write is on disk before its response: SIGKILL loses nothing that was answered', async () => {
    const stateDir = makeTempDir();
    let d = await startDaemon({ impl, flags: FLAGS, stateDir });
    await tpm2ok('nvdefine', d.tcti, ['0x1000010', '-C', 'o', '-s', '16', '-a', 'ownerread|ownerwrite']);
    await tpm2ok('nvdefine', d.tcti, ['0x1000011', '-C', 'o', '-a', 'ownerread|ownerwrite|nt=counter']);
    const c = await TpmClient.connect(dataTarget(d));
    expect((await c.call(writeCmd(0x1000010, Buffer.from('before the kill!')))).rc).toBe(0);
    for (let i = 0; i < 7; i++) {
      expect((await c.call(command({ cc: 0x134, handles: [TPM_RH.OWNER, 0x1000011], auth: pwAuthArea() }))).rc).toBe(0);
    }
    c.close();
    await d.kill();
    d = await startDaemon({ impl, flags: FLAGS, stateDir });
    expect((await tpm2ok('nvread', d.tcti, ['0x1000010', '-C', 'o'])).stdout).toBe('before the kill!');
    expect((await tpm2ok('nvread', d.tcti, ['0x1000011', '-C', 'o'])).stdoutBytes.toString('hex')).toBe('0000000000000007');
    const pub = await tpm2ok('nvreadpublic', d.tcti, ['0x1000010']);
    expect(pub.stdout).toMatch(/written/);
  }, 60_000);

  it('an orderly index keeps its data over an orderly restart of the daemon', async () => {
    const stateDir = makeTempDir();
    let d = await startDaemon({ impl, flags: FLAGS, stateDir });
    const c = await TpmClient.connect(dataTarget(d));
    const ORDERLY = 0x04000000;
    expect((await c.call(defineCmd(0x1000020, OWNER_RW | ORDERLY, 8))).rc).toBe(0);
    expect((await c.call(writeCmd(0x1000020, Buffer.from('orderly!')))).rc).toBe(0);
    // Shutdown(STATE) saves the orderly RAM; Startup(STATE) after the restart resumes from it.
    expect((await c.call(cmd.shutdown(1))).rc).toBe(0);
    c.close();
    await d.stop();
    d = await startDaemon({ impl, flags: ['not-need-init', 'startup-state'], stateDir });
    expect((await tpm2ok('nvread', d.tcti, ['0x1000020', '-C', 'o'])).stdout).toBe('orderly!');
    const u = await TpmClient.connect(dataTarget(d));
    expect((await u.call(readCmd(0x1000020, 8))).rc).toBe(0);
    u.close();
  }, 60_000);
});
