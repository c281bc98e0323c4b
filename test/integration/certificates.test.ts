// EK and platform certificates from the local CA: every field as `openssl x509 -text` shows it,
// the chain verified by `openssl verify`, and the extensions (OID, criticality, value) compared
// with what Debian's swtpm_localca/swtpm_cert write for the same public key.
import 'reflect-metadata';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEkCertificate, createPlatformCertificate, type TpmIdentity } from '../../src/setup/certificates.js';
import { parseLocalCaConfig } from '../../src/setup/localca-config.js';
import { ROOT_CERT_FILE, withLocalCa } from '../../src/setup/localca.js';
import { makeTempDir } from '../helpers/daemon.js';
import { run } from '../helpers/tools.js';

const TPM: TpmIdentity = { manufacturer: 'id:00001014', model: 'swtpm', version: 'id:20191023', specFamily: '2.0', specLevel: 0, specRevision: 164 };
const PLATFORM = { manufacturer: 'Fedora', model: 'QEMU', version: '2.1' };
const haveSwtpmLocalca = existsSync('/usr/bin/swtpm_localca') && existsSync('/usr/bin/swtpm_cert');
if (!haveSwtpmLocalca) console.warn('[vtpmd tests] skipping the swtpm_localca comparison: swtpm-tools is not installed');

interface Key {
  type: 'rsa' | 'ecc';
  spki: Uint8Array;
  /** swtpm_localca's --ek argument. */
  ekArg: string;
}

function rsaKey(): Key {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { type: 'rsa', spki: spkiOf(publicKey), ekArg: Buffer.from(publicKey.export({ format: 'jwk' }).n!, 'base64url').toString('hex') };
}

function eccKey(): Key {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const hex = (s: string) => Buffer.from(s, 'base64url').toString('hex');
  return { type: 'ecc', spki: spkiOf(publicKey), ekArg: `x=${hex(jwk.x!)},y=${hex(jwk.y!)},id=secp384r1` };
}

const spkiOf = (k: KeyObject) => new Uint8Array(k.export({ type: 'spki', format: 'der' }));

/** [oid, critical, value hex] of every extension, in order; the key identifier's value is CA-specific. */
function extensionsOf(der: Uint8Array): [string, boolean, string][] {
  const cert = new x509.X509Certificate(der);
  return cert.extensions.map((e) => [e.type, e.critical, e.type === '2.5.29.35' ? '(key id)' : Buffer.from(e.value).toString('hex')]);
}

let work: string;
let caConfigText: string;

beforeAll(async () => {
  work = makeTempDir('vtpmd-certs-');
  caConfigText = `statedir = ${path.join(work, 'ca')}\n`;
  // The CA is created by the first use (two RSA-3072 keys).
  await withLocalCa(parseLocalCaConfig(caConfigText), async () => undefined);
}, 120_000);

async function ours(kind: 'ek' | 'platform', key: Key, flags: { allowSigning?: boolean; decryption?: boolean } = {}): Promise<Uint8Array> {
  return withLocalCa(parseLocalCaConfig(caConfigText), (ca) =>
    kind === 'ek'
      ? createEkCertificate(ca, { spki: key.spki, keyType: key.type, vmid: 'testvm', tpm: TPM, ...flags })
      : createPlatformCertificate(ca, { spki: key.spki, keyType: key.type, vmid: 'testvm', platform: PLATFORM, ...flags }),
  );
}

async function theirs(kind: 'ek' | 'platform', key: Key, flags: { allowSigning?: boolean; decryption?: boolean } = {}): Promise<Uint8Array> {
  const dir = makeTempDir('swtpm-localca-');
  const conf = path.join(dir, 'ca.conf');
  writeFileSync(conf, `statedir = ${dir}\nsigningkey = ${dir}/signkey.pem\nissuercert = ${dir}/issuercert.pem\ncertserial = ${dir}/certserial\n`);
  const opts = path.join(dir, 'options');
  writeFileSync(opts, `--platform-manufacturer ${PLATFORM.manufacturer}\n--platform-version ${PLATFORM.version}\n--platform-model ${PLATFORM.model}\n`);
  const r = await run('swtpm_localca', [
    '--type', kind, '--ek', key.ekArg, '--dir', dir, '--vmid', 'testvm',
    ...(flags.allowSigning ? ['--allow-signing'] : []), ...(flags.decryption ? ['--decryption'] : []),
    '--tpm-spec-family', TPM.specFamily, '--tpm-spec-level', String(TPM.specLevel), '--tpm-spec-revision', String(TPM.specRevision),
    '--tpm-manufacturer', TPM.manufacturer, '--tpm-model', TPM.model, '--tpm-version', TPM.version,
    '--tpm2', '--configfile', conf, '--optsfile', opts,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return new Uint8Array(readFileSync(path.join(dir, kind === 'ek' ? 'ek.cert' : 'platform.cert')));
}

async function openssl(args: string[], input?: Uint8Array) {
  const r = await run('openssl', args, input ? { input } : {});
  expect(r.code, `${r.cmd}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('EK certificates', () => {
  it('an ECC P-384 EK: openssl shows every field and extension, and verifies the chain', async () => {
    const der = await ours('ek', eccKey());
    const text = await openssl(['x509', '-inform', 'der', '-noout', '-text'], der);
    expect(text).toMatch(/Version: 3 \(0x2\)/);
    expect(text).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
    expect(text).toMatch(/Issuer: CN ?= ?vtpmd-localca\n/);
    expect(text).toMatch(/Not After : Dec 31 23:59:59 9999 GMT/);
    expect(text).toMatch(/Subject: CN ?= ?testvm/);
    expect(text).toMatch(/NIST CURVE: P-384/);
    expect(text).toMatch(/X509v3 Extended Key Usage: \n\s+2\.23\.133\.8\.1/);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical\n\s+DirName:\/2\.23\.133\.2\.1=id:00001014\/2\.23\.133\.2\.2=swtpm\/2\.23\.133\.2\.3=id:20191023/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Subject Directory Attributes: \n/);
    expect(text).toMatch(/X509v3 Authority Key Identifier: \n\s+([0-9A-F]{2}:){19}[0-9A-F]{2}/);
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Key Agreement\n/);
    // The validity end is the GeneralizedTime the profile asks for.
    expect(await openssl(['asn1parse', '-inform', 'der'], der)).toMatch(/GENERALIZEDTIME\s+:99991231235959Z/);
    const pem = path.join(work, 'ek-ecc.pem');
    writeFileSync(pem, new x509.X509Certificate(der).toString('pem'));
    const verified = await openssl(['verify', '-CAfile', path.join(work, 'ca', ROOT_CERT_FILE), '-untrusted', path.join(work, 'ca', 'issuercert.pem'), pem]);
    expect(verified).toMatch(/: OK/);
  });

  it('an RSA-2048 EK has keyEncipherment; --allow-signing adds digitalSignature, --decryption keeps the encryption usage', async () => {
    const key = rsaKey();
    expect(await openssl(['x509', '-inform', 'der', '-noout', '-text'], await ours('ek', key))).toMatch(/Key Usage: critical\n\s+Key Encipherment\n/);
    expect(await openssl(['x509', '-inform', 'der', '-noout', '-text'], await ours('ek', key, { allowSigning: true }))).toMatch(/Key Usage: critical\n\s+Digital Signature\n/);
    expect(await openssl(['x509', '-inform', 'der', '-noout', '-text'], await ours('ek', key, { allowSigning: true, decryption: true }))).toMatch(
      /Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/,
    );
  });

  it('serial numbers are unique and increase', async () => {
    const key = eccKey();
    const serials = [];
    for (let i = 0; i < 3; i++) serials.push(BigInt(`0x${new x509.X509Certificate(await ours('ek', key)).serialNumber}`));
    expect(new Set(serials).size).toBe(3);
    expect(serials[1]! - serials[0]!).toBe(1n);
  });
});

describe.skipIf(!haveSwtpmLocalca)('the same extensions as swtpm_localca 0.7 (swtpm-tools)', () => {
  const cases: [string, 'ek' | 'platform', () => Key, { allowSigning?: boolean; decryption?: boolean }][] = [
    ['ECC EK', 'ek', eccKey, {}],
    ['RSA EK', 'ek', rsaKey, {}],
    ['ECC EK, --allow-signing', 'ek', eccKey, { allowSigning: true }],
    ['RSA EK, --allow-signing --decryption', 'ek', rsaKey, { allowSigning: true, decryption: true }],
    ['platform certificate (RSA EK)', 'platform', rsaKey, {}],
    ['platform certificate (ECC EK)', 'platform', eccKey, {}],
  ];
  it.each(cases)('%s', async (_name, kind, makeKey, flags) => {
    const key = makeKey();
    const a = await ours(kind, key, flags);
    const b = await theirs(kind, key, flags);
    expect(extensionsOf(a)).toEqual(extensionsOf(b));
    const ca = new x509.X509Certificate(a);
    const cb = new x509.X509Certificate(b);
    expect(ca.subject).toBe(cb.subject);
    expect(ca.notAfter.toISOString()).toBe(cb.notAfter.toISOString());
    expect(Buffer.from(ca.publicKey.rawData).equals(Buffer.from(cb.publicKey.rawData))).toBe(true);
    expect(ca.signatureAlgorithm).toEqual(cb.signatureAlgorithm);
  });
});
