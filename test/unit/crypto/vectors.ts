// Loads a known-answer file from test/vectors/ and converts hex to bytes. Expected values come
// only from those files (published sources), never from the code under test.
import { readFileSync } from 'node:fs';

export interface VectorFile<T> {
  source: string;
  vectors: T[];
}

export function loadVectors<T>(name: string): T[] {
  const url = new URL(`../../vectors/${name}`, import.meta.url);
  const file = JSON.parse(readFileSync(url, 'utf8')) as VectorFile<T>;
  return file.vectors;
}

export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

/** Splits `data` into chunks of 1, 3, 7, 13, 64, 127, 1, 3, ... bytes: odd sizes that straddle blocks. */
export function oddChunks(data: Uint8Array): Uint8Array[] {
  const sizes = [1, 3, 7, 13, 64, 127];
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}
