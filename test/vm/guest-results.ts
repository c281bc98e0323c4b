// What a guest scenario leaves in its share's steps/ folder, as the VM tests read it: each
// step's output (`<name>.out`) and exit code (`<name>.rc`), and plain numbers (timestamps).
import * as fs from 'node:fs';
import path from 'node:path';
import { it } from 'vitest';

/** Readers of `<share>/steps`; `share` is asked at each read, as it is known only after the boot. */
export function stepReaders(share: () => string) {
  const read = (file: string) => fs.readFileSync(path.join(share(), 'steps', file), 'utf8');
  return {
    out: (name: string) => read(`${name}.out`),
    rc: (name: string) => Number(read(`${name}.rc`).trim()),
    num: (name: string) => Number(read(name).trim()),
  };
}

/** `it` for a check of the results, skipped when the guest could not run. */
export const guestTest = (skipReason: () => string | null) => (name: string, fn: () => void) =>
  it(name, (ctx) => {
    if (skipReason()) ctx.skip();
    fn();
  });
