// SetAlgorithmSet on vtpmd and Debian's swtpm, raw: the same answers to the same sequence
// (TPM_PT_ALGORITHM_SET before and after, owner authorization refused, a wrong platform
// password), and the value survives a daemon restart on the same state.
import { describe, expect, it } from 'vitest';
import { implementations, makeTempDir, startDaemon } from '../helpers/daemon.js';
import { TPM_RH, TpmClient, W, command, dataTarget, pwAuthArea } from '../helpers/tpm.js';

const START = { flags: ['not-need-init', 'startup-clear'] };
const u32 = (v: number) => new W().u32(v).build();
const getAlgorithmSet = command({ cc: 0x17a, params: Buffer.concat([u32(6), u32(0x20c), u32(1)]) });
const setAlgorithmSet = (value: number, handle: number = TPM_RH.PLATFORM, password = new Uint8Array(0)) =>
  command({ cc: 0x13f, handles: [handle], auth: pwAuthArea(password), params: u32(value) });

describe.skipIf(implementations().some((i) => i.skip))('differential: SetAlgorithmSet', () => {
  it('answers byte for byte as swtpm, and the value persists across a restart', async () => {
    const answers: string[][] = [];
    for (const impl of ['vtpmd', 'swtpm'] as const) {
      const state = makeTempDir();
      const d = await startDaemon({ impl, ...START, stateDir: state });
      const c = await TpmClient.connect(dataTarget(d));
      const got: string[] = [];
      for (const bytes of [getAlgorithmSet, setAlgorithmSet(0x12345678), getAlgorithmSet, setAlgorithmSet(1, TPM_RH.OWNER),
        setAlgorithmSet(2, TPM_RH.PLATFORM, new Uint8Array([1])), getAlgorithmSet]) {
        got.push((await c.transmit(bytes)).toString('hex'));
      }
      c.close();
      await d.stop();
      const again = await startDaemon({ impl, ...START, stateDir: state });
      const c2 = await TpmClient.connect(dataTarget(again));
      got.push((await c2.transmit(getAlgorithmSet)).toString('hex'));
      c2.close();
      await again.stop();
      answers.push(got);
    }
    const [v, s] = answers as [string[], string[]];
    expect(v).toEqual(s);
    // The value read back after the restart: TPM_PT_ALGORITHM_SET = 0x12345678.
    expect(v[6]!.endsWith('0000020c12345678')).toBe(true);
    expect(v[0]!.endsWith('0000020c00000000')).toBe(true);
  });
});
