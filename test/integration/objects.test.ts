// Primary objects with the real tpm2-tools: CreatePrimary (ECC, AES, the TCG ECC EK template),
// ReadPublic, ContextSave/ContextLoad through tpm2-tools' context files, FlushContext, and
// deterministic derivation across calls and daemon restarts. Template errors are compared
// with swtpm.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeImpls, makeTempDir, startDaemon } from '../helpers/daemon.js';
import { parseYamlScalars, tpm2, tpm2ok } from '../helpers/tools.js';

async function createPrimary(tcti: string, dir: string, file: string, args: string[]): Promise<Map<string, string>> {
  const r = await tpm2ok('createprimary', tcti, [...args, '-c', path.join(dir, file)]);
  await tpm2ok('flushcontext', tcti, ['-t']);
  return parseYamlScalars(r.stdout);
}

async function nameOf(tcti: string, dir: string, ctx: string): Promise<string> {
  const out = path.join(dir, `${ctx}.name`);
  await tpm2ok('readpublic', tcti, ['-c', path.join(dir, ctx), '-n', out]);
  await tpm2ok('flushcontext', tcti, ['-t']);
  return readFileSync(out).toString('hex');
}

describeImpls('primary objects', (impl) => {
  it('an ECC P-256 storage key: same template, same key — twice and after a restart', async () => {
    const stateDir = makeTempDir();
    const work = makeTempDir();
    let d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'], stateDir });
    const out = await createPrimary(d.tcti, work, 'a.ctx', ['-C', 'o', '-G', 'ecc']);
    expect(out.get('value')).toBeDefined();
    const a = await nameOf(d.tcti, work, 'a.ctx');
    expect(a).toMatch(/^000b[0-9a-f]{64}$/);
    await createPrimary(d.tcti, work, 'b.ctx', ['-C', 'o', '-G', 'ecc']);
    expect(await nameOf(d.tcti, work, 'b.ctx')).toBe(a);
    // Another hierarchy has another seed.
    await createPrimary(d.tcti, work, 'e.ctx', ['-C', 'e', '-G', 'ecc']);
    expect(await nameOf(d.tcti, work, 'e.ctx')).not.toBe(a);
    await d.stop();
    d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'], stateDir });
    await createPrimary(d.tcti, work, 'c.ctx', ['-C', 'o', '-G', 'ecc']);
    expect(await nameOf(d.tcti, work, 'c.ctx')).toBe(a);
  });

  it('tpm2_readpublic shows the template tpm2-tools asked for; the public point is on the curve', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
    const work = makeTempDir();
    await createPrimary(d.tcti, work, 'k.ctx', ['-C', 'o', '-G', 'ecc384:aes256cfb']);
    const pem = path.join(work, 'k.pem');
    const r = await tpm2ok('readpublic', d.tcti, ['-c', path.join(work, 'k.ctx'), '-f', 'pem', '-o', pem]);
    const fields = parseYamlScalars(r.stdout);
    expect(r.stdout).toMatch(/NIST p384/);
    expect(r.stdout).toMatch(/fixedtpm\|fixedparent\|sensitivedataorigin\|userwithauth\|restricted\|decrypt/);
    expect(fields.get('sym-keybits')).toBe('256');
    // OpenSSL accepts the point (it checks it lies on P-384).
    const { run } = await import('../helpers/tools.js');
    const check = await run('openssl', ['ec', '-pubin', '-in', pem, '-check', '-noout']);
    expect(check.code).toBe(0);
  });

  it('the TCG ECC EK template (tpm2_createek -G ecc) and an AES-128-CFB symmetric key', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
    const work = makeTempDir();
    const ek = await tpm2ok('createek', d.tcti, ['-G', 'ecc', '-c', path.join(work, 'ek.ctx'), '-u', path.join(work, 'ek.pub')]);
    void ek;
    const pub = await tpm2ok('readpublic', d.tcti, ['-c', path.join(work, 'ek.ctx')]);
    // PolicyA of the EK Credential Profile and the EK attributes 0x000300b2.
    expect(pub.stdout).toMatch(/837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa/);
    expect(pub.stdout).toMatch(/raw: 0x300b2/);
    await tpm2ok('flushcontext', d.tcti, ['-t']);
    const sym = await createPrimary(d.tcti, work, 's.ctx', ['-C', 'o', '-G', 'aes128cfb']);
    expect(sym.get('sym-keybits')).toBe('128');
  });

  it('contexts: a saved object loads again; a tampered context is refused', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
    const work = makeTempDir();
    await createPrimary(d.tcti, work, 'p.ctx', ['-C', 'o', '-G', 'ecc']);
    const name = await nameOf(d.tcti, work, 'p.ctx');
    expect(await nameOf(d.tcti, work, 'p.ctx')).toBe(name);
    const ctx = readFileSync(path.join(work, 'p.ctx'));
    // tpm2-tools' file: magic, version, hierarchy, savedHandle (u32 each), sequence (u64), then
    // the TPM2B contextBlob; flip a byte inside the blob.
    const blobAt = 4 + 4 + 4 + 4 + 8 + 2;
    expect(ctx.readUInt32BE(0)).toBe(0xbadcc0de);
    ctx[blobAt + 40] ^= 0xff;
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(work, 'bad.ctx'), ctx);
    const bad = await tpm2('readpublic', d.tcti, ['-c', path.join(work, 'bad.ctx')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/0x1df|integrity/i);
  });

  it('template errors give the same response codes as swtpm', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
    const work = makeTempDir();
    // A storage key without sensitiveDataOrigin, and a signing key that is also restricted-decrypt.
    const noOrigin = await tpm2('createprimary', d.tcti, ['-C', 'o', '-G', 'ecc', '-a', 'fixedtpm|fixedparent|userwithauth|restricted|decrypt', '-c', path.join(work, 'x.ctx')]);
    expect(noOrigin.stderr).toMatch(/0x2C2/i);
    const both = await tpm2('createprimary', d.tcti, ['-C', 'o', '-G', 'ecc', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|sign', '-c', path.join(work, 'y.ctx')]);
    expect(both.stderr).toMatch(/0x2C2/i);
    const fixedTpmOnly = await tpm2('createprimary', d.tcti, ['-C', 'o', '-G', 'ecc', '-a', 'fixedtpm|sensitivedataorigin|userwithauth|restricted|decrypt', '-c', path.join(work, 'z.ctx')]);
    expect(fixedTpmOnly.stderr).toMatch(/0x2C2/i);
    const hmac = await tpm2('createprimary', d.tcti, ['-C', 'o', '-G', 'hmac', '-c', path.join(work, 'h.ctx')]);
    expect(hmac.stderr).toMatch(/0x2D2/i);
  });
});
