// Policy digests with the real tpm2-tools 5.4 in trial sessions, on vtpmd and swtpm: each
// sequence's final digest (tpm2-tools writes it with -L) is checked against the spec's formula
// computed here, so both daemons are held to the same known answer. Then a real policy
// session authorizes HierarchyChangeAuth through ownerPolicy (tpm2_setprimarypolicy).
import { readFileSync, writeFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { describeImpls } from '../helpers/daemon.js';
import { H, POLICY_CC as CC, u32, ZERO } from '../helpers/policy-digest.js';
import { toolsDaemon } from '../helpers/tools-daemon.js';
import { tpm2, tpm2ok } from '../helpers/tools.js';

describeImpls('policy sessions with tpm2-tools', (impl) => {
  const rig = toolsDaemon(impl);
  const { file } = rig;

  /** Runs tools in a fresh trial session and returns the digest the last one wrote. */
  async function trial(name: string, steps: [string, string[]][]): Promise<Buffer> {
    const session = file(`${name}.session`);
    await tpm2ok('startauthsession', rig.d.tcti, ['-S', session]);
    try {
      for (const [tool, args] of steps) await tpm2ok(tool, rig.d.tcti, ['-S', session, '-L', file(`${name}.policy`), ...args]);
      return readFileSync(file(`${name}.policy`));
    } finally {
      await tpm2('flushcontext', rig.d.tcti, [session]);
    }
  }

  it('policycommandcode + policyauthvalue + policylocality', async () => {
    const got = await trial('a', [
      ['policycommandcode', ['TPM2_CC_PCR_Extend']],
      ['policyauthvalue', []],
      ['policylocality', ['three']],
    ]);
    let want = H(ZERO, u32(CC.PolicyCommandCode), u32(CC.PCR_Extend));
    want = H(want, u32(CC.PolicyAuthValue));
    want = H(want, u32(CC.PolicyLocality), Buffer.from([0x08]));
    expect(got.toString('hex')).toBe(want.toString('hex'));
  });

  it('policynvwritten, policytemplate and policycountertimer digests', async () => {
    expect((await trial('nvw', [['policynvwritten', ['s']]])).toString('hex')).toBe(
      H(ZERO, u32(CC.PolicyNvWritten), Buffer.from([1])).toString('hex'),
    );
    const templateHash = Buffer.alloc(32, 'x');
    writeFileSync(file('template.hash'), templateHash);
    expect((await trial('tpl', [['policytemplate', ['--template-hash', file('template.hash')]]])).toString('hex')).toBe(
      H(ZERO, u32(CC.PolicyTemplate), templateHash).toString('hex'),
    );
    // --ult 60000 on TPMS_TIME_INFO.time (offset 0): args = H(operandB || offset || TPM_EO_UNSIGNED_LT).
    const operandB = Buffer.alloc(8);
    operandB.writeBigUInt64BE(60000n);
    const u16 = (v: number) => Buffer.from([v >> 8, v & 0xff]);
    expect((await trial('ct', [['policycountertimer', ['--ult', '60000']]])).toString('hex')).toBe(
      H(ZERO, u32(CC.PolicyCounterTimer), H(operandB, u16(0), u16(5))).toString('hex'),
    );
  });

  it('policypassword gives the policyauthvalue digest', async () => {
    const got = await trial('b', [['policypassword', []]]);
    expect(got.toString('hex')).toBe(H(ZERO, u32(CC.PolicyAuthValue)).toString('hex'));
  });

  it('policypcr over sha256:0,1 with the PCR values read back, then policyor of two branches', async () => {
    const pcrFile = file('pcrs.bin');
    await tpm2ok('pcrread', rig.d.tcti, ['sha256:0,1', '-o', pcrFile]);
    const got = await trial('c', [['policypcr', ['-l', 'sha256:0,1']]]);
    const values = readFileSync(pcrFile);
    const selection = Buffer.concat([u32(1), Buffer.from([0x00, 0x0b, 3, 0x03, 0, 0])]);
    const want = H(ZERO, u32(CC.PolicyPCR), selection, H(values));
    expect(got.toString('hex')).toBe(want.toString('hex'));
    const other = H(Buffer.from('other'));
    writeFileSync(file('branch1'), got);
    writeFileSync(file('branch2'), other);
    const or = await trial('d', [['policyor', ['-l', `sha256:${file('branch1')},${file('branch2')}`]]]);
    expect(or.toString('hex')).toBe(H(ZERO, u32(CC.PolicyOR), got, other).toString('hex'));
  });

  it('policycphash and policynamehash', async () => {
    const cp = H(Buffer.from('cp'));
    writeFileSync(file('cp.bin'), cp);
    // --cphash takes a marshalled TPM2B_DIGEST.
    writeFileSync(file('cp.2b'), Buffer.concat([Buffer.from([0, 32]), cp]));
    expect((await trial('e', [['policycphash', ['--cphash', file('cp.2b')]]])).toString('hex'))
      .toBe(H(ZERO, u32(CC.PolicyCpHash), cp).toString('hex'));
    expect((await trial('f', [['policynamehash', ['-n', file('cp.bin')]]])).toString('hex'))
      .toBe(H(ZERO, u32(CC.PolicyNameHash), cp).toString('hex'));
  });

  it('policysecret with the owner hierarchy (password authorized)', async () => {
    const got = await trial('g', [['policysecret', ['-c', 'o']]]);
    const want = H(H(ZERO, u32(CC.PolicySecret), u32(0x40000001)), Buffer.alloc(0));
    expect(got.toString('hex')).toBe(want.toString('hex'));
  });

  it('a real policy session authorizes HierarchyChangeAuth through ownerPolicy', async () => {
    const policy = await trial('h', [['policycommandcode', ['TPM2_CC_HierarchyChangeAuth']]]);
    writeFileSync(file('owner.policy'), policy);
    await tpm2ok('setprimarypolicy', rig.d.tcti, ['-C', 'o', '-L', file('owner.policy'), '-g', 'sha256']);
    const session = file('real.session');
    await tpm2ok('startauthsession', rig.d.tcti, ['--policy-session', '-S', session]);
    await tpm2ok('policycommandcode', rig.d.tcti, ['-S', session, 'TPM2_CC_HierarchyChangeAuth']);
    await tpm2ok('changeauth', rig.d.tcti, ['-c', 'o', '-p', `session:${session}`, 'ownerpw']);
    await tpm2('flushcontext', rig.d.tcti, [session]);
    // The new owner password works; a policy for another command does not authorize.
    await tpm2ok('changeauth', rig.d.tcti, ['-c', 'o', '-p', 'ownerpw', '']);
    await tpm2ok('startauthsession', rig.d.tcti, ['--policy-session', '-S', session]);
    await tpm2ok('policycommandcode', rig.d.tcti, ['-S', session, 'TPM2_CC_CreatePrimary']);
    const denied = await tpm2('changeauth', rig.d.tcti, ['-c', 'o', '-p', `session:${session}`, 'x']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/0x9a4|0x99d|policy/i);
    await tpm2('flushcontext', rig.d.tcti, [session]);
  });
});
