/**
 * Copies of short-lived byte strings on the hot path (each TPM command a front end hands to the
 * device, each response the engine returns), carved from a shared slab instead of each being an
 * ArrayBuffer of its own.
 *
 * A fresh ArrayBuffer costs V8 a malloc, a backing-store record and later a sweep (2–3 µs here,
 * about a third of a small command's whole user time in the daemon, and several times that when
 * the thread has just woken from idle); a small typed array made with slice() lives on the JS heap
 * only until its memory is asked for (a DataView, a subarray, a native call), which the engine
 * and the front ends always do, and then pays the same. A slab is allocated once per SLAB_SIZE
 * bytes of copies; it is freed when the last view into it is gone, so a copy somebody keeps holds
 * at most one slab. For bytes that live long (key material, object areas) use a plain copy.
 */

const SLAB_SIZE = 16 * 1024;
/** Copies start on 8-byte boundaries, as a fresh ArrayBuffer's would. */
const ALIGN = 8;

let slab = new ArrayBuffer(0);
let used = 0;

/** A copy of `bytes` as a plain Uint8Array, carved from the slab (larger ones get their own buffer). */
export function slabCopy(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  if (n > SLAB_SIZE / 4) return new Uint8Array(bytes);
  if (used + n > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_SIZE);
    used = 0;
  }
  const copy = new Uint8Array(slab, used, n);
  copy.set(bytes);
  used += (n + ALIGN - 1) & ~(ALIGN - 1);
  return copy;
}
