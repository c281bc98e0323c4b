// tpm2_hierarchycontrol, tpm2_clear, tpm2_clearcontrol, tpm2_changeeps, tpm2_changepps,
// tpm2_setclock, tpm2_clockrateadjust and tpm2_readclock across daemon restarts: the same
// outcomes and response codes on vtpmd and Debian's swtpm.
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeImpls, makeTempDir, startDaemon, type Daemon, type Impl } from '../helpers/daemon.js';
import { parseYamlScalars, tpm2, tpm2ok } from '../helpers/tools.js';
import { cmd, command, dataTarget, hex, pwAuthArea, rcHex, TpmClient, transmitOnce, W } from '../helpers/tpm.js';

const FLAGS = ['not-need-init', 'startup-clear'];

/** The Name of a fresh ECC primary of `hierarchy` (o, e, p); it is flushed again. */
async function primaryName(d: Daemon, work: string, hierarchy: string, persistAt?: string): Promise<string> {
  const ctx = path.join(work, `${hierarchy}-${Math.random().toString(16).slice(2)}.ctx`);
  await tpm2ok('createprimary', d.tcti, ['-C', hierarchy, '-G', 'ecc', '-c', ctx]);
  const name = parseYamlScalars((await tpm2ok('readpublic', d.tcti, ['-c', ctx])).stdout).get('name')!;
  if (persistAt) await tpm2ok('evictcontrol', d.tcti, ['-C', hierarchy === 'p' ? 'p' : 'o', '-c', ctx, persistAt]);
  await tpm2ok('flushcontext', d.tcti, ['-t']);
  return name;
}
/** The response code a failing tool reports (tpm2-tss prints it as 0x...). */
async function fails(d: Daemon, tool: string, args: string[]): Promise<number> {
  const r = await tpm2(tool, d.tcti, args);
  expect(r.code, `${r.cmd} should fail`).not.toBe(0);
  const m = /(?:ErrorCode|error code|rc)\s*\(?(0x[0-9a-f]+)\)?/i.exec(r.stderr) ?? /(0x[0-9a-f]{3,8})/i.exec(r.stderr);
  expect(m, `${r.cmd}: ${r.stderr}`).not.toBeNull();
  return Number(m![1]);
}
async function startupClear(d: Daemon): Promise<Map<string, string>> {
  const out = (await tpm2ok('getcap', d.tcti, ['properties-variable'])).stdout;
  const section = out.slice(out.indexOf('TPM2_PT_STARTUP_CLEAR'));
  return parseYamlScalars(section.slice(0, section.indexOf('TPM2_PT_', 10)));
}
async function permanent(d: Daemon): Promise<Map<string, string>> {
  const out = (await tpm2ok('getcap', d.tcti, ['properties-variable'])).stdout;
  const section = out.slice(out.indexOf('TPM2_PT_PERMANENT'));
  return parseYamlScalars(section.slice(0, section.indexOf('TPM2_PT_', 10)));
}
async function persistentHandles(d: Daemon): Promise<string> {
  return (await tpm2ok('getcap', d.tcti, ['handles-persistent'])).stdout;
}
async function readClock(d: Daemon): Promise<{ clock: number; resetCount: number; restartCount: number; safe: string }> {
  const m = parseYamlScalars((await tpm2ok('readclock', d.tcti)).stdout);
  return { clock: Number(m.get('clock')), resetCount: Number(m.get('reset_count')), restartCount: Number(m.get('restart_count')), safe: m.get('safe')! };
}

describeImpls('tpm2_hierarchycontrol', (impl) => {
  it('owner and endorsement switched off and back, platform-only enables, TPM_RC_HIERARCHY for a disabled hierarchy, all back at Startup(CLEAR)', async () => {
    const stateDir = makeTempDir();
    let d = await startDaemon({ impl, flags: FLAGS, stateDir });
    const work = makeTempDir();
    await tpm2ok('nvdefine', d.tcti, ['0x1000001', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite']);
    await primaryName(d, work, 'o', '0x81000001');
    await primaryName(d, work, 'e', '0x81010001');
    await tpm2ok('hierarchycontrol', d.tcti, ['-C', 'o', 'shEnable', 'clear']);
    expect(await fails(d, 'readpublic', ['-c', '0x81000001'])).toBe(0x18b);
    expect((await startupClear(d)).get('shEnable')).toBe('0');
    expect(await fails(d, 'createprimary', ['-C', 'o', '-G', 'ecc', '-c', path.join(work, 'x.ctx')])).toBe(0x185);
    expect(await fails(d, 'nvreadpublic', ['0x1000001'])).toBe(0x18b);
    // Only the platform switches it back on (tpm2-tools itself refuses to send the owner's
    // attempt; the raw sequence below has it).
    await tpm2ok('hierarchycontrol', d.tcti, ['-C', 'p', 'shEnable', 'set']);
    await tpm2ok('nvreadpublic', d.tcti, ['0x1000001']);
    await tpm2ok('readpublic', d.tcti, ['-c', '0x81000001']);
    await tpm2ok('hierarchycontrol', d.tcti, ['-C', 'p', 'ehEnable', 'clear']);
    expect(await fails(d, 'createprimary', ['-C', 'e', '-G', 'ecc', '-c', path.join(work, 'y.ctx')])).toBe(0x185);
    // An endorsement object in the owner's persistent range looks undefined, except to EvictControl.
    expect(await fails(d, 'readpublic', ['-c', '0x81010001'])).toBe(0x18b);
    // (tpm2_evictcontrol reads the public area first and stops there, so the command goes raw.)
    const evict = command({ cc: 0x120, handles: [0x40000001, 0x81010001], auth: pwAuthArea(), params: new W().u32(0x81010001).build() });
    expect(rcHex((await transmitOnce(dataTarget(d), evict)).rc)).toBe('0x000');
    expect(await persistentHandles(d)).not.toMatch(/0x81010001/);
    await tpm2ok('hierarchycontrol', d.tcti, ['-C', 'p', 'phEnableNV', 'clear']);
    await tpm2ok('hierarchycontrol', d.tcti, ['-C', 'p', 'phEnable', 'clear']);
    const sc = await startupClear(d);
    expect([sc.get('phEnable'), sc.get('shEnable'), sc.get('ehEnable'), sc.get('phEnableNV')]).toEqual(['0', '1', '0', '0']);
    // The platform handle is gone now: nothing brings phEnable back but the next Startup.
    expect(await fails(d, 'createprimary', ['-C', 'p', '-G', 'ecc', '-c', path.join(work, 'z.ctx')])).toBe(0x185);
    expect(await fails(d, 'changeauth', ['-c', 'p', 'x'])).toBe(0x185);
    await tpm2ok('shutdown', d.tcti, ['-c']);
    await d.stop();
    d = await startDaemon({ impl, flags: FLAGS, stateDir });
    const after = await startupClear(d);
    expect([after.get('phEnable'), after.get('shEnable'), after.get('ehEnable'), after.get('phEnableNV')]).toEqual(['1', '1', '1', '1']);
  });
});

describeImpls('tpm2_clear and tpm2_clearcontrol', (impl) => {
  it('disableClear refuses tpm2_clear (TPM_RC_DISABLED); lockout cannot lift it; after a clear the owner is new and its objects and NV are gone', async () => {
    const d = await startDaemon({ impl, flags: FLAGS });
    const work = makeTempDir();
    const owner = await primaryName(d, work, 'o', '0x81000001');
    const endorsement = await primaryName(d, work, 'e', '0x81010001');
    const platform = await primaryName(d, work, 'p', '0x81800001');
    await tpm2ok('nvdefine', d.tcti, ['0x1000001', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite']);
    await tpm2ok('nvdefine', d.tcti, ['0x1400001', '-C', 'p', '-s', '8', '-a', 'ppread|ppwrite|platformcreate']);
    await tpm2ok('changeauth', d.tcti, ['-c', 'o', 'owner-pw']);
    await tpm2ok('changeauth', d.tcti, ['-c', 'l', 'lock-pw']);

    await tpm2ok('clearcontrol', d.tcti, ['-C', 'l', '-P', 'lock-pw', 's']);
    expect((await permanent(d)).get('disableClear')).toBe('1');
    expect(await fails(d, 'clear', ['lock-pw'])).toBe(0x120);
    await tpm2ok('clearcontrol', d.tcti, ['-C', 'p', 'c']);
    await tpm2ok('clear', d.tcti, ['lock-pw']);

    const perm = await permanent(d);
    expect([perm.get('ownerAuthSet'), perm.get('lockoutAuthSet'), perm.get('disableClear')]).toEqual(['0', '0', '0']);
    const handles = await persistentHandles(d);
    expect(handles).not.toMatch(/0x81000001/);
    expect(handles).not.toMatch(/0x81010001/);
    expect(handles).toMatch(/0x81800001/);
    expect(await fails(d, 'nvreadpublic', ['0x1000001'])).toBe(0x18b);
    await tpm2ok('nvreadpublic', d.tcti, ['0x1400001']);
    expect(await primaryName(d, work, 'o')).not.toBe(owner);
    expect(await primaryName(d, work, 'e')).toBe(endorsement);
    expect(await primaryName(d, work, 'p')).toBe(platform);
    const c = await readClock(d);
    expect([c.resetCount, c.restartCount, c.safe]).toEqual([0, 0, 'yes']);
  });
});

describeImpls('tpm2_changeeps and tpm2_changepps', (impl) => {
  it('a new endorsement (platform) seed: primaries differ, persistent objects of that hierarchy are gone, the other hierarchies keep theirs', async () => {
    const d = await startDaemon({ impl, flags: FLAGS });
    const work = makeTempDir();
    const owner = await primaryName(d, work, 'o', '0x81000001');
    const endorsement = await primaryName(d, work, 'e', '0x81010001');
    const platform = await primaryName(d, work, 'p', '0x81800001');
    await tpm2ok('changeeps', d.tcti);
    let handles = await persistentHandles(d);
    expect(handles).not.toMatch(/0x81010001/);
    expect(handles).toMatch(/0x81000001/);
    expect(await primaryName(d, work, 'e')).not.toBe(endorsement);
    expect(await primaryName(d, work, 'o')).toBe(owner);
    await tpm2ok('changepps', d.tcti);
    handles = await persistentHandles(d);
    expect(handles).not.toMatch(/0x81800001/);
    expect(handles).toMatch(/0x81000001/);
    expect(await primaryName(d, work, 'p')).not.toBe(platform);
    expect(await primaryName(d, work, 'o')).toBe(owner);
    // Both need platform authorization.
    await tpm2ok('changeauth', d.tcti, ['-c', 'p', 'plat']);
    expect(await fails(d, 'changeeps', [])).toBe(0x9a2);
    await tpm2ok('changeeps', d.tcti, ['-p', 'plat']);
  });
});

describeImpls('tpm2_setclock, tpm2_clockrateadjust, tpm2_readclock', (impl) => {
  it('the clock moves only forward, every rate step is accepted, and an orderly daemon restart keeps it with safe YES', async () => {
    const stateDir = makeTempDir();
    let d = await startDaemon({ impl, flags: FLAGS, stateDir });
    const c0 = await readClock(d);
    const target = c0.clock + 10_000_000;
    await tpm2ok('setclock', d.tcti, [String(target)]);
    expect(await fails(d, 'setclock', [String(c0.clock)])).toBe(0x1c4);
    await tpm2ok('setclock', d.tcti, ['-c', 'p', String(target + 1000)]);
    for (const adjust of ['s', 'ss', 'sss', 'f', 'ff', 'fff']) await tpm2ok('clockrateadjust', d.tcti, [adjust]);
    await tpm2ok('clockrateadjust', d.tcti, ['-c', 'p', 'f']);
    const c1 = await readClock(d);
    expect(c1.clock).toBeGreaterThanOrEqual(target + 1000);
    expect(c1.safe).toBe('yes');

    await tpm2ok('shutdown', d.tcti, ['-c']);
    await d.stop();
    d = await startDaemon({ impl, flags: FLAGS, stateDir });
    const c2 = await readClock(d);
    expect(c2.clock).toBeGreaterThanOrEqual(c1.clock);
    expect([c2.resetCount, c2.restartCount, c2.safe]).toEqual([c1.resetCount + 1, 0, 'yes']);

    await tpm2ok('shutdown', d.tcti);
    await d.stop();
    d = await startDaemon({ impl, flags: ['not-need-init'], stateDir });
    await tpm2ok('startup', d.tcti);
    const c3 = await readClock(d);
    expect(c3.clock).toBeGreaterThanOrEqual(c2.clock);
    expect([c3.resetCount, c3.restartCount, c3.safe]).toEqual([c2.resetCount, 1, 'yes']);
  });
});

// After SIGKILL, vtpmd has Clock as last written (a ClockSet across an interval is written before
// its response). libtpms keeps a ClockSet in NV memory that swtpm writes to its file only with
// other changes: run against swtpm 0.7.1, this test finds the clock back near 0. vtpmd only.
describeImpls('tpm2_readclock after a crash', (impl: Impl) => {
  it('SIGKILL after tpm2_setclock: the next start has Clock no lower than what was set and safe NO', async () => {
    const stateDir = makeTempDir();
    let d = await startDaemon({ impl, flags: FLAGS, stateDir });
    const c0 = await readClock(d);
    await tpm2ok('setclock', d.tcti, [String(c0.clock + 50_000_000)]);
    await d.kill();
    d = await startDaemon({ impl, flags: FLAGS, stateDir });
    const c1 = await readClock(d);
    expect(c1.clock).toBeGreaterThanOrEqual(c0.clock + 50_000_000);
    expect(c1.safe).toBe('no');
    expect([c1.resetCount, c1.restartCount]).toEqual([c0.resetCount + 1, 0]);
  });
}, ['vtpmd']);

// Raw commands for what tpm2-tools has no tool for, or refuses to send: each response code
// must be swtpm's.
const PLATFORM = 0x4000000c;
const OWNER = 0x40000001;
const LOCKOUT = 0x4000000a;
const NULL = 0x40000007;
/** TPM2B_PUBLIC contents: a keyed-hash object without a scheme (public part only). */
const KEYEDHASH_PUBLIC = new W().u16(0x0008).u16(0x000b).u32(0x40).u16(0).u16(0x0010).tpm2b(Buffer.alloc(32, 1)).build();
const RAW_CASES: [string, () => Buffer, number][] = [
  ['PP_Commands without physical presence', () => command({ cc: 0x12d, handles: [PLATFORM], auth: pwAuthArea(), params: new W().u32(1).u32(0x126).u32(0).build() }), 0x990],
  ['PP_Commands by the owner', () => command({ cc: 0x12d, handles: [OWNER], auth: pwAuthArea(), params: new W().u32(0).u32(0).build() }), 0x184],
  ['PCR_SetAuthValue on PCR 0 (no auth group)', () => command({ cc: 0x183, handles: [0], auth: pwAuthArea(), params: new W().tpm2b(Buffer.from('x')).build() }), 0x084],
  ['PCR_SetAuthValue on PCR 20', () => command({ cc: 0x183, handles: [20], auth: pwAuthArea(), params: new W().tpm2b(Buffer.from('')).build() }), 0],
  ['PCR_SetAuthPolicy on PCR 0 (no policy group)', () => command({ cc: 0x12c, handles: [PLATFORM], auth: pwAuthArea(), params: new W().tpm2b(Buffer.alloc(32)).u16(0x000b).u32(0).build() }), 0x3c4],
  ['PCR_SetAuthPolicy with a short digest', () => command({ cc: 0x12c, handles: [PLATFORM], auth: pwAuthArea(), params: new W().tpm2b(Buffer.alloc(20)).u16(0x000b).u32(21).build() }), 0x1d5],
  ['PCR_SetAuthPolicy on PCR 21', () => command({ cc: 0x12c, handles: [PLATFORM], auth: pwAuthArea(), params: new W().tpm2b(Buffer.alloc(32)).u16(0x000b).u32(21).build() }), 0],
  ['HierarchyControl of TPM_RH_NULL', () => command({ cc: 0x121, handles: [PLATFORM], auth: pwAuthArea(), params: new W().u32(NULL).u8(0).build() }), 0x1c4],
  ['HierarchyControl with state 2', () => command({ cc: 0x121, handles: [PLATFORM], auth: pwAuthArea(), params: new W().u32(OWNER).u8(2).build() }), 0x2c4],
  ['HierarchyControl of platformNV by the owner', () => command({ cc: 0x121, handles: [OWNER], auth: pwAuthArea(), params: new W().u32(0x4000000d).u8(0).build() }), 0x124],
  ['ClearControl(NO) by lockout', () => command({ cc: 0x127, handles: [LOCKOUT], auth: pwAuthArea(), params: new W().u8(0).build() }), 0x08e],
  ['ClearControl by the owner', () => command({ cc: 0x127, handles: [OWNER], auth: pwAuthArea(), params: new W().u8(1).build() }), 0x184],
  ['Clear by the owner', () => command({ cc: 0x126, handles: [OWNER], auth: pwAuthArea() }), 0x184],
  ['ChangePPS by the owner', () => command({ cc: 0x125, handles: [OWNER], auth: pwAuthArea() }), 0x184],
  ['ClockRateAdjust by 4', () => command({ cc: 0x130, handles: [OWNER], auth: pwAuthArea(), params: new W().u8(4).build() }), 0x1c4],
  ['ClockRateAdjust by lockout', () => command({ cc: 0x130, handles: [LOCKOUT], auth: pwAuthArea(), params: new W().u8(0).build() }), 0x184],
  ['ClockSet past 0xFFFF000000000000', () => command({ cc: 0x128, handles: [OWNER], auth: pwAuthArea(), params: new W().u32(0xffff0000).u32(1).build() }), 0x1c4],
  ['ClockSet to 0 (backwards)', () => command({ cc: 0x128, handles: [PLATFORM], auth: pwAuthArea(), params: new W().u32(0).u32(0).build() }), 0x1c4],
  ['ClearControl(YES) by lockout', () => command({ cc: 0x127, handles: [LOCKOUT], auth: pwAuthArea(), params: new W().u8(1).build() }), 0],
  ['Clear while disabled', () => command({ cc: 0x126, handles: [PLATFORM], auth: pwAuthArea() }), 0x120],
  ['HierarchyControl: the owner disables itself', () => command({ cc: 0x121, handles: [OWNER], auth: pwAuthArea(), params: new W().u32(OWNER).u8(0).build() }), 0],
  ['HierarchyControl: the owner enables itself again', () => command({ cc: 0x121, handles: [OWNER], auth: pwAuthArea(), params: new W().u32(OWNER).u8(1).build() }), 0x185],
  ['ClockSet by the disabled owner', () => command({ cc: 0x128, handles: [OWNER], auth: pwAuthArea(), params: new W().u32(0x7fffffff).u32(0).build() }), 0x185],
  ['LoadExternal into the disabled owner hierarchy', () => command({ cc: 0x167, params: new W().u16(0).tpm2b(KEYEDHASH_PUBLIC).u32(OWNER).build() }), 0x3c5],
  ['LoadExternal into the endorsement hierarchy', () => command({ cc: 0x167, params: new W().u16(0).tpm2b(KEYEDHASH_PUBLIC).u32(0x4000000b).build() }), 0],
  ['HierarchyControl: the platform disables platformNV', () => command({ cc: 0x121, handles: [PLATFORM], auth: pwAuthArea(), params: new W().u32(0x4000000d).u8(0).build() }), 0],
  ['NV_DefineSpace by the platform without phEnableNV', () => command({ cc: 0x12a, handles: [PLATFORM], auth: pwAuthArea(), params: new W().u16(0).tpm2b(new W().u32(0x01400002).u16(0x000b).u32(0x40010001).u16(0).u16(8).build()).build() }), 0x185],
];

describeImpls('response codes of the same sequence', (impl) => {
  it('hierarchy, PCR-auth, physical-presence and clock commands answer as swtpm does', async () => {
    const d = await startDaemon({ impl, flags: FLAGS });
    const got: string[] = [];
    for (const [what, build] of RAW_CASES) got.push(`${what}: ${rcHex((await transmitOnce(dataTarget(d), build())).rc)}`);
    expect(got).toEqual(RAW_CASES.map(([what, , rc]) => `${what}: ${rcHex(rc)}`));
    // GetCapability(TPM_CAP_PP_COMMANDS): moreData NO, TPML_CC with PP_Commands alone.
    const pp = await transmitOnce(dataTarget(d), cmd.getCapability(3, 0, 64));
    expect(pp.rc).toBe(0);
    expect(hex(pp.body)).toBe('00' + '00000003' + '00000001' + '0000012d');
  });
});

describeImpls('PCR policy group', (impl) => {
  it('a policy session on a PCR: unavailable outside PCRs 20-22, checked against the group policy inside', async () => {
    const d = await startDaemon({ impl, flags: FLAGS });
    const c = await TpmClient.connect(dataTarget(d));
    try {
      const extendWithPolicy = async (pcr: number): Promise<number> => {
        // An unsalted, unbound policy session; no assertion, so its digest is all zeros.
        const s = await c.call(command({ cc: 0x176, handles: [NULL, NULL], params: new W().tpm2b(Buffer.alloc(16, 7)).u16(0).u8(1).u16(0x0010).u16(0x000b).build() }));
        expect(s.rc).toBe(0);
        const handle = s.body.readUInt32BE(0);
        const auth = new W().u32(handle).tpm2b(Buffer.alloc(16, 9)).u8(0).u16(0).build();
        const r = await c.call(command({ cc: 0x182, handles: [pcr], auth: new W().u32(auth.length).bytes(auth).build(), params: new W().u32(1).u16(0x000b).bytes(Buffer.alloc(32)).build() }));
        if (r.rc !== 0) expect((await c.call(cmd.flushContext(handle))).rc).toBe(0);
        return r.rc;
      };
      expect(rcHex(await extendWithPolicy(16))).toBe('0x12f'); // TPM_RC_AUTH_UNAVAILABLE
      expect(rcHex(await extendWithPolicy(21))).toBe('0x99d'); // TPM_RC_POLICY_FAIL: no group policy yet
      const set = await c.call(command({ cc: 0x12c, handles: [PLATFORM], auth: pwAuthArea(), params: new W().tpm2b(Buffer.alloc(32)).u16(0x000b).u32(20).build() }));
      expect(set.rc).toBe(0);
      // Authorized now; locality 0 may not extend PCR 21 (PC Client), which the command itself finds.
      expect(rcHex(await extendWithPolicy(21))).toBe('0x907');
      expect(rcHex(await extendWithPolicy(0))).toBe('0x12f');
    } finally {
      c.close();
    }
  });
});
