// EncryptDecrypt(2), HMAC, ECDH and TestParms with the real tpm2-tools against vtpmd and swtpm
// alike: tpm2_encryptdecrypt in every mode with a key of known value (tpm2_loadexternal),
// checked against `openssl enc`, IV chaining through --iv in:out; tpm2_hmac (one-shot and, over
// 1 KiB, an HMAC sequence) against `openssl dgst -hmac`; tpm2_ecdhkeygen + tpm2_ecdhzgen giving
// the same Z; tpm2_testparms. Then a differential run: the same tool script against both
// daemons, outputs and error codes compared byte for byte; ECSCHNORR signatures made on one of
// vtpmd and swtpm verified on the other.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeImpls, implementations, makeTempDir, startDaemon, type Daemon } from '../helpers/daemon.js';
import { TpmClient, command, dataTarget } from '../helpers/tpm.js';
import { run, tpm2, tpm2Step, tpm2StepOk } from '../helpers/tools.js';

const START = { flags: ['not-need-init', 'startup-clear'] };
const MODES = ['cfb', 'cbc', 'ctr', 'ofb', 'ecb'] as const;

const ok = (d: Daemon, tool: string, args: string[]) => tpm2StepOk(d, tool, args);

/** `openssl enc` over raw bytes with no padding; the IV is omitted for ECB. */
async function opensslEnc(mode: string, bits: number, key: Buffer, iv: Buffer, input: string, decrypt = false): Promise<Buffer> {
  const out = `${input}.openssl`;
  const args = ['enc', `-aes-${bits}-${mode}`, '-K', key.toString('hex'), '-nopad', '-in', input, '-out', out];
  if (mode !== 'ecb') args.push('-iv', iv.toString('hex'));
  if (decrypt) args.push('-d');
  const r = await run('openssl', args);
  if (r.code !== 0) throw new Error(r.stderr);
  return readFileSync(out);
}

describeImpls('EncryptDecrypt, HMAC, ECDH and TestParms with tpm2-tools', (impl) => {
  it('tpm2_encryptdecrypt in each mode equals openssl enc with the same key and IV, both ways; IVs chain', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    for (const bits of [128, 256]) {
      const key = randomBytes(bits / 8);
      const keyFile = path.join(work, `aes${bits}.key`);
      writeFileSync(keyFile, key);
      const ctx = path.join(work, `aes${bits}.ctx`);
      await ok(d, 'loadexternal', ['-G', `aes${bits}`, '-r', keyFile, '-c', ctx]);
      const iv = randomBytes(16);
      const ivFile = path.join(work, 'iv');
      writeFileSync(ivFile, iv);
      const plain = randomBytes(64);
      const plainFile = path.join(work, 'plain');
      writeFileSync(plainFile, plain);
      for (const mode of MODES) {
        const ivArgs = mode === 'ecb' ? [] : ['-t', ivFile];
        const enc = path.join(work, `${mode}${bits}.enc`);
        await ok(d, 'encryptdecrypt', ['-c', ctx, '-G', mode, ...ivArgs, '-o', enc, plainFile]);
        const expected = await opensslEnc(mode, bits, key, iv, plainFile);
        expect(readFileSync(enc).toString('hex'), `${mode}-${bits}`).toBe(expected.toString('hex'));
        const dec = path.join(work, `${mode}${bits}.dec`);
        await ok(d, 'encryptdecrypt', ['-c', ctx, '-G', mode, '-d', ...ivArgs, '-o', dec, enc]);
        expect(readFileSync(dec).toString('hex'), `${mode}-${bits}`).toBe(plain.toString('hex'));
        if (mode === 'ecb') continue;
        // Two calls chained through the IV the first returns give the one-call answer.
        const [a, b] = [path.join(work, 'a'), path.join(work, 'b')];
        writeFileSync(a, plain.subarray(0, 32));
        writeFileSync(b, plain.subarray(32));
        const next = path.join(work, `${mode}.iv`);
        await ok(d, 'encryptdecrypt', ['-c', ctx, '-G', mode, '-t', `${ivFile}:${next}`, '-o', `${a}.enc`, a]);
        await ok(d, 'encryptdecrypt', ['-c', ctx, '-G', mode, '-t', next, '-o', `${b}.enc`, b]);
        const chained = Buffer.concat([readFileSync(`${a}.enc`), readFileSync(`${b}.enc`)]);
        expect(chained.toString('hex'), `${mode}-${bits} chained`).toBe(expected.toString('hex'));
      }
    }
    await d.stop();
  });

  it('tpm2_hmac with a loaded key equals openssl, one-shot and as a sequence', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const key = randomBytes(32);
    const keyFile = path.join(work, 'hmac.key');
    writeFileSync(keyFile, key);
    const ctx = path.join(work, 'hmac.ctx');
    // tpm2-tools' default attributes (sign|decrypt) do not go with an HMAC scheme: a signing key.
    await ok(d, 'loadexternal', ['-G', 'hmac', '-a', 'userwithauth|sign', '-r', keyFile, '-c', ctx]);
    for (const size of [100, 3000]) {
      const data = path.join(work, `data${size}`);
      writeFileSync(data, randomBytes(size));
      const out = path.join(work, `mac${size}`);
      await ok(d, 'hmac', ['-c', ctx, '-g', 'sha256', '-o', out, data]);
      const o = await run('openssl', ['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${key.toString('hex')}`, '-binary', '-out', `${out}.openssl`, data]);
      expect(o.code).toBe(0);
      expect(readFileSync(out).toString('hex'), `${size} bytes`).toBe(readFileSync(`${out}.openssl`).toString('hex'));
    }
    await d.stop();
  });

  it('tpm2_ecdhkeygen and tpm2_ecdhzgen agree on Z', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const p = path.join(work, 'p.ctx');
    await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc', '-c', p]);
    for (const curve of ['ecc256', 'ecc384']) {
      const pub = path.join(work, `${curve}.pub`);
      const priv = path.join(work, `${curve}.priv`);
      await ok(d, 'create', ['-C', p, '-G', `${curve}:ecdh`, '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|decrypt', '-u', pub, '-r', priv]);
      const ctx = path.join(work, `${curve}.ctx`);
      await ok(d, 'load', ['-C', p, '-u', pub, '-r', priv, '-c', ctx]);
      const q = path.join(work, `${curve}.q`);
      const z = path.join(work, `${curve}.z`);
      await ok(d, 'ecdhkeygen', ['-c', ctx, '-u', q, '-o', z]);
      const z2 = path.join(work, `${curve}.z2`);
      await ok(d, 'ecdhzgen', ['-c', ctx, '-u', q, '-o', z2]);
      expect(readFileSync(z2).toString('hex'), curve).toBe(readFileSync(z).toString('hex'));
      expect(readFileSync(z).length, curve).toBeGreaterThan(4);
    }
    await d.stop();
  });

  it('tpm2_testparms accepts what the TPM can create', async () => {
    const d = await startDaemon({ impl, ...START });
    for (const spec of ['rsa2048', 'rsa3072', 'ecc256', 'ecc384', 'ecc521', 'aes128cfb', 'aes256ctr', 'aes128cbc', 'hmac', 'xor', 'keyedhash']) {
      const r = await tpm2('testparms', d.tcti, [spec]);
      expect(r.code, `${spec}: ${r.stderr}`).toBe(0);
    }
    for (const spec of ['rsa1024:oaep', 'ecc256:ecdsa', 'rsa2048:rsapss']) {
      const r = await tpm2('testparms', d.tcti, [spec]);
      expect(r.code, `${spec}: ${r.stderr}`).toBe(0);
    }
    await d.stop();
  });
});

/** A tool script whose outputs are deterministic given the same inputs on any TPM. */
async function script(d: Daemon, work: string, inputs: { key: Buffer; hmacKey: Buffer; iv: Buffer; data: Buffer }): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const note = async (name: string, tool: string, args: string[], file?: string) => {
    const r = await tpm2Step(d, tool, args);
    const rc = r.code === 0 ? 'ok' : (/0x[0-9a-f]+/i.exec(r.stderr)?.[0]?.toLowerCase() ?? `exit ${r.code}`);
    out.set(name, file && r.code === 0 ? `${rc} ${readFileSync(file).toString('hex')}` : rc);
  };
  writeFileSync(path.join(work, 'key'), inputs.key);
  writeFileSync(path.join(work, 'hkey'), inputs.hmacKey);
  writeFileSync(path.join(work, 'iv'), inputs.iv);
  for (const n of [16, 37, 64]) writeFileSync(path.join(work, `d${n}`), inputs.data.subarray(0, n));
  writeFileSync(path.join(work, 'd2000'), Buffer.concat([inputs.data, inputs.data, inputs.data, inputs.data]).subarray(0, 2000));
  const ctx = path.join(work, 'key.ctx');
  await note('loadexternal aes', 'loadexternal', ['-G', 'aes128', '-r', path.join(work, 'key'), '-c', ctx]);
  for (const mode of MODES) {
    for (const n of [16, 37, 64]) {
      const o = path.join(work, `${mode}${n}`);
      const ivArgs = mode === 'ecb' ? [] : ['-t', `${path.join(work, 'iv')}:${o}.iv`];
      await note(`${mode} ${n} bytes`, 'encryptdecrypt', ['-c', ctx, '-G', mode, ...ivArgs, '-o', o, path.join(work, `d${n}`)], o);
      if (mode !== 'ecb') out.set(`${mode} ${n} bytes ivOut`, out.get(`${mode} ${n} bytes`) === 'ok' || out.get(`${mode} ${n} bytes`)!.startsWith('ok') ? readFileSync(`${o}.iv`).toString('hex') : '-');
      await note(`${mode} ${n} bytes decrypt`, 'encryptdecrypt', ['-c', ctx, '-G', mode, '-d', ...(mode === 'ecb' ? [] : ['-t', path.join(work, 'iv')]), '-o', `${o}.d`, path.join(work, `d${n}`)], `${o}.d`);
    }
  }
  // A wrong-size IV.
  writeFileSync(path.join(work, 'iv15'), inputs.iv.subarray(0, 15));
  await note('cfb with a 15-byte IV', 'encryptdecrypt', ['-c', ctx, '-G', 'cfb', '-t', path.join(work, 'iv15'), '-o', path.join(work, 'x'), path.join(work, 'd16')]);
  const hctx = path.join(work, 'hkey.ctx');
  await note('loadexternal hmac, default attributes', 'loadexternal', ['-G', 'hmac', '-r', path.join(work, 'hkey'), '-c', hctx]);
  await note('loadexternal hmac', 'loadexternal', ['-G', 'hmac', '-a', 'userwithauth|sign', '-r', path.join(work, 'hkey'), '-c', hctx]);
  for (const n of [37, 2000]) {
    const o = path.join(work, `mac${n}`);
    await note(`hmac ${n} bytes`, 'hmac', ['-c', hctx, '-g', 'sha256', '-o', o, path.join(work, `d${n}`)], o);
  }
  await note('hmac with sha384 on a sha256 key', 'hmac', ['-c', hctx, '-g', 'sha384', '-o', path.join(work, 'm'), path.join(work, 'd37')]);
  await note('hmac with an AES key', 'hmac', ['-c', ctx, '-g', 'sha256', '-o', path.join(work, 'm'), path.join(work, 'd37')]);
  await note('encryptdecrypt with an HMAC key', 'encryptdecrypt', ['-c', hctx, '-G', 'cfb', '-o', path.join(work, 'm'), path.join(work, 'd16')]);
  // A key with a mode of its own: the command may repeat it but not name another.
  const cfb = path.join(work, 'cfb.ctx');
  await note('loadexternal aes128cfb', 'loadexternal', ['-G', 'aes128cfb', '-r', path.join(work, 'key'), '-c', cfb]);
  await note('cfb key asked for cbc', 'encryptdecrypt', ['-c', cfb, '-G', 'cbc', '-t', path.join(work, 'iv'), '-o', path.join(work, 'x'), path.join(work, 'd16')]);
  await note('cfb key asked for cfb', 'encryptdecrypt', ['-c', cfb, '-G', 'cfb', '-t', path.join(work, 'iv'), '-o', path.join(work, 'x'), path.join(work, 'd16')], path.join(work, 'x'));
  // ECDH with points that are not on the curve, keys that may not do it.
  const p = path.join(work, 'p.ctx');
  await note('createprimary ecc', 'createprimary', ['-C', 'o', '-G', 'ecc', '-c', p]);
  const eattrs = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth';
  await note('create ecdh key', 'create', ['-C', p, '-G', 'ecc256:ecdh', '-a', `${eattrs}|decrypt`, '-u', path.join(work, 'e.pub'), '-r', path.join(work, 'e.priv')]);
  const e = path.join(work, 'e.ctx');
  await note('load ecdh key', 'load', ['-C', p, '-u', path.join(work, 'e.pub'), '-r', path.join(work, 'e.priv'), '-c', e]);
  const xy = (x: number, y: number) => Buffer.concat([Buffer.from([0, 68, 0, 32]), Buffer.alloc(31), Buffer.from([x]), Buffer.from([0, 32]), Buffer.alloc(31), Buffer.from([y])]);
  writeFileSync(path.join(work, 'off.q'), xy(1, 1));
  await note('ecdhzgen off the curve', 'ecdhzgen', ['-c', e, '-u', path.join(work, 'off.q'), '-o', path.join(work, 'z')]);
  await note('ecdhzgen with the storage primary', 'ecdhzgen', ['-c', p, '-u', path.join(work, 'off.q'), '-o', path.join(work, 'z')]);
  await note('ecdhkeygen with an AES key', 'ecdhkeygen', ['-c', cfb, '-u', path.join(work, 'q'), '-o', path.join(work, 'z')]);
  for (const spec of ['rsa2048', 'rsa4096', 'ecc256', 'ecc521', 'ecc_bn256', 'aes128', 'aes256', 'aes192', 'aes128ofb', 'aes128ecb', 'hmac:sha512', 'xor:sha256', 'rsa2048:rsassa:sha256']) {
    await note(`testparms ${spec}`, 'testparms', [spec]);
  }
  return out;
}

describe.skipIf(implementations().some((i) => i.skip))('differential: the same tool script on vtpmd and swtpm', () => {
  it('gives the same outputs, IVs and error codes', async () => {
    const inputs = { key: randomBytes(16), hmacKey: randomBytes(32), iv: randomBytes(16), data: randomBytes(512) };
    const results: Map<string, string>[] = [];
    for (const impl of ['vtpmd', 'swtpm'] as const) {
      const d = await startDaemon({ impl, ...START });
      results.push(await script(d, makeTempDir(), inputs));
      await d.stop();
    }
    const [v, s] = results as [Map<string, string>, Map<string, string>];
    if (process.env.VTPMD_DIFF_VERBOSE === "1") for (const [k, r] of s) console.log(`${k}: ${r.slice(0, 80)}`);
    const differences = [...s.keys()].filter((k) => v.get(k) !== s.get(k)).map((k) => `${k}: vtpmd ${v.get(k)} swtpm ${s.get(k)}`);
    expect(differences).toEqual([]);
    expect(v.size).toBe(s.size);
  });
});

describe.skipIf(implementations().some((i) => i.skip))('ECSCHNORR across TPMs', () => {
  it('a signature made by one of vtpmd and swtpm verifies on the other (public key by tpm2_loadexternal)', async () => {
    const daemons = { vtpmd: await startDaemon({ impl: 'vtpmd', ...START }), swtpm: await startDaemon({ impl: 'swtpm', ...START }) };
    const work = makeTempDir();
    const f = (n: string) => path.join(work, n);
    writeFileSync(f('msg'), 'signed with EC-Schnorr\n');
    writeFileSync(f('other'), 'not what was signed\n');
    for (const [signer, verifier] of [['vtpmd', 'swtpm'], ['swtpm', 'vtpmd']] as const) {
      for (const [curve, hash] of [['ecc256', 'sha256'], ['ecc384', 'sha384']]) {
        const s = daemons[signer];
        const v = daemons[verifier];
        const tag = `${signer}→${verifier} ${curve}`;
        await ok(s, 'createprimary', ['-C', 'o', '-G', `${curve}:ecschnorr-${hash}:null`, '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-c', f('k.ctx')]);
        await ok(s, 'readpublic', ['-c', f('k.ctx'), '-o', f('k.pub')]);
        await ok(s, 'sign', ['-c', f('k.ctx'), '-g', hash, '-s', 'ecschnorr', '-o', f('k.sig'), f('msg')]);
        await ok(v, 'loadexternal', ['-C', 'n', '-u', f('k.pub'), '-c', f('ext.ctx')]);
        const good = await tpm2('verifysignature', v.tcti, ['-c', f('ext.ctx'), '-g', hash, '-m', f('msg'), '-s', f('k.sig')]);
        expect(good.code, `${tag}: ${good.stderr}`).toBe(0);
        const bad = await tpm2('verifysignature', v.tcti, ['-c', f('ext.ctx'), '-g', hash, '-m', f('other'), '-s', f('k.sig')]);
        expect(bad.stderr, tag).toMatch(/0x2DB\b/i);
      }
    }
    await daemons.vtpmd.stop();
    await daemons.swtpm.stop();
  });
});

describe.skipIf(implementations().some((i) => i.skip))('differential: raw ECC_Parameters and TestParms', () => {
  const u16 = (v: number) => Buffer.from([v >> 8, v & 0xff]);
  const u32 = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
  const sym = (alg: number, bits: number, mode: number) => Buffer.concat([u16(alg), u16(bits), u16(mode)]);
  const NULL = 0x0010;
  const requests: [string, Buffer][] = [
    ['ECC_Parameters P-256', command({ cc: 0x178, params: u16(0x0003) })],
    ['ECC_Parameters P-384', command({ cc: 0x178, params: u16(0x0004) })],
    ['ECC_Parameters P-521', command({ cc: 0x178, params: u16(0x0005) })],
    ['ECC_Parameters unknown curve', command({ cc: 0x178, params: u16(0x0777) })],
    ['TestParms RSA-2048', command({ cc: 0x18a, params: Buffer.concat([u16(0x0001), u16(NULL), u16(NULL), u16(2048), u32(0)]) })],
    ['TestParms RSA-1536', command({ cc: 0x18a, params: Buffer.concat([u16(0x0001), u16(NULL), u16(NULL), u16(1536), u32(0)]) })],
    ['TestParms RSA storage AES-128-CFB', command({ cc: 0x18a, params: Buffer.concat([u16(0x0001), sym(0x0006, 128, 0x0043), u16(NULL), u16(2048), u32(0)]) })],
    ['TestParms RSA with RSAES', command({ cc: 0x18a, params: Buffer.concat([u16(0x0001), u16(NULL), u16(0x0015), u16(2048), u32(0)]) })],
    ['TestParms ECC P-256 ECDSA', command({ cc: 0x18a, params: Buffer.concat([u16(0x0023), u16(NULL), u16(0x0018), u16(0x000b), u16(0x0003), u16(NULL)]) })],
    ['TestParms ECC P-256 ECSCHNORR', command({ cc: 0x18a, params: Buffer.concat([u16(0x0023), u16(NULL), u16(0x001c), u16(0x000b), u16(0x0003), u16(NULL)]) })],
    ['TestParms ECC unknown curve', command({ cc: 0x18a, params: Buffer.concat([u16(0x0023), u16(NULL), u16(NULL), u16(0x0777), u16(NULL)]) })],
    ['TestParms ECC bad hash', command({ cc: 0x18a, params: Buffer.concat([u16(0x0023), u16(NULL), u16(0x0018), u16(0x0006), u16(0x0003), u16(NULL)]) })],
    ['TestParms AES-128-CTR', command({ cc: 0x18a, params: Buffer.concat([u16(0x0025), sym(0x0006, 128, 0x0040)]) })],
    ['TestParms AES-256-ECB', command({ cc: 0x18a, params: Buffer.concat([u16(0x0025), sym(0x0006, 256, 0x0044)]) })],
    ['TestParms AES mode none', command({ cc: 0x18a, params: Buffer.concat([u16(0x0025), sym(0x0006, 128, 0x000b)]) })],
    ['TestParms AES-192', command({ cc: 0x18a, params: Buffer.concat([u16(0x0025), sym(0x0006, 192, 0x0043)]) })],
    ['TestParms AES-100', command({ cc: 0x18a, params: Buffer.concat([u16(0x0025), sym(0x0006, 100, 0x0043)]) })],
    ['TestParms HMAC SHA-384', command({ cc: 0x18a, params: Buffer.concat([u16(0x0008), u16(0x0005), u16(0x000c)]) })],
    ['TestParms XOR KDF1', command({ cc: 0x18a, params: Buffer.concat([u16(0x0008), u16(0x000a), u16(0x000b), u16(0x0022)]) })],
    ['TestParms keyed hash bad scheme', command({ cc: 0x18a, params: Buffer.concat([u16(0x0008), u16(0x0006)]) })],
    ['TestParms a hash as type', command({ cc: 0x18a, params: u16(0x000b) })],
    ['TestParms truncated', command({ cc: 0x18a, params: Buffer.concat([u16(0x0001), u16(NULL)]) })],
    ['TestParms trailing byte', command({ cc: 0x18a, params: Buffer.concat([u16(0x0008), u16(NULL), Buffer.from([0])]) })],
  ];

  it('answers byte for byte as swtpm', async () => {
    const answers: Map<string, string>[] = [];
    for (const impl of ['vtpmd', 'swtpm'] as const) {
      const d = await startDaemon({ impl, ...START });
      const c = await TpmClient.connect(dataTarget(d));
      const got = new Map<string, string>();
      for (const [name, bytes] of requests) {
        let r = await c.transmit(bytes);
        // libtpms answers TPM_RC_RETRY while it self-tests an algorithm, as a TSS would retry.
        for (let i = 0; i < 5 && r.readUInt32BE(6) === 0x922; i++) r = await c.transmit(bytes);
        got.set(name, r.toString('hex'));
      }
      c.close();
      answers.push(got);
      await d.stop();
    }
    const [v, s] = answers as [Map<string, string>, Map<string, string>];
    expect([...v].filter(([k, x]) => x !== s.get(k)).map(([k, x]) => `${k}: vtpmd ${x} swtpm ${s.get(k)}`)).toEqual([]);
  });
});
