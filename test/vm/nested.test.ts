// The consumer from the design: inside the QEMU guest, a nested QEMU uses vtpmd's CUSE device
// through its passthrough backend (as with a hardware TPM), and the nested kernel finds a TPM 2.0.
// Slow (nested TCG, ~4 min): runs only with VTPMD_VM_NESTED=1 (`npm run test:vm-nested`).
import * as fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeShare, runScenario, type GuestRun } from './guest-runner.js';

const LIMIT_S = 560;
let run: GuestRun | undefined;
const read = (name: string) => fs.readFileSync(path.join(run!.share, name), 'utf8');
const inner = (key: string) => read('inner.txt').match(new RegExp(`^INNER: ${key}=(.*)$`, 'm'))?.[1];

beforeAll(async () => {
  run = await runScenario('nested-scenario.sh', LIMIT_S);
  if (!run.skipReason) console.log(`test/vm nested: total ${run.seconds.toFixed(0)} s, inner QEMU ${read('inner.seconds').trim()} s`);
}, (LIMIT_S + 90) * 1000);

afterAll(() => removeShare(run));

describe('QEMU passthrough on /dev/vtpm0 (nested guest)', () => {
  it('the nested kernel finds a TPM 2.0 at /sys/class/tpm/tpm0', (ctx) => {
    if (run?.skipReason) ctx.skip();
    expect(read('init.rc').trim()).toBe('0');
    expect(read('qemu.rc').trim()).toBe('0');
    expect(inner('tpm0')).toBe('/sys/class/tpm/tpm0');
    expect(inner('tpm_version_major')).toBe('2');
    expect(inner('pcr-sha256-0')).toMatch(/^[0-9A-F]{64}$/i);
    console.log(`test/vm nested: PCR 0 (sha256) = ${inner('pcr-sha256-0')}`);
  });

  // SeaBIOS measures itself into PCR 0 and stops using a TPM that fails any command
  // (TPM2_HierarchyChangeAuth(PLATFORM) included). With the reference vTPM, and with vtpmd,
  // PCR 0 is E21B703E…CA8FEA93 (shared vm-testing.md): same firmware, same measurements.
  it('SeaBIOS extended PCR 0 exactly as on the reference vTPM', () => {
    expect(inner('pcr-sha256-0')?.toUpperCase()).toBe('E21B703EE69C77476BCCB43EC0336A9A1B2914B378944F7B00A10214CA8FEA93');
  });
});
