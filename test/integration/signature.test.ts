// TPM2_Sign and TPM2_VerifySignature with the real tpm2-tools against vtpmd and swtpm alike:
// ECC and RSA keys under an ECC primary, tpm2_sign then tpm2_verifysignature (with a verified
// ticket), a changed message refused, and the signatures checked by OpenSSL against the public
// key tpm2_readpublic writes as PEM; an HMAC key; a restricted key that signs data hashed by the
// TPM but refuses a bare digest and data starting with TPM_GENERATED_VALUE (TPM_RC_TICKET+P3);
// OpenSSL's signatures checked with a public key loaded by tpm2_loadexternal.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeImpls, makeTempDir, startDaemon, type Daemon } from '../helpers/daemon.js';
import { run, tpm2, tpm2Step, tpm2StepOk } from '../helpers/tools.js';

const START = { flags: ['not-need-init', 'startup-clear'] };

const ok = (d: Daemon, tool: string, args: string[]) => tpm2StepOk(d, tool, args);

/** A signing key of the given type under an ECC primary, loaded as key.ctx; its public key as PEM. */
async function signingKey(d: Daemon, work: string, type: string) {
  const p = path.join(work, `${type}-p.ctx`);
  await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc', '-c', p]);
  const pub = path.join(work, `${type}.pub`);
  const priv = path.join(work, `${type}.priv`);
  await ok(d, 'create', ['-C', p, '-G', type, '-u', pub, '-r', priv]);
  const ctx = path.join(work, `${type}.ctx`);
  await ok(d, 'load', ['-C', p, '-u', pub, '-r', priv, '-c', ctx]);
  const pem = path.join(work, `${type}.pem`);
  await ok(d, 'readpublic', ['-c', ctx, '-f', 'pem', '-o', pem]);
  return { ctx, pem };
}

describeImpls('Sign and VerifySignature', (impl) => {
  for (const [type, schemes] of [['ecc', ['ecdsa']], ['rsa', ['rsassa', 'rsapss']]] as const) {
    it(`${type}: tpm2_sign, tpm2_verifysignature with a ticket, a changed message refused, OpenSSL verifies`, async () => {
      const d = await startDaemon({ impl, ...START });
      const work = makeTempDir();
      const msg = path.join(work, 'msg');
      const other = path.join(work, 'other');
      writeFileSync(msg, 'the message to sign\n');
      writeFileSync(other, 'the message to sign!\n');
      const key = await signingKey(d, work, type);
      for (const scheme of schemes) {
        const sig = path.join(work, `${scheme}.sig`);
        await ok(d, 'sign', ['-c', key.ctx, '-g', 'sha256', '-s', scheme, '-o', sig, msg]);
        const ticket = path.join(work, `${scheme}.tk`);
        await ok(d, 'verifysignature', ['-c', key.ctx, '-g', 'sha256', '-m', msg, '-s', sig, '-t', ticket]);
        // TPMT_TK_VERIFIED: TPM_ST_VERIFIED, the owner hierarchy, a non-empty HMAC.
        const tk = readFileSync(ticket);
        expect(tk.subarray(0, 6).toString('hex'), scheme).toBe('802240000001');
        expect(tk.readUInt16BE(6), scheme).toBeGreaterThan(0);
        expect(tk.length, scheme).toBe(8 + tk.readUInt16BE(6));
        const bad = await tpm2Step(d, 'verifysignature', ['-c', key.ctx, '-g', 'sha256', '-m', other, '-s', sig]);
        expect(bad.code, scheme).not.toBe(0);
        expect(bad.stderr, scheme).toMatch(/0x2DB\b/i);

        const plain = path.join(work, `${scheme}.plain`);
        await ok(d, 'sign', ['-c', key.ctx, '-g', 'sha256', '-s', scheme, '-f', 'plain', '-o', plain, msg]);
        const pss = scheme === 'rsapss' ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:auto'] : [];
        const good = await run('openssl', ['dgst', '-sha256', ...pss, '-verify', key.pem, '-signature', plain, msg]);
        expect(good.stdout + good.stderr, scheme).toMatch(/Verified OK/);
        const wrong = await run('openssl', ['dgst', '-sha256', ...pss, '-verify', key.pem, '-signature', plain, other]);
        expect(wrong.code, scheme).not.toBe(0);
      }
      await d.stop();
    });
  }

  it('an HMAC key signs and verifies; a restricted key signs only what TPM2_Hash gave a ticket for', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const msg = path.join(work, 'msg');
    const other = path.join(work, 'other');
    writeFileSync(msg, 'hello world\n');
    writeFileSync(other, 'hello world!\n');
    const p = path.join(work, 'p.ctx');
    await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc', '-c', p]);
    const pub = path.join(work, 'h.pub');
    const priv = path.join(work, 'h.priv');
    await ok(d, 'create', ['-C', p, '-G', 'hmac', '-u', pub, '-r', priv]);
    const h = path.join(work, 'h.ctx');
    await ok(d, 'load', ['-C', p, '-u', pub, '-r', priv, '-c', h]);
    const hsig = path.join(work, 'h.sig');
    await ok(d, 'sign', ['-c', h, '-g', 'sha256', '-o', hsig, msg]);
    await ok(d, 'verifysignature', ['-c', h, '-g', 'sha256', '-m', msg, '-s', hsig]);
    const badHmac = await tpm2Step(d, 'verifysignature', ['-c', h, '-g', 'sha256', '-m', other, '-s', hsig]);
    expect(badHmac.code).not.toBe(0);
    expect(badHmac.stderr).toMatch(/0x2DB\b/i);

    const r = path.join(work, 'r.ctx');
    await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc256:ecdsa-sha256:null', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign', '-c', r]);
    const rsig = path.join(work, 'r.sig');
    await ok(d, 'sign', ['-c', r, '-g', 'sha256', '-o', rsig, msg]);
    await ok(d, 'verifysignature', ['-c', r, '-g', 'sha256', '-m', msg, '-s', rsig]);
    // A bare digest has no ticket; data that starts with TPM_GENERATED_VALUE gets none.
    const digest = path.join(work, 'digest');
    writeFileSync(digest, Buffer.alloc(32, 1));
    const generated = path.join(work, 'generated');
    writeFileSync(generated, Buffer.concat([Buffer.from('ff544347', 'hex'), Buffer.alloc(40, 2)]));
    for (const args of [['-d', digest], [generated]]) {
      const refused = await tpm2Step(d, 'sign', ['-c', r, '-g', 'sha256', '-o', path.join(work, 'x.sig'), ...args]);
      expect(refused.code, args.join(' ')).not.toBe(0);
      expect(refused.stderr, args.join(' ')).toMatch(/0x3E0\b/i);
    }
    await d.stop();
  });

  it('an OpenSSL ECDSA and RSA signature verifies with a tpm2_loadexternal public key, and not for a changed message', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const msg = path.join(work, 'msg');
    writeFileSync(msg, 'signed outside the TPM\n');
    const gen: Record<string, string[]> = {
      ecc: ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      rsa: ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
    };
    for (const [type, format] of [['ecc', 'ecdsa'], ['rsa', 'rsassa']] as const) {
      const keyPem = path.join(work, `${type}.key`);
      const pubPem = path.join(work, `${type}.pub.pem`);
      const sig = path.join(work, `${type}.sig`);
      for (const args of [[...gen[type]!, '-out', keyPem], ['pkey', '-in', keyPem, '-pubout', '-out', pubPem], ['dgst', '-sha256', '-sign', keyPem, '-out', sig, msg]]) {
        const r = await run('openssl', args);
        expect(r.code, r.cmd + r.stderr).toBe(0);
      }
      const ctx = path.join(work, `${type}.ctx`);
      await ok(d, 'loadexternal', ['-C', 'n', '-G', type, '-u', pubPem, '-c', ctx]);
      await ok(d, 'verifysignature', ['-c', ctx, '-g', 'sha256', '-m', msg, '-f', format, '-s', sig]);
      writeFileSync(msg, 'changed\n');
      const bad = await tpm2Step(d, 'verifysignature', ['-c', ctx, '-g', 'sha256', '-m', msg, '-f', format, '-s', sig]);
      expect(bad.code, type).not.toBe(0);
      expect(bad.stderr, type).toMatch(/0x2DB\b/i);
      writeFileSync(msg, 'signed outside the TPM\n');
    }
    await d.stop();
  });

  it('refusals with the same response codes: schemes that do not fit the key, a key that cannot sign', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const f = (n: string) => path.join(work, n);
    writeFileSync(f('msg'), 'hello world\n');
    const attrs = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth';
    await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc256:ecschnorr-sha256:null', '-a', `${attrs}|sign`, '-c', f('schnorr.ctx')]);
    await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc256:ecdsa-sha256:null', '-a', `${attrs}|sign`, '-c', f('ecdsa.ctx')]);
    await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc256:null:null', '-a', `${attrs}|decrypt`, '-c', f('decrypt.ctx')]);
    await ok(d, 'createprimary', ['-C', 'o', '-G', 'rsa2048:null:null', '-a', `${attrs}|sign`, '-c', f('rsa.ctx')]);
    await ok(d, 'sign', ['-c', f('rsa.ctx'), '-g', 'sha256', '-s', 'rsassa', '-o', f('rsa.sig'), f('msg')]);
    const cases: [string, string[], string][] = [
      ['ECSCHNORR key', ['sign', '-c', f('schnorr.ctx'), '-g', 'sha256', '-o', f('x.sig'), f('msg')], '0x2D2'],
      ['decrypt-only key', ['sign', '-c', f('decrypt.ctx'), '-g', 'sha256', '-s', 'ecdsa', '-o', f('x.sig'), f('msg')], '0x19C'],
      ['ECDSA asked of an RSA key', ['sign', '-c', f('rsa.ctx'), '-g', 'sha256', '-s', 'ecdsa', '-o', f('x.sig'), f('msg')], '0x2D2'],
      ['an RSA signature for an ECC key', ['verifysignature', '-c', f('ecdsa.ctx'), '-g', 'sha256', '-m', f('msg'), '-s', f('rsa.sig')], '0x2D2'],
      ['verification by a key that cannot sign', ['verifysignature', '-c', f('decrypt.ctx'), '-g', 'sha256', '-m', f('msg'), '-s', f('rsa.sig')], '0x182'],
    ];
    for (const [what, [tool, ...args], rc] of cases) {
      const r = await tpm2Step(d, tool!, args);
      expect(r.code, what).not.toBe(0);
      expect(r.stderr, what).toContain(`(${rc})`);
    }
    await d.stop();
  });
});
