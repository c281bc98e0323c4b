// MakeCredential/ActivateCredential, Duplicate/Import with the real tpm2-tools, on vtpmd and
// swtpm alike, and across the two: a credential made in software (tpm2_makecredential -T none)
// or by one TPM for the other's EK activates (tpm2_activatecredential with a PolicySecret
// session on the endorsement hierarchy); a key created with a duplication policy on one TPM is
// duplicated (bare or with an inner AES wrapper) to a parent of another, imported, loaded and
// signs what OpenSSL verifies; tpm2_import of OpenSSL RSA and ECC keys. Bad inputs get the same
// response codes from both, but where Debian's libtpms 0.9 departs from the reference.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeImpls, implementations, makeTempDir, startDaemon, type Daemon, type Impl } from '../helpers/daemon.js';
import { run, tpm2, tpm2Step, tpm2StepOk } from '../helpers/tools.js';

const START = { flags: ['not-need-init', 'startup-clear'] };

/** A tpm2-tools step; transient objects are flushed after it (a TPM has three object slots). */
const ok = (d: Daemon, tool: string, args: string[], input?: string) => tpm2StepOk(d, tool, args, input === undefined ? {} : { input });

/** The response code tpm2-tools reports for a failed command, e.g. "0x1DF". */
async function rcOf(d: Daemon, tool: string, args: string[]): Promise<string> {
  const r = await tpm2Step(d, tool, args);
  expect(r.code, r.cmd).not.toBe(0);
  const m = /\((0x[0-9a-f]+)\)/i.exec(r.stderr);
  return m ? m[1]!.toUpperCase().replace('0X', '0x') : `no code: ${r.stderr}`;
}

/** EK and AK (password "akpass") of `type`; ek.pub and ak.name in `work`. */
async function ekAk(d: Daemon, work: string, type: 'rsa' | 'ecc') {
  const f = (n: string) => path.join(work, `${type}-${n}`);
  await ok(d, 'createek', ['-c', f('ek.ctx'), '-G', type, '-u', f('ek.pub')]);
  await ok(d, 'createak', ['-C', f('ek.ctx'), '-c', f('ak.ctx'), '-G', type, '-g', 'sha256', '-s', type === 'rsa' ? 'rsassa' : 'ecdsa', '-u', f('ak.pub'), '-n', f('ak.name'), '-p', 'akpass']);
  return { ek: f('ek.ctx'), ekPub: f('ek.pub'), ak: f('ak.ctx'), akName: readFileSync(f('ak.name')).toString('hex') };
}

/** tpm2_activatecredential with the PolicySecret(endorsement) session the EK's policy asks for. */
async function activate(d: Daemon, work: string, keys: { ek: string; ak: string }, blob: string) {
  const session = path.join(work, 'session.ctx');
  const out = path.join(work, 'actcred.out');
  await ok(d, 'startauthsession', ['--policy-session', '-S', session]);
  await tpm2('policysecret', d.tcti, ['-S', session, '-c', 'e']);
  const r = await tpm2('activatecredential', d.tcti, ['-c', keys.ak, '-C', keys.ek, '-i', blob, '-o', out, '-p', 'akpass', '-P', `session:${session}`]);
  await tpm2('flushcontext', d.tcti, [session]);
  await tpm2('flushcontext', d.tcti, ['-t']);
  const m = /\((0x[0-9a-f]+)\)/i.exec(r.stderr);
  return { code: r.code, rc: m ? m[1]!.toUpperCase().replace('0X', '0x') : '', out: r.code === 0 ? readFileSync(out).toString() : '' };
}

const SECRET = 'the credential 1234\n';

describeImpls('MakeCredential and ActivateCredential', (impl) => {
  for (const type of ['rsa', 'ecc'] as const) {
    it(`${type} EK: a credential made with -T none and one made by the TPM activate; a changed blob is TPM_RC_INTEGRITY`, async () => {
      const d = await startDaemon({ impl, ...START });
      const work = makeTempDir();
      const keys = await ekAk(d, work, type);
      const secret = path.join(work, 'secret');
      writeFileSync(secret, SECRET);
      const soft = path.join(work, 'soft.out');
      const r = await run('tpm2_makecredential', ['-T', 'none', '-u', keys.ekPub, '-s', secret, '-n', keys.akName, '-o', soft]);
      expect(r.code, r.stderr).toBe(0);
      expect(await activate(d, work, keys, soft)).toEqual({ code: 0, rc: '', out: SECRET });

      const hard = path.join(work, 'hard.out');
      await ok(d, 'makecredential', ['-u', keys.ekPub, '-s', secret, '-n', keys.akName, '-o', hard]);
      expect(await activate(d, work, keys, hard)).toEqual({ code: 0, rc: '', out: SECRET });

      // The file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET; flip a ciphertext byte.
      const bytes = readFileSync(soft);
      const bad = path.join(work, 'bad.out');
      bytes[8 + 2 + 2 + 32 + 3]! ^= 1;
      writeFileSync(bad, bytes);
      expect((await activate(d, work, keys, bad)).rc).toBe('0x1DF');
      await d.stop();
    });
  }
});

describeImpls('Import of OpenSSL keys', (impl) => {
  it('tpm2_import -G rsa and -G ecc of PEM keys; the imported keys sign what OpenSSL verifies', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const parent = path.join(work, 'parent.ctx');
    await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc', '-c', parent]);
    const msg = path.join(work, 'msg');
    writeFileSync(msg, 'signed by an imported key\n');
    for (const type of ['rsa', 'ecc'] as const) {
      const pem = path.join(work, `${type}.pem`);
      const pubPem = path.join(work, `${type}.pub.pem`);
      const gen = type === 'rsa' ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', pem] : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', pem];
      expect((await run('openssl', gen)).code).toBe(0);
      expect((await run('openssl', ['pkey', '-in', pem, '-pubout', '-out', pubPem])).code).toBe(0);
      const pub = path.join(work, `${type}.tpub`);
      const priv = path.join(work, `${type}.tpriv`);
      await ok(d, 'import', ['-C', parent, '-G', type, '-i', pem, '-u', pub, '-r', priv]);
      const ctx = path.join(work, `${type}.ctx`);
      await ok(d, 'load', ['-C', parent, '-u', pub, '-r', priv, '-c', ctx]);
      const sig = path.join(work, `${type}.sig`);
      await ok(d, 'sign', ['-c', ctx, '-g', 'sha256', '-f', 'plain', '-o', sig, msg]);
      const v = await run('openssl', ['dgst', '-sha256', '-verify', pubPem, '-signature', sig, msg]);
      expect(v.stdout + v.stderr, type).toMatch(/Verified OK/);
    }
    await d.stop();
  });
});

/** The two daemons of a cross test, each implementation that can run. */
const available = implementations().filter((i) => !i.skip).map((i) => i.impl);
const pairs: [Impl, Impl][] = [];
for (const a of available) for (const b of available) pairs.push([a, b]);

async function duplicateBetween(a: Daemon, b: Daemon, work: string, inner: boolean, parentType: 'rsa' | 'ecc' = inner ? 'ecc' : 'rsa') {
  const f = (n: string) => path.join(work, n);
  // On B: the new parent, a storage key under B's primary: RSA for a bare duplicate, ECC for
  // one with an inner wrapper (the outer seed under RSA-OAEP or ECDH).
  await ok(b, 'createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'rsa', '-c', f('b-primary.ctx')]);
  await ok(b, 'create', ['-C', f('b-primary.ctx'), '-g', 'sha256', '-G', parentType, '-r', f('np.prv'), '-u', f('np.pub'), '-a', 'restricted|sensitivedataorigin|decrypt|userwithauth']);
  // On A: a key whose policy allows duplication only.
  await ok(a, 'createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'rsa', '-c', f('a-primary.ctx')]);
  await ok(a, 'startauthsession', ['-S', f('trial.ctx')]);
  await ok(a, 'policycommandcode', ['-S', f('trial.ctx'), '-L', f('dpolicy'), 'TPM2_CC_Duplicate']);
  await ok(a, 'flushcontext', [f('trial.ctx')]);
  await ok(a, 'create', ['-C', f('a-primary.ctx'), '-g', 'sha256', '-G', 'ecc', '-p', 'foo', '-r', f('key.prv'), '-u', f('key.pub'), '-L', f('dpolicy'), '-a', 'sensitivedataorigin|userwithauth|sign']);
  await ok(a, 'load', ['-C', f('a-primary.ctx'), '-r', f('key.prv'), '-u', f('key.pub'), '-c', f('key.ctx')]);
  await ok(a, 'readpublic', ['-c', f('key.ctx'), '-f', 'pem', '-o', f('key.pem')]);
  await ok(a, 'startauthsession', ['--policy-session', '-S', f('dup.ctx')]);
  await ok(a, 'policycommandcode', ['-S', f('dup.ctx'), 'TPM2_CC_Duplicate']);
  await tpm2('loadexternal', a.tcti, ['-C', 'o', '-u', f('np.pub'), '-c', f('np.ctx')]);
  const dupArgs = ['-C', f('np.ctx'), '-c', f('key.ctx'), '-p', `session:${f('dup.ctx')}`, '-r', f('dup.dpriv'), '-s', f('dup.seed')];
  await ok(a, 'duplicate', inner ? [...dupArgs, '-G', 'aes', '-o', f('inner.key')] : [...dupArgs, '-G', 'null']);
  await tpm2('flushcontext', a.tcti, [f('dup.ctx')]);
  // On B: import under the new parent, load, sign.
  await ok(b, 'load', ['-C', f('b-primary.ctx'), '-u', f('np.pub'), '-r', f('np.prv'), '-c', f('np.ctx')]);
  const importArgs = ['-C', f('np.ctx'), '-u', f('key.pub'), '-i', f('dup.dpriv'), '-r', f('imported.prv'), '-s', f('dup.seed')];
  return { f, importArgs: inner ? [...importArgs, '-k', f('inner.key')] : importArgs };
}

for (const [ia, ib] of pairs) {
  it(`tpm2_duplicate on ${ia}, tpm2_import on ${ib}: bare to an RSA parent, with an inner wrapper to an ECC parent; the key signs on ${ib}`, async () => {
    const a = await startDaemon({ impl: ia, ...START });
    const b = await startDaemon({ impl: ib, ...START });
    for (const inner of [false, true]) {
      const work = makeTempDir();
      const { f, importArgs } = await duplicateBetween(a, b, work, inner);
      await ok(b, 'import', importArgs);
      await ok(b, 'load', ['-C', f('np.ctx'), '-u', f('key.pub'), '-r', f('imported.prv'), '-c', f('imported.ctx')]);
      const msg = f('msg');
      writeFileSync(msg, 'moved between TPMs\n');
      await ok(b, 'sign', ['-c', f('imported.ctx'), '-p', 'foo', '-g', 'sha256', '-f', 'plain', '-o', f('sig'), msg]);
      const v = await run('openssl', ['dgst', '-sha256', '-verify', f('key.pem'), '-signature', f('sig'), msg]);
      expect(v.stdout + v.stderr, `inner ${inner}`).toMatch(/Verified OK/);
    }
    await a.stop();
    await b.stop();
  });
}

for (const [ia, ib] of pairs.filter(([x, y]) => x !== y)) {
  it(`a credential made by ${ia} for ${ib}'s EK activates on ${ib}`, async () => {
    const a = await startDaemon({ impl: ia, ...START });
    const b = await startDaemon({ impl: ib, ...START });
    const work = makeTempDir();
    for (const type of ['rsa', 'ecc'] as const) {
      const keys = await ekAk(b, work, type);
      const secret = path.join(work, 'secret');
      writeFileSync(secret, SECRET);
      const blob = path.join(work, `${type}-made.out`);
      await ok(a, 'makecredential', ['-u', keys.ekPub, '-s', secret, '-n', keys.akName, '-o', blob]);
      expect(await activate(b, work, keys, blob), type).toEqual({ code: 0, rc: '', out: SECRET });
    }
    await a.stop();
    await b.stop();
  });
}

it('bad inputs get the same response codes from vtpmd and swtpm (but for libtpms 0.9\'s TPM_RC_FAILURE on a bad RSA seed)', async () => {
  if (available.length < 2) return;
  const codes = new Map<Impl, string[]>();
  for (const impl of available) {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const f = (n: string) => path.join(work, n);
    const got: string[] = [];
    const { importArgs } = await duplicateBetween(d, d, work, true, 'rsa');
    // Import with a wrong inner key, a changed duplicate, a changed seed, no inner key at all.
    writeFileSync(f('wrong.key'), Buffer.alloc(16, 7));
    got.push(await rcOf(d, 'import', [...importArgs.slice(0, -2), '-k', f('wrong.key')]));
    const dpriv = readFileSync(f('dup.dpriv'));
    dpriv[dpriv.length - 3]! ^= 1;
    writeFileSync(f('bad.dpriv'), dpriv);
    got.push(await rcOf(d, 'import', importArgs.map((x) => (x === f('dup.dpriv') ? f('bad.dpriv') : x))));
    const seed = readFileSync(f('dup.seed'));
    seed[seed.length - 5]! ^= 1;
    writeFileSync(f('bad.seed'), seed);
    got.push(await rcOf(d, 'import', importArgs.map((x) => (x === f('dup.seed') ? f('bad.seed') : x))));
    /** tpm2_duplicate -G null, under the duplication policy, of a key with these attributes. */
    const duplicateRc = async (id: string, attributes: string) => {
      await ok(d, 'create', ['-C', f('a-primary.ctx'), '-G', 'ecc', '-r', f(`${id}.prv`), '-u', f(`${id}.pub`), '-L', f('dpolicy'), '-a', attributes]);
      await ok(d, 'load', ['-C', f('a-primary.ctx'), '-r', f(`${id}.prv`), '-u', f(`${id}.pub`), '-c', f(`${id}.ctx`)]);
      await ok(d, 'startauthsession', ['--policy-session', '-S', f('s.ctx')]);
      await ok(d, 'policycommandcode', ['-S', f('s.ctx'), 'TPM2_CC_Duplicate']);
      await tpm2('loadexternal', d.tcti, ['-C', 'o', '-u', f('np.pub'), '-c', f('np2.ctx')]);
      const rc = await rcOf(d, 'duplicate', ['-C', f('np2.ctx'), '-c', f(`${id}.ctx`), '-G', 'null', '-p', `session:${f('s.ctx')}`, '-r', f('x.dpriv'), '-s', f('x.seed')]);
      await tpm2('flushcontext', d.tcti, [f('s.ctx')]);
      return rc;
    };
    // A fixedParent key cannot be duplicated (its policy allows it, its attributes do not); an
    // encryptedDuplication key not without an inner wrapper.
    got.push(await duplicateRc('fixed', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'));
    got.push(await duplicateRc('ed', 'encryptedduplication|sensitivedataorigin|userwithauth|sign'));
    // Credentials: a changed integrity byte, a secret from another label, a credential too long.
    const keys = await ekAk(d, work, 'rsa');
    writeFileSync(f('secret'), SECRET);
    await run('tpm2_makecredential', ['-T', 'none', '-u', keys.ekPub, '-s', f('secret'), '-n', keys.akName, '-o', f('cred')]);
    const cred = readFileSync(f('cred'));
    cred[8 + 2 + 5]! ^= 1;
    writeFileSync(f('bad.cred'), cred);
    got.push((await activate(d, work, keys, f('bad.cred'))).rc);
    const cred2 = readFileSync(f('cred'));
    cred2[cred2.length - 7]! ^= 1;
    writeFileSync(f('bad2.cred'), cred2);
    got.push((await activate(d, work, keys, f('bad2.cred'))).rc);
    writeFileSync(f('long'), Buffer.alloc(33, 1));
    got.push(await rcOf(d, 'makecredential', ['-u', keys.ekPub, '-s', f('long'), '-n', keys.akName, '-o', f('x')]));
    codes.set(impl, got);
    await d.stop();
  }
  // What they are: wrong inner key (noise in the inner integrity's size field: TPM_RC_SIZE, or
  // TPM_RC_INTEGRITY), changed duplicate, changed seed, fixedParent, encryptedDuplication
  // without an inner wrapper, changed credential, changed secret, credential over a digest.
  expect(codes.get('vtpmd')).toEqual([expect.stringMatching(/^0x3(D5|DF)$/), '0x3DF', '0x4C4', '0x182', '0x2D6', '0x1DF', '0x2C4', '0x1D5']);
  // A seed that does not RSA-OAEP-decrypt is TPM_RC_VALUE in the reference and in libtpms
  // since 0.10; Debian's libtpms 0.9 answers TPM_RC_FAILURE. Everything else is the same.
  const swtpm = codes.get('swtpm')!;
  expect(swtpm).toEqual([expect.stringMatching(/^0x3(D5|DF)$/), '0x3DF', '0x101', '0x182', '0x2D6', '0x1DF', '0x101', '0x1D5']);
});

it('GetCapability(COMMANDS): the five commands with the TPMA_CC swtpm reports', async () => {
  if (available.length < 2) return;
  const listed = new Map<Impl, string>();
  for (const impl of available) {
    const d = await startDaemon({ impl, ...START });
    const r = await tpm2('getcap', d.tcti, ['commands']);
    expect(r.code, r.stderr).toBe(0);
    // Each entry: "TPM2_CC_X:" then its value and attribute lines up to the next entry.
    const entries = r.stdout.split(/^(?=TPM2_CC_)/m).filter((e) => /^TPM2_CC_(MakeCredential|ActivateCredential|Duplicate|Rewrap|Import):/.test(e));
    expect(entries.length, impl).toBe(5);
    listed.set(impl, entries.join(''));
    await d.stop();
  }
  expect(listed.get('vtpmd')).toBe(listed.get('swtpm'));
});
