/**
 * A big-endian cursor over a command buffer. Reading past the end throws TPM_RC_INSUFFICIENT
 * (Part 2 §6.6.3), which the engine turns into a positioned response code.
 */
import { TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';

/** Which kind of value a profile restricts (the TPMI types that carry one, codec.ts). */
export type ProfileDomain = 'alg' | 'curve' | 'rsaKeyBits' | 'aesKeyBits';

/** The TPM's profile (tpm/profile.ts) as the codecs ask it. */
export interface ProfileCheck {
  allows(domain: ProfileDomain, value: number): boolean;
}

export class Reader {
  readonly buf: Uint8Array;
  /**
   * Set on the engine's readers of a command: the values its profile leaves out are refused
   * like unimplemented ones. Absent (state, tests, helpers): every implemented value.
   */
  profile?: ProfileCheck;
  pos: number;
  /** One past the last byte this reader may consume; narrowed by `sized` structures. */
  end: number;
  private readonly view: DataView;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): number {
    if (this.end - this.pos < n) throw new TpmError(TPM_RC.INSUFFICIENT);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.view.getUint8(this.need(1));
  }

  u16(): number {
    return this.view.getUint16(this.need(2));
  }

  u32(): number {
    return this.view.getUint32(this.need(4));
  }

  u64(): bigint {
    return this.view.getBigUint64(this.need(8));
  }

  /** A view (no copy) of the next n bytes. Codecs that keep the bytes copy them. */
  bytes(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }
}
