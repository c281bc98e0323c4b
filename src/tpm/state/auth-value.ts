/** Part 1 §19.6.4: trailing zeros of an authValue are not significant, so they are removed. */
export function trimTrailingZeros(b: Uint8Array): Uint8Array {
  let n = b.length;
  while (n > 0 && b[n - 1] === 0) n--;
  return b.subarray(0, n);
}
