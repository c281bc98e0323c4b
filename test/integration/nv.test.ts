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
const AUTH_RW = 0x00040004;
const NT = (t: number) => t << 4;
const PP_RW_CREATE = 0x40010001;

/**
 * libtpms answers the first authorization of a DA-protected entity after Startup with
 * TPM_RC_RETRY while it records in NV that DA is in use; vtpmd keeps no DA state yet.
 */
const DA_FIRST_USE = 'first DA-protected authorization since Startup';

/** Raw commands whose whole responses must be the same on both: order of checks, codes, data. */
function rawSteps(): { name: string; bytes: Uint8Array }[] {
  const pw = (p: string) => pwAuthArea(Buffer.from(p));
  const define = (name: string, handle: number, attributes: number, size: number, extra: { auth?: string; policy?: Buffer; hierarchy?: number; nameAlg?: number } = {}) => ({
    name: `DefineSpace ${name}`,
    bytes: command({
      cc: NV.DefineSpace,
      handles: [extra.hierarchy ?? TPM_RH.OWNER],
      auth: pwAuthArea(),
      params: new W().tpm2b(Buffer.from(extra.auth ?? '')).tpm2b(new W().u32(handle).u16(extra.nameAlg ?? 0x000b).u32(attributes >>> 0).tpm2b(extra.policy ?? Buffer.alloc(0)).u16(size).build()).build(),
    }),
  });
  const on = (name: string, cc: number, auth: number, handle: number, params: Uint8Array = new Uint8Array(0), password = '') =>
    ({ name, bytes: command({ cc, handles: [auth, handle], auth: pw(password), params }) });
  const write = (name: string, handle: number, data: Buffer, offset = 0, auth: number = TPM_RH.OWNER, password = '') =>
    on(`Write ${name}`, NV.Write, auth, handle, new W().tpm2b(data).u16(offset).build(), password);
  const read = (name: string, handle: number, size: number, offset = 0, auth: number = TPM_RH.OWNER, password = '') =>
    on(`Read ${name}`, NV.Read, auth, handle, new W().u16(size).u16(offset).build(), password);
  const A = 0x1000001;
  return [
    define('policy of the wrong size', A, OWNER_RW, 8, { policy: Buffer.alloc(20) }),
    define('auth too long', A, OWNER_RW, 8, { auth: 'x'.repeat(33) }),
    define('unknown type', A, OWNER_RW | NT(3), 8),
    define('counter of 4 bytes', A, OWNER_RW | NT(1), 4),
    define('extend of 20 bytes (sha256)', A, OWNER_RW | NT(4), 20),
    define('counter with CLEAR_STCLEAR', A, OWNER_RW | NT(1) | 0x08000000, 8),
    define('PIN fail without NO_DA', A, OWNER_RW | NT(8), 8),
    define('PIN pass with AUTHWRITE', A, OWNER_RW | 0x4 | NT(9), 8),
    define('WRITTEN set', A, OWNER_RW | 0x20000000, 8),
    define('no read', A, 0x2, 8),
    define('no write', A, 0x20000, 8),
    define('CLEAR_STCLEAR with WRITEDEFINE', A, OWNER_RW | 0x08000000 | 0x2000, 8),
    define('owner with PLATFORMCREATE', A, OWNER_RW | 0x40000000, 8),
    define('platform without PLATFORMCREATE', A, 0x10001, 8, { hierarchy: TPM_RH.PLATFORM }),
    define('POLICY_DELETE by the owner', A, OWNER_RW | 0x400, 8),
    define('WRITEALL over 1024 bytes', A, OWNER_RW | 0x1000, 1025),
    define('over 2048 bytes', A, OWNER_RW, 2049),
    define('reserved bit 8', A, OWNER_RW | 0x100, 8),
    define('NULL nameAlg', A, OWNER_RW, 8, { nameAlg: 0x10 }),
    define('not an NV handle', 0x2000000, OWNER_RW, 8),
    define('orderly larger than the RAM', 0x1000009, OWNER_RW | 0x04000000, 600),
    define('ordinary with auth', A, OWNER_RW | AUTH_RW, 16, { auth: 'pw' }),
    define('again', A, OWNER_RW, 8),
    { name: 'ReadPublic', bytes: command({ cc: NV.ReadPublic, handles: [A] }) },
    read('unwritten', A, 4),
    write('past the end', A, Buffer.alloc(17)),
    write('offset past the end', A, Buffer.alloc(0), 17),
    write('at offset 4', A, Buffer.from('data'), 4),
    read('the whole index', A, 16),
    { name: DA_FIRST_USE, bytes: read('', A, 4, 4, A, 'pw').bytes },
    read('with the index auth', A, 4, 4, A, 'pw'),
    read('with a wrong index auth', A, 4, 4, A, 'wrong'),
    read('by the platform', A, 4, 0, TPM_RH.PLATFORM),
    read('size over 1024', A, 1025),
    read('offset past the end', A, 0, 17),
    read('range past the end', A, 8, 12),
    read('of an undefined index', 0x1000002, 4),
    { name: 'ReadPublic after the write', bytes: command({ cc: NV.ReadPublic, handles: [A] }) },
    define('counter', 0x1000002, OWNER_RW | NT(1), 8),
    write('to a counter', 0x1000002, Buffer.alloc(8)),
    on('Increment counter', 0x134, TPM_RH.OWNER, 0x1000002),
    on('Increment ordinary', 0x134, TPM_RH.OWNER, A),
    read('counter', 0x1000002, 8),
    on('Increment counter with its own (unavailable) auth', 0x134, 0x1000002, 0x1000002),
    define('bits', 0x1000003, OWNER_RW | NT(2), 8),
    on('SetBits', 0x135, TPM_RH.OWNER, 0x1000003, new W().u32(1).u32(0x80).build()),
    on('SetBits on a counter', 0x135, TPM_RH.OWNER, 0x1000002, new W().u32(1).u32(0x80).build()),
    read('bits', 0x1000003, 8),
    define('extend sha1', 0x1000004, OWNER_RW | NT(4), 20, { nameAlg: 0x0004 }),
    on('Extend', 0x136, TPM_RH.OWNER, 0x1000004, new W().tpm2b(Buffer.from('abc')).build()),
    on('Extend ordinary', 0x136, TPM_RH.OWNER, A, new W().tpm2b(Buffer.from('abc')).build()),
    read('extend', 0x1000004, 20),
    define('PIN pass', 0x1000005, OWNER_RW | NT(9), 8, { auth: 'pin' }),
    read('PIN pass unwritten with its auth', 0x1000005, 8, 0, 0x1000005, 'pin'),
    write('PIN pass limit 1', 0x1000005, Buffer.from('0000000000000001', 'hex')),
    read('PIN pass with its auth', 0x1000005, 8, 0, 0x1000005, 'pin'),
    read('PIN pass past its limit', 0x1000005, 8, 0, 0x1000005, 'pin'),
    define('PIN fail', 0x1000006, OWNER_RW | NT(8) | 0x02000000, 8, { auth: 'pin' }),
    write('PIN fail limit 3', 0x1000006, Buffer.from('0000000000000003', 'hex')),
    read('PIN fail wrong pin', 0x1000006, 8, 0, 0x1000006, 'nope'),
    read('PIN fail count', 0x1000006, 8),
    define('locks', 0x1000007, OWNER_RW | 0x4000 | 0x80000000, 8),
    on('WriteLock by the platform', 0x138, TPM_RH.PLATFORM, 0x1000007),
    on('ReadLock unwritten', 0x14f, TPM_RH.OWNER, 0x1000007),
    read('read-locked', 0x1000007, 8),
    on('WriteLock', 0x138, TPM_RH.OWNER, 0x1000007),
    write('write-locked', 0x1000007, Buffer.alloc(8)),
    on('WriteLock without WRITEDEFINE/WRITE_STCLEAR', 0x138, TPM_RH.OWNER, A),
    on('ReadLock without READ_STCLEAR', 0x14f, TPM_RH.OWNER, A),
    { name: 'GlobalWriteLock', bytes: command({ cc: 0x132, handles: [TPM_RH.OWNER], auth: pwAuthArea() }) },
    { name: 'ChangeAuth with a password', bytes: command({ cc: 0x13b, handles: [A], auth: pw('pw'), params: new W().tpm2b(Buffer.from('x')).build() }) },
    define('platform index', 0x1400001, PP_RW_CREATE | 0x400, 8, { hierarchy: TPM_RH.PLATFORM, policy: Buffer.alloc(32, 1) }),
    { name: 'UndefineSpace of a POLICY_DELETE index', bytes: command({ cc: NV.UndefineSpace, handles: [TPM_RH.PLATFORM, 0x1400001], auth: pwAuthArea() }) },
    { name: 'UndefineSpaceSpecial with passwords', bytes: command({ cc: 0x11f, handles: [0x1400001, TPM_RH.PLATFORM], auth: pwAuthArea(Buffer.alloc(0), 2) }) },
    { name: 'UndefineSpace of an owner index by the platform', bytes: command({ cc: NV.UndefineSpace, handles: [TPM_RH.PLATFORM, 0x1000003], auth: pwAuthArea() }) },
    { name: 'UndefineSpace of an undefined index', bytes: command({ cc: NV.UndefineSpace, handles: [TPM_RH.OWNER, 0x1000003], auth: pwAuthArea() }) },
    { name: 'UndefineSpace counter', bytes: command({ cc: NV.UndefineSpace, handles: [TPM_RH.OWNER, 0x1000002], auth: pwAuthArea() }) },
    define('new counter', 0x1000002, OWNER_RW | NT(1), 8),
    on('Increment new counter', 0x134, TPM_RH.OWNER, 0x1000002),
    read('new counter: above the deleted one', 0x1000002, 8),
    { name: 'GetCapability(HANDLES NV)', bytes: cmd.getCapability(1, 0x01000000, 20) },
    { name: 'GetCapability(HR_NV_INDEX..)', bytes: cmd.getCapability(6, 0x202, 1) },
    { name: 'GetCapability(NV_COUNTERS, NV_COUNTERS_AVAIL)', bytes: cmd.getCapability(6, 0x20a, 2) },
  ];
}

describe.skipIf(!vtpmdAvailable() || !swtpmAvailable())('NV raw commands: the same responses from vtpmd and swtpm', () => {
  it('attribute checks, ranges, locks, PIN indices, counters and refusals, response by response', async () => {
    const [vt, sw] = await Promise.all((['vtpmd', 'swtpm'] as Impl[]).map((impl) => startDaemon({ impl, flags: FLAGS })));
    const [cv, cs] = await Promise.all([TpmClient.connect(dataTarget(vt!)), TpmClient.connect(dataTarget(sw!))]);
    const diffs: string[] = [];
    for (const step of rawSteps()) {
      const [a, b] = [await cv.transmit(step.bytes), await cs.transmit(step.bytes)];
      if (step.name === DA_FIRST_USE) {
        expect([a.readUInt32BE(6), b.readUInt32BE(6)]).toEqual([0, 0x922]);
        continue;
      }
      if (!a.equals(b)) diffs.push(`${step.name}: vtpmd ${a.toString('hex')} swtpm ${b.toString('hex')}`);
    }
    cv.close();
    cs.close();
    expect(diffs).toEqual([]);
  }, 120_000);
});
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

  it('after SIGKILL an orderly counter moves past its unsaved increments and orderly data is gone', async () => {
    const stateDir = makeTempDir();
    let d = await startDaemon({ impl, flags: FLAGS, stateDir });
    let c = await TpmClient.connect(dataTarget(d));
    const ORDERLY = 0x04000000;
    const increment = command({ cc: 0x134, handles: [TPM_RH.OWNER, 0x1000030], auth: pwAuthArea() });
    expect((await c.call(defineCmd(0x1000030, OWNER_RW | ORDERLY | NT(1), 8))).rc).toBe(0);
    expect((await c.call(defineCmd(0x1000031, OWNER_RW | ORDERLY, 8))).rc).toBe(0);
    for (let i = 0; i < 10; i++) expect((await c.call(increment)).rc).toBe(0);
    expect((await c.call(writeCmd(0x1000031, Buffer.from('in RAM..')))).rc).toBe(0);
    c.close();
    await d.kill();
    d = await startDaemon({ impl, flags: FLAGS, stateDir });
    c = await TpmClient.connect(dataTarget(d));
    // Only the first increment (which set WRITTEN) was saved: 1, low 8 bits set after the crash.
    expect((await readBack(c, 0x1000030, 8)).toString('hex')).toBe('00000000000000ff');
    expect((await c.call(readCmd(0x1000031, 8))).rc).toBe(0x14a);
    expect((await c.call(increment)).rc).toBe(0);
    expect((await c.call(cmd.shutdown(0))).rc).toBe(0);
    c.close();
    await d.stop();
    d = await startDaemon({ impl, flags: FLAGS, stateDir });
    c = await TpmClient.connect(dataTarget(d));
    expect((await readBack(c, 0x1000030, 8)).toString('hex')).toBe('0000000000000100');
    c.close();
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
