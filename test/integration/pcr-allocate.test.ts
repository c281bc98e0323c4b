// TPM2_PCR_Allocate with tpm2-tools, side by side with swtpm: the answer's bytes, and the banks
// `tpm2_getcap pcrs` shows after the daemon restarts (the allocation needs a TPM Reset).
import { expect, it } from 'vitest';
import { describeImpls, implementations, makeTempDir, startDaemon } from '../helpers/daemon.js';
import { tpm2ok } from '../helpers/tools.js';
import { command, pwAuthArea, TPM_RH, transmitOnce, W } from '../helpers/tpm.js';

const PCR_ALLOCATE = 0x12b;

async function allocateAndRestart(impl: 'vtpmd' | 'swtpm', spec: string): Promise<string> {
  const stateDir = makeTempDir();
  let d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'], stateDir });
  await tpm2ok('pcrallocate', d.tcti, [spec]);
  await d.stop();
  d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'], stateDir });
  const caps = (await tpm2ok('getcap', d.tcti, ['pcrs'])).stdout;
  await d.stop();
  return caps;
}

describeImpls('PCR_Allocate', (impl) => {
  it('tpm2_pcrallocate sha256:all+sha1:none, restart: tpm2_getcap pcrs shows sha1 empty, sha256 full', async () => {
    const caps = await allocateAndRestart(impl, 'sha256:all+sha1:none');
    expect(caps).toMatch(/sha1:\s*\[\s*\]/);
    expect(caps).toMatch(/sha256:\s*\[ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23 \]/);
  });
});

const both = implementations().every((i) => !i.skip);
it.skipIf(!both)('the same banks and the same response bytes on vtpmd and swtpm', async () => {
  const [a, b] = await Promise.all([allocateAndRestart('vtpmd', 'sha256:all+sha1:none'), allocateAndRestart('swtpm', 'sha256:all+sha1:none')]);
  // swtpm's libtpms has more banks (e.g. sm3); compare the four both implement.
  const pick = (caps: string) => caps.split('\n').filter((l) => /^\s*- sha(1|256|384|512):/.test(l)).join('\n');
  expect(pick(a)).toBe(pick(b));
  const sel = new W().u32(2).u16(0x0b).u8(3).bytes(Buffer.from('ffffff', 'hex')).u16(0x04).u8(3).bytes(Buffer.from('000000', 'hex')).build();
  const cmd = command({ cc: PCR_ALLOCATE, handles: [TPM_RH.PLATFORM], auth: pwAuthArea(), params: sel });
  const answers: Record<string, string> = {};
  for (const impl of ['vtpmd', 'swtpm'] as const) {
    const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
    const r = await transmitOnce({ port: d.port }, cmd);
    answers[impl] = r.raw.toString('hex');
    await d.stop();
  }
  // allocationSuccess, maxPCR and sizeNeeded agree; sizeAvailable is each engine's PCR storage.
  expect(answers.vtpmd!.slice(0, 56)).toBe(answers.swtpm!.slice(0, 56));
});
