/** Part 1 §19.6.4: trailing zeros of an authValue are not significant, so they are removed. */
export function trimTrailingZeros(b: Uint8Array): Uint8Array {
  // Most authValues end in a non-zero byte (or are empty): then b itself, without a new view.
  if (b.length === 0 || b[b.length - 1] !== 0) return b;
  let n = b.length;
  while (n > 0 && b[n - 1] === 0) n--;
  return b.subarray(0, n);
}
