// Crash safety: the daemon is SIGKILLed at random moments while a client changes persistent state
// (the owner authorization, rewritten by every HierarchyChangeAuth) and extends PCRs. After each
// restart the state must load and hold the last acknowledged change (or the one in flight when the
// daemon died: it may have reached the disk before the reply was lost). design.md: "everything
// that must survive a crash is written before the response is returned".
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { newestPermanent } from '../../src/storage/storage.js';
import { describeImpls, makeTempDir, startDaemon, vtpmdAvailable, type Daemon, type Impl } from '../helpers/daemon.js';
import { ALG, command, dataTarget, pwAuthArea, R, TPM_RH, TpmClient, W, cmd } from '../helpers/tpm.js';

const ROUNDS = 50;
const HIERARCHY_CHANGE_AUTH = 0x129;
const auth = (n: number) => new TextEncoder().encode(n === 0 ? '' : `owner-${n}`);
const changeOwnerAuth = (from: number, to: number) =>
  command({ cc: HIERARCHY_CHANGE_AUTH, handles: [TPM_RH.OWNER], auth: pwAuthArea(auth(from)), params: new W().tpm2b(auth(to)).build() });

/** A small deterministic generator, so a failing run can be repeated (seed printed). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return s / 2 ** 32;
  };
}

describeImpls('crash safety', (impl) => {
  it(`${ROUNDS} SIGKILLs at random moments: the state always loads and keeps every acknowledged change`, async () => {
    const seed = Date.now() & 0xffff;
    const rnd = prng(seed);
    const stateDir = makeTempDir();
    let acked = 0; // auth(acked) is the owner auth the TPM last acknowledged
    let inFlight = 0;
    let changes = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'], stateDir, transport: 'unix', readyTimeoutMs: 20_000 });
      const c = await TpmClient.connect(dataTarget(d));
      // Hierarchy authorization failures are exempt from dictionary-attack counting, so trying
      // a candidate costs nothing. Changing the auth to itself proves which one is current.
      let current: number | undefined;
      for (const candidate of new Set([acked, inFlight])) {
        const r = await c.call(changeOwnerAuth(candidate, candidate)).catch(async (e: Error) => {
          await new Promise((res) => setTimeout(res, 200));
          throw new Error(`round ${round}: ${e.message}; daemon output:\n${d.output()}`);
        });
        if (r.rc === 0) current = candidate;
        if (current !== undefined) break;
      }
      expect(current, `round ${round} (seed ${seed}): owner auth is neither #${acked} (acknowledged) nor #${inFlight} (in flight)`).toBeDefined();
      acked = current!;
      inFlight = acked;

      const killed = new Promise<void>((resolve) => setTimeout(() => void d.kill().then(resolve), 5 + rnd() * 150));
      try {
        for (let i = 0; ; i++) {
          if (i % 3 === 0) await c.call(cmd.pcrExtend(16, [{ alg: ALG.SHA256, digest: new Uint8Array(32).fill(i & 0xff) }]));
          inFlight = acked + 1;
          const r = await c.call(changeOwnerAuth(acked, inFlight));
          expect(r.rc).toBe(0);
          acked = inFlight;
          changes++;
        }
      } catch (e) {
        if ((e as Error).name === 'AssertionError') throw e;
        // the connection died with the daemon
      }
      await killed;
    }
    console.log(`[crash ${impl}] seed ${seed}: ${ROUNDS} kills, ${changes} acknowledged auth changes`);
    expect(changes).toBeGreaterThan(ROUNDS);
  }, 300_000);
});

// NV changes go to the journal beside tpm2-00.permall (src/storage/journal.ts) and are folded into
// the permall at exit and after a second of idleness; a SIGKILL in between must lose nothing.
const FLAGS = ['not-need-init', 'startup-clear'];
const COUNTER = 0x1000020;
const MARKED = 0x1000021;
const OWNER_RW = 0x00020002;
const CC = { NV_DefineSpace: 0x12a, NV_Increment: 0x134, NV_Write: 0x137, NV_Read: 0x14e } as const;
const NT_COUNTER = 1 << 4;
const defineIndex = (handle: number, attributes: number, size: number) =>
  command({
    cc: CC.NV_DefineSpace,
    handles: [TPM_RH.OWNER],
    auth: pwAuthArea(),
    params: new W().tpm2b(new Uint8Array(0)).tpm2b(new W().u32(handle).u16(ALG.SHA256).u32(attributes).tpm2b(new Uint8Array(0)).u16(size).build()).build(),
  });
const increment = command({ cc: CC.NV_Increment, handles: [TPM_RH.OWNER, COUNTER], auth: pwAuthArea() });
const nvRead = (handle: number, size: number) => command({ cc: CC.NV_Read, handles: [TPM_RH.OWNER, handle], auth: pwAuthArea(), params: new W().u16(size).u16(0).build() });
const nvWrite = (handle: number, data: Uint8Array) => command({ cc: CC.NV_Write, handles: [TPM_RH.OWNER, handle], auth: pwAuthArea(), params: new W().tpm2b(data).u16(0).build() });

async function readIndex(c: TpmClient, handle: number, size: number): Promise<Buffer> {
  const r = await c.call(nvRead(handle, size));
  expect(r.rc).toBe(0);
  const p = new R(r.body);
  p.u32(); // parameterSize
  return Buffer.from(p.tpm2b());
}

async function counterValue(c: TpmClient): Promise<number> {
  return Number((await readIndex(c, COUNTER, 8)).readBigUInt64BE());
}

async function daemonWithCounter(impl: Impl, stateDir: string, extraArgs: string[] = []): Promise<{ d: Daemon; c: TpmClient }> {
  const d = await startDaemon({ impl, flags: FLAGS, stateDir, extraArgs, transport: 'unix' });
  const c = await TpmClient.connect(dataTarget(d));
  expect((await c.call(defineIndex(COUNTER, OWNER_RW | NT_COUNTER, 8))).rc).toBe(0);
  return { d, c };
}

describeImpls('NV under SIGKILL', (impl) => {
  it('NV_Increment N times, SIGKILL at once, restart: the counter is N', async () => {
    const N = 40;
    const stateDir = makeTempDir();
    const { d, c } = await daemonWithCounter(impl, stateDir);
    for (let i = 0; i < N; i++) expect((await c.call(increment)).rc).toBe(0);
    await d.kill();
    c.close();
    if (impl === 'vtpmd') {
      // The newest state was in the journal only: the permall file was not rewritten per change.
      const newest = newestPermanent(stateDir);
      expect(newest?.fromJournal).toBe(true);
    }
    const again = await startDaemon({ impl, flags: FLAGS, stateDir, transport: 'unix' });
    const c2 = await TpmClient.connect(dataTarget(again));
    expect(await counterValue(c2)).toBe(N);
    c2.close();
    await again.stop();
  }, 60_000);

  it('SIGKILLs at random moments of an NV_Increment stream: after each restart the counter is the last acknowledged value (or the one in flight)', async () => {
    const ROUNDS = 8;
    const stateDir = makeTempDir();
    let { d, c } = await daemonWithCounter(impl, stateDir);
    let acked = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const killed = new Promise<void>((resolve) => setTimeout(() => void d.kill().then(resolve), 20 + ((round * 37) % 120)));
      try {
        for (;;) {
          const r = await c.call(increment);
          expect(r.rc).toBe(0);
          acked++;
        }
      } catch (e) {
        if ((e as Error).name === 'AssertionError') throw e;
      }
      await killed;
      c.close();
      d = await startDaemon({ impl, flags: FLAGS, stateDir, transport: 'unix' });
      c = await TpmClient.connect(dataTarget(d));
      const value = await counterValue(c);
      expect([acked, acked + 1], `round ${round}`).toContain(value);
      acked = value;
    }
    expect(acked).toBeGreaterThan(ROUNDS);
    c.close();
    await d.stop();
  }, 120_000);
});

describe.skipIf(!vtpmdAvailable())('the permanent state journal (vtpmd)', () => {
  it('after a second without changes the permall file holds the newest state, while the daemon runs', async () => {
    const stateDir = makeTempDir();
    const { d, c } = await daemonWithCounter('vtpmd', stateDir);
    for (let i = 0; i < 5; i++) expect((await c.call(increment)).rc).toBe(0);
    const deadline = Date.now() + 20_000;
    while (newestPermanent(stateDir)?.fromJournal !== false) {
      expect(Date.now(), 'no checkpoint within 20 s').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    await d.kill();
    c.close();
    const again = await startDaemon({ impl: 'vtpmd', flags: FLAGS, stateDir, transport: 'unix' });
    const c2 = await TpmClient.connect(dataTarget(again));
    expect(await counterValue(c2)).toBe(5);
    c2.close();
    await again.stop();
  }, 60_000);

  it('under --key the journal is encrypted: no plaintext of an NV index on disk after a SIGKILL, and it loads with the key', async () => {
    const stateDir = makeTempDir();
    const keyFile = path.join(makeTempDir('vtpmd-keys-'), 'key');
    writeFileSync(keyFile, `${'a7'.repeat(32)}\n`);
    const keyArgs = ['--key', `file=${keyFile},mode=aes-256-cbc`];
    const marker = Buffer.from('journal-plaintext-marker-0123456');
    const { d, c } = await daemonWithCounter('vtpmd', stateDir, keyArgs);
    expect((await c.call(defineIndex(MARKED, OWNER_RW, marker.length))).rc).toBe(0);
    for (let i = 0; i < 3; i++) expect((await c.call(nvWrite(MARKED, marker))).rc).toBe(0);
    expect((await c.call(increment)).rc).toBe(0);
    await d.kill();
    c.close();
    expect(newestPermanent(stateDir)?.fromJournal).toBe(true);
    for (const f of readdirSync(stateDir)) expect(readFileSync(path.join(stateDir, f)).includes(marker), f).toBe(false);
    expect(readdirSync(stateDir)).toContain('tpm2-00.permall.journal');
    const again = await startDaemon({ impl: 'vtpmd', flags: FLAGS, stateDir, extraArgs: keyArgs, transport: 'unix' });
    const c2 = await TpmClient.connect(dataTarget(again));
    expect((await readIndex(c2, MARKED, marker.length)).equals(marker)).toBe(true);
    expect(await counterValue(c2)).toBe(1);
    c2.close();
    await again.stop();
    for (const f of readdirSync(stateDir)) expect(readFileSync(path.join(stateDir, f)).includes(marker), f).toBe(false);
  }, 60_000);
});
