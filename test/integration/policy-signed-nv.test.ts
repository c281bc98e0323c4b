// PolicySigned (OpenSSL keys loaded with tpm2_loadexternal, and its ticket redeemed by
// tpm2_policyticket), PolicyNV, PolicyAuthorizeNV, PolicyAuthorize with a signed policy,
// PolicyDuplicationSelect, PolicyRestart, audit sessions and tpm2_setcommandauditstatus, with
// the real tpm2-tools on vtpmd and swtpm. Trial digests are checked against the spec's formula
// computed here, so both daemons are held to the same known answer; refusals must carry the same
// response code on both.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeImpls, makeTempDir, startDaemon, swtpmAvailable, vtpmdAvailable } from '../helpers/daemon.js';
import { H, POLICY_CC as CC, u16, u32, ZERO } from '../helpers/policy-digest.js';
import { toolsDaemon } from '../helpers/tools-daemon.js';
import { run, tpm2, tpm2ok } from '../helpers/tools.js';
import { cmd, dataTarget, transmitOnce } from '../helpers/tpm.js';
import { DirStorage } from '../../src/storage/storage.js';
import { commandAuditInfo } from '../../src/tpm/state/audit.js';
import { deserializePersistent } from '../../src/tpm/state/persistent.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A tool's failure naming the response code (tpm2-tools prints it as 0x… in any case). */
const rcIn = (stderr: string, rc: number) => new RegExp(`\\(0x0*${rc.toString(16)}\\)`, 'i').test(stderr);

describeImpls('PolicySigned, PolicyNV, PolicyAuthorizeNV and audit with tpm2-tools', (impl) => {
  const rig = toolsDaemon(impl);
  const { file } = rig;
  const openssl = async (args: string[]) => {
    const r = await run('openssl', args);
    if (r.code !== 0) throw new Error(`${r.cmd}: ${r.stderr}`);
  };

  let readyAt = 0;
  beforeAll(async () => {
    readyAt = Date.now();
    await openssl(['genrsa', '-out', file('rsa.pem'), '2048']);
    await openssl(['rsa', '-in', file('rsa.pem'), '-pubout', '-out', file('rsa.pub.pem')]);
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file('ec.pem')]);
    await openssl(['ec', '-in', file('ec.pem'), '-pubout', '-out', file('ec.pub.pem')]);
  });

  /** Loads an OpenSSL public key into the owner hierarchy; returns its context file and Name. */
  async function loadExternal(name: string, type: 'rsa' | 'ecc', pem: string): Promise<Buffer> {
    await keyedOk('loadexternal', ['-C', 'o', '-G', type, '-u', pem, '-c', file(`${name}.ctx`), '-n', file(`${name}.name`)]);
    return readFileSync(file(`${name}.name`));
  }

  async function session(name: string, kind: 'trial' | 'policy'): Promise<string> {
    const s = file(`${name}.session`);
    await tpm2ok('startauthsession', rig.d.tcti, ['-S', s, ...(kind === 'policy' ? ['--policy-session'] : [])]);
    return s;
  }
  const flush = (s: string) => tpm2('flushcontext', rig.d.tcti, [s]);
  /** tpm2-tools leave the objects they load from context files loaded: free the slots after each use. */
  const keyed = async (tool: string, args: string[], opts?: { input: string | Buffer }) => {
    const r = await tpm2(tool, rig.d.tcti, args, opts);
    await tpm2ok('flushcontext', rig.d.tcti, ['-t']);
    return r;
  };
  const keyedOk = async (tool: string, args: string[], opts?: { input: string | Buffer }) => {
    const r = await keyed(tool, args, opts);
    if (r.code !== 0) throw new Error(`${r.cmd} exited ${r.code}\nstderr: ${r.stderr}`);
    return r;
  };

  it('tpm2_policysigned with an OpenSSL RSA key: the trial digest, a real session, a bad signature (0x5db), an expired authorization (0x4e3)', async () => {
    const name = await loadExternal('rsakey', 'rsa', file('rsa.pub.pem'));
    const want = H(H(ZERO, u32(CC.PolicySigned), name), Buffer.alloc(0));
    // No nonce, no cpHashA, no policyRef, expiration 0: the signer signs the four zero bytes.
    writeFileSync(file('zero4'), Buffer.alloc(4));
    await openssl(['dgst', '-sha256', '-sign', file('rsa.pem'), '-out', file('rsa.sig'), file('zero4')]);
    const signed = ['-g', 'sha256', '-s', file('rsa.sig'), '-f', 'rsassa', '-c', file('rsakey.ctx')];
    const trial = await session('ps-trial', 'trial');
    await keyedOk('policysigned', ['-S', trial, ...signed, '-L', file('ps-trial.policy')]);
    expect(readFileSync(file('ps-trial.policy')).toString('hex')).toBe(want.toString('hex'));
    await flush(trial);
    const real = await session('ps-real', 'policy');
    await keyedOk('policysigned', ['-S', real, ...signed, '-L', file('ps-real.policy')]);
    expect(readFileSync(file('ps-real.policy')).toString('hex')).toBe(want.toString('hex'));
    // A signature over other data: TPM_RC_SIGNATURE+P5.
    writeFileSync(file('other'), Buffer.from('other'));
    await openssl(['dgst', '-sha256', '-sign', file('rsa.pem'), '-out', file('bad.sig'), file('other')]);
    const bad = await keyed('policysigned', ['-S', real, '-g', 'sha256', '-s', file('bad.sig'), '-f', 'rsassa', '-c', file('rsakey.ctx')]);
    expect(bad.code).not.toBe(0);
    expect(rcIn(bad.stderr, 0x5db), bad.stderr).toBe(true);
    // Without a nonce the expiration is absolute TPM time in seconds, to which the TPM adds the
    // current time's milliseconds (ms-tpm ComputeAuthTimeout): 1 s has expired only once TPM time
    // is past 2 s. TPM_RC_EXPIRED+P4.
    await sleep(Math.max(0, 2500 - (Date.now() - readyAt)));
    writeFileSync(file('exp1'), u32(-1));
    await openssl(['dgst', '-sha256', '-sign', file('rsa.pem'), '-out', file('exp1.sig'), file('exp1')]);
    const expired = await keyed('policysigned', ['-S', real, '-g', 'sha256', '-s', file('exp1.sig'), '-f', 'rsassa', '-c', file('rsakey.ctx'), '-t', '-1']);
    expect(expired.code).not.toBe(0);
    expect(rcIn(expired.stderr, 0x4e3), expired.stderr).toBe(true);
    await flush(real);
  });

  /** PolicySigned with the session's nonce and a negative expiration; returns the ticket files. */
  async function signedTicket(s: string, expiration: number, tag: string): Promise<{ ticket: string; timeout: string; policy: string }> {
    const common = ['-S', s, '-c', file('eckey.ctx'), '-x', '-t', String(expiration)];
    await keyedOk('policysigned', [...common, '--raw-data', file(`${tag}.raw`)]);
    await openssl(['dgst', '-sha256', '-sign', file('ec.pem'), '-out', file(`${tag}.sig`), file(`${tag}.raw`)]);
    const out = { ticket: file(`${tag}.ticket`), timeout: file(`${tag}.timeout`), policy: file(`${tag}.policy`) };
    await keyedOk('policysigned', [...common, '-g', 'sha256', '-s', file(`${tag}.sig`), '-f', 'ecdsa', '--ticket', out.ticket, '--timeout', out.timeout, '-L', out.policy]);
    return out;
  }

  it('tpm2_policysigned with an OpenSSL ECDSA key returns a ticket that tpm2_policyticket redeems; an expired one is 0x1e3', async () => {
    const name = await loadExternal('eckey', 'ecc', file('ec.pub.pem'));
    const want = H(H(ZERO, u32(CC.PolicySigned), name), Buffer.alloc(0));
    const s = await session('tk1', 'policy');
    const t = await signedTicket(s, -3600, 'tk1');
    expect(readFileSync(t.policy).toString('hex')).toBe(want.toString('hex'));
    await flush(s);
    const s2 = await session('tk2', 'policy');
    await tpm2ok('policyticket', rig.d.tcti, ['-S', s2, '-n', file('eckey.name'), '--ticket', t.ticket, '--timeout', t.timeout, '-L', file('tk2.policy')]);
    expect(readFileSync(file('tk2.policy')).toString('hex')).toBe(want.toString('hex'));
    await flush(s2);
    // A ticket good for 5 s after its session started, redeemed later: TPM_RC_EXPIRED+P1.
    const s3 = await session('tk3', 'policy');
    const short = await signedTicket(s3, -5, 'tk3');
    await flush(s3);
    await sleep(6000);
    const s4 = await session('tk4', 'policy');
    const late = await tpm2('policyticket', rig.d.tcti, ['-S', s4, '-n', file('eckey.name'), '--ticket', short.ticket, '--timeout', short.timeout]);
    expect(late.code).not.toBe(0);
    expect(rcIn(late.stderr, 0x1e3), late.stderr).toBe(true);
    await flush(s4);
  }, 60_000);

  /** Defines an owner-readable NV index, writes `data` and returns its Name (tpm2_nvreadpublic). */
  async function nvIndex(index: string, data: Buffer): Promise<Buffer> {
    await tpm2ok('nvdefine', rig.d.tcti, [index, '-C', 'o', '-s', String(data.length), '-a', 'ownerread|ownerwrite|authread|authwrite']);
    await tpm2ok('nvwrite', rig.d.tcti, [index, '-C', 'o', '-i-'], { input: data });
    const pub = await tpm2ok('nvreadpublic', rig.d.tcti, [index]);
    return Buffer.from(/name:\s*([0-9a-f]+)/i.exec(pub.stdout)![1]!, 'hex');
  }

  it('tpm2_policynv: the trial digest, a comparison that holds, one that does not (TPM_RC_POLICY 0x126)', async () => {
    const name = await nvIndex('0x1500016', Buffer.from([0, 0, 0, 0, 0, 0, 0x01, 0x00]));
    const operand = Buffer.from([0x01, 0x00]);
    const trial = await session('nv-trial', 'trial');
    await tpm2ok('policynv', rig.d.tcti, ['-S', trial, '-L', file('nv.policy'), '-i-', '0x1500016', 'eq', '--offset', '6', '-C', 'o'], { input: operand });
    // TPM_EO_EQ is 0.
    const want = H(ZERO, u32(CC.PolicyNV), H(operand, u16(6), u16(0)), name);
    expect(readFileSync(file('nv.policy')).toString('hex')).toBe(want.toString('hex'));
    await flush(trial);
    const real = await session('nv-real', 'policy');
    await tpm2ok('policynv', rig.d.tcti, ['-S', real, '-i-', '0x1500016', 'ult', '--offset', '6', '-C', 'o'], { input: Buffer.from([0x01, 0x01]) });
    const no = await tpm2('policynv', rig.d.tcti, ['-S', real, '-i-', '0x1500016', 'ugt', '--offset', '6', '-C', 'o'], { input: Buffer.from([0x02, 0x00]) });
    expect(no.code).not.toBe(0);
    expect(rcIn(no.stderr, 0x126), no.stderr).toBe(true);
    await flush(real);
  });

  it('tpm2_policyauthorizenv: the policy stored in an NV index authorizes the session that meets it', async () => {
    const approved = H(ZERO, u32(CC.PolicyAuthValue));
    const name = await nvIndex('0x1500017', Buffer.concat([u16(0x000b), approved]));
    const want = H(ZERO, u32(CC.PolicyAuthorizeNV), name);
    const trial = await session('anv-trial', 'trial');
    await tpm2ok('policyauthorizenv', rig.d.tcti, ['-S', trial, '-C', 'o', '-L', file('anv.policy'), '0x1500017']);
    expect(readFileSync(file('anv.policy')).toString('hex')).toBe(want.toString('hex'));
    await flush(trial);
    const real = await session('anv-real', 'policy');
    // Before PolicyAuthValue the digest is not the stored one: TPM_RC_VALUE.
    const early = await tpm2('policyauthorizenv', rig.d.tcti, ['-S', real, '-C', 'o', '0x1500017']);
    expect(early.code).not.toBe(0);
    expect(rcIn(early.stderr, 0x84), early.stderr).toBe(true);
    await tpm2ok('policyauthvalue', rig.d.tcti, ['-S', real]);
    await tpm2ok('policyauthorizenv', rig.d.tcti, ['-S', real, '-C', 'o', '-L', file('anv-real.policy'), '0x1500017']);
    expect(readFileSync(file('anv-real.policy')).toString('hex')).toBe(want.toString('hex'));
    await flush(real);
  });

  it('tpm2_policyauthorize with a policy signed by an OpenSSL key unseals an object sealed to the authorized policy', async () => {
    const name = await loadExternal('authkey', 'rsa', file('rsa.pub.pem'));
    const trial = await session('pa-trial', 'trial');
    await tpm2ok('policyauthorize', rig.d.tcti, ['-S', trial, '-L', file('authorized.policy'), '-n', file('authkey.name')]);
    await flush(trial);
    expect(readFileSync(file('authorized.policy')).toString('hex')).toBe(H(H(ZERO, u32(CC.PolicyAuthorize), name), Buffer.alloc(0)).toString('hex'));
    // The approved policy: PolicyPCR over sha256:0, signed by the key's owner.
    const t2 = await session('pcr-trial', 'trial');
    await tpm2ok('policypcr', rig.d.tcti, ['-S', t2, '-l', 'sha256:0', '-L', file('pcr.policy')]);
    await flush(t2);
    await openssl(['dgst', '-sha256', '-sign', file('rsa.pem'), '-out', file('pcr.sig'), file('pcr.policy')]);
    await keyedOk('createprimary', ['-C', 'o', '-c', file('prim.ctx')]);
    await keyedOk('create', ['-C', file('prim.ctx'), '-u', file('seal.pub'), '-r', file('seal.priv'), '-L', file('authorized.policy'), '-i-'], { input: 'sealed secret' });
    await keyedOk('verifysignature', ['-c', file('authkey.ctx'), '-g', 'sha256', '-m', file('pcr.policy'), '-s', file('pcr.sig'), '-f', 'rsassa', '-t', file('pcr.ticket')]);
    await keyedOk('load', ['-C', file('prim.ctx'), '-u', file('seal.pub'), '-r', file('seal.priv'), '-c', file('seal.ctx')]);
    const real = await session('pa-real', 'policy');
    await tpm2ok('policypcr', rig.d.tcti, ['-S', real, '-l', 'sha256:0']);
    await tpm2ok('policyauthorize', rig.d.tcti, ['-S', real, '-i', file('pcr.policy'), '-n', file('authkey.name'), '-t', file('pcr.ticket')]);
    const unsealed = await keyedOk('unseal', ['-p', `session:${real}`, '-c', file('seal.ctx')]);
    expect(unsealed.stdout).toBe('sealed secret');
    await flush(real);
  });

  it('tpm2_policyduplicationselect and tpm2_policyrestart', async () => {
    const objectName = Buffer.concat([u16(0x000b), H(Buffer.from('object'))]);
    const parentName = Buffer.concat([u16(0x000b), H(Buffer.from('parent'))]);
    writeFileSync(file('obj.name'), objectName);
    writeFileSync(file('parent.name'), parentName);
    const t = await session('ds', 'trial');
    await tpm2ok('policyduplicationselect', rig.d.tcti, ['-S', t, '-n', file('obj.name'), '-N', file('parent.name'), '-L', file('ds.policy')]);
    // includeObject NO: H(digest || CC || newParentName || 0).
    const want = H(ZERO, u32(CC.PolicyDuplicationSelect), parentName, Buffer.from([0]));
    expect(readFileSync(file('ds.policy')).toString('hex')).toBe(want.toString('hex'));
    // PolicyRestart: the session starts over; the next assertion extends from zeros.
    await tpm2ok('policyrestart', rig.d.tcti, ['-S', t]);
    await tpm2ok('policyauthvalue', rig.d.tcti, ['-S', t, '-L', file('restart.policy')]);
    expect(readFileSync(file('restart.policy')).toString('hex')).toBe(H(ZERO, u32(CC.PolicyAuthValue)).toString('hex'));
    await flush(t);
  });

  it('an audit session (tpm2_startauthsession --audit-session) carries tpm2_getrandom; tpm2_setcommandauditstatus starts a command audit digest that GetRandom extends', async () => {
    const s = file('audit.session');
    await tpm2ok('startauthsession', rig.d.tcti, ['--audit-session', '-S', s]);
    // tpm2-tools checks the response HMAC, which covers the audit attributes the TPM answers with.
    await tpm2ok('getrandom', rig.d.tcti, ['8', '-S', s, '-o', file('r1.bin')]);
    await tpm2ok('getrandom', rig.d.tcti, ['16', '-S', s, '-o', file('r2.bin')]);
    // The session audit digest: H(H(0…0 || cp1 || rp1) || cp2 || rp2), cp = H(CC || bytesRequested),
    // rp = H(TPM_RC_SUCCESS || CC || TPM2B_DIGEST randomBytes).
    const step = (digest: Buffer, n: number, bytes: Buffer) =>
      H(digest, H(u32(CC.GetRandom), u16(n)), H(u32(0), u32(CC.GetRandom), u16(bytes.length), bytes));
    const expected = step(step(ZERO, 8, readFileSync(file('r1.bin'))), 16, readFileSync(file('r2.bin')));
    // TPM2_GetSessionAuditDigest (swtpm's shows the formula is the one a TPM uses): the digest is
    // the TPMS_ATTEST's last 32 bytes.
    await keyedOk('createprimary', ['-C', 'e', '-G', 'ecc', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-c', file('att.ctx')]);
    await tpm2ok('getsessionauditdigest', rig.d.tcti, ['-c', file('att.ctx'), '-m', file('att.data'), '-s', file('att.sig'), '-S', s]);
    expect(readFileSync(file('att.data')).subarray(-32).toString('hex')).toBe(expected.toString('hex'));
    await tpm2('flushcontext', rig.d.tcti, ['-t']);
    await tpm2('flushcontext', rig.d.tcti, [s]);
    // GetCapability(TPM_CAP_AUDIT_COMMANDS): SetCommandCodeAuditStatus alone on a new TPM, then GetRandom too.
    const audited = async () => (await transmitOnce(dataTarget(rig.d), cmd.getCapability(4, 0, 64))).body.toString('hex');
    const list = (...codes: number[]) => Buffer.concat([Buffer.from([0]), u32(4), u32(codes.length), ...codes.map(u32)]).toString('hex');
    expect(await audited()).toBe(list(0x140));
    const before = await tpm2ok('getcap', rig.d.tcti, ['properties-variable']);
    const counter = (text: string) => Number(/TPM2_PT_AUDIT_COUNTER_1:\s*(0x[0-9a-f]+)/i.exec(text)![1]);
    await tpm2ok('setcommandauditstatus', rig.d.tcti, ['-C', 'o', 'TPM2_CC_GetRandom']);
    expect(await audited()).toBe(list(0x140, CC.GetRandom));
    await tpm2ok('getrandom', rig.d.tcti, ['4', '-o', file('r3.bin')]);
    const after = await tpm2ok('getcap', rig.d.tcti, ['properties-variable']);
    // tpm2_setcommandauditstatus sends SetCommandCodeAuditStatus twice: SHA-256 with empty lists
    // (a new hash: the digest restarts, that command is not audited), then SHA-256 with the list,
    // which is audited (it always is) and starts a new digest, counted once. GetRandom extends it.
    expect(counter(after.stdout)).toBe(counter(before.stdout) + 1);
    const setParams = Buffer.concat([u16(0x000b), u32(1), u32(CC.GetRandom), u32(0)]);
    const r3 = readFileSync(file('r3.bin'));
    let commandAudit = H(ZERO, H(u32(0x140), u32(0x40000001), setParams), H(u32(0), u32(0x140)));
    commandAudit = H(commandAudit, H(u32(CC.GetRandom), u16(4)), H(u32(0), u32(CC.GetRandom), u16(r3.length), r3));
    const codesDigest = H(u32(0x140), u32(CC.GetRandom));
    if (impl === 'vtpmd') {
      // vtpmd keeps the command audit digest in its permanent state, written before the response
      // (to the journal beside the permall: what a reader of the directory loads).
      const blob = new DirStorage({ dir: rig.d.stateDir, lock: false }).loadPermanent()!;
      const info = commandAuditInfo(deserializePersistent(blob));
      expect(info.digestAlg).toBe(0x000b);
      expect(Buffer.from(info.auditDigest).toString('hex')).toBe(commandAudit.toString('hex'));
      expect(Buffer.from(info.commandDigest).toString('hex')).toBe(codesDigest.toString('hex'));
    }
    // TPMS_COMMAND_AUDIT_INFO ends the TPMS_ATTEST: ... auditDigest (TPM2B), commandDigest (TPM2B).
    await keyedOk('createprimary', ['-C', 'e', '-G', 'ecc', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-c', file('att2.ctx')]);
    await keyedOk('getcommandauditdigest', ['-c', file('att2.ctx'), '-m', file('att2.data'), '-s', file('att2.sig'), '-g', 'sha256']);
    const att = readFileSync(file('att2.data'));
    expect(att.subarray(-66, -34).toString('hex')).toBe(commandAudit.toString('hex'));
    expect(att.subarray(-32).toString('hex')).toBe(codesDigest.toString('hex'));
    // A signed report restarts the digest: the next one is empty until an audited command runs.
    await keyedOk('getcommandauditdigest', ['-c', file('att2.ctx'), '-m', file('att3.data'), '-s', file('att3.sig'), '-g', 'sha256']);
    expect(readFileSync(file('att3.data')).subarray(-36, -34).toString('hex')).toBe('0000');
    await tpm2('flushcontext', rig.d.tcti, ['-t']);
    await tpm2ok('setcommandauditstatus', rig.d.tcti, ['-C', 'o', '-c', 'TPM2_CC_GetRandom']);
    expect(await audited()).toBe(list(0x140));
  });
});

// The same tpm2-tools sequence in a trial session on vtpmd and on swtpm side by side: the
// PolicyGetDigest each returns (tpm2-tools' -L file) must be byte for byte the same, and the
// spec's formula. The NV indices and the external key are the same on both, so their Names are.
describe.skipIf(!vtpmdAvailable() || !swtpmAvailable())('trial digests: vtpmd and swtpm agree after PolicyAuthorizeNV, PolicySigned, PolicyNV, PolicyCommandCode', () => {
  it('gives one digest', async () => {
    const work = makeTempDir();
    const file = (name: string) => path.join(work, name);
    await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file('ec.pem')]);
    await run('openssl', ['ec', '-in', file('ec.pem'), '-pubout', '-out', file('ec.pub.pem')]);
    writeFileSync(file('zero4'), Buffer.alloc(4));
    await run('openssl', ['dgst', '-sha256', '-sign', file('ec.pem'), '-out', file('ec.sig'), file('zero4')]);
    const digests: Record<string, string> = {};
    let want = '';
    for (const impl of ['vtpmd', 'swtpm'] as const) {
      const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
      const ok = (tool: string, args: string[], opts?: { input: Buffer }) => tpm2ok(tool, d.tcti, args, opts);
      await ok('loadexternal', ['-C', 'o', '-G', 'ecc', '-u', file('ec.pub.pem'), '-c', file(`${impl}.key.ctx`), '-n', file('key.name')]);
      await ok('flushcontext', ['-t']);
      const stored = Buffer.concat([u16(0x000b), H(Buffer.from('approved'))]);
      for (const [index, data] of [['0x1500020', stored], ['0x1500021', Buffer.from([0, 0, 0, 9])]] as const) {
        await ok('nvdefine', [index, '-C', 'o', '-s', String(data.length), '-a', 'ownerread|ownerwrite|authread|authwrite']);
        await ok('nvwrite', [index, '-C', 'o', '-i-'], { input: data });
      }
      const names = await Promise.all(['0x1500020', '0x1500021'].map(async (i) => Buffer.from(/name:\s*([0-9a-f]+)/i.exec((await ok('nvreadpublic', [i])).stdout)![1]!, 'hex')));
      const s = file(`${impl}.session`);
      const policy = file(`${impl}.policy`);
      await ok('startauthsession', ['-S', s]);
      await ok('policyauthorizenv', ['-S', s, '-C', 'o', '0x1500020']);
      await ok('policysigned', ['-S', s, '-g', 'sha256', '-s', file('ec.sig'), '-f', 'ecdsa', '-c', file(`${impl}.key.ctx`), '-q', '72656631']);
      await ok('flushcontext', ['-t']);
      await ok('policynv', ['-S', s, '-i-', '0x1500021', 'sge', '-C', 'o'], { input: Buffer.from([0, 0, 0, 1]) });
      await ok('policycommandcode', ['-S', s, 'TPM2_CC_Unseal', '-L', policy]);
      digests[impl] = readFileSync(policy).toString('hex');
      let w = H(ZERO, u32(CC.PolicyAuthorizeNV), names[0]!);
      w = H(H(w, u32(CC.PolicySigned), readFileSync(file('key.name'))), Buffer.from('ref1'));
      w = H(w, u32(CC.PolicyNV), H(Buffer.from([0, 0, 0, 1]), u16(0), u16(6)), names[1]!);
      w = H(w, u32(CC.PolicyCommandCode), u32(0x15e));
      want = w.toString('hex');
      await d.stop();
    }
    expect(digests.vtpmd).toBe(digests.swtpm);
    expect(digests.vtpmd).toBe(want);
  }, 60_000);
});
