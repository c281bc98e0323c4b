// Ordinary objects with the real tpm2-tools against vtpmd and swtpm alike: tpm2_create (ECC,
// AES, HMAC, sealed data), tpm2_load, tpm2_unseal, tpm2_changeauth, tpm2_evictcontrol across a
// daemon restart, tpm2_loadexternal of OpenSSL keys, the refusals with swtpm's codes and the
// persistent-object limit. Two tests run both daemons and compare what is deterministic: an
// external key's public area and Name, and a key derived from a known secret.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeImpls, makeTempDir, startDaemon, swtpmAvailable, vtpmdAvailable, type Daemon } from '../helpers/daemon.js';
import { parseProperties, parseYamlScalars, run, tpm2, tpm2ok } from '../helpers/tools.js';
import { R, TpmClient, command, dataTarget, pwAuthArea } from '../helpers/tpm.js';

const START = { flags: ['not-need-init', 'startup-clear'] };

/** Runs a tool, then flushes the transient objects the tools leave loaded (three slots only). */
async function step(d: Daemon, tool: string, args: string[]) {
  const r = await tpm2(tool, d.tcti, args);
  await tpm2ok('flushcontext', d.tcti, ['-t']);
  return r;
}
async function ok(d: Daemon, tool: string, args: string[]) {
  const r = await step(d, tool, args);
  if (r.code !== 0) throw new Error(`${r.cmd} exited ${r.code}\n${r.stderr}`);
  return r;
}
const rcOf = (stderr: string): string | undefined => /\(0x([0-9a-f]+)\)/i.exec(stderr)?.[1]?.replace(/^0+/, '').toLowerCase();

async function withPrimary(d: Daemon, work: string): Promise<string> {
  const p = path.join(work, 'p.ctx');
  await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc', '-c', p]);
  return p;
}

describeImpls('ordinary objects', (impl) => {
  it('tpm2_create ECC, AES, HMAC and sealed objects; tpm2_load gives the Name tpm2_readpublic reads back', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const p = await withPrimary(d, work);
    writeFileSync(path.join(work, 'secret'), 'sealed bytes');
    const kinds: [string, string[], RegExp][] = [
      ['ecc', ['-G', 'ecc'], /type:\s+value: ecc/],
      ['aes', ['-G', 'aes'], /type:\s+value: symcipher/],
      ['hmac', ['-G', 'hmac'], /algorithm:\s+value: hmac/],
      ['seal', ['-i', path.join(work, 'secret')], /type:\s+value: keyedhash/],
    ];
    for (const [k, args, shape] of kinds) {
      const pub = path.join(work, `${k}.pub`);
      const priv = path.join(work, `${k}.priv`);
      await ok(d, 'create', ['-C', p, ...args, '-u', pub, '-r', priv]);
      const ctx = path.join(work, `${k}.ctx`);
      const loaded = await ok(d, 'load', ['-C', p, '-u', pub, '-r', priv, '-c', ctx]);
      const name = parseYamlScalars(loaded.stdout).get('name');
      expect(name, k).toMatch(/^000b[0-9a-f]{64}$/);
      const rp = await ok(d, 'readpublic', ['-c', ctx]);
      expect(parseYamlScalars(rp.stdout).get('name'), k).toBe(name);
      expect(rp.stdout, k).toMatch(shape);
      expect(rp.stdout, k).toMatch(/fixedtpm\|fixedparent/);
    }
    // Nothing stays loaded after the flushes.
    const handles = await tpm2ok('getcap', d.tcti, ['handles-transient']);
    expect(handles.stdout.trim()).toBe('');
  });

  it('tpm2_create -i then tpm2_unseal; tpm2_changeauth makes the new auth required', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const p = await withPrimary(d, work);
    const f = (n: string) => path.join(work, n);
    writeFileSync(f('secret'), 'the quick brown fox');
    await ok(d, 'create', ['-C', p, '-i', f('secret'), '-p', 'oldpw', '-u', f('s.pub'), '-r', f('s.priv')]);
    await ok(d, 'load', ['-C', p, '-u', f('s.pub'), '-r', f('s.priv'), '-c', f('s.ctx')]);
    expect((await ok(d, 'unseal', ['-c', f('s.ctx'), '-p', 'oldpw'])).stdout).toBe('the quick brown fox');
    const wrong = await step(d, 'unseal', ['-c', f('s.ctx'), '-p', 'nope']);
    expect(rcOf(wrong.stderr)).toBe('98e');
    await ok(d, 'changeauth', ['-c', f('s.ctx'), '-C', p, '-p', 'oldpw', '-r', f('s2.priv'), 'newpw']);
    await ok(d, 'load', ['-C', p, '-u', f('s.pub'), '-r', f('s2.priv'), '-c', f('s2.ctx')]);
    expect(rcOf((await step(d, 'unseal', ['-c', f('s2.ctx'), '-p', 'oldpw'])).stderr)).toBe('98e');
    expect((await ok(d, 'unseal', ['-c', f('s2.ctx'), '-p', 'newpw'])).stdout).toBe('the quick brown fox');
  });

  it('tpm2_evictcontrol to 0x81000001 survives a restart; evicting again removes it', async () => {
    const stateDir = makeTempDir();
    const work = makeTempDir();
    let d = await startDaemon({ impl, ...START, stateDir });
    const p = await withPrimary(d, work);
    const name = parseYamlScalars((await ok(d, 'readpublic', ['-c', p])).stdout).get('name');
    await ok(d, 'evictcontrol', ['-C', 'o', '-c', p, '0x81000001']);
    expect(rcOf((await step(d, 'evictcontrol', ['-C', 'o', '-c', p, '0x81000001'])).stderr)).toBe('14c');
    await d.stop();
    d = await startDaemon({ impl, ...START, stateDir });
    expect((await tpm2ok('getcap', d.tcti, ['handles-persistent'])).stdout).toMatch(/0x81000001/);
    expect(parseYamlScalars((await ok(d, 'readpublic', ['-c', '0x81000001'])).stdout).get('name')).toBe(name);
    // The persistent key parents a new key.
    await ok(d, 'create', ['-C', '0x81000001', '-G', 'ecc', '-u', path.join(work, 'k.pub'), '-r', path.join(work, 'k.priv')]);
    await ok(d, 'load', ['-C', '0x81000001', '-u', path.join(work, 'k.pub'), '-r', path.join(work, 'k.priv'), '-c', path.join(work, 'k.ctx')]);
    const props = parseProperties((await tpm2ok('getcap', d.tcti, ['properties-variable'])).stdout);
    expect(props.get('TPM2_PT_HR_PERSISTENT')).toBe(1);
    expect(props.get('TPM2_PT_HR_PERSISTENT_AVAIL')).toBe(64);
    await ok(d, 'evictcontrol', ['-C', 'o', '-c', '0x81000001']);
    expect((await tpm2ok('getcap', d.tcti, ['handles-persistent'])).stdout.trim()).toBe('');
    expect(rcOf((await step(d, 'readpublic', ['-c', '0x81000001'])).stderr)).toBe('18b');
  });

  it('tpm2_loadexternal of OpenSSL P-256 keys: the public key, and the key pair in the NULL hierarchy', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const key = path.join(work, 'k.pem');
    const pub = path.join(work, 'kpub.pem');
    expect((await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key])).code).toBe(0);
    expect((await run('openssl', ['ec', '-in', key, '-pubout', '-out', pub])).code).toBe(0);
    const a = await ok(d, 'loadexternal', ['-G', 'ecc', '-u', pub, '-c', path.join(work, 'a.ctx')]);
    const b = await ok(d, 'loadexternal', ['-G', 'ecc', '-r', key, '-c', path.join(work, 'b.ctx')]);
    expect(parseYamlScalars(a.stdout).get('name')).toMatch(/^000b[0-9a-f]{64}$/);
    expect(parseYamlScalars(b.stdout).get('name')).toBe(parseYamlScalars(a.stdout).get('name'));
    // A private key in the owner hierarchy: TPM_RC_HIERARCHY+P3.
    expect(rcOf((await step(d, 'loadexternal', ['-G', 'ecc', '-r', key, '-C', 'o', '-c', path.join(work, 'c.ctx')])).stderr)).toBe('3c5');
  });

  it('a tampered private blob, a wrong parent type and bad attributes give swtpm\'s codes', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const p = await withPrimary(d, work);
    const f = (n: string) => path.join(work, n);
    await ok(d, 'create', ['-C', p, '-G', 'ecc', '-u', f('k.pub'), '-r', f('k.priv')]);
    const priv = readFileSync(f('k.priv'));
    priv[priv.length - 5] ^= 0x01;
    writeFileSync(f('bad.priv'), priv);
    const bad = await tpm2('load', d.tcti, ['-C', p, '-u', f('k.pub'), '-r', f('bad.priv'), '-c', f('bad.ctx')]);
    expect(rcOf(bad.stderr)).toBe('1df');
    // Only the parent tpm2_load itself loaded is there: nothing from the tampered blob.
    expect((await tpm2ok('getcap', d.tcti, ['handles-transient'])).stdout.trim().split('\n')).toHaveLength(1);
    await tpm2ok('flushcontext', d.tcti, ['-t']);
    // A signing key as a parent: TPM_RC_TYPE+H1.
    await ok(d, 'load', ['-C', p, '-u', f('k.pub'), '-r', f('k.priv'), '-c', f('k.ctx')]);
    expect(rcOf((await step(d, 'create', ['-C', f('k.ctx'), '-G', 'ecc', '-u', f('x.pub'), '-r', f('x.priv')])).stderr)).toBe('18a');
    // fixedTPM without fixedParent; sign and decrypt on a restricted key.
    const attrs = ['fixedtpm|sensitivedataorigin|userwithauth|sign', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign|decrypt'];
    for (const a of attrs) {
      expect(rcOf((await step(d, 'create', ['-C', p, '-G', 'ecc', '-a', a, '-u', f('y.pub'), '-r', f('y.priv')])).stderr), a).toBe('2c2');
    }
    // A sealed object with sensitiveDataOrigin: the TPM cannot make up the data.
    writeFileSync(f('secret'), 'x');
    const seal = await step(d, 'create', ['-C', p, '-i', f('secret'), '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-u', f('z.pub'), '-r', f('z.priv')]);
    expect(rcOf(seal.stderr)).toBe('2c2');
    // A NULL-hierarchy primary cannot be made persistent.
    await ok(d, 'createprimary', ['-C', 'n', '-G', 'ecc', '-c', f('n.ctx')]);
    expect(rcOf((await step(d, 'evictcontrol', ['-C', 'o', '-c', f('n.ctx'), '0x81000002'])).stderr)).toBe('282');
    // ownerAuth with a platform handle.
    expect(rcOf((await step(d, 'evictcontrol', ['-C', 'o', '-c', p, '0x81800002'])).stderr)).toBe('1cd');
  });
});

it.skipIf(!swtpmAvailable() || !vtpmdAvailable())('vtpmd and swtpm load the same external key with the same public area and Name', async () => {
  const work = makeTempDir();
  const key = path.join(work, 'k.pem');
  expect((await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key])).code).toBe(0);
  const out: string[] = [];
  for (const impl of ['vtpmd', 'swtpm'] as const) {
    const d = await startDaemon({ impl, ...START });
    const pub = path.join(work, `${impl}.pub`);
    const r = await ok(d, 'loadexternal', ['-G', 'ecc', '-r', key, '-c', path.join(work, `${impl}.ctx`)]);
    await ok(d, 'readpublic', ['-c', path.join(work, `${impl}.ctx`), '-o', pub]);
    out.push(`${parseYamlScalars(r.stdout).get('name')} ${readFileSync(pub).toString('hex')}`);
  }
  expect(out[0]).toBe(out[1]);
});

it.skipIf(!swtpmAvailable() || !vtpmdAvailable())('a derived ECC key (CreateLoaded under an XOR keyed hash with a known secret) is the same key on vtpmd and swtpm', async () => {
  const hexb = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
  const b2 = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  const secret = Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1));
  // KEYEDHASH, SHA-256, userWithAuth|restricted|decrypt, XOR(SHA-256, KDF1_SP800_108).
  const parent = hexb('0008 000b 00030040 0000 000a 000b 0022 0000');
  // ECC P-256 ECDSA(SHA-256), fixedParent|userWithAuth|sign, unique = TPMS_DERIVE("lbl", "ctx").
  const derived = Buffer.concat([hexb('0023 000b 00040050 0000 0010 0018 000b 0003 0010'), b2(Buffer.from('lbl')), b2(Buffer.from('ctx'))]);
  const results: string[] = [];
  for (const impl of ['vtpmd', 'swtpm'] as const) {
    const d = await startDaemon({ impl, ...START });
    const c = await TpmClient.connect(dataTarget(d));
    // libtpms answers TPM_RC_RETRY while an algorithm's self-test is pending; a TSS resends.
    const call = async (bytes: Buffer) => {
      let r = await c.call(bytes);
      for (let i = 0; i < 10 && r.rc === 0x922; i++) r = await c.call(bytes);
      return r;
    };
    try {
      const p = await call(command({ cc: 0x131, handles: [0x40000001], auth: pwAuthArea(), params: Buffer.concat([b2(Buffer.concat([b2(Buffer.alloc(0)), b2(secret)])), b2(parent), hexb('0000 00000000')]) }));
      expect(p.rc, impl).toBe(0);
      const r = await call(command({ cc: 0x191, handles: [0x80000000], auth: pwAuthArea(), params: Buffer.concat([hexb('0004 0000 0000'), b2(derived)]) }));
      expect(r.rc, impl).toBe(0);
      const rd = new R(r.body);
      rd.u32(); // objectHandle
      rd.u32(); // parameterSize
      expect(rd.tpm2b().length, impl).toBe(0);
      results.push(`${rd.tpm2b().toString('hex')} ${rd.tpm2b().toString('hex')}`);
    } finally {
      c.close();
    }
  }
  expect(results[0]).toBe(results[1]);
});

describeImpls('persistent object limit', (impl) => {
  it('65 persistent objects fit; the 66th EvictControl is TPM_RC_NV_SPACE, as libtpms counts them', async () => {
    const d = await startDaemon({ impl, ...START });
    const c = await TpmClient.connect(dataTarget(d));
    const hexb = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
    const call = async (bytes: Buffer) => {
      let r = await c.call(bytes);
      for (let i = 0; i < 10 && r.rc === 0x922; i++) r = await c.call(bytes);
      return r;
    };
    try {
      // A P-256 storage primary (AES-128-CFB), owner hierarchy.
      const template = hexb('001a 0023 000b 00030072 0000 0006 0080 0043 0010 0003 0010 0000 0000');
      expect((await call(command({ cc: 0x131, handles: [0x40000001], auth: pwAuthArea(), params: Buffer.concat([hexb('0004 0000 0000'), template, hexb('0000 00000000')]) }))).rc).toBe(0);
      const rcs: number[] = [];
      for (let i = 0; i < 66; i++) {
        const h = Buffer.alloc(4);
        h.writeUInt32BE(0x81000100 + i);
        rcs.push((await call(command({ cc: 0x120, handles: [0x40000001, 0x80000000], auth: pwAuthArea(), params: h }))).rc);
      }
      expect(rcs.slice(0, 65).every((rc) => rc === 0)).toBe(true);
      expect(rcs[65]).toBe(0x14b);
    } finally {
      c.close();
    }
  });
});
