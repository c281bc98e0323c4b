/**
 * TPM profiles (libtpms ≥ 0.10, TPMLIB_SetProfile): a JSON map naming a built-in profile and,
 * for "custom" ones, the commands and algorithms the TPM enables. A profile is fixed when the
 * TPM is manufactured and kept in its permanent state; the engine then refuses what it leaves
 * out (engine.ts for commands, Reader.profile for algorithm values, capability.ts for lists).
 *
 * Everything a profile can name is derived from what vtpmd implements (ALL_COMMANDS,
 * IMPLEMENTED_ALGS, ECC_CURVES): a verb or command code vtpmd lacks is an error, never ignored.
 */
import { ECC_CURVES, IMPLEMENTED_ALGS } from './algorithms.js';
import { ALL_COMMANDS } from './commands/index.js';
import { TPM_ALG, TPM_CC, TPM_ECC_CURVE } from './constants.js';
import type { ProfileCheck, ProfileDomain } from './marshal/reader.js';

/** A profile as stored and printed: the JSON fields of libtpms' profiles. */
export interface TpmProfile {
  readonly name: string;
  /** Command codes and ranges: "0x11f-0x122,0x124". */
  readonly commands: string;
  /** Algorithm verbs: "rsa,rsa-min-size=1024,sha256,ecc-nist,...". */
  readonly algorithms: string;
  readonly description: string;
}

/** A profile that cannot be used, with a message that says what to change. */
export class ProfileError extends Error {
  override name = 'ProfileError';
}

/** Algorithm verbs (libtpms' names) → TPM_ALG_ID, for the algorithms vtpmd implements. */
const ALG_VERBS: Readonly<Record<string, number>> = {
  rsa: TPM_ALG.RSA, sha1: TPM_ALG.SHA1, hmac: TPM_ALG.HMAC, aes: TPM_ALG.AES, keyedhash: TPM_ALG.KEYEDHASH,
  xor: TPM_ALG.XOR, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384, sha512: TPM_ALG.SHA512, null: TPM_ALG.NULL,
  rsassa: TPM_ALG.RSASSA, rsaes: TPM_ALG.RSAES, rsapss: TPM_ALG.RSAPSS, oaep: TPM_ALG.OAEP, ecdsa: TPM_ALG.ECDSA,
  ecdh: TPM_ALG.ECDH, ecschnorr: TPM_ALG.ECSCHNORR, 'kdf1-sp800-108': TPM_ALG.KDF1_SP800_108, ecc: TPM_ALG.ECC,
  symcipher: TPM_ALG.SYMCIPHER, ctr: TPM_ALG.CTR, ofb: TPM_ALG.OFB, cbc: TPM_ALG.CBC, cfb: TPM_ALG.CFB, ecb: TPM_ALG.ECB,
};

/** Curve verbs; "ecc-nist" names every NIST curve. */
const CURVE_VERBS: Readonly<Record<string, number>> = {
  'ecc-nist-p256': TPM_ECC_CURVE.NIST_P256,
  'ecc-nist-p384': TPM_ECC_CURVE.NIST_P384,
  'ecc-nist-p521': TPM_ECC_CURVE.NIST_P521,
};
const NIST_CURVES = Object.values(CURVE_VERBS);

/** The `<alg>-min-size=N` verbs and the key sizes they bound. */
const MIN_SIZE_VERBS = { rsa: 'rsaKeyBits', aes: 'aesKeyBits', ecc: 'curve' } as const;

/**
 * What libtpms never lets a profile leave out (its canBeDisabled=false entries, restricted to
 * what vtpmd implements): context encryption, key derivation, EK creation and the commands
 * provisioning and every client need.
 */
const REQUIRED_ALGS = ['rsa', 'hmac', 'aes', 'keyedhash', 'xor', 'sha256', 'sha384', 'null', 'oaep', 'ecdsa', 'ecdh', 'kdf1-sp800-108', 'ecc', 'symcipher', 'cfb'];
const REQUIRED_CURVES = [TPM_ECC_CURVE.NIST_P256, TPM_ECC_CURVE.NIST_P384];
const REQUIRED_COMMANDS: readonly number[] = [
  TPM_CC.EvictControl, TPM_CC.HierarchyChangeAuth, TPM_CC.PCR_Allocate, TPM_CC.CreatePrimary, TPM_CC.PCR_Event,
  TPM_CC.SelfTest, TPM_CC.Startup, TPM_CC.Shutdown, TPM_CC.Certify, TPM_CC.NV_Read, TPM_CC.Create, TPM_CC.Import,
  TPM_CC.Load, TPM_CC.Quote, TPM_CC.SequenceUpdate, TPM_CC.FlushContext, TPM_CC.NV_ReadPublic, TPM_CC.ReadPublic,
  TPM_CC.StartAuthSession, TPM_CC.GetCapability, TPM_CC.GetTestResult, TPM_CC.Hash, TPM_CC.PCR_Read,
  TPM_CC.PCR_Extend, TPM_CC.EventSequenceComplete, TPM_CC.HashSequenceStart,
];

const hex = (v: number): string => `0x${v.toString(16)}`;

/** Codes as libtpms prints them: ascending, consecutive codes joined into ranges. */
export function formatCommandRanges(codes: Iterable<number>): string {
  const sorted = [...new Set(codes)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? hex(sorted[i]!) : `${hex(sorted[i]!)}-${hex(sorted[j]!)}`);
    i = j + 1;
  }
  return parts.join(',');
}

const IMPLEMENTED_COMMANDS: ReadonlySet<number> = new Set(ALL_COMMANDS.map((c) => c.code));
const IMPLEMENTED_ALG_VERBS = Object.keys(ALG_VERBS).filter((v) => v === 'null' || IMPLEMENTED_ALGS.some((a) => a.alg === ALG_VERBS[v]));
const IMPLEMENTED_CURVE_VERBS = Object.keys(CURVE_VERBS).filter((v) => ECC_CURVES.some((c) => c.curve === CURVE_VERBS[v]));

/** Every command vtpmd implements. */
export const ALL_COMMAND_RANGES = formatCommandRanges(IMPLEMENTED_COMMANDS);

/** Every algorithm vtpmd implements, with its smallest key sizes, as verbs. */
export const ALL_ALGORITHMS = [
  'rsa', 'rsa-min-size=1024', 'sha1', 'hmac', 'aes', 'aes-min-size=128', 'keyedhash', 'xor', 'sha256', 'sha384', 'sha512',
  'null', 'rsassa', 'rsaes', 'rsapss', 'oaep', 'ecdsa', 'ecdh', 'ecschnorr', 'kdf1-sp800-108', 'ecc', 'ecc-min-size=256',
  'ecc-nist', 'symcipher', 'ctr', 'ofb', 'cbc', 'cfb', 'ecb',
].join(',');

/** The profile a TPM gets when none is asked for (and that states from before profiles have). */
export const DEFAULT_PROFILE: TpmProfile = {
  name: 'default-v1',
  commands: ALL_COMMAND_RANGES,
  algorithms: ALL_ALGORITHMS,
  description: 'This profile enables all commands and algorithms vtpmd implements. It is applied when the user chooses no profile.',
};

/** The one profile users may change, also under a name "custom:ANYTHING". */
const CUSTOM_PROFILE: TpmProfile = {
  name: 'custom',
  commands: ALL_COMMAND_RANGES,
  algorithms: ALL_ALGORITHMS,
  description: 'This profile allows customization of enabled algorithms and commands.',
};

export const BUILTIN_PROFILES: readonly TpmProfile[] = [DEFAULT_PROFILE, CUSTOM_PROFILE];

const isCustom = (name: string): boolean => name === 'custom' || name.startsWith('custom:');

/** What a profile enables, as the engine checks it. */
export class ProfileRules implements ProfileCheck {
  constructor(
    readonly commands: ReadonlySet<number>,
    readonly algorithms: ReadonlySet<number>,
    readonly curves: ReadonlySet<number>,
    readonly minKeyBits: { readonly rsa: number; readonly aes: number; readonly ecc: number },
  ) {}

  allows(domain: ProfileDomain, value: number): boolean {
    switch (domain) {
      case 'alg':
        return this.algorithms.has(value);
      case 'curve':
        return this.curves.has(value);
      case 'rsaKeyBits':
        return value >= this.minKeyBits.rsa;
      case 'aesKeyBits':
        return value >= this.minKeyBits.aes;
    }
  }
}

function parseCode(text: string, token: string): number {
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(text)) throw new ProfileError(`Commands: cannot parse '${token}' (use codes such as 0x17b or ranges such as 0x11f-0x122)`);
  return Number(text);
}

function parseCommands(spec: string): Set<number> {
  const enabled = new Set<number>();
  for (const token of spec.split(',')) {
    const [lo, hi, extra] = token.split('-');
    if (extra !== undefined || lo === undefined) throw new ProfileError(`Commands: cannot parse '${token}'`);
    const first = parseCode(lo, token);
    const last = hi === undefined ? first : parseCode(hi, token);
    if (last < first) throw new ProfileError(`Commands: range '${token}' ends before it starts`);
    const missing: number[] = [];
    for (let cc = first; cc <= last; cc++) {
      if (IMPLEMENTED_COMMANDS.has(cc)) enabled.add(cc);
      else missing.push(cc);
      if (missing.length > 8) break;
    }
    if (missing.length > 0) {
      throw new ProfileError(`Commands: ${missing.slice(0, 8).map(hex).join(', ')}${missing.length > 8 ? ', ...' : ''} in '${token}' not implemented by vtpmd (it implements ${ALL_COMMAND_RANGES})`);
    }
  }
  const required = REQUIRED_COMMANDS.filter((cc) => !enabled.has(cc));
  if (required.length > 0) throw new ProfileError(`Commands: ${required.map(hex).join(', ')} cannot be disabled`);
  return enabled;
}

function parseAlgorithms(spec: string): { algorithms: Set<number>; curves: Set<number>; minKeyBits: { rsa: number; aes: number; ecc: number } } {
  const algorithms = new Set<number>();
  const curves = new Set<number>();
  const minKeyBits = { rsa: 0, aes: 0, ecc: 0 };
  const verbs = new Set<string>();
  for (const token of spec.split(',')) {
    const min = /^(\w+)-min-size=(\d+)$/.exec(token);
    if (min && min[1]! in MIN_SIZE_VERBS) {
      const bits = Number(min[2]);
      if (bits > 4096) throw new ProfileError(`Algorithms: '${token}' asks for more than 4096 bits`);
      minKeyBits[min[1] as keyof typeof MIN_SIZE_VERBS] = bits;
    } else if (token === 'ecc-nist') {
      for (const c of NIST_CURVES) if (ECC_CURVES.some((e) => e.curve === c)) curves.add(c);
    } else if (IMPLEMENTED_CURVE_VERBS.includes(token)) {
      curves.add(CURVE_VERBS[token]!);
    } else if (IMPLEMENTED_ALG_VERBS.includes(token)) {
      algorithms.add(ALG_VERBS[token]!);
      verbs.add(token);
    } else {
      throw new ProfileError(
        `Algorithms: '${token}' is not an algorithm vtpmd implements (it implements ${ALL_ALGORITHMS}, and ecc-nist-p256, ecc-nist-p384, ecc-nist-p521)`,
      );
    }
  }
  const missing = REQUIRED_ALGS.filter((v) => !verbs.has(v));
  if (missing.length > 0) throw new ProfileError(`Algorithms: ${missing.join(', ')} cannot be disabled`);
  // A minimum ECC key size switches off the smaller curves that may be switched off.
  for (const c of [...curves]) {
    const info = ECC_CURVES.find((e) => e.curve === c)!;
    if (info.keyBits < minKeyBits.ecc && !REQUIRED_CURVES.includes(c as never)) curves.delete(c);
  }
  const missingCurves = REQUIRED_CURVES.filter((c) => !curves.has(c));
  if (missingCurves.length > 0) {
    throw new ProfileError(`Algorithms: ${missingCurves.map((c) => Object.keys(CURVE_VERBS).find((v) => CURVE_VERBS[v] === c)).join(', ')} cannot be disabled (name them or ecc-nist)`);
  }
  // libtpms' consistency rule: standard EK certificates need AES-128 beside RSA-2048.
  if (minKeyBits.aes > 128 && minKeyBits.rsa === 2048) throw new ProfileError('Algorithms: aes-min-size must be 128 when rsa-min-size is 2048');
  return { algorithms, curves, minKeyBits };
}

/** The rules a profile's lists give; throws ProfileError when they name what vtpmd cannot do. */
export function profileRules(p: TpmProfile): ProfileRules {
  const { algorithms, curves, minKeyBits } = parseAlgorithms(p.algorithms);
  return new ProfileRules(parseCommands(p.commands), algorithms, curves, minKeyBits);
}

const FIELDS = ['Name', 'StateFormatLevel', 'Commands', 'Algorithms', 'Attributes', 'Description'] as const;

/**
 * A profile given by the user (swtpm's --profile profile=JSON, file=, name= as {"Name":...}):
 * checked in full, with the custom profile's lists filling in what a custom profile leaves out.
 */
export function parseProfile(json: string): TpmProfile {
  let o: unknown;
  try {
    o = JSON.parse(json);
  } catch (e) {
    throw new ProfileError(`not valid JSON: ${(e as Error).message}`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ProfileError('a profile is a JSON object such as {"Name":"default-v1"}');
  const m = o as Record<string, unknown>;
  for (const key of Object.keys(m)) {
    if (!(FIELDS as readonly string[]).includes(key)) throw new ProfileError(`unknown field '${key}' (a profile has ${FIELDS.join(', ')})`);
  }
  for (const key of ['Name', 'Commands', 'Algorithms', 'Attributes', 'Description'] as const) {
    if (m[key] !== undefined && typeof m[key] !== 'string') throw new ProfileError(`${key} must be a string`);
  }
  const name = m.Name as string | undefined;
  if (!name) throw new ProfileError('the profile has no Name');
  const sfl = m.StateFormatLevel;
  if (sfl !== undefined && !(Number.isInteger(sfl) && (sfl as number) >= 2)) throw new ProfileError('StateFormatLevel must be an integer of at least 2');
  if (m.Attributes !== undefined && m.Attributes !== '') {
    throw new ProfileError(`Attributes '${m.Attributes as string}': vtpmd implements no profile attributes (no-sha1-signing, fips-host, ...)`);
  }
  if (!isCustom(name)) {
    const builtin = BUILTIN_PROFILES.find((p) => p.name === name);
    if (!builtin) {
      throw new ProfileError(`unknown profile '${name}' (vtpmd has ${BUILTIN_PROFILES.map((p) => p.name).join(', ')} and custom:NAME)`);
    }
    const extra = FIELDS.filter((f) => f !== 'Name' && m[f] !== undefined);
    if (extra.length > 0) throw new ProfileError(`the '${name}' profile does not allow any customization (${extra.join(', ')}); use "custom"`);
    return builtin;
  }
  const profile: TpmProfile = {
    name,
    commands: (m.Commands as string | undefined) ?? CUSTOM_PROFILE.commands,
    algorithms: (m.Algorithms as string | undefined) ?? CUSTOM_PROFILE.algorithms,
    description: (m.Description as string | undefined) ?? CUSTOM_PROFILE.description,
  };
  profileRules(profile);
  return profile;
}

/** A profile as libtpms prints one: compact JSON, its fields in libtpms' order. */
export function profileJson(p: TpmProfile): string {
  const s = JSON.stringify;
  return `{"Name":${s(p.name)},"Commands":${s(p.commands)},"Algorithms":${s(p.algorithms)},"Description":${s(p.description)}}`;
}

/** swtpm --print-profiles (GET_INFO's AvailableProfiles): every built-in profile. */
export function availableProfilesJson(): string {
  return `{"AvailableProfiles":[${BUILTIN_PROFILES.map(profileJson).join(',')}]}`;
}

/** What can be switched off, for --print-capabilities' "profiles" (libtpms' CanBeDisabled lists). */
export const CAN_BE_DISABLED = {
  algorithms: [
    ...IMPLEMENTED_ALG_VERBS.filter((v) => !REQUIRED_ALGS.includes(v)),
    ...IMPLEMENTED_CURVE_VERBS.filter((v) => !REQUIRED_CURVES.includes(CURVE_VERBS[v] as never)),
  ].join(','),
  commands: formatCommandRanges([...IMPLEMENTED_COMMANDS].filter((cc) => !REQUIRED_COMMANDS.includes(cc))),
  implementedAlgorithms: [...ALL_ALGORITHMS.split(','), ...IMPLEMENTED_CURVE_VERBS].join(','),
};
