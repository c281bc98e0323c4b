/** A growable big-endian output buffer; one per response, so nothing is reallocated per field. */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      let size = this.buf.length * 2;
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

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
