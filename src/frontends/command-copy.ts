/**
 * The copy of each TPM command a front end hands to the device: the bytes arrive in a buffer the
 * next read reuses, and the engine may keep views of what it is given.
 *
 * Copies are carved from a shared slab instead of each being an ArrayBuffer of its own. A fresh
 * ArrayBuffer costs V8 a malloc, a backing-store record and later a sweep (2–3 µs here, about a
 * third of a small command's whole user time in the daemon); a small typed array made with
 * slice() lives on the JS heap only until its memory is asked for (a DataView, a subarray), which
 * the engine always does, and then pays the same. A slab is allocated once per SLAB_SIZE bytes of
 * commands; it is freed when the last view into it is gone, so a view the engine keeps holds at
 * most one slab.
 */

const SLAB_SIZE = 16 * 1024;
/** Copies start on 8-byte boundaries, as a fresh ArrayBuffer's would. */
const ALIGN = 8;

let slab = new ArrayBuffer(0);
let used = 0;

/** A copy of `bytes` as a plain Uint8Array (what the engine takes), carved from the slab. */
export function copyCommand(bytes: Uint8Array): Uint8Array {
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
