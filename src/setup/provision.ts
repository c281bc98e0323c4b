/**
 * One provisioning run on a started TPM (swtpm_setup's flow, swtpm-compat §6.2): the SPK, the
 * EKs made persistent, their certificates (and the platform certificate) in NV, the PCR banks,
 * and TPM2_Shutdown(SU_CLEAR). A step whose command the TPM does not implement is skipped with
 * a warning rather than failing the run: the EK itself can always be recreated from the
 * endorsement seed with the same template.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { TPM_ALG, TPM_CC, TPM_PT, TPM_RH } from '../tpm/constants.js';
import { createEkCertificate, createPlatformCertificate, type PlatformIdentity, type TpmIdentity } from './certificates.js';
import { EK_PROFILES, ekTemplate, nonDefaultTemplate, PLATFORM_CERT_INDEX, publicKeyOf, SPK_HANDLE, spkTemplate, type EkAlgorithm, type EkPublicKey } from './ek-templates.js';
import type { LocalCaConfig } from './localca-config.js';
import { withLocalCa, type LocalCa } from './localca.js';
import * as tpm from './tpm-client.js';
import type { TpmTransport } from './tpm-client.js';

/** NV attributes of certificate and template indices: PPWRITE, WRITEDEFINE, PPREAD, OWNERREAD, AUTHREAD, NO_DA, PLATFORMCREATE. */
export const CERT_NV_ATTRIBUTES = 0x42072001;

/** PCR bank names as --pcr-banks takes them. */
export const PCR_BANK_ALGS: Record<string, number> = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384, sha512: TPM_ALG.SHA512 };

export interface ProvisionOptions {
  createEk: boolean;
  ekCert: boolean;
  platformCert: boolean;
  lockNvram: boolean;
  createSpk: boolean;
  /** --ecc: an ECC P-384 SPK instead of RSA-3072. */
  spkEcc: boolean;
  ekAlgorithms: EkAlgorithm[];
  allowSigning: boolean;
  decryption: boolean;
  /** Banks to activate (the others are deactivated); null leaves the allocation alone. */
  pcrBanks: string[] | null;
  vmid?: string;
  tpmIdentity: { manufacturer?: string; model: string; version?: string };
  platform: PlatformIdentity;
  /** Needed when a certificate is asked for. */
  ca?: LocalCaConfig;
  /** --write-ek-cert-files: ek-<algo>.crt (DER) in this directory. */
  certFilesDir?: string;
}

export interface ProvisionedEk {
  algorithm: EkAlgorithm;
  /** The persistent handle, or null when the TPM cannot persist objects yet. */
  handle: number | null;
  publicKey: EkPublicKey;
  certificate?: Uint8Array;
  /** NV index holding the certificate, or null when it could not be stored. */
  certIndex: number | null;
}

export interface ProvisionResult {
  eks: ProvisionedEk[];
  platformCertificate?: Uint8Array;
  /** What was done, one line each (swtpm_setup prints the same kind of lines). */
  lines: string[];
  warnings: string[];
  pcrBanks?: string[];
}

/** TPM_PT_MANUFACTURER → TCG vendor ID (TCG Vendor ID Registry): "IBM" is 0x1014, as swtpm certifies it. */
const TCG_VENDOR_IDS: Record<number, number> = { 0x49424d00: 0x1014 };

const hex = (n: number) => `0x${n.toString(16)}`;

/** TPM_PT_FAMILY_INDICATOR .. TPM_PT_FIRMWARE_VERSION_1 → the identity certificates carry. */
async function readIdentity(t: TpmTransport, o: ProvisionOptions['tpmIdentity']): Promise<TpmIdentity> {
  const p = await tpm.tpmProperties(t, TPM_PT.FAMILY_INDICATOR, TPM_PT.FIRMWARE_VERSION_1 - TPM_PT.FAMILY_INDICATOR + 1);
  const family = p.get(TPM_PT.FAMILY_INDICATOR) ?? 0x322e3000;
  const familyText = Buffer.from([family >>> 24, (family >>> 16) & 0xff, (family >>> 8) & 0xff, family & 0xff]).toString('latin1').replace(/\0+$/, '');
  const id = (v: number | undefined) => `id:${(v ?? 0).toString(16).toUpperCase().padStart(8, '0')}`;
  const vendor = p.get(TPM_PT.MANUFACTURER);
  return {
    // Certificates name the manufacturer by its TCG vendor ID, not the 4-character TPM_PT value.
    manufacturer: o.manufacturer ?? id(vendor !== undefined ? (TCG_VENDOR_IDS[vendor] ?? vendor) : undefined),
    model: o.model,
    version: o.version ?? id(p.get(TPM_PT.FIRMWARE_VERSION_1)),
    specFamily: familyText,
    specLevel: p.get(TPM_PT.LEVEL) ?? 0,
    specRevision: p.get(TPM_PT.REVISION) ?? 0,
  };
}

export async function provision(t: TpmTransport, o: ProvisionOptions): Promise<ProvisionResult> {
  const result: ProvisionResult = { eks: [], lines: [], warnings: [] };
  const commands = await tpm.implementedCommands(t);
  const algorithms = await tpm.implementedAlgorithms(t);
  const has = (cc: number) => commands.has(cc);
  const hasNv = has(TPM_CC.NV_DefineSpace) && has(TPM_CC.NV_Write) && (!o.lockNvram || has(TPM_CC.NV_WriteLock));
  const warn = (m: string) => result.warnings.push(m);

  // Validate what can be refused before the TPM changes.
  let banks: Map<number, Uint8Array> | null = null;
  if (o.pcrBanks) {
    banks = await tpm.pcrBanks(t);
    const available = [...banks.keys()];
    for (const name of o.pcrBanks) {
      const alg = PCR_BANK_ALGS[name];
      if (alg === undefined || !available.includes(alg)) {
        const names = Object.entries(PCR_BANK_ALGS).filter(([, a]) => available.includes(a)).map(([n]) => n);
        throw new ProvisionError(`--pcr-banks: unknown PCR bank "${name}"; this TPM has ${names.join(', ')}`);
      }
    }
  }

  async function storeNv(index: number, data: Uint8Array, what: string): Promise<boolean> {
    if (!hasNv) {
      warn(`${what} not stored in NV index ${hex(index)}: the TPM does not implement NV_DefineSpace/NV_Write${o.lockNvram ? '/NV_WriteLock' : ''} yet`);
      return false;
    }
    await tpm.nvDefineSpace(t, index, CERT_NV_ATTRIBUTES, data.length);
    await tpm.nvWrite(t, index, data);
    if (o.lockNvram) await tpm.nvWriteLock(t, index);
    result.lines.push(`Successfully created NVRAM area ${hex(index)} for ${what}${o.lockNvram ? ' (write-locked)' : ''}.`);
    return true;
  }

  if (o.createSpk) {
    const { handle } = await tpm.createPrimary(t, TPM_RH.OWNER, spkTemplate(o.spkEcc));
    if (has(TPM_CC.EvictControl)) {
      await tpm.evictControl(t, handle, SPK_HANDLE);
      result.lines.push(`Successfully created ${o.spkEcc ? 'ECC P-384' : 'RSA 3072'} storage primary key with handle ${hex(SPK_HANDLE)}.`);
    } else {
      warn(`storage primary key not made persistent at ${hex(SPK_HANDLE)}: the TPM does not implement EvictControl yet`);
    }
    await tpm.flushContext(t, handle);
  }

  const createEks = async (ca: LocalCa | null) => {
    const identity = ca ? await readIdentity(t, o.tpmIdentity) : null;
    for (const algorithm of [...new Set(o.ekAlgorithms)]) {
      const profile = EK_PROFILES[algorithm];
      if (profile.keyType === 'rsa' && !algorithms.has(TPM_ALG.RSA)) {
        warn(`${profile.label} EK not created: the TPM does not implement RSA keys yet`);
        continue;
      }
      const template = ekTemplate(algorithm, o);
      const { handle, publicArea } = await tpm.createPrimary(t, TPM_RH.ENDORSEMENT, template);
      const ek: ProvisionedEk = { algorithm, handle: null, publicKey: publicKeyOf(publicArea), certIndex: null };
      if (has(TPM_CC.EvictControl)) {
        await tpm.evictControl(t, handle, profile.handle);
        ek.handle = profile.handle;
        result.lines.push(`Successfully created ${profile.label} EK with handle ${hex(profile.handle)}.`);
      } else {
        result.lines.push(`Successfully created ${profile.label} EK (transient).`);
        warn(`${profile.label} EK not made persistent at ${hex(profile.handle)}: the TPM does not implement EvictControl yet; it is recreated from its template`);
      }
      await tpm.flushContext(t, handle);
      if (nonDefaultTemplate(o)) await storeNv(profile.templateIndex, template, `${profile.label} EK template`);
      if (ca && identity && o.ekCert) {
        ek.certificate = await createEkCertificate(ca, {
          spki: ek.publicKey.spki,
          keyType: profile.keyType,
          ...(o.vmid !== undefined ? { vmid: o.vmid } : {}),
          tpm: identity,
          allowSigning: o.allowSigning,
          decryption: o.decryption,
        });
        result.lines.push(`Successfully created ${profile.label} EK certificate locally.`);
        if (await storeNv(profile.certIndex, ek.certificate, `${profile.label} EK certificate`)) ek.certIndex = profile.certIndex;
        if (o.certFilesDir) {
          const file = path.join(o.certFilesDir, `ek-${algorithm}.crt`);
          writeFileSync(file, ek.certificate, { mode: 0o640 });
          result.lines.push(`Wrote ${file}.`);
        }
      }
      // swtpm_setup makes the platform certificate for the first EK only.
      if (ca && o.platformCert && result.eks.length === 0) {
        result.platformCertificate = await createPlatformCertificate(ca, {
          spki: ek.publicKey.spki,
          keyType: profile.keyType,
          ...(o.vmid !== undefined ? { vmid: o.vmid } : {}),
          platform: o.platform,
          allowSigning: o.allowSigning,
          decryption: o.decryption,
        });
        result.lines.push('Successfully created platform certificate locally.');
        await storeNv(PLATFORM_CERT_INDEX, result.platformCertificate, 'platform certificate');
      }
      result.eks.push(ek);
    }
  };

  if (o.createEk) {
    if (o.ekCert || o.platformCert) {
      if (!o.ca) throw new ProvisionError('certificates were asked for but no local CA is configured');
      await withLocalCa(o.ca, (ca) => createEks(ca));
    } else {
      await createEks(null);
    }
  }

  if (o.pcrBanks && banks) {
    const active = new Set(o.pcrBanks.map((n) => PCR_BANK_ALGS[n]!));
    if (has(TPM_CC.PCR_Allocate)) {
      if (!(await tpm.pcrAllocate(t, banks.keys(), active))) throw new ProvisionError('PCR_Allocate did not succeed');
      const all = Object.entries(PCR_BANK_ALGS).filter(([, a]) => banks.has(a)).map(([n]) => n);
      result.lines.push(`Successfully activated PCR banks ${o.pcrBanks.join(',')} among ${all.join(',')}.`);
      result.pcrBanks = o.pcrBanks;
    } else {
      warn('PCR banks left as they are: the TPM does not implement PCR_Allocate yet');
    }
  }

  await tpm.shutdown(t, 'clear');
  return result;
}

/** A provisioning request the TPM or its configuration cannot satisfy. */
export class ProvisionError extends Error {
  readonly code = 'VTPMD_PROVISION';
}
