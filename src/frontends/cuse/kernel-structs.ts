/**
 * The FUSE/CUSE kernel structures a CUSE server reads from and writes to /dev/cuse (Linux
 * include/uapi/linux/fuse.h, protocol 7.x; swtpm-compat §3.2–§3.3). Each layout is declared once
 * here as a list of fields; `decode`/`encode` derive offsets and sizes from that list. All fields
 * are in host byte order, little-endian on the x86_64 and aarch64 hosts vtpmd supports.
 */

type FieldType = 'u16' | 'u32' | 's32' | 'u64';
const SIZE: Record<FieldType, number> = { u16: 2, u32: 4, s32: 4, u64: 8 };

type ValueOf<T extends FieldType> = T extends 'u64' ? bigint : number;
type Fields = readonly (readonly [string, FieldType])[];
export type StructValue<F extends Fields> = { [E in F[number] as E[0]]: ValueOf<E[1]> };

export interface Struct<F extends Fields> {
  readonly name: string;
  readonly size: number;
  /** Reads the struct at `offset`; the caller has checked that `size` bytes are there. */
  decode(buf: Uint8Array, offset?: number): StructValue<F>;
  /** Writes the struct at `offset`; fields not given are zero. */
  encode(value: Partial<StructValue<F>>, buf?: Uint8Array, offset?: number): Uint8Array;
}

function struct<const F extends Fields>(name: string, fields: F, padTo?: number): Struct<F> {
  const layout: { name: string; type: FieldType; offset: number }[] = [];
  let size = 0;
  for (const [fname, type] of fields) {
    layout.push({ name: fname, type, offset: size });
    size += SIZE[type];
  }
  if (padTo !== undefined) size = padTo;
  return {
    name,
    size,
    decode(buf, offset = 0) {
      const v = new DataView(buf.buffer, buf.byteOffset + offset, size);
      const out: Record<string, number | bigint> = {};
      for (const f of layout) {
        out[f.name] =
          f.type === 'u16' ? v.getUint16(f.offset, true)
          : f.type === 'u32' ? v.getUint32(f.offset, true)
          : f.type === 's32' ? v.getInt32(f.offset, true)
          : v.getBigUint64(f.offset, true);
      }
      return out as StructValue<F>;
    },
    encode(value, buf = new Uint8Array(size), offset = 0) {
      const v = new DataView(buf.buffer, buf.byteOffset + offset, size);
      const values = value as Record<string, number | bigint | undefined>;
      for (const f of layout) {
        const x = values[f.name];
        if (x === undefined) continue;
        if (f.type === 'u64') v.setBigUint64(f.offset, BigInt(x), true);
        else if (f.type === 'u16') v.setUint16(f.offset, Number(x), true);
        else if (f.type === 's32') v.setInt32(f.offset, Number(x), true);
        else v.setUint32(f.offset, Number(x) >>> 0, true);
      }
      return buf;
    },
  };
}

/** Opcodes (enum fuse_opcode; CUSE_INIT from enum cuse_opcode). */
export const FUSE_OP = {
  FORGET: 2,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  RELEASE: 18,
  FSYNC: 20,
  FLUSH: 25,
  INTERRUPT: 36,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  BATCH_FORGET: 42,
  CUSE_INIT: 4096,
} as const;

/** The kernel protocol version this server speaks (fuse.h 7.38; CUSE needs ≥ 7.11). */
export const FUSE_KERNEL_VERSION = 7;
export const FUSE_KERNEL_MINOR_VERSION = 38;
export const CUSE_MIN_MINOR_VERSION = 11;

/** cuse_init_in/out flags. */
export const CUSE_UNRESTRICTED_IOCTL = 1;
/** fuse_poll_in flags: the kernel wants a FUSE_NOTIFY_POLL when readiness changes. */
export const FUSE_POLL_SCHEDULE_NOTIFY = 1;
/** fuse_notify_code: sent as `error` in an out header with unique 0. */
export const FUSE_NOTIFY_POLL = 1;
/** CUSE_INIT_INFO_MAX: the devinfo strings after cuse_init_out. */
export const CUSE_INIT_INFO_MAX = 4096;
/** FUSE_MIN_READ_BUFFER: a read of /dev/cuse with a smaller buffer fails with EINVAL. */
export const FUSE_MIN_READ_BUFFER = 8192;

export const fuse_in_header = struct('fuse_in_header', [
  ['len', 'u32'], ['opcode', 'u32'], ['unique', 'u64'], ['nodeid', 'u64'],
  ['uid', 'u32'], ['gid', 'u32'], ['pid', 'u32'], ['total_extlen', 'u16'], ['padding', 'u16'],
] as const);

export const fuse_out_header = struct('fuse_out_header', [['len', 'u32'], ['error', 's32'], ['unique', 'u64']] as const);

export const cuse_init_in = struct('cuse_init_in', [['major', 'u32'], ['minor', 'u32'], ['unused', 'u32'], ['flags', 'u32']] as const);

export const cuse_init_out = struct(
  'cuse_init_out',
  [
    ['major', 'u32'], ['minor', 'u32'], ['unused', 'u32'], ['flags', 'u32'], ['max_read', 'u32'],
    ['max_write', 'u32'], ['dev_major', 'u32'], ['dev_minor', 'u32'],
  ] as const,
  72, // followed by spare[10]
);

export const fuse_open_in = struct('fuse_open_in', [['flags', 'u32'], ['open_flags', 'u32']] as const);
export const fuse_open_out = struct('fuse_open_out', [['fh', 'u64'], ['open_flags', 'u32'], ['padding', 'u32']] as const);

export const fuse_read_in = struct('fuse_read_in', [
  ['fh', 'u64'], ['offset', 'u64'], ['size', 'u32'], ['read_flags', 'u32'], ['lock_owner', 'u64'], ['flags', 'u32'], ['padding', 'u32'],
] as const);

export const fuse_write_in = struct('fuse_write_in', [
  ['fh', 'u64'], ['offset', 'u64'], ['size', 'u32'], ['write_flags', 'u32'], ['lock_owner', 'u64'], ['flags', 'u32'], ['padding', 'u32'],
] as const);
export const fuse_write_out = struct('fuse_write_out', [['size', 'u32'], ['padding', 'u32']] as const);

export const fuse_release_in = struct('fuse_release_in', [
  ['fh', 'u64'], ['flags', 'u32'], ['release_flags', 'u32'], ['lock_owner', 'u64'],
] as const);

export const fuse_ioctl_in = struct('fuse_ioctl_in', [
  ['fh', 'u64'], ['flags', 'u32'], ['cmd', 'u32'], ['arg', 'u64'], ['in_size', 'u32'], ['out_size', 'u32'],
] as const);
export const fuse_ioctl_out = struct('fuse_ioctl_out', [['result', 's32'], ['flags', 'u32'], ['in_iovs', 'u32'], ['out_iovs', 'u32']] as const);

export const fuse_poll_in = struct('fuse_poll_in', [['fh', 'u64'], ['kh', 'u64'], ['flags', 'u32'], ['events', 'u32']] as const);
export const fuse_poll_out = struct('fuse_poll_out', [['revents', 'u32'], ['padding', 'u32']] as const);
export const fuse_notify_poll_wakeup_out = struct('fuse_notify_poll_wakeup_out', [['kh', 'u64']] as const);

export const fuse_interrupt_in = struct('fuse_interrupt_in', [['unique', 'u64']] as const);

/** poll(2) event bits (asm-generic/poll.h). */
export const POLL = { IN: 0x001, OUT: 0x004, RDNORM: 0x040, WRNORM: 0x100 } as const;

/** open(2) flag seen in fuse_read_in.flags / fuse_write_in.flags (asm-generic/fcntl.h). */
export const O_NONBLOCK = 0o4000;

/** errno values used in replies (asm-generic/errno-base.h, errno.h). */
export const ERRNO = {
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EAGAIN: 11,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENOSYS: 38,
  EPROTO: 71,
} as const;

/** An out header plus payload, one buffer: what one write() to /dev/cuse carries. */
export function reply(unique: bigint, payload?: Uint8Array): Uint8Array {
  const len = fuse_out_header.size + (payload?.length ?? 0);
  const out = new Uint8Array(len);
  fuse_out_header.encode({ len, error: 0, unique }, out);
  if (payload) out.set(payload, fuse_out_header.size);
  return out;
}

/** An error reply: exactly the 16-byte header with error = −errno. */
export function errorReply(unique: bigint, errno: number): Uint8Array {
  return fuse_out_header.encode({ len: fuse_out_header.size, error: -errno, unique });
}
