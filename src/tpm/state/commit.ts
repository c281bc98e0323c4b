/**
 * The commit state of the split ECC operations (Part 1 §C.2, the reference's gr.commitNonce,
 * gr.commitCounter and gr.commitArray): reset data, new at every TPM Reset. EC_Ephemeral (and
 * Commit) hand out a count; the ephemeral private value r is not stored but derived again from
 * the nonce and that count when ZGen_2Phase (or a split signature) uses it, once.
 */
import { CONTEXT_INTEGRITY_HASH_ALG, hashInfo } from '../algorithms.js';
import { eccCurveParameters, kdfa } from '../crypto/index.js';
import { putUint32 } from '../crypto/bytes.js';

/** Outstanding counts the TPM remembers: the reference's 16-byte commitArray. */
export const COMMIT_SLOTS = 128;
const COMMIT_INDEX_MASK = COMMIT_SLOTS - 1;
const COMMIT_LABEL = 'ECDAA Commit';
/** The reference gives up on a curve after this many KDF blocks without a usable r. */
const MAX_KDF_BLOCKS = 1_000_000;

export interface CommitState {
  nonce: Uint8Array;
  /** The 64-bit commit counter (a JS number: it cannot reach 2^53 at one count per command). */
  counter: number;
  /** One bit per outstanding count, indexed by the count's low bits. */
  array: Uint8Array;
}

export function newCommitState(random: (n: number) => Uint8Array): CommitState {
  return { nonce: random(hashInfo(CONTEXT_INTEGRITY_HASH_ALG)!.digestSize), counter: 0, array: new Uint8Array(COMMIT_SLOTS / 8) };
}

export function isCommitState(v: unknown): v is CommitState {
  const s = v as CommitState;
  return s?.nonce instanceof Uint8Array && Number.isSafeInteger(s.counter) && s.counter >= 0 &&
    s.array instanceof Uint8Array && s.array.length === COMMIT_SLOTS / 8;
}

const bit = (c: number) => ({ byte: (c & COMMIT_INDEX_MASK) >> 3, mask: 1 << (c & 7) });

/** Commits the current count (the reference's CryptCommit): marks it outstanding and returns its low 16 bits. */
export function commitCount(s: CommitState): number {
  const count = s.counter & 0xffff;
  s.counter += 1;
  const { byte, mask } = bit(count);
  s.array[byte]! |= mask;
  return count;
}

/** Ends the use of count `c` (CryptEndCommit): it cannot be used again. */
export function endCommit(s: CommitState, c: number): void {
  const { byte, mask } = bit(c);
  s.array[byte]! &= ~mask;
}

/**
 * The commit random value r for `curve` (the reference's CryptGenerateR): for the current count
 * when `c` is null (EC_Ephemeral, Commit), else for the outstanding count `c`, whose high bits
 * must match the counter's epoch; null when `c` is not outstanding or no r was found.
 * r = KDFa(nonce, "ECDAA Commit", name, count as 8 bytes, |n| bytes), drawn again from the next
 * KDF block while r >= n or the upper half of r is zero.
 */
export function commitRandom(s: CommitState, curve: number, c: number | null, name: Uint8Array = new Uint8Array(0)): Uint8Array | null {
  const n = eccCurveParameters(curve).n;
  let count = BigInt(s.counter);
  if (c !== null) {
    const { byte, mask } = bit(c);
    if ((s.array[byte]! & mask) === 0) return null;
    const wide = BigInt(COMMIT_INDEX_MASK + 1);
    if ((c & COMMIT_INDEX_MASK) >= (s.counter & COMMIT_INDEX_MASK)) count = BigInt.asUintN(64, count - wide);
    const high = Number(count & 0xffffn) & ~COMMIT_INDEX_MASK;
    if (high !== (c & ~COMMIT_INDEX_MASK & 0xffff)) return null;
    count = (count & ~0xffffn) | BigInt(c);
  }
  const cntr = new Uint8Array(8);
  putUint32(cntr, 0, Number(count >> 32n));
  putUint32(cntr, 4, Number(count & 0xffffffffn));
  const blocks = Math.ceil(n.length / hashInfo(CONTEXT_INTEGRITY_HASH_ALG)!.digestSize);
  for (let block = 1; block < MAX_KDF_BLOCKS; block += blocks) {
    const r = kdfa(CONTEXT_INTEGRITY_HASH_ALG, s.nonce, COMMIT_LABEL, name, cntr, n.length * 8, block);
    if (Buffer.compare(r, n) >= 0) continue;
    if (r.subarray(0, (n.length >> 1) + 1).some((b) => b !== 0)) return r;
  }
  return null;
}
