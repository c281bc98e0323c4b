// Sessions doing real work with tpm2-tools 5.4, on vtpmd and swtpm: data sealed to a PCR policy
// unseals through a policy session until the PCR is extended, then the same steps fail with
// TPM_RC_POLICY_FAIL; an NV index is written and read through a salted HMAC session with
// parameter encryption both ways.
import { readFileSync, writeFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { describeImpls } from '../helpers/daemon.js';
import { toolsDaemon } from '../helpers/tools-daemon.js';
import { tpm2, tpm2ok } from '../helpers/tools.js';

describeImpls('sessions with tpm2-tools: PolicyPCR unseal, encrypted NV', (impl) => {
  const rig = toolsDaemon(impl);
  const { file } = rig;

  /** tpm2_unseal of `sealed` through a fresh policy session satisfied with PolicyPCR(sha256:16). */
  async function unsealWithPcrPolicy(sealed: string) {
    const s = file('pcr.session');
    await tpm2ok('startauthsession', rig.d.tcti, ['--policy-session', '-S', s]);
    try {
      await tpm2ok('policypcr', rig.d.tcti, ['-S', s, '-l', 'sha256:16']);
      return await tpm2('unseal', rig.d.tcti, ['-p', `session:${s}`, '-c', sealed]);
    } finally {
      await tpm2('flushcontext', rig.d.tcti, [s]);
    }
  }

  it('tpm2_policypcr + tpm2_create -L + tpm2_unseal: unseals, then fails with TPM_RC_POLICY_FAIL after a PCR extend', async () => {
    const trial = file('trial.session');
    await tpm2ok('startauthsession', rig.d.tcti, ['-S', trial]);
    await tpm2ok('policypcr', rig.d.tcti, ['-S', trial, '-l', 'sha256:16', '-L', file('pcr.policy')]);
    await tpm2ok('flushcontext', rig.d.tcti, [trial]);
    await tpm2ok('createprimary', rig.d.tcti, ['-C', 'o', '-c', file('primary.ctx')]);
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);
    writeFileSync(file('secret'), 'sealed to PCR 16\n');
    // No userwithauth: only the policy opens it.
    await tpm2ok('create', rig.d.tcti, ['-C', file('primary.ctx'), '-L', file('pcr.policy'), '-a', 'fixedtpm|fixedparent', '-i', file('secret'),
      '-u', file('seal.pub'), '-r', file('seal.priv')]);
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);
    await tpm2ok('load', rig.d.tcti, ['-C', file('primary.ctx'), '-u', file('seal.pub'), '-r', file('seal.priv'), '-c', file('seal.ctx')]);
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);

    const first = await unsealWithPcrPolicy(file('seal.ctx'));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe('sealed to PCR 16\n');
    // A password cannot stand in for the policy.
    const withPassword = await tpm2('unseal', rig.d.tcti, ['-c', file('seal.ctx')]);
    expect(withPassword.code).not.toBe(0);
    expect(withPassword.stderr.toLowerCase()).toContain('0x12f'); // TPM_RC_AUTH_UNAVAILABLE, as in the reference

    await tpm2ok('pcrextend', rig.d.tcti, [`16:sha256=${'5a'.repeat(32)}`]);
    const after = await unsealWithPcrPolicy(file('seal.ctx'));
    expect(after.code).not.toBe(0);
    expect(after.stderr.toLowerCase()).toContain('0x99d'); // TPM_RC_POLICY_FAIL at session 1
    expect(after.stdout).toBe('');
  });

  it('a tpm2_loadexternal public key has no authValue: tpm2_create under it is TPM_RC_AUTH_UNAVAILABLE', async () => {
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);
    await tpm2ok('createprimary', rig.d.tcti, ['-C', 'o', '-G', 'ecc', '-c', file('real.ctx')]);
    await tpm2ok('readpublic', rig.d.tcti, ['-c', file('real.ctx'), '-o', file('real.pub')]);
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);
    await tpm2ok('loadexternal', rig.d.tcti, ['-C', 'o', '-u', file('real.pub'), '-c', file('ext.ctx')]);
    writeFileSync(file('x'), 'x');
    const r = await tpm2('create', rig.d.tcti, ['-C', file('ext.ctx'), '-i', file('x'), '-u', file('x.pub'), '-r', file('x.priv')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.toLowerCase()).toContain('0x12f');
    await tpm2('flushcontext', rig.d.tcti, ['-t']);
  });

  it('tpm2_nvwrite/tpm2_nvread through a salted HMAC session with encryption both ways (tpm2_sessionconfig)', async () => {
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);
    await tpm2ok('createprimary', rig.d.tcti, ['-C', 'o', '-G', 'ecc', '-c', file('salt.ctx')]);
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);
    const s = file('enc.session');
    await tpm2ok('startauthsession', rig.d.tcti, ['--hmac-session', '-c', file('salt.ctx'), '-S', s]);
    await tpm2ok('sessionconfig', rig.d.tcti, [s, '--enable-encrypt', '--enable-decrypt']);
    const index = '0x1500020';
    await tpm2ok('nvdefine', rig.d.tcti, [index, '-C', 'o', '-s', '32', '-a', 'ownerread|ownerwrite']);
    const data = Buffer.from('0123456789abcdef0123456789abcdef');
    writeFileSync(file('nv.in'), data);
    try {
      await tpm2ok('nvwrite', rig.d.tcti, [index, '-C', 'o', '-P', `session:${s}`, '-i', file('nv.in')]);
      await tpm2ok('nvread', rig.d.tcti, [index, '-C', 'o', '-P', `session:${s}`, '-s', '32', '-o', file('nv.out')]);
      expect(readFileSync(file('nv.out')).toString()).toBe(data.toString());
    } finally {
      await tpm2('flushcontext', rig.d.tcti, [s]);
      await tpm2('flushcontext', rig.d.tcti, ['-t']);
      await tpm2('nvundefine', rig.d.tcti, [index, '-C', 'o']);
    }
  });
});
