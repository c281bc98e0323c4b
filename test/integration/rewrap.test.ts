// TPM2_Rewrap (no tpm2-tool sends it) in raw commands against vtpmd and swtpm: a duplicate made
// with TPM2_Duplicate under a PolicyCommandCode session is moved from one parent to another
// and imported there; moved to TPM_RH_NULL (outer wrapper removed) and back; every refusal
// gets the same response code from both.
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { describeImpls, implementations, startDaemon, type Impl } from '../helpers/daemon.js';
import { command, dataTarget, paramsOf, pwAuthArea, rcHex, R, TPM_RH, TpmClient, W, type Response } from '../helpers/tpm.js';

const CC = { CreatePrimary: 0x131, Create: 0x153, Load: 0x157, StartAuthSession: 0x176, PolicyCommandCode: 0x16c, Duplicate: 0x14b, Rewrap: 0x152, Import: 0x156, FlushContext: 0x165 };
const ALG = { SHA256: 0x0b, AES: 0x06, CFB: 0x43, NULL: 0x10, ECC: 0x23, ECDSA: 0x18 };
const DUP_POLICY = createHash('sha256').update(Buffer.alloc(32)).update(Buffer.from('0000016c0000014b', 'hex')).digest();

/** TPMT_PUBLIC of a P-256 key: storage (AES-128-CFB) or ECDSA signing. */
function ecc(attributes: number, storage: boolean, policy: Uint8Array = new Uint8Array(0)): Buffer {
  const w = new W().u16(ALG.ECC).u16(ALG.SHA256).u32(attributes).tpm2b(policy);
  if (storage) w.u16(ALG.AES).u16(128).u16(ALG.CFB).u16(ALG.NULL);
  else w.u16(ALG.NULL).u16(ALG.ECDSA).u16(ALG.SHA256);
  return w.u16(0x0003).u16(ALG.NULL).u16(0).u16(0).build();
}
const STORAGE = 0x00030472; // fixedTPM fixedParent sensitiveDataOrigin userWithAuth noDA restricted decrypt
const SIGNER = 0x00040472; // fixedTPM fixedParent sensitiveDataOrigin userWithAuth noDA sign
const DUPLICABLE = 0x00040460; // sensitiveDataOrigin userWithAuth noDA sign

const EMPTY_SENSITIVE = new W().u16(4).u16(0).u16(0).build();

async function primary(c: TpmClient, hierarchy: number, template: Buffer) {
  const r = await c.call(command({ cc: CC.CreatePrimary, handles: [hierarchy], auth: pwAuthArea(), params: new W().bytes(EMPTY_SENSITIVE).tpm2b(template).u16(0).u32(0).build() }));
  expect(r.rc, rcHex(r.rc)).toBe(0);
  return r.body.readUInt32BE(0);
}

async function run(impl: Impl): Promise<{ codes: string[]; sizes: number[] }> {
  const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
  const c = await TpmClient.connect(dataTarget(d));
  const call = (spec: Parameters<typeof command>[0]): Promise<Response> => c.call(command(spec));
  const codes: string[] = [];
  const sizes: number[] = [];

  const p1 = await primary(c, TPM_RH.OWNER, ecc(STORAGE, true));
  const p2 = await primary(c, TPM_RH.ENDORSEMENT, ecc(STORAGE, true));
  const created = await call({ cc: CC.Create, handles: [p1], auth: pwAuthArea(), params: new W().bytes(EMPTY_SENSITIVE).tpm2b(ecc(DUPLICABLE, false, DUP_POLICY)).u16(0).u32(0).build() });
  expect(created.rc, rcHex(created.rc)).toBe(0);
  const cr = paramsOf(created);
  const priv = cr.tpm2b();
  const keyPublic = Buffer.from(cr.tpm2b());
  const loaded = await call({ cc: CC.Load, handles: [p1], auth: pwAuthArea(), params: new W().tpm2b(priv).tpm2b(keyPublic).build() });
  expect(loaded.rc, rcHex(loaded.rc)).toBe(0);
  const key = loaded.body.readUInt32BE(0);
  const lr = new R(loaded.body.subarray(8));
  const name = Buffer.from(lr.tpm2b());

  // Duplicate to p1 (outer wrapper only) through a PolicyCommandCode(Duplicate) session.
  const s = await call({ cc: CC.StartAuthSession, handles: [TPM_RH.NULL, TPM_RH.NULL], params: new W().tpm2b(Buffer.alloc(16, 1)).u16(0).u8(1).u16(ALG.NULL).u16(ALG.SHA256).build() });
  expect(s.rc, rcHex(s.rc)).toBe(0);
  const session = s.body.readUInt32BE(0);
  expect((await call({ cc: CC.PolicyCommandCode, handles: [session], params: new W().u32(CC.Duplicate).build() })).rc).toBe(0);
  const policyAuth = new W().u32(session).tpm2b(Buffer.alloc(16, 2)).u8(0).tpm2b(new Uint8Array(0)).build();
  const dup = await call({ cc: CC.Duplicate, handles: [key, p1], auth: new W().u32(policyAuth.length).bytes(policyAuth).build(), params: new W().u16(0).u16(ALG.NULL).build() });
  expect(dup.rc, rcHex(dup.rc)).toBe(0);
  const dr = paramsOf(dup);
  expect(dr.tpm2b().length).toBe(0);
  const duplicate = Buffer.from(dr.tpm2b());
  const seed = Buffer.from(dr.tpm2b());
  await call({ cc: CC.FlushContext, params: new W().u32(key).build() });

  const rewrap = (oldParent: number, newParent: number, blob: Uint8Array, n: Uint8Array, inSymSeed: Uint8Array) =>
    call({ cc: CC.Rewrap, handles: [oldParent, newParent], auth: pwAuthArea(), params: new W().tpm2b(blob).tpm2b(n).tpm2b(inSymSeed).build() });
  const importUnder = (parent: number, blob: Uint8Array, inSymSeed: Uint8Array) =>
    call({ cc: CC.Import, handles: [parent], auth: pwAuthArea(), params: new W().u16(0).tpm2b(keyPublic).tpm2b(blob).tpm2b(inSymSeed).u16(ALG.NULL).build() });

  // p1 → p2, then Import under p2.
  const moved = await rewrap(p1, p2, duplicate, name, seed);
  codes.push(rcHex(moved.rc));
  const mr = paramsOf(moved);
  const movedDup = mr.tpm2b();
  const movedSeed = mr.tpm2b();
  sizes.push(movedDup.length, movedSeed.length);
  codes.push(rcHex((await importUnder(p2, movedDup, movedSeed)).rc));
  codes.push(rcHex((await importUnder(p1, movedDup, movedSeed)).rc));
  // p1 → NULL (the outer wrapper removed), NULL → p2, Import under p2.
  const bare = await rewrap(p1, TPM_RH.NULL, duplicate, name, seed);
  codes.push(rcHex(bare.rc));
  const br = paramsOf(bare);
  const bareDup = br.tpm2b();
  sizes.push(bareDup.length, br.tpm2b().length);
  const back = await rewrap(TPM_RH.NULL, p2, bareDup, name, new Uint8Array(0));
  codes.push(rcHex(back.rc));
  const kr = paramsOf(back);
  codes.push(rcHex((await importUnder(p2, kr.tpm2b(), kr.tpm2b())).rc));
  // Refusals.
  codes.push(rcHex((await rewrap(p1, p2, duplicate, name, new Uint8Array(0))).rc));
  codes.push(rcHex((await rewrap(TPM_RH.NULL, p2, duplicate, name, seed)).rc));
  const badSeed = Buffer.from(seed);
  badSeed[5]! ^= 1;
  codes.push(rcHex((await rewrap(p1, p2, duplicate, name, badSeed)).rc));
  const otherName = Buffer.from(name);
  otherName[10]! ^= 1;
  codes.push(rcHex((await rewrap(p1, p2, duplicate, otherName, seed)).rc));
  const badDup = Buffer.from(duplicate);
  badDup[40]! ^= 1;
  codes.push(rcHex((await rewrap(p1, p2, badDup, name, seed)).rc));
  const signer = await primary(c, TPM_RH.OWNER, ecc(SIGNER, false));
  codes.push(rcHex((await rewrap(p1, signer, duplicate, name, seed)).rc));
  codes.push(rcHex((await rewrap(signer, p2, duplicate, name, seed)).rc));

  c.close();
  await d.stop();
  return { codes, sizes };
}

describeImpls('Rewrap', (impl) => {
  it('moves a duplicate between parents, to TPM_RH_NULL and back; refusals with the reference codes', async () => {
    const { codes, sizes } = await run(impl);
    expect(codes).toEqual([
      '0x000', '0x000', '0x3df', // moved, imported under p2; not under p1
      '0x000', '0x000', '0x000', // to NULL, back to p2, imported
      '0x18b', '0x18b', // seed without oldParent and the reverse
      '0x3c4', // a seed that does not decrypt
      '0x1df', '0x1df', // another Name, a changed byte
      '0x28a', '0x18a', // new or old parent not a storage key
    ]);
    // The outer wrapper: a SHA-256 integrity (34 bytes) and an ECC point (68 bytes).
    expect(sizes[0]).toBe(sizes[2]! + 34);
    expect([sizes[1], sizes[3]]).toEqual([68, 0]);
  });
});

it('Rewrap: vtpmd and swtpm give the same codes and sizes', async () => {
  const available = implementations().filter((i) => !i.skip).map((i) => i.impl);
  if (available.length < 2) return;
  expect(await run('vtpmd')).toEqual(await run('swtpm'));
});
