// Dictionary-attack protection with the real tpm2-tools 5.4 on vtpmd and swtpm: parameters
// set by tpm2_dictionarylockout, lockout reached with wrong passwords for a DA-protected key,
// cleared with lockoutAuth, and lockoutAuth itself locked by a wrong lockout password.
import { expect, it } from 'vitest';
import { describeImpls } from '../helpers/daemon.js';
import { toolsDaemon } from '../helpers/tools-daemon.js';
import { parseProperties, tpm2, tpm2ok } from '../helpers/tools.js';

describeImpls('dictionary-attack protection with tpm2-tools', (impl) => {
  const rig = toolsDaemon(impl);
  const { file } = rig;

  async function da(): Promise<{ counter: number; max: number; interval: number; recovery: number; inLockout: boolean }> {
    const r = await tpm2ok('getcap', rig.d.tcti, ['properties-variable']);
    const p = parseProperties(r.stdout);
    return {
      counter: p.get('TPM2_PT_LOCKOUT_COUNTER')!,
      max: p.get('TPM2_PT_MAX_AUTH_FAIL')!,
      interval: p.get('TPM2_PT_LOCKOUT_INTERVAL')!,
      recovery: p.get('TPM2_PT_LOCKOUT_RECOVERY')!,
      inLockout: /inLockout:\s+(1|set)/.test(r.stdout),
    };
  }

  /** PolicySecret with the key's authorization in a trial session: one DA-protected use of "keypw". */
  async function useKey(password: string) {
    const session = file('trial.ctx');
    await tpm2ok('startauthsession', rig.d.tcti, ['-S', session]);
    const r = await tpm2('policysecret', rig.d.tcti, ['-S', session, '-c', file('key.ctx'), password]);
    await tpm2('flushcontext', rig.d.tcti, [session]);
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);
    return r;
  }

  it('tpm2_dictionarylockout -s sets the parameters GetCapability reports', async () => {
    await tpm2ok('dictionarylockout', rig.d.tcti, ['-s', '-n', '2', '-t', '100', '-l', '200']);
    expect(await da()).toMatchObject({ counter: 0, max: 2, interval: 100, recovery: 200, inLockout: false });
  });

  it('wrong passwords for a DA-protected key reach lockout; tpm2_dictionarylockout -c clears it', async () => {
    await tpm2ok('createprimary', rig.d.tcti, ['-C', 'o', '-G', 'ecc', '-p', 'keypw', '-c', file('key.ctx')]);
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);
    expect((await useKey('keypw')).code).toBe(0);
    for (let i = 1; i <= 2; i++) {
      const r = await useKey('wrong');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/0x98e/i);
      expect((await da()).counter).toBe(i);
    }
    expect((await da()).inLockout).toBe(true);
    const locked = await useKey('keypw');
    expect(locked.code).not.toBe(0);
    expect(locked.stderr).toMatch(/0x921/i);
    await tpm2ok('dictionarylockout', rig.d.tcti, ['-c']);
    expect(await da()).toMatchObject({ counter: 0, inLockout: false });
    expect((await useKey('keypw')).code).toBe(0);
  });

  it('a wrong lockout password locks lockoutAuth (TPM_RC_LOCKOUT for the right one)', async () => {
    const bad = await tpm2('dictionarylockout', rig.d.tcti, ['-c', '-p', 'bad']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/0x98e/i);
    const locked = await tpm2('dictionarylockout', rig.d.tcti, ['-c']);
    expect(locked.code).not.toBe(0);
    expect(locked.stderr).toMatch(/0x921/i);
  });
});
