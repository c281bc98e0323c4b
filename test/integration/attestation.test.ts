// Attestation with the real tpm2-tools against vtpmd and swtpm alike: tpm2_quote checked by
// tpm2_checkquote with the PCR values and a TCG event log replayed to them (a wrong nonce and a
// shortened log refused); tpm2_certify, tpm2_certifycreation, tpm2_gettime and tpm2_nvcertify with
// their signatures verified by OpenSSL and their fields read back. Then vtpmd against Debian's
// swtpm: the deterministic fields of quotes by the same external key after the same extends
// (magic, type, qualifiedSigner, extraData, pcrSelect, pcrDigest), NV_Certify's arms (a range
// and the whole-index digest), GetTime's firmware version, and the response codes of refused
// attestations.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_ST } from '../../src/tpm/constants.js';
import { TPMS_ATTEST } from '../../src/tpm/marshal/attest.js';
import { decode } from '../../src/tpm/marshal/codec.js';
import { describeImpls, makeTempDir, startDaemon, swtpmAvailable, vtpmdAvailable, type Daemon, type Impl } from '../helpers/daemon.js';
import { run, tpm2, tpm2Step, tpm2StepOk } from '../helpers/tools.js';

const START = { flags: ['not-need-init', 'startup-clear'] };
const AK_ATTRS = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign';

const ok = (d: Daemon, tool: string, args: string[]) => tpm2StepOk(d, tool, args);

/** The response code a refused tool printed ("Esys_Quote(0x19C) - tpm:..."), or "ok". */
async function rcOf(d: Daemon, tool: string, args: string[]): Promise<string> {
  const r = await tpm2Step(d, tool, args);
  if (r.code === 0) return 'ok';
  return /\((0x[0-9a-f]+)\) - tpm:/i.exec(r.stderr)?.[1]?.toLowerCase() ?? `exit ${r.code}: ${r.stderr.trim()}`;
}

const sha256 = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const le32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
const le16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
};

/**
 * A TCG PC Client crypto-agile event log (the format firmware leaves in
 * /sys/kernel/security/tpm0/binary_bios_measurements): the Spec ID header event announcing
 * SHA-256, then one TCG_PCR_EVENT2 per event with its SHA-256 digest.
 */
const EV_NO_ACTION = 3;
const EV_IPL = 0x0d;
function eventLog(events: { pcr: number; data: Buffer }[]): Buffer {
  const specId = Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'), le32(0), Buffer.from([0, 2, 0, 2]), // platformClass, 2.0 errata 0, UINTN size 8
    le32(1), le16(TPM_ALG.SHA256), le16(32), Buffer.from([0]), // one algorithm; no vendor info
  ]);
  const header = Buffer.concat([le32(0), le32(EV_NO_ACTION), Buffer.alloc(20), le32(specId.length), specId]);
  const body = events.map((e) => Buffer.concat([le32(e.pcr), le32(EV_IPL), le32(1), le16(TPM_ALG.SHA256), sha256(e.data), le32(e.data.length), e.data]));
  return Buffer.concat([header, ...body]);
}

/** The signed bytes verified by OpenSSL with the signer's PEM public key (signature in tpm2-tools' plain format). */
async function opensslVerifies(pem: string, signature: string, message: string): Promise<boolean> {
  const r = await run('openssl', ['dgst', '-sha256', '-verify', pem, '-signature', signature, message]);
  return /Verified OK/.test(r.stdout + r.stderr);
}

/** An endorsement-hierarchy restricted ECC signing key (an AK), its context and PEM. */
async function attestationKey(d: Daemon, work: string) {
  const ctx = path.join(work, 'ak.ctx');
  await ok(d, 'createprimary', ['-C', 'e', '-G', 'ecc256:ecdsa-sha256:null', '-a', AK_ATTRS, '-c', ctx]);
  const pem = path.join(work, 'ak.pem');
  await ok(d, 'readpublic', ['-c', ctx, '-f', 'pem', '-o', pem]);
  return { ctx, pem };
}

const attestOf = (file: string) => decode(TPMS_ATTEST, new Uint8Array(readFileSync(file)));

describeImpls('Attestation with tpm2-tools', (impl) => {
  it('tpm2_quote, tpm2_checkquote with the PCR values and a replayed event log; a wrong nonce or log is refused', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const ak = await attestationKey(d, work);
    const events = [
      { pcr: 8, data: Buffer.from('grub_cmd linux /vmlinuz\0') },
      { pcr: 9, data: Buffer.from('/boot/initrd.img\0') },
      { pcr: 8, data: Buffer.from('kernel_cmdline root=/dev/vda1\0') },
    ];
    for (const e of events) await ok(d, 'pcrextend', [`${e.pcr}:sha256=${sha256(e.data).toString('hex')}`]);
    const log = path.join(work, 'eventlog.bin');
    writeFileSync(log, eventLog(events));
    const shortLog = path.join(work, 'short.bin');
    writeFileSync(shortLog, eventLog(events.slice(0, 2)));

    const [msg, sig, pcrs] = ['quote.msg', 'quote.sig', 'quote.pcrs'].map((f) => path.join(work, f));
    await ok(d, 'quote', ['-c', ak.ctx, '-l', 'sha256:0,8,9', '-q', 'abcdef0123', '-m', msg, '-s', sig, '-o', pcrs, '-g', 'sha256']);
    const check = ['-u', ak.pem, '-m', msg, '-s', sig, '-f', pcrs, '-g', 'sha256'];
    const checkquote = (args: string[]) => run('tpm2_checkquote', [...check, ...args]);
    const good = await checkquote(['-q', 'abcdef0123', '-e', log]);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toMatch(/sig: [0-9a-f]+/);
    expect((await checkquote(['-q', 'abcdef0124'])).code).not.toBe(0);
    const mismatch = await checkquote(['-q', 'abcdef0123', '-e', shortLog]);
    expect(mismatch.code).not.toBe(0);
    expect(mismatch.stderr).toMatch(/PCR8 mismatch/);

    // The quote itself: PCR 8 and 9 as the log replays them, PCR 0 zero after Startup at locality 0.
    const replay = (pcr: number) => events.filter((e) => e.pcr === pcr).reduce((v, e) => sha256(v, sha256(e.data)), Buffer.alloc(32));
    const a = attestOf(msg);
    expect(a.type).toBe(TPM_ST.ATTEST_QUOTE);
    expect(Buffer.from(a.extraData).toString('hex')).toBe('abcdef0123');
    const q = a.attested as { pcrSelect: { hash: number; pcrSelect: Uint8Array }[]; pcrDigest: Uint8Array };
    expect(q.pcrSelect.map((s) => [s.hash, Buffer.from(s.pcrSelect).toString('hex')])).toEqual([[TPM_ALG.SHA256, '010300']]);
    expect(Buffer.from(q.pcrDigest).toString('hex')).toBe(sha256(Buffer.alloc(32), replay(8), replay(9)).toString('hex'));
    await d.stop();
  });

  it('tpm2_certify, tpm2_certifycreation, tpm2_gettime and tpm2_nvcertify, verified by OpenSSL', async () => {
    const d = await startDaemon({ impl, ...START });
    const work = makeTempDir();
    const ak = await attestationKey(d, work);
    const f = (name: string) => path.join(work, name);

    // An owner primary with its creation data, hash and ticket.
    await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc', '-c', f('obj.ctx'), '--creation-data', f('cd'), '-d', f('chash'), '-t', f('ticket')]);
    const objName = f('obj.name');
    await ok(d, 'readpublic', ['-c', f('obj.ctx'), '-n', objName]);

    await ok(d, 'certify', ['-c', f('obj.ctx'), '-C', ak.ctx, '-g', 'sha256', '-o', f('cert.att'), '-s', f('cert.sig'), '-f', 'plain']);
    expect(await opensslVerifies(ak.pem, f('cert.sig'), f('cert.att'))).toBe(true);
    const cert = attestOf(f('cert.att'));
    expect(cert.type).toBe(TPM_ST.ATTEST_CERTIFY);
    expect(Buffer.from((cert.attested as { name: Uint8Array }).name).equals(readFileSync(objName))).toBe(true);

    await ok(d, 'certifycreation', ['-C', ak.ctx, '-c', f('obj.ctx'), '-d', f('chash'), '-t', f('ticket'), '-g', 'sha256', '-f', 'plain',
      '-o', f('cc.sig'), '--attestation', f('cc.att'), '-q', '0102']);
    expect(await opensslVerifies(ak.pem, f('cc.sig'), f('cc.att'))).toBe(true);
    const cc = attestOf(f('cc.att'));
    expect(cc.type).toBe(TPM_ST.ATTEST_CREATION);
    expect(Buffer.from(cc.extraData).toString('hex')).toBe('0102');
    const creation = cc.attested as { objectName: Uint8Array; creationHash: Uint8Array };
    expect(Buffer.from(creation.objectName).equals(readFileSync(objName))).toBe(true);
    // tpm2-tools writes the creation hash as a TPM2B_DIGEST.
    expect(Buffer.from(creation.creationHash).equals(readFileSync(f('chash')).subarray(2))).toBe(true);

    await ok(d, 'gettime', ['-c', ak.ctx, '-g', 'sha256', '-f', 'plain', '-o', f('time.sig'), '--attestation', f('time.att'), '-q', 'aa55']);
    expect(await opensslVerifies(ak.pem, f('time.sig'), f('time.att'))).toBe(true);
    const time = attestOf(f('time.att'));
    expect(time.type).toBe(TPM_ST.ATTEST_TIME);
    // Endorsement hierarchy: the header's clockInfo and firmwareVersion are the plain ones.
    const t = time.attested as { time: { clockInfo: { clock: bigint; resetCount: number } }; firmwareVersion: bigint };
    expect(time.firmwareVersion).toBe(t.firmwareVersion);
    expect(time.clockInfo.resetCount).toBe(t.time.clockInfo.resetCount);

    const INDEX = '0x1500016';
    await ok(d, 'nvdefine', [INDEX, '-C', 'o', '-s', '32', '-a', 'ownerread|ownerwrite|authread|authwrite']);
    const data = Buffer.from('attested NV contents, 32 bytes!!');
    writeFileSync(f('nv.data'), data);
    await ok(d, 'nvwrite', [INDEX, '-C', 'o', '-i', f('nv.data')]);
    await ok(d, 'nvcertify', ['-C', ak.ctx, '-c', 'o', '-g', 'sha256', '-f', 'plain', '-o', f('nv.sig'), '--attestation', f('nv.att'),
      '--size', '8', '--offset', '9', INDEX]);
    expect(await opensslVerifies(ak.pem, f('nv.sig'), f('nv.att'))).toBe(true);
    const nv = attestOf(f('nv.att'));
    expect(nv.type).toBe(TPM_ST.ATTEST_NV);
    expect(nv.attested).toMatchObject({ offset: 9, nvContents: new Uint8Array(data.subarray(9, 17)) });
    await d.stop();
  });
});

/** The same tpm2-tools script on one daemon: quote fields, GetTime's firmware version and refusal codes. */
async function script(impl: Impl) {
  const d = await startDaemon({ impl, ...START });
  const work = makeTempDir();
  const f = (name: string) => path.join(work, name);
  // One P-256 private key from OpenSSL, loaded as an external signing key in both TPMs.
  writeFileSync(f('key.pem'), EXTERNAL_KEY);
  await ok(d, 'loadexternal', ['-C', 'n', '-G', 'ecc', '-r', f('key.pem'), '-c', f('ext.ctx')]);
  for (const [pcr, text] of [[16, 'one'], [23, 'two'], [16, 'three']] as const) {
    await ok(d, 'pcrextend', [`${pcr}:sha256=${sha256(Buffer.from(text)).toString('hex')},sha1=${createHash('sha1').update(text).digest('hex')}`]);
  }
  const quotes: unknown[] = [];
  for (const [list, hash] of [['sha256:16,23', 'sha256'], ['sha1:0,16+sha256:23', 'sha384']] as const) {
    await ok(d, 'quote', ['-c', f('ext.ctx'), '-l', list, '-q', 'feedface', '-m', f('q.msg'), '-s', f('q.sig'), '-g', hash]);
    const a = attestOf(f('q.msg'));
    quotes.push({
      magic: a.magic, type: a.type, qualifiedSigner: Buffer.from(a.qualifiedSigner).toString('hex'), extraData: Buffer.from(a.extraData).toString('hex'),
      attested: JSON.stringify(a.attested, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)),
    });
  }
  // NV_Certify of a range and of the whole index (TPM_ST_ATTEST_NV_DIGEST: size and offset 0).
  await ok(d, 'nvdefine', ['0x1500019', '-C', 'o', '-s', '16', '-a', 'ownerread|ownerwrite']);
  writeFileSync(f('nv.data'), Buffer.from('sixteen bytes!!!'));
  await ok(d, 'nvwrite', ['0x1500019', '-C', 'o', '-i', f('nv.data')]);
  const nv: unknown[] = [];
  for (const [size, offset] of [['5', '3'], ['0', '0']]) {
    await ok(d, 'nvcertify', ['-C', f('ext.ctx'), '-c', 'o', '-g', 'sha256', '-o', f('n.sig'), '--attestation', f('n.att'),
      '--size', size, '--offset', offset, '0x1500019']);
    const a = attestOf(f('n.att'));
    nv.push({ type: a.type, attested: JSON.stringify(a.attested, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)) });
  }
  await ok(d, 'gettime', ['-c', f('ext.ctx'), '-o', f('t.sig'), '--attestation', f('t.att')]);
  const firmware = (attestOf(f('t.att')).attested as { firmwareVersion: bigint }).firmwareVersion.toString(16);

  await ok(d, 'createprimary', ['-C', 'o', '-G', 'ecc', '-c', f('storage.ctx'), '--creation-data', f('cd'), '-d', f('chash'), '-t', f('ticket')]);
  await ok(d, 'createprimary', ['-C', 'e', '-G', 'ecc256:ecdsa-sha256:null', '-a', AK_ATTRS, '-c', f('ak.ctx')]);
  await ok(d, 'nvdefine', ['0x1500017', '-C', 'o', '-s', '16', '-a', 'ownerread|ownerwrite']);
  await ok(d, 'nvdefine', ['0x1500018', '-C', 'o', '-s', '16', '-a', 'authread|authwrite']);
  const wrongHash = f('wrong.hash');
  writeFileSync(wrongHash, Buffer.concat([Buffer.from([0, 32]), Buffer.alloc(32, 7)]));
  const errors = {
    'quote with a storage key': await rcOf(d, 'quote', ['-c', f('storage.ctx'), '-l', 'sha256:16', '-m', f('x.msg'), '-s', f('x.sig')]),
    'quote with a wrong key password': await rcOf(d, 'quote', ['-c', f('ak.ctx'), '-p', 'wrong', '-l', 'sha256:16', '-m', f('x.msg'), '-s', f('x.sig')]),
    'certify by a storage key': await rcOf(d, 'certify', ['-c', f('ak.ctx'), '-C', f('storage.ctx'), '-g', 'sha256', '-o', f('x.att'), '-s', f('x.sig')]),
    'certifycreation with another creation hash': await rcOf(d, 'certifycreation', ['-C', f('ak.ctx'), '-c', f('storage.ctx'), '-d', wrongHash,
      '-t', f('ticket'), '-g', 'sha256', '-o', f('x.sig'), '--attestation', f('x.att')]),
    'gettime with a wrong endorsement password': await rcOf(d, 'gettime', ['-c', f('ak.ctx'), '-P', 'wrong', '-o', f('x.sig'), '--attestation', f('x.att')]),
    'nvcertify of an unwritten index': await rcOf(d, 'nvcertify', ['-C', f('ak.ctx'), '-c', 'o', '-g', 'sha256', '-o', f('x.sig'), '--attestation', f('x.att'),
      '--size', '4', '--offset', '0', '0x1500017']),
    'nvcertify by the owner without ownerread': await rcOf(d, 'nvcertify', ['-C', f('ak.ctx'), '-c', 'o', '-g', 'sha256', '-o', f('x.sig'),
      '--attestation', f('x.att'), '--size', '4', '--offset', '0', '0x1500018']),
  };
  await d.stop();
  return { quotes, nv, firmware, errors };
}

/** A test-only P-256 key (made with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`). */
const EXTERNAL_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg9+4yTxlGG/tqz4aX
YUUJdX9MBuufYJlFViuPx7rBWlOhRANCAASLV2DdcchMfJtwGHQQKXANhsxsh3Fk
ZgdhoheeO3viwB+fmvSzF6kgATIDndZ1TTd862qtNWj39BXN0v2jCRnf
-----END PRIVATE KEY-----
`;

describe.skipIf(!swtpmAvailable() || !vtpmdAvailable())('Attestation: vtpmd against swtpm', () => {
  it('the same quotes (magic, type, qualifiedSigner, extraData, pcrSelect, pcrDigest), NV certifications, firmware version and refusal codes', async () => {
    const ours = await script('vtpmd');
    const theirs = await script('swtpm');
    expect(ours.quotes).toEqual(theirs.quotes);
    expect(ours.nv).toEqual(theirs.nv);
    expect(ours.firmware).toBe(theirs.firmware);
    expect(ours.errors).toEqual(theirs.errors);
    // The script exercised what it claims: two quotes and every refusal refused.
    expect(ours.quotes).toHaveLength(2);
    expect(ours.nv.map((n) => (n as { type: number }).type)).toEqual([TPM_ST.ATTEST_NV, TPM_ST.ATTEST_NV_DIGEST]);
    for (const [what, rc] of Object.entries(ours.errors)) expect(rc, what).toMatch(/^0x/);
  });
});
