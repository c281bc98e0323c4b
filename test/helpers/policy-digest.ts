// The spec's policy-digest arithmetic in SHA-256 (Part 3: policyDigest_new =
// H(policyDigest_old || TPM_CC_PolicyX || ...)), for known answers computed beside the TPMs'.
import { createHash } from 'node:crypto';

/** SHA-256 of the concatenated parts. */
export const H = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  parts.forEach((p) => h.update(p));
  return h.digest();
};
export const u16 = (v: number) => Buffer.from([(v >> 8) & 0xff, v & 0xff]);
export const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
/** A policy session's digest when it starts. */
export const ZERO = Buffer.alloc(32);
/** The policy commands, and the commands policies name, of the tpm2-tools policy tests. */
export const POLICY_CC = {
  HierarchyChangeAuth: 0x129, PolicyNV: 0x149, PolicySecret: 0x151, PolicySigned: 0x160, PolicyAuthorize: 0x16a,
  PolicyAuthValue: 0x16b, PolicyCommandCode: 0x16c, PolicyCounterTimer: 0x16d, PolicyCpHash: 0x16e, PolicyLocality: 0x16f,
  PolicyNameHash: 0x170, PolicyOR: 0x171, GetRandom: 0x17b, PolicyPCR: 0x17f, PCR_Extend: 0x182,
  PolicyDuplicationSelect: 0x188, PolicyNvWritten: 0x18f, PolicyTemplate: 0x190, PolicyAuthorizeNV: 0x192,
} as const;
