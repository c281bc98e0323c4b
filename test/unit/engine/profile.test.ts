/**
 * TPM profiles: parsing and validation (tpm/profile.ts) and what the engine refuses under one:
 * commands (TPM_RC_COMMAND_CODE), algorithm values wherever a command carries them (the TPMI
 * type's own unmarshal code, with its position), and the capability lists.
 */
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { ALL_COMMANDS } from '../../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_ECC_CURVE, TPM_PT, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { decode, encode } from '../../../src/tpm/marshal/codec.js';
import { TPM2B_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { deserializePersistent } from '../../../src/tpm/state/persistent.js';
import {
  availableProfilesJson, DEFAULT_PROFILE, formatCommandRanges, parseProfile, ProfileError, profileJson, profileRules,
} from '../../../src/tpm/profile.js';
import { be, cat, createTestTpm, parseResponse, buildCommand, unhex, type TestTpm } from '../../helpers/engine.js';

/** Format-1 response code for parameter n (Part 2 §6.6.3: P bit 0x040, number in bits 8-11). */
const atParam = (rc: number, n: number) => rc + 0x040 + (n << 8);

/** The default algorithm list with some verbs taken out. */
const without = (...verbs: string[]) => DEFAULT_PROFILE.algorithms.split(',').filter((v) => !verbs.includes(v)).join(',');

function getCap(t: TestTpm, cap: number, property: number, count: number): DataView {
  const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(cap), be.u32(property), be.u32(count)) });
  expect(r.rc).toBe(0);
  return new DataView(r.body.buffer, r.body.byteOffset, r.body.byteLength);
}

function algs(t: TestTpm): number[] {
  const v = getCap(t, TPM_CAP.ALGS, 0, 128);
  return Array.from({ length: v.getUint32(5) }, (_, i) => v.getUint16(9 + i * 6));
}

function commands(t: TestTpm): number[] {
  const v = getCap(t, TPM_CAP.COMMANDS, TPM_CC.NV_UndefineSpaceSpecial, 256);
  return Array.from({ length: v.getUint32(5) }, (_, i) => v.getUint32(9 + i * 4) & 0xffff);
}

function property(t: TestTpm, pt: number): number {
  const v = getCap(t, TPM_CAP.TPM_PROPERTIES, pt, 1);
  expect(v.getUint32(9)).toBe(pt);
  return v.getUint32(13);
}

function banks(t: TestTpm): number[] {
  const v = getCap(t, TPM_CAP.PCRS, 0, 1);
  const out: number[] = [];
  for (let i = 0, at = 9; i < v.getUint32(5); i++, at += 3 + v.getUint8(at + 2)) out.push(v.getUint16(at));
  return out;
}

function curves(t: TestTpm): number[] {
  const v = getCap(t, TPM_CAP.ECC_CURVES, 0, 64);
  return Array.from({ length: v.getUint32(5) }, (_, i) => v.getUint16(9 + i * 2));
}

describe('parsing and validation', () => {
  test('a name alone selects a built-in profile; "custom" takes its lists from the built-in custom profile', () => {
    expect(parseProfile('{"Name":"default-v1"}')).toBe(DEFAULT_PROFILE);
    const p = parseProfile(`{"Name":"custom:mine","Commands":"${formatCommandRanges(ALL_COMMANDS.map((c) => c.code).filter((c) => c !== TPM_CC.GetRandom))}"}`);
    expect(p.name).toBe('custom:mine');
    expect(p.algorithms).toBe(DEFAULT_PROFILE.algorithms);
    expect(profileRules(p).commands.has(TPM_CC.GetRandom)).toBe(false);
    expect(profileRules(p).commands.has(TPM_CC.StirRandom)).toBe(true);
  });

  test('the default profile names exactly the implemented commands, as ranges', () => {
    expect([...profileRules(DEFAULT_PROFILE).commands].sort((a, b) => a - b)).toEqual(ALL_COMMANDS.map((c) => c.code).sort((a, b) => a - b));
    expect(formatCommandRanges([0x124, 0x11f, 0x120, 0x121, 0x122, 0x126])).toBe('0x11f-0x122,0x124,0x126');
  });

  test.each([
    ['not JSON', '{"Name":', /not valid JSON/],
    ['no Name', '{"Commands":"0x144"}', /no Name/],
    ['an unknown profile', '{"Name":"fips-rhel9"}', /unknown profile 'fips-rhel9' \(vtpmd has default-v1, custom/],
    ['a built-in with lists', '{"Name":"default-v1","Algorithms":"rsa"}', /does not allow any customization \(Algorithms\)/],
    ['an unknown field', '{"Name":"custom","Algorithm":"rsa"}', /unknown field 'Algorithm'/],
    ['an unimplemented command', '{"Name":"custom","Commands":"0x11f-0x122,0x199"}', /0x199 in '0x199' not implemented by vtpmd/],
    ['a range with an unimplemented command', '{"Name":"custom","Commands":"0x11f-0x123"}', /0x123 in '0x11f-0x123' not implemented/],
    ['a bad range', '{"Name":"custom","Commands":"0x130-0x12f"}', /ends before it starts/],
    ['a command that cannot be disabled', `{"Name":"custom","Commands":"${formatCommandRanges(ALL_COMMANDS.map((c) => c.code).filter((c) => c !== TPM_CC.PCR_Extend))}"}`, /0x182 cannot be disabled/],
    ['an unimplemented algorithm', `{"Name":"custom","Algorithms":"${DEFAULT_PROFILE.algorithms},camellia"}`, /'camellia' is not an algorithm vtpmd implements/],
    ['an unknown verb', `{"Name":"custom","Algorithms":"${DEFAULT_PROFILE.algorithms},sha257"}`, /'sha257' is not an algorithm/],
    ['an algorithm that cannot be disabled', `{"Name":"custom","Algorithms":"${without('sha256')}"}`, /sha256 cannot be disabled/],
    ['a curve that cannot be disabled', `{"Name":"custom","Algorithms":"${without('ecc-nist')},ecc-nist-p256"}`, /ecc-nist-p384 cannot be disabled/],
    ['an attribute', '{"Name":"custom","Attributes":"fips-host"}', /vtpmd implements no profile attributes/],
    ['AES above 128 with RSA 2048', `{"Name":"custom","Algorithms":"${without('rsa-min-size=1024', 'aes-min-size=128')},rsa-min-size=2048,aes-min-size=256"}`, /aes-min-size must be 128/],
    ['a too small StateFormatLevel', '{"Name":"custom","StateFormatLevel":1}', /StateFormatLevel must be an integer of at least 2/],
  ])('%s is refused with a message that says why', (_what, json, message) => {
    expect(() => parseProfile(json)).toThrow(ProfileError);
    expect(() => parseProfile(json)).toThrow(message);
  });

  test('the JSON printed has libtpms\' fields in its order; --print-profiles lists the built-ins', () => {
    const p = parseProfile('{"Name":"custom:a","Description":"mine","Algorithms":"' + without('sha1') + '"}');
    expect(profileJson(p)).toBe(`{"Name":"custom:a","Commands":"${DEFAULT_PROFILE.commands}","Algorithms":"${without('sha1')}","Description":"mine"}`);
    const all = JSON.parse(availableProfilesJson()) as { AvailableProfiles: { Name: string }[] };
    expect(all.AvailableProfiles.map((x) => x.Name)).toEqual(['default-v1', 'custom']);
    expect(Object.keys(all.AvailableProfiles[0]!)).toEqual(['Name', 'Commands', 'Algorithms', 'Description']);
  });
});

describe('the engine under a profile', () => {
  const noRandom = parseProfile(
    `{"Name":"custom:test","Commands":"${formatCommandRanges(ALL_COMMANDS.map((c) => c.code).filter((c) => c !== TPM_CC.GetRandom))}","Algorithms":"${without('sha1', 'ecc-nist')},ecc-nist-p256,ecc-nist-p384"}`,
  );

  test('a disabled command answers TPM_RC_COMMAND_CODE and is neither listed nor counted', () => {
    const t = createTestTpm({ profile: noRandom });
    expect(t.call(TPM_CC.GetRandom, { params: be.u16(8) }).rc).toBe(TPM_RC.COMMAND_CODE);
    expect(t.call(TPM_CC.StirRandom, { params: be.b2('x') }).rc).toBe(0);
    expect(commands(t)).not.toContain(TPM_CC.GetRandom & 0xffff);
    expect(commands(t)).toHaveLength(ALL_COMMANDS.length - 1);
    expect(property(t, TPM_PT.TOTAL_COMMANDS)).toBe(ALL_COMMANDS.length - 1);
    expect(property(t, TPM_PT.LIBRARY_COMMANDS)).toBe(ALL_COMMANDS.length - 1);
    const d = createTestTpm();
    expect(d.call(TPM_CC.GetRandom, { params: be.u16(8) }).rc).toBe(0);
    expect(property(d, TPM_PT.TOTAL_COMMANDS)).toBe(ALL_COMMANDS.length);
  });

  test('a disabled hash in PCR_Extend is TPM_RC_HASH on parameter 1, the enabled ones still extend', () => {
    const t = createTestTpm({ profile: noRandom });
    const extend = (alg: number, size: number) =>
      t.call(TPM_CC.PCR_Extend, { handles: [16], passwords: [''], params: cat(be.u32(1), be.u16(alg), new Uint8Array(size)) }).rc;
    expect(extend(TPM_ALG.SHA1, 20)).toBe(atParam(TPM_RC.HASH, 1));
    expect(extend(TPM_ALG.SHA256, 32)).toBe(0);
    expect(createTestTpm().call(TPM_CC.PCR_Extend, { handles: [16], passwords: [''], params: cat(be.u32(1), be.u16(TPM_ALG.SHA1), new Uint8Array(20)) }).rc).toBe(0);
  });

  test('a CreatePrimary template with a disabled nameAlg or curve is refused as unmarshalling refuses it', () => {
    const vectors = JSON.parse(readFileSync(new URL('../../vectors/public-areas.json', import.meta.url), 'utf8')) as { vectors: { tpm2bPublic: string }[] };
    const base = decode(TPM2B_PUBLIC, unhex(vectors.vectors[0]!.tpm2bPublic));
    const primary = (t: TestTpm, pub: typeof base) => {
      const params = cat(be.b2(cat(be.b2(new Uint8Array(0)), be.b2(new Uint8Array(0)))), encode(TPM2B_PUBLIC, pub), be.b2(new Uint8Array(0)), be.u32(0));
      return t.call(TPM_CC.CreatePrimary, { handles: [TPM_RH.OWNER], passwords: [''], params }).rc;
    };
    const empty = { x: new Uint8Array(0), y: new Uint8Array(0) };
    const sha1Name = { ...base, nameAlg: TPM_ALG.SHA1, unique: empty };
    const p521 = { ...base, parameters: { ...(base.parameters as object), curveID: TPM_ECC_CURVE.NIST_P521 }, unique: empty } as typeof base;
    const t = createTestTpm({ profile: noRandom });
    expect(primary(t, sha1Name)).toBe(atParam(TPM_RC.HASH, 2));
    expect(primary(t, p521)).toBe(atParam(TPM_RC.CURVE, 2));
    expect(primary(t, { ...base, unique: empty })).toBe(0);
    const d = createTestTpm();
    expect(primary(d, sha1Name)).toBe(0);
    expect(primary(d, p521)).toBe(0);
  });

  test('GetCapability lists only the enabled algorithms and curves', () => {
    const t = createTestTpm({ profile: noRandom });
    expect(algs(t)).not.toContain(TPM_ALG.SHA1);
    expect(algs(t)).toContain(TPM_ALG.SHA256);
    expect(curves(t)).toEqual([TPM_ECC_CURVE.NIST_P256, TPM_ECC_CURVE.NIST_P384]);
    expect(property(t, TPM_PT.LOADED_CURVES)).toBe(2);
    // A manufactured TPM has no PCR bank of a disabled hash.
    expect(banks(t)).toEqual([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
    expect(banks(createTestTpm())).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
    const d = createTestTpm();
    expect(algs(d)).toContain(TPM_ALG.SHA1);
    expect(curves(d)).toContain(TPM_ECC_CURVE.NIST_P521);
  });

  test('a minimum RSA size refuses smaller keys where the template names them', () => {
    const p = parseProfile(`{"Name":"custom","Algorithms":"${without('rsa-min-size=1024')},rsa-min-size=2048"}`);
    const rules = profileRules(p);
    expect(rules.allows('rsaKeyBits', 1024)).toBe(false);
    expect(rules.allows('rsaKeyBits', 2048)).toBe(true);
  });

  test('the profile survives a restart from the permanent state; a state without one has the default', () => {
    const t = createTestTpm({ profile: noRandom });
    const blob = t.engine.permanentBlob();
    const again = Engine.restore(blob, t.env);
    again.init();
    const send = (code: number, params: Uint8Array) => parseResponse(again.execute(buildCommand(code, { params }))).rc;
    expect(send(TPM_CC.Startup, be.u16(0))).toBe(0);
    expect(again.profile.name).toBe('custom:test');
    expect(send(TPM_CC.GetRandom, be.u16(8))).toBe(TPM_RC.COMMAND_CODE);

    const d = createTestTpm();
    expect(Engine.restore(d.engine.permanentBlob(), d.env).profile).toBe(DEFAULT_PROFILE);
    // Asking for the default by name stores nothing: the state has no profile field.
    expect(deserializePersistent(createTestTpm({ profile: parseProfile('{"Name":"default-v1"}') }).engine.permanentBlob()).profile).toBeUndefined();
  });
});
