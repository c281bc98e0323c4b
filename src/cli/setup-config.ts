/**
 * `vtpmd setup`'s options as swtpm_setup spells them (swtpm-compat §6.1), checked and resolved
 * into a ProvisionOptions, with the swtpm_setup.conf keys vtpmd understands:
 * create_certs_tool_config (the local CA configuration), create_certs_tool_options (a file of
 * --platform-manufacturer/--platform-model/--platform-version lines), active_pcr_banks,
 * ek1keyalgo, ek2keyalgo, rsa_keysize. Values may use ${VAR}.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EK_ALGORITHMS, parseEkAlgorithm, type EkAlgorithm } from '../setup/ek-templates.js';
import { expandVars, loadLocalCaConfig, LocalCaConfigError } from '../setup/localca-config.js';
import { PCR_BANK_ALGS, type ProvisionOptions } from '../setup/provision.js';
import { USER_CONFIG_FILES, userConfigDir } from '../setup/config-files.js';
import { RSA_KEY_BITS } from '../tpm/algorithms.js';
import { UsageError } from './key-value.js';
import { parseSetupProfile } from './profile-option.js';
import type { TpmProfile } from '../tpm/profile.js';

/** Read when --config is not given, no user configuration exists and the file exists. */
export const DEFAULT_SETUP_CONFIG = '/etc/vtpmd/setup.conf';

/**
 * The --config default, searched as swtpm_setup searches for swtpm_setup.conf: the user's
 * configuration directory (what `--create-config-files` writes), then /etc.
 */
export function defaultSetupConfig(env: Record<string, string | undefined> = process.env): string | undefined {
  const candidates = [path.join(userConfigDir(env), USER_CONFIG_FILES.setup), DEFAULT_SETUP_CONFIG];
  return candidates.find((f) => existsSync(f));
}
/** swtpm_setup's build default for --pcr-banks. */
export const DEFAULT_PCR_BANKS = 'sha256';
const DEFAULT_PLATFORM = { manufacturer: 'vtpmd', model: 'QEMU', version: '1.0' };

export interface SetupArgs {
  tpm2?: boolean;
  tpmState?: string;
  vmid?: string;
  logfile?: string;
  createek?: boolean;
  createEkCert?: boolean;
  createPlatformCert?: boolean;
  lockNvram?: boolean;
  overwrite?: boolean;
  notOverwrite?: boolean;
  pcrBanks?: string;
  ecc?: boolean;
  createSpk?: boolean;
  allowSigning?: boolean;
  decryption?: boolean;
  display?: boolean;
  config?: string;
  ek1keyalgo?: string;
  ek2keyalgo?: string;
  rsaKeysize?: string;
  writeEkCertFiles?: string;
  tpmManufacturer?: string;
  tpmModel?: string;
  tpmVersion?: string;
  keyfile?: string;
  keyfileFd?: string;
  pwdfile?: string;
  pwdfileFd?: string;
  cipher?: string;
  reconfigure?: boolean;
  profile?: string;
  profileName?: string;
  profileFile?: string;
  profileFileFd?: string;
}

export interface SetupConfig {
  stateDir: string;
  logfile?: string;
  existing: 'error' | 'overwrite' | 'keep';
  /** `manufacture` a new TPM, or `reconfigure` an existing one (its PCR banks only). */
  action: 'manufacture' | 'reconfigure';
  display: boolean;
  /**
   * The state key in `vtpmd socket --key` syntax (swtpm_setup passes the same string to swtpm)
   * and the option that gave it, read when the run starts; undefined for a plain state.
   */
  key?: { spec: string; option: string };
  /** --profile, --profile-name, --profile-file, --profile-file-fd: the new TPM's profile. */
  profile?: TpmProfile;
  provision: ProvisionOptions;
}

const CIPHERS = ['aes-128-cbc', 'aes-cbc', 'aes-256-cbc'];

/** --keyfile/--keyfile-fd/--pwdfile/--pwdfile-fd and --cipher → a `--key` specification. */
function keySpec(a: SetupArgs): { spec: string; option: string } | undefined {
  const cipher = a.cipher ?? 'aes-128-cbc';
  if (!CIPHERS.includes(cipher)) throw new UsageError(`--cipher: unsupported cipher "${cipher}"; use aes-128-cbc or aes-256-cbc`);
  const fd = (value: string, option: string) => {
    if (!/^\d+$/.test(value) || Number(value) > 0x7fffffff) throw new UsageError(`${option}: "${value}" is not a file descriptor number`);
    return Number(value);
  };
  const sources: { spec: string; option: string }[] = [];
  if (a.keyfile !== undefined) sources.push({ spec: `file=${a.keyfile}`, option: '--keyfile' });
  if (a.pwdfile !== undefined) sources.push({ spec: `pwdfile=${a.pwdfile}`, option: '--pwdfile' });
  if (a.keyfileFd !== undefined) sources.push({ spec: `fd=${fd(a.keyfileFd, '--keyfile-fd')}`, option: '--keyfile-fd' });
  if (a.pwdfileFd !== undefined) sources.push({ spec: `pwdfd=${fd(a.pwdfileFd, '--pwdfile-fd')}`, option: '--pwdfile-fd' });
  if (sources.length > 1) throw new UsageError('give only one of --keyfile, --keyfile-fd, --pwdfile and --pwdfile-fd');
  if (sources.length === 0) {
    if (a.cipher !== undefined) throw new UsageError('--cipher needs a key: add --keyfile, --keyfile-fd, --pwdfile or --pwdfile-fd');
    return undefined;
  }
  for (const file of [a.keyfile, a.pwdfile]) {
    if (file !== undefined && /,/.test(file)) throw new UsageError(`the key file name "${file}" contains a comma; rename it or pass it with --keyfile-fd/--pwdfile-fd`);
  }
  return { spec: `${sources[0]!.spec},mode=${cipher}`, option: sources[0]!.option };
}

/** --reconfigure changes the PCR banks of an existing state and nothing else. */
function checkReconfigure(a: SetupArgs): void {
  const creating = ([
    ['--createek', a.createek], ['--create-ek-cert', a.createEkCert], ['--create-platform-cert', a.createPlatformCert],
    ['--create-spk', a.createSpk], ['--write-ek-cert-files', a.writeEkCertFiles !== undefined], ['--overwrite', a.overwrite],
  ] as [string, boolean | undefined][]).filter(([, on]) => on).map(([name]) => name);
  if (creating.length > 0) {
    throw new UsageError(`--reconfigure changes only the PCR banks of an existing state; drop ${creating.join(', ')} (or drop --reconfigure to manufacture a new TPM)`);
  }
}

/** `key = value` lines of swtpm_setup.conf. */
function readKeyValues(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--config: cannot read ${file}: ${(e as Error).message}`);
  }
  const out = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const kv = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!kv) throw new UsageError(`${file}, line ${i + 1}: expected "key = value"`);
    out.set(kv[1]!, expandVars(kv[2]!, process.env));
  });
  return out;
}

/** The options file: swtpm_cert's --platform-* flags, one or more per line. */
function readPlatformOptions(file: string): { manufacturer: string; model: string; version: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`create_certs_tool_options: cannot read ${file}: ${(e as Error).message}`);
  }
  const platform = { ...DEFAULT_PLATFORM };
  for (const m of text.matchAll(/--platform-(manufacturer|model|version)\s+("[^"]*"|\S+)/g)) {
    platform[m[1] as keyof typeof platform] = m[2]!.replace(/^"|"$/g, '');
  }
  return platform;
}

function ekAlgorithm(value: string, option: string): EkAlgorithm {
  const a = parseEkAlgorithm(value);
  if (!a) throw new UsageError(`${option}: unknown key algorithm "${value}"; use one of ${EK_ALGORITHMS.join(', ')} (or ecc_nist_p256/p384/p521)`);
  return a;
}

function rsaAlgorithm(keysize: string): EkAlgorithm {
  if (keysize === 'max') return 'rsa4096';
  if (!['2048', '3072', '4096'].includes(keysize)) throw new UsageError(`--rsa-keysize: ${keysize} is not 2048, 3072, 4096 or max`);
  return `rsa${keysize}` as EkAlgorithm;
}

export function parseSetupArgs(a: SetupArgs): SetupConfig {
  if (!a.tpm2) throw new UsageError('vtpmd setup provisions a TPM 2.0 only: add --tpm2');
  if (a.tpmState === undefined || a.tpmState === '') throw new UsageError('--tpm-state DIR is required');
  let stateDir = a.tpmState;
  if (stateDir.startsWith('file://')) throw new UsageError('--tpm-state: the file:// backend is not supported; give a directory');
  if (stateDir.startsWith('dir://')) stateDir = stateDir.slice('dir://'.length);
  if (a.overwrite && a.notOverwrite) throw new UsageError('--overwrite and --not-overwrite exclude each other');
  if (a.decryption && !a.allowSigning) throw new UsageError('--decryption only makes sense with --allow-signing (an EK decrypts by default)');
  if (a.reconfigure) checkReconfigure(a);
  const key = keySpec(a);
  const profile = parseSetupProfile(a);
  if (profile !== undefined && a.reconfigure) throw new UsageError('--reconfigure keeps the TPM\'s profile (it is fixed when the TPM is manufactured); drop the profile option');

  const configFile = a.config ?? defaultSetupConfig();
  const conf = configFile ? readKeyValues(configFile) : new Map<string, string>();
  const confPath = (key: string) => {
    const v = conf.get(key);
    return v && configFile && !path.isAbsolute(v) ? path.resolve(path.dirname(configFile), v) : v;
  };

  const ek1 = a.ek1keyalgo ?? conf.get('ek1keyalgo');
  const ek2 = a.ek2keyalgo ?? conf.get('ek2keyalgo');
  const keysize = a.rsaKeysize ?? conf.get('rsa_keysize');
  const ekAlgorithms = [
    ek1 !== undefined ? ekAlgorithm(ek1, '--ek1keyalgo') : keysize !== undefined ? rsaAlgorithm(keysize) : 'rsa2048',
    ek2 !== undefined ? ekAlgorithm(ek2, '--ek2keyalgo') : 'secp384r1',
  ] as EkAlgorithm[];

  const banksText = a.pcrBanks ?? conf.get('active_pcr_banks') ?? DEFAULT_PCR_BANKS;
  let pcrBanks: string[] | null = null;
  if (banksText.trim() !== '-') {
    pcrBanks = [...new Set(banksText.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== ''))];
    const bad = pcrBanks.filter((b) => !(b in PCR_BANK_ALGS));
    if (bad.length > 0 || pcrBanks.length === 0) {
      throw new UsageError(`--pcr-banks: unknown PCR bank ${bad.map((b) => `"${b}"`).join(', ') || '(none given)'}; use a comma list of ${Object.keys(PCR_BANK_ALGS).join(', ')}, or - to leave the banks alone`);
    }
  }

  const ekCert = a.createEkCert ?? false;
  const platformCert = a.createPlatformCert ?? false;
  let ca;
  if (ekCert || platformCert) {
    try {
      ca = loadLocalCaConfig(confPath('create_certs_tool_config'));
    } catch (e) {
      if (e instanceof LocalCaConfigError) throw new UsageError(e.message);
      throw e;
    }
  }
  const optionsFile = confPath('create_certs_tool_options');
  const platform = optionsFile ? readPlatformOptions(optionsFile) : DEFAULT_PLATFORM;

  const identity: ProvisionOptions['tpmIdentity'] = { model: a.tpmModel ?? 'swtpm' };
  if (a.tpmManufacturer !== undefined) identity.manufacturer = a.tpmManufacturer;
  if (a.tpmVersion !== undefined) identity.version = a.tpmVersion;

  return {
    stateDir: path.resolve(stateDir),
    ...(a.logfile !== undefined ? { logfile: a.logfile } : {}),
    existing: a.overwrite ? 'overwrite' : a.notOverwrite ? 'keep' : 'error',
    action: a.reconfigure ? 'reconfigure' : 'manufacture',
    display: a.display ?? false,
    ...(key !== undefined ? { key } : {}),
    ...(profile !== undefined ? { profile } : {}),
    provision: {
      createEk: (a.createek ?? false) || ekCert || platformCert,
      ekCert,
      platformCert,
      lockNvram: a.lockNvram ?? false,
      createSpk: a.createSpk ?? false,
      spkEcc: a.ecc ?? false,
      ekAlgorithms,
      allowSigning: a.allowSigning ?? false,
      decryption: a.decryption ?? false,
      pcrBanks,
      ...(a.vmid !== undefined ? { vmid: a.vmid } : {}),
      tpmIdentity: identity,
      platform,
      ...(ca ? { ca } : {}),
      ...(a.writeEkCertFiles !== undefined ? { certFilesDir: a.writeEkCertFiles } : {}),
    },
  };
}

/**
 * `vtpmd setup --print-capabilities`: swtpm_setup's JSON, in its order, listing only what vtpmd
 * setup does. The RSA EK sizes are those of the engine from 2048 bits up, as swtpm_setup derives
 * them from swtpm's `rsa-keysize-N`.
 */
export function setupCapabilitiesJson(version: string): string {
  const features = [
    'tpm-2.0',
    'cmdarg-keyfile-fd',
    'cmdarg-pwdfile-fd',
    'cmdarg-write-ek-cert-files',
    'cmdarg-create-config-files',
    'cmdarg-reconfigure-pcr-banks',
    ...RSA_KEY_BITS.filter((bits) => bits >= 2048).map((bits) => `tpm2-rsa-keysize-${bits}`),
    'cmdarg-profile',
    'cmdarg-ek1keyalgo',
    'cmdarg-ek2keyalgo',
  ];
  return `{ "type": "swtpm_setup", "features": [ ${features.map((f) => `"${f}"`).join(', ')} ], "version": "${version}" }`;
}
