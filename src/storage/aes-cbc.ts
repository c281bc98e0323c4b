/**
 * AES-128/256 in CBC mode without padding (FIPS 197, SP 800-38A), for state encryption at rest.
 * The engine's crypto interface (tpm/crypto) offers AES only in CFB, which never runs the inverse
 * cipher that CBC decryption needs, and nothing outside tpm/crypto may import a crypto library; so
 * this is a small byte-oriented AES of our own. State files are a few KiB: speed does not matter
 * here, and the unit tests check it against FIPS 197's examples and OpenSSL.
 */

const SBOX = new Uint8Array(256);
const INV_SBOX = new Uint8Array(256);
const xtime = (a: number) => ((a << 1) ^ (a & 0x80 ? 0x1b : 0)) & 0xff;

function gmul(a: number, b: number): number {
  let r = 0;
  for (; b; b >>= 1, a = xtime(a)) if (b & 1) r ^= a;
  return r;
}

// The S-box from its definition: the multiplicative inverse in GF(2^8), then the affine map.
for (let x = 0; x < 256; x++) {
  let inv = 0;
  if (x) for (inv = 1; gmul(x, inv) !== 1; inv++);
  let s = inv;
  for (let i = 1; i <= 4; i++) s ^= ((inv << i) | (inv >> (8 - i))) & 0xff;
  SBOX[x] = s ^ 0x63;
  INV_SBOX[s ^ 0x63] = x;
}
const MUL = [9, 11, 13, 14].map((k) => Uint8Array.from({ length: 256 }, (_, a) => gmul(a, k)));
const [M9, M11, M13, M14] = MUL as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];

/** The round keys: 16 × (rounds + 1) bytes. */
function expandKey(key: Uint8Array): Uint8Array {
  if (key.length !== 16 && key.length !== 32) throw new RangeError(`AES key of ${key.length} bytes (16 or 32)`);
  const nk = key.length / 4;
  const total = 16 * (nk + 7);
  const w = new Uint8Array(total);
  w.set(key);
  let rcon = 1;
  for (let i = key.length; i < total; i += 4) {
    let t = [w[i - 4]!, w[i - 3]!, w[i - 2]!, w[i - 1]!];
    const word = i / 4;
    if (word % nk === 0) {
      t = [SBOX[t[1]!]! ^ rcon, SBOX[t[2]!]!, SBOX[t[3]!]!, SBOX[t[0]!]!];
      rcon = xtime(rcon);
    } else if (nk > 6 && word % nk === 4) {
      t = t.map((b) => SBOX[b]!);
    }
    for (let j = 0; j < 4; j++) w[i + j] = w[i - key.length + j]! ^ t[j]!;
  }
  return w;
}

function addRoundKey(s: Uint8Array, w: Uint8Array, round: number): void {
  for (let i = 0; i < 16; i++) s[i]! ^= w[16 * round + i]!;
}

function encryptBlock(s: Uint8Array, w: Uint8Array): void {
  const rounds = w.length / 16 - 1;
  const t = new Uint8Array(16);
  addRoundKey(s, w, 0);
  for (let round = 1; round <= rounds; round++) {
    // SubBytes and ShiftRows (row r rotates left by r columns)
    for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) t[r + 4 * c] = SBOX[s[r + 4 * ((c + r) % 4)]!]!;
    if (round < rounds) {
      for (let c = 0; c < 16; c += 4) {
        const a0 = t[c]!, a1 = t[c + 1]!, a2 = t[c + 2]!, a3 = t[c + 3]!;
        s[c] = xtime(a0) ^ xtime(a1) ^ a1 ^ a2 ^ a3;
        s[c + 1] = a0 ^ xtime(a1) ^ xtime(a2) ^ a2 ^ a3;
        s[c + 2] = a0 ^ a1 ^ xtime(a2) ^ xtime(a3) ^ a3;
        s[c + 3] = xtime(a0) ^ a0 ^ a1 ^ a2 ^ xtime(a3);
      }
    } else {
      s.set(t);
    }
    addRoundKey(s, w, round);
  }
}

function decryptBlock(s: Uint8Array, w: Uint8Array): void {
  const rounds = w.length / 16 - 1;
  const t = new Uint8Array(16);
  addRoundKey(s, w, rounds);
  for (let round = rounds - 1; round >= 0; round--) {
    // InvShiftRows and InvSubBytes
    for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) t[r + 4 * ((c + r) % 4)] = INV_SBOX[s[r + 4 * c]!]!;
    s.set(t);
    addRoundKey(s, w, round);
    if (round > 0) {
      for (let c = 0; c < 16; c += 4) {
        const a0 = s[c]!, a1 = s[c + 1]!, a2 = s[c + 2]!, a3 = s[c + 3]!;
        s[c] = M14[a0]! ^ M11[a1]! ^ M13[a2]! ^ M9[a3]!;
        s[c + 1] = M9[a0]! ^ M14[a1]! ^ M11[a2]! ^ M13[a3]!;
        s[c + 2] = M13[a0]! ^ M9[a1]! ^ M14[a2]! ^ M11[a3]!;
        s[c + 3] = M11[a0]! ^ M13[a1]! ^ M9[a2]! ^ M14[a3]!;
      }
    }
  }
}

function checkLengths(iv: Uint8Array, data: Uint8Array): void {
  if (iv.length !== 16) throw new RangeError(`CBC IV of ${iv.length} bytes (16)`);
  if (data.length % 16 !== 0) throw new RangeError(`CBC data of ${data.length} bytes is not whole blocks`);
}

/** AES-CBC encryption of whole blocks (the caller pads). */
export function aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkLengths(iv, data);
  const w = expandKey(key);
  const out = new Uint8Array(data.length);
  let prev = iv;
  for (let off = 0; off < data.length; off += 16) {
    const block = out.subarray(off, off + 16);
    for (let i = 0; i < 16; i++) block[i] = data[off + i]! ^ prev[i]!;
    encryptBlock(block, w);
    prev = block;
  }
  return out;
}

/** AES-CBC decryption of whole blocks (the caller checks the padding). */
export function aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkLengths(iv, data);
  const w = expandKey(key);
  const out = new Uint8Array(data);
  for (let off = 0; off < data.length; off += 16) {
    const block = out.subarray(off, off + 16);
    decryptBlock(block, w);
    const prev = off === 0 ? iv : data.subarray(off - 16, off);
    for (let i = 0; i < 16; i++) block[i]! ^= prev[i]!;
  }
  return out;
}
