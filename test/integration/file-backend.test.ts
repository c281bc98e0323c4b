// `--tpmstate backend-uri=file://PATH` (swtpm's linear file backend, swtpm-compat §5.6): the
// state in one file with swtpm's header, kept across restarts with NV and PCR contents, the
// volatile state in its own entry, the same container swtpm writes, and damaged files refused.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LINEAR_ENTRY, parseLinearImage } from '../../src/storage/linear-file.js';
import { makeTempDir, startDaemon, swtpmAvailable, VTPMD_MAIN, vtpmdAvailable, type Impl } from '../helpers/daemon.js';
import { parsePcrReadOutput, run, swtpmIoctl, tpm2ok } from '../helpers/tools.js';

const DIGEST = '7e'.repeat(32);

async function pcr10(tcti: string): Promise<string> {
  return parsePcrReadOutput((await tpm2ok('pcrread', tcti, ['sha256:10'])).stdout).get('sha256')!.get(10)!;
}

/** A TPM on `file` with NV 0x1500020 written and PCR 10 extended, saved by Shutdown(STATE) (and STORE_VOLATILE). */
async function provisionOnFile(impl: Impl, file: string, storeVolatile: boolean): Promise<string> {
  const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'], extraArgs: ['--tpmstate', `backend-uri=file://${file}`] });
  await tpm2ok('nvdefine', d.tcti, ['0x1500020', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite']);
  await tpm2ok('nvwrite', d.tcti, ['0x1500020', '-C', 'o', '-i', '-'], { input: 'linear!!' });
  await tpm2ok('pcrextend', d.tcti, [`10:sha256=${DIGEST}`]);
  const value = await pcr10(d.tcti);
  await tpm2ok('shutdown', d.tcti);
  if (storeVolatile) expect((await swtpmIoctl(d, ['-v'])).code).toBe(0);
  await d.stop();
  return value;
}

/** The 10-byte envelope header at the start of a section: version 2, min 1, size 10, total length. */
function envelopeOk(section: Uint8Array): boolean {
  const v = new DataView(section.buffer, section.byteOffset, section.byteLength);
  return v.getUint8(0) === 2 && v.getUint8(1) === 1 && v.getUint16(2) === 10 && v.getUint32(6) === section.length;
}

describe.skipIf(!vtpmdAvailable())('file:// state backend', () => {
  it('keeps NV and PCRs (Shutdown STATE) in one swtpm-format file across restarts', async () => {
    const dir = makeTempDir('vtpmd-linear-');
    const file = path.join(dir, 'tpm.img');
    const value = await provisionOnFile('vtpmd', file, false);
    const image = new Uint8Array(readFileSync(file));
    expect(Buffer.from(image.subarray(0, 12)).toString('hex')).toBe('6e696c6d70747773' + '01' + '00' + 'c000');
    const sections = parseLinearImage(image, file);
    expect(envelopeOk(sections[LINEAR_ENTRY.permanent]!)).toBe(true);
    expect(sections[LINEAR_ENTRY.volatile]).toBeUndefined();

    const d = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-state'], extraArgs: ['--tpmstate', `backend-uri=file://${file}`] });
    expect((await tpm2ok('nvread', d.tcti, ['0x1500020', '-C', 'o'])).stdout).toBe('linear!!');
    expect(await pcr10(d.tcti)).toBe(value);
    await d.stop();
  });

  it.skipIf(!swtpmAvailable())("swtpm's file for the same run has the same container: header, entries, envelopes", async () => {
    const dir = makeTempDir('swtpm-linear-');
    const theirs = path.join(dir, 'swtpm.img');
    const ours = path.join(dir, 'vtpmd.img');
    await provisionOnFile('swtpm', theirs, true);
    await provisionOnFile('vtpmd', ours, true);
    const a = new Uint8Array(readFileSync(theirs));
    const b = new Uint8Array(readFileSync(ours));
    expect(Buffer.from(b.subarray(0, 12))).toEqual(Buffer.from(a.subarray(0, 12)));
    const sa = parseLinearImage(a, theirs);
    const sb = parseLinearImage(b, ours);
    // The same entries are present, each holding one envelope (the engines' payloads differ).
    expect(sb.map((s) => s !== undefined)).toEqual(sa.map((s) => s !== undefined));
    for (const s of [...sa, ...sb]) if (s) expect(envelopeOk(s)).toBe(true);
  });

  it('refuses a truncated file, a file that is not a linear state, and a relative or locked file URI', async () => {
    const dir = makeTempDir('vtpmd-linear-bad-');
    const file = path.join(dir, 'tpm.img');
    await provisionOnFile('vtpmd', file, false);
    const start = (uri: string, extra: string[] = []) =>
      run(process.execPath, [VTPMD_MAIN, 'socket', '--tpm2', '--tpmstate', uri, '--server', `type=unixio,path=${dir}/d`, '--ctrl', `type=unixio,path=${dir}/c`, '--flags', 'not-need-init', ...extra], { timeoutMs: 30_000 });
    writeFileSync(path.join(dir, 'short.img'), readFileSync(file).subarray(0, 1000));
    const truncated = await start(`backend-uri=file://${dir}/short.img`);
    expect(truncated.code).toBe(1);
    expect(truncated.stderr).toMatch(/entry 0 .* lies outside the file: truncated\?/);
    const text = 'not a TPM state, and not to be formatted over\n'.repeat(8);
    writeFileSync(path.join(dir, 'other.img'), text);
    const other = await start(`backend-uri=file://${dir}/other.img`);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/no "swtpmlin" magic; it is not a vtpmd\/swtpm linear state file/);
    expect(readFileSync(path.join(dir, 'other.img'), 'utf8')).toBe(text);
    const relative = await start('backend-uri=file://tpm.img');
    expect(relative.code).toBe(1);
    expect(relative.stderr).toMatch(/needs an absolute path \(file:\/\/\/PATH\)/);
    const locked = await start(`backend-uri=file://${file},lock`);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/lock with backend-uri=file:\/\//);
  });
});
