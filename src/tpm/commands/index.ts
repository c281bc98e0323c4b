/**
 * The dispatch table: every implemented command, gathered from the group files. A duplicate
 * code is a programming error caught when the module loads.
 */
import type { CommandDef } from '../command.js';
import { RSA_Decrypt, RSA_Encrypt } from './asym.js';
import { Sign, VerifySignature } from './signature.js';
import { GetCommandAuditDigest, GetSessionAuditDigest } from './audit-digest.js';
import { Certify, CertifyCreation, GetTime, NV_Certify, Quote } from './attest.js';
import { CertifyX509 } from './certify-x509.js';
import { GetCapability } from './capability.js';
import { ClockRateAdjust, ClockSet, ReadClock } from './clock.js';
import { ChangeEPS, ChangePPS, Clear, ClearControl, HierarchyControl } from './hierarchy-control.js';
import { PCR_SetAuthPolicy, PCR_SetAuthValue } from './pcr-auth.js';
import { PP_Commands } from './physical-presence.js';
import { SetAlgorithmSet } from './algorithm-set.js';
import { ContextLoad, ContextSave, FlushContext } from './context.js';
import { StartAuthSession } from './session.js';
import {
  PolicyAuthValue, PolicyCommandCode, PolicyCounterTimer, PolicyCpHash, PolicyDuplicationSelect, PolicyGetDigest,
  PolicyLocality, PolicyNameHash, PolicyNvWritten, PolicyOR, PolicyPassword, PolicyPCR, PolicyPhysicalPresence,
  PolicyRestart, PolicyTemplate,
} from './policy.js';
import { PolicyAuthorize, PolicySecret, PolicySigned, PolicyTicket } from './policy-auth.js';
import { PolicyAuthorizeNV, PolicyNV } from './policy-nv.js';
import { SetCommandCodeAuditStatus } from './audit.js';
import { SetPrimaryPolicy } from './hierarchy-policy.js';
import { DictionaryAttackLockReset, DictionaryAttackParameters } from './dictionary.js';
import { CreatePrimary, HierarchyChangeAuth } from './hierarchy.js';
import { ReadPublic } from './object.js';
import { Create, CreateLoaded, Load, LoadExternal } from './object-lifecycle.js';
import { ObjectChangeAuth, Unseal } from './object-auth.js';
import { ActivateCredential, MakeCredential } from './credential.js';
import { Duplicate, Import, Rewrap } from './duplication.js';
import { EvictControl } from './persistent.js';
import { NV_ChangeAuth, NV_DefineSpace, NV_GlobalWriteLock, NV_ReadPublic, NV_UndefineSpace, NV_UndefineSpaceSpecial } from './nv.js';
import { NV_Extend, NV_Increment, NV_Read, NV_ReadLock, NV_SetBits, NV_Write, NV_WriteLock } from './nv-data.js';
import { EventSequenceComplete, Hash, HashSequenceStart, HMAC, HMAC_Start, SequenceComplete, SequenceUpdate } from './hash.js';
import { EncryptDecrypt, EncryptDecrypt2 } from './sym.js';
import { EC_Ephemeral, ECC_Parameters, ECDH_KeyGen, ECDH_ZGen, ZGen_2Phase } from './ecc.js';
import { TestParms } from './test-parms.js';
import { PCR_Event, PCR_Extend, PCR_Read, PCR_Reset } from './pcr.js';
import { PCR_Allocate } from './pcr-allocate.js';
import { GetRandom, StirRandom } from './random.js';
import { Shutdown, Startup } from './startup.js';
import { GetTestResult, IncrementalSelfTest, SelfTest } from './testing.js';

export const ALL_COMMANDS: readonly CommandDef[] = [
  Startup,
  Shutdown,
  SelfTest,
  IncrementalSelfTest,
  GetTestResult,
  GetRandom,
  StirRandom,
  GetCapability,
  PCR_Read,
  PCR_Extend,
  PCR_Event,
  PCR_Reset,
  PCR_Allocate,
  Hash,
  HashSequenceStart,
  SequenceUpdate,
  SequenceComplete,
  EventSequenceComplete,
  ReadClock,
  StartAuthSession,
  FlushContext,
  CreatePrimary,
  ReadPublic,
  ContextSave,
  ContextLoad,
  HierarchyChangeAuth,
  Create,
  Load,
  LoadExternal,
  CreateLoaded,
  Unseal,
  ObjectChangeAuth,
  MakeCredential,
  ActivateCredential,
  Duplicate,
  Rewrap,
  Import,
  EvictControl,
  RSA_Encrypt,
  RSA_Decrypt,
  VerifySignature,
  Sign,
  Certify,
  CertifyCreation,
  Quote,
  GetTime,
  NV_Certify,
  CertifyX509,
  GetSessionAuditDigest,
  GetCommandAuditDigest,
  NV_DefineSpace,
  NV_UndefineSpace,
  NV_UndefineSpaceSpecial,
  NV_ReadPublic,
  NV_Write,
  NV_Increment,
  NV_Extend,
  NV_SetBits,
  NV_WriteLock,
  NV_GlobalWriteLock,
  NV_Read,
  NV_ReadLock,
  NV_ChangeAuth,
  PolicyRestart,
  PolicyGetDigest,
  PolicyCommandCode,
  PolicyAuthValue,
  PolicyPassword,
  PolicyPhysicalPresence,
  PolicyLocality,
  PolicyPCR,
  PolicyOR,
  PolicyCpHash,
  PolicyNameHash,
  PolicyTemplate,
  PolicyNvWritten,
  PolicyDuplicationSelect,
  PolicyCounterTimer,
  PolicySecret,
  PolicyTicket,
  PolicyAuthorize,
  PolicySigned,
  PolicyNV,
  PolicyAuthorizeNV,
  SetCommandCodeAuditStatus,
  SetPrimaryPolicy,
  DictionaryAttackLockReset,
  DictionaryAttackParameters,
  HierarchyControl,
  Clear,
  ClearControl,
  ChangeEPS,
  ChangePPS,
  PCR_SetAuthPolicy,
  PCR_SetAuthValue,
  PP_Commands,
  SetAlgorithmSet,
  ClockSet,
  ClockRateAdjust,
  HMAC,
  HMAC_Start,
  EncryptDecrypt,
  EncryptDecrypt2,
  ECDH_KeyGen,
  ECDH_ZGen,
  ECC_Parameters,
  EC_Ephemeral,
  ZGen_2Phase,
  TestParms,
];

function buildTable(commands: readonly CommandDef[]): ReadonlyMap<number, CommandDef> {
  const table = new Map<number, CommandDef>();
  for (const c of commands) {
    if (table.has(c.code)) throw new Error(`command 0x${c.code.toString(16)} is declared twice`);
    table.set(c.code, c);
  }
  return table;
}

export const COMMANDS = buildTable(ALL_COMMANDS);
