import { slabCopy } from '../../common/slab-copy.js';

/**
 * Backing buffers of finished Writers, for the next ones: the engine is synchronous, so only a
 * few Writers are open at once (a response and the encodes nested in building it), and taking a
 * buffer from here instead of allocating one (and a second when a response outgrows it) was
 * about a third of the engine's time for a small command.
 */
const spare: { buf: Uint8Array; view: DataView }[] = [];
const SPARE_MAX = 8;
const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);
const MIN_CAPACITY = 4096;

/** A growable big-endian output buffer; one per response, so nothing is reallocated per field. */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private done: Uint8Array | undefined;
  length = 0;

  constructor(capacity = 256) {
    const reused = spare.pop();
    if (reused && reused.buf.length >= capacity) {
      this.buf = reused.buf;
      this.view = reused.view;
    } else {
      this.buf = new Uint8Array(Math.max(capacity, MIN_CAPACITY));
      this.view = new DataView(this.buf.buffer);
    }
  }

  private reserve(n: number): number {
    if (this.done) throw new Error('Writer: written to after finish()');
    const at = this.length;
    if (at + n > this.buf.length) {
      let size = Math.max(this.buf.length * 2, MIN_CAPACITY);
      while (size < at + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.length = at + n;
    return at;
  }

  // reserve() may replace buf and view, so it runs before either is read.
  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }

  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v);
  }

  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v >>> 0);
  }

  u64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, v);
  }

  bytes(v: Uint8Array): void {
    const at = this.reserve(v.length);
    this.buf.set(v, at);
  }

  /** Writes a u16 or u32 placeholder now and fills it with the byte count written after it. */
  sizePrefix(width: 2 | 4): () => void {
    const at = this.reserve(width);
    return () => {
      const n = this.length - at - width;
      if (width === 2) this.view.setUint16(at, n);
      else this.view.setUint32(at, n);
    };
  }

  /** Overwrites a u32 already written (response header fields). */
  setU32(at: number, v: number): void {
    this.view.setUint32(at, v >>> 0);
  }

  /** The bytes written between two offsets, valid until the next write (hash them at once). */
  peek(from: number, to: number): Uint8Array {
    return this.buf.subarray(from, to);
  }

  /**
   * The bytes written, as a new array. The Writer is then done: its buffer goes to the next one
   * (a later finish() returns the same bytes again; nothing more can be written).
   */
  finish(): Uint8Array {
    return this.release(this.done ? this.done.slice() : this.buf.slice(0, this.length));
  }

  /**
   * finish() for bytes that are read once and dropped (a response): carved from a shared slab
   * (common/slab-copy.ts) instead of a fresh ArrayBuffer, which costs more than a small command.
   */
  finishShortLived(): Uint8Array {
    return this.release(slabCopy(this.done ?? this.buf.subarray(0, this.length)));
  }

  private release(out: Uint8Array): Uint8Array {
    if (this.done) return out;
    this.done = out;
    // Zeroed before reuse: what was written may be secret (a sensitive area, a key).
    this.buf.fill(0, 0, this.length);
    if (spare.length < SPARE_MAX) spare.push({ buf: this.buf, view: this.view });
    this.buf = EMPTY;
    this.view = EMPTY_VIEW;
    return out;
  }
}
