// `vtpmd setup` option handling and the EK templates it sends.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSetupArgs, setupCapabilitiesJson } from '../../../src/cli/setup-config.js';
import { ekTemplate, parseEkAlgorithm, publicKeyOf, spkTemplate } from '../../../src/setup/ek-templates.js';
import { keyUsageFlags } from '../../../src/setup/certificates.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('options', () => {
  it("libvirt's command line: EK, certificates, lock, defaults rsa2048 + secp384r1 and the sha256 bank", () => {
    const c = parseSetupArgs({ tpm2: true, tpmState: 'dir:///var/lib/libvirt/swtpm/x/tpm2', vmid: 'vm:uuid', logfile: '/tmp/l', createek: true, createEkCert: true, createPlatformCert: true, lockNvram: true, notOverwrite: true });
    expect(c.stateDir).toBe('/var/lib/libvirt/swtpm/x/tpm2');
    expect(c.existing).toBe('keep');
    expect(c.provision).toMatchObject({ createEk: true, ekCert: true, platformCert: true, lockNvram: true, ekAlgorithms: ['rsa2048', 'secp384r1'], pcrBanks: ['sha256'], vmid: 'vm:uuid' });
    expect(c.provision.ca?.statedir).toBe('/var/lib/vtpmd/localca');
  });

  it('certificates imply --createek; --pcr-banks - leaves the banks; aliases of key algorithms', () => {
    const c = parseSetupArgs({ tpm2: true, tpmState: '/s', createEkCert: true, pcrBanks: '-', ek1keyalgo: 'ecc_nist_p256', ek2keyalgo: 'secp521r1' });
    expect(c.provision.createEk).toBe(true);
    expect(c.provision.pcrBanks).toBeNull();
    expect(c.provision.ekAlgorithms).toEqual(['secp256r1', 'secp521r1']);
    expect(parseEkAlgorithm('RSA3072')).toBe('rsa3072');
    expect(parseSetupArgs({ tpm2: true, tpmState: '/s', rsaKeysize: 'max' }).provision.ekAlgorithms[0]).toBe('rsa4096');
  });

  it('a swtpm_setup.conf: the CA configuration, platform options, banks and key algorithms', () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'vtpmd-conf-'));
    dirs.push(d);
    writeFileSync(path.join(d, 'ca.conf'), 'statedir = /srv/ca\n');
    writeFileSync(path.join(d, 'opts'), '--platform-manufacturer Acme --platform-model "Box 1"\n--platform-version 3\n');
    writeFileSync(path.join(d, 'setup.conf'), 'create_certs_tool_config = ca.conf\ncreate_certs_tool_options = opts\nactive_pcr_banks = sha384,sha512\nek2keyalgo = secp256r1\n');
    const c = parseSetupArgs({ tpm2: true, tpmState: '/s', createPlatformCert: true, config: path.join(d, 'setup.conf') });
    expect(c.provision.ca?.statedir).toBe('/srv/ca');
    expect(c.provision.platform).toEqual({ manufacturer: 'Acme', model: 'Box 1', version: '3' });
    expect(c.provision.pcrBanks).toEqual(['sha384', 'sha512']);
    expect(c.provision.ekAlgorithms).toEqual(['rsa2048', 'secp256r1']);
  });

  it('refusals name what to fix', () => {
    expect(() => parseSetupArgs({ tpmState: '/s' })).toThrow(/add --tpm2/);
    expect(() => parseSetupArgs({ tpm2: true })).toThrow(/--tpm-state DIR is required/);
    expect(() => parseSetupArgs({ tpm2: true, tpmState: 'file:///x' })).toThrow(/file:\/\/ backend is not supported/);
    expect(() => parseSetupArgs({ tpm2: true, tpmState: '/s', pcrBanks: 'sha256,sha3_256' })).toThrow(/unknown PCR bank "sha3_256"/);
    expect(() => parseSetupArgs({ tpm2: true, tpmState: '/s', rsaKeysize: '1024' })).toThrow(/--rsa-keysize: 1024/);
    expect(() => parseSetupArgs({ tpm2: true, tpmState: '/s', decryption: true })).toThrow(/--allow-signing/);
  });

  it('--print-capabilities JSON in swtpm_setup spacing', () => {
    expect(setupCapabilitiesJson('1.2.3')).toBe('{ "type": "swtpm_setup", "features": [ "tpm-2.0", "cmdarg-keyfile-fd", "cmdarg-pwdfile-fd", "cmdarg-write-ek-cert-files", "cmdarg-create-config-files", "cmdarg-reconfigure-pcr-banks", "tpm2-rsa-keysize-2048", "tpm2-rsa-keysize-3072", "cmdarg-profile", "cmdarg-ek1keyalgo", "cmdarg-ek2keyalgo" ], "version": "1.2.3" }');
  });

  it("key options become the daemon's --key: swtpm_setup's file=/pwdfile=/fd=/pwdfd= with mode=", () => {
    expect(parseSetupArgs({ tpm2: true, tpmState: '/s', pwdfileFd: '12', cipher: 'aes-256-cbc' }).key).toEqual({ spec: 'pwdfd=12,mode=aes-256-cbc', option: '--pwdfile-fd' });
    expect(parseSetupArgs({ tpm2: true, tpmState: '/s', keyfile: '/k' }).key).toEqual({ spec: 'file=/k,mode=aes-128-cbc', option: '--keyfile' });
    expect(parseSetupArgs({ tpm2: true, tpmState: '/s', keyfileFd: '3', cipher: 'aes-cbc' }).key).toEqual({ spec: 'fd=3,mode=aes-cbc', option: '--keyfile-fd' });
    expect(parseSetupArgs({ tpm2: true, tpmState: '/s' }).key).toBeUndefined();
    expect(() => parseSetupArgs({ tpm2: true, tpmState: '/s', pwdfile: '/a,b' })).toThrow(/contains a comma/);
    expect(() => parseSetupArgs({ tpm2: true, tpmState: '/s', keyfileFd: '-1' })).toThrow(/not a file descriptor number/);
  });

  it('--reconfigure takes PCR banks only', () => {
    const c = parseSetupArgs({ tpm2: true, tpmState: '/s', reconfigure: true, pcrBanks: 'sha384' });
    expect(c.action).toBe('reconfigure');
    expect(c.provision).toMatchObject({ createEk: false, ekCert: false, createSpk: false, pcrBanks: ['sha384'] });
    expect(() => parseSetupArgs({ tpm2: true, tpmState: '/s', reconfigure: true, createek: true, overwrite: true })).toThrow(/drop --createek, --overwrite/);
  });
});

describe('templates', () => {
  it('the TCG L-2 ECC P-256 EK template, byte for byte', () => {
    expect(Buffer.from(ekTemplate('secp256r1')).toString('hex')).toBe(
      '0023000b000300b20020837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa' +
        '0006008000430010000300100020' + '00'.repeat(32) + '0020' + '00'.repeat(32),
    );
  });

  it('the H-3 ECC P-384 EK: SHA-384, 0x000300F2, PolicyB, AES-256-CFB, empty unique', () => {
    expect(Buffer.from(ekTemplate('secp384r1')).toString('hex')).toBe(
      '0023000c000300f20030b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12' +
        '0006010000430010000400100000' + '0000',
    );
  });

  it('the L-1 RSA-2048 EK; --allow-signing and --decryption change the attributes and drop the symmetric key', () => {
    const rsa = Buffer.from(ekTemplate('rsa2048')).toString('hex');
    expect(rsa.slice(0, 16)).toBe('0001000b000300b2');
    expect(rsa.endsWith(`0006008000430010080000000000${'0100'}${'00'.repeat(256)}`)).toBe(true);
    expect(Buffer.from(ekTemplate('rsa2048', { allowSigning: true })).toString('hex').slice(8, 16)).toBe('000400b2');
    expect(Buffer.from(ekTemplate('rsa2048', { allowSigning: true, decryption: true })).toString('hex').slice(8, 16)).toBe('000600b2');
    expect(Buffer.from(ekTemplate('rsa3072', { allowSigning: true })).toString('hex').slice(8, 16)).toBe('000400f2');
  });

  it('the SPK: 0x00030472, SHA-384, AES-256-CFB', () => {
    expect(Buffer.from(spkTemplate(true)).toString('hex').slice(0, 24)).toBe('0023000c0003047200000006');
    expect(Buffer.from(spkTemplate(false)).toString('hex').slice(0, 16)).toBe('0001000c00030472');
  });

  it('an ECC public area becomes a P-256 SubjectPublicKeyInfo', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const jwk = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x!, 'base64url');
    const y = Buffer.from(jwk.y!, 'base64url');
    const head = Buffer.from(ekTemplate('secp256r1')).subarray(0, -68);
    const area = Buffer.concat([head, Buffer.from([0, 32]), x, Buffer.from([0, 32]), y]);
    const k = publicKeyOf(area);
    expect(k.keyType).toBe('ecc');
    expect(Buffer.from(k.spki).toString('hex')).toMatch(/^3059301306072a8648ce3d020106082a8648ce3d03010703420004/);
    expect(Buffer.from(k.x!).equals(x)).toBe(true);
  });
});

describe('key usage (swtpm_cert rule)', () => {
  it('encryption by default, signature with --allow-signing, both with --decryption', () => {
    // KeyUsageFlags: digitalSignature 1, keyEncipherment 4, keyAgreement 16.
    expect(keyUsageFlags('rsa')).toBe(4);
    expect(keyUsageFlags('ecc')).toBe(16);
    expect(keyUsageFlags('rsa', true)).toBe(1);
    expect(keyUsageFlags('ecc', true, true)).toBe(17);
  });
});
