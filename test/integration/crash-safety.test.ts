// Crash safety: the daemon is SIGKILLed at random moments while a client changes persistent state
// (the owner authorization, rewritten by every HierarchyChangeAuth) and extends PCRs. After each
// restart the state must load and hold the last acknowledged change (or the one in flight when the
// daemon died: it may have reached the disk before the reply was lost). design.md: "everything
// that must survive a crash is written before the response is returned".
import { expect, it } from 'vitest';
import { describeImpls, makeTempDir, startDaemon } from '../helpers/daemon.js';
import { ALG, command, dataTarget, pwAuthArea, TPM_RH, TpmClient, W, cmd } from '../helpers/tpm.js';

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
