// Hand-built kernel messages for the CUSE session tests. Deliberately independent of
// src/frontends/cuse/kernel-structs.ts: offsets written out here from include/uapi/linux/fuse.h,
// so a layout bug in the source cannot cancel itself out in the tests.

export const OP = { FORGET: 2, OPEN: 14, READ: 15, WRITE: 16, RELEASE: 18, FSYNC: 20, FLUSH: 25, INTERRUPT: 36, IOCTL: 39, POLL: 40, CUSE_INIT: 4096 } as const;

/** fuse_in_header (40 bytes) + body; `len` overrides the length field. */
export function request(opcode: number, unique: bigint, body: Uint8Array = new Uint8Array(0), opts: { len?: number; pid?: number } = {}): Uint8Array {
  const out = new Uint8Array(40 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, opts.len ?? out.length, true); // len
  v.setUint32(4, opcode, true); // opcode
  v.setBigUint64(8, unique, true); // unique
  v.setBigUint64(16, 0n, true); // nodeid
  v.setUint32(24, 0, true); // uid
  v.setUint32(28, 0, true); // gid
  v.setUint32(32, opts.pid ?? 4242, true); // pid
  out.set(body, 40);
  return out;
}

function le(...fields: [number | bigint, 2 | 4 | 8][]): Uint8Array {
  const size = fields.reduce((n, [, s]) => n + s, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let p = 0;
  for (const [x, s] of fields) {
    if (s === 8) v.setBigUint64(p, BigInt(x), true);
    else if (s === 4) v.setUint32(p, Number(x), true);
    else v.setUint16(p, Number(x), true);
    p += s;
  }
  return out;
}

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let p = 0;
  for (const x of parts) {
    out.set(x, p);
    p += x.length;
  }
  return out;
};

/** cuse_init_in: major, minor, unused, flags (the kernel sets CUSE_UNRESTRICTED_IOCTL). */
export const cuseInit = (unique: bigint, major = 7, minor = 37) => request(OP.CUSE_INIT, unique, le([major, 4], [minor, 4], [0, 4], [1, 4]));
/** fuse_open_in: flags (O_RDWR = 2), open_flags. */
export const open = (unique: bigint, flags = 2) => request(OP.OPEN, unique, le([flags, 4], [0, 4]));
/** fuse_read_in: fh, offset, size, read_flags, lock_owner, flags, padding. */
export const read = (unique: bigint, size: number, opts: { fh?: bigint; flags?: number } = {}) =>
  request(OP.READ, unique, le([opts.fh ?? 1n, 8], [0, 8], [size, 4], [0, 4], [0, 8], [opts.flags ?? 2, 4], [0, 4]));
/** fuse_write_in (same layout as read_in) then the data. `size` overrides the size field. */
export const write = (unique: bigint, data: Uint8Array, opts: { size?: number; fh?: bigint } = {}) =>
  request(OP.WRITE, unique, cat(le([opts.fh ?? 1n, 8], [0, 8], [opts.size ?? data.length, 4], [0, 4], [0, 8], [2, 4], [0, 4]), data));
/** fuse_release_in: fh, flags, release_flags, lock_owner. */
export const release = (unique: bigint, fh = 1n) => request(OP.RELEASE, unique, le([fh, 8], [2, 4], [0, 4], [0, 8]));
/** fuse_ioctl_in: fh, flags, cmd, arg, in_size, out_size, then in_size bytes. */
export const ioctl = (unique: bigint, cmd: number, input: Uint8Array, outSize: number, opts: { inSize?: number } = {}) =>
  request(OP.IOCTL, unique, cat(le([1n, 8], [0, 4], [cmd, 4], [0x7ffc0000n, 8], [opts.inSize ?? input.length, 4], [outSize, 4]), input));
/** fuse_poll_in: fh, kh, flags, events. */
export const poll = (unique: bigint, kh: bigint, flags: number, events = 0x145) => request(OP.POLL, unique, le([1n, 8], [kh, 8], [flags, 4], [events, 4]));
/** fuse_interrupt_in: the unique of the interrupted request; the header's unique has bit 0 set. */
export const interrupt = (target: bigint) => request(OP.INTERRUPT, target | 1n, le([target, 8]));

export { cat, le };

/** Reads a reply: fuse_out_header (len, error, unique) and the payload after it. */
export function parseReply(buf: Uint8Array) {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    len: v.getUint32(0, true),
    error: v.getInt32(4, true),
    unique: v.getBigUint64(8, true),
    payload: buf.subarray(16),
  };
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
export const u32le = (n: number) => le([n, 4]);
