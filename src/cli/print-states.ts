/**
 * `--print-states` (swtpm-compat §5.1): the state blobs present in the state directory as one line
 * of JSON in swtpm's spacing, without a trailing newline, e.g.
 * `{ "type": "swtpm", "states": [ {"name": "permall", "size": 1315} ] }`. It takes no lock, so it
 * works while a daemon runs on the directory. swtpm lists savestate too; a TPM 2 never has one,
 * but a file of that name is reported like swtpm reports it. The permall's size is that of the
 * newest permanent state: the journal's when it holds a newer one than the file (storage/journal.ts).
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { newestPermanent } from '../storage/storage.js';
import { StartupError } from './daemon-setup.js';

const NAMES = ['permall', 'volatilestate', 'savestate'] as const;

export function printStatesJson(stateDir: string): string {
  const entries: string[] = [];
  for (const name of NAMES) {
    const file = path.join(stateDir, `tpm2-00.${name}`);
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new StartupError(`--print-states: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!st.isFile()) throw new StartupError(`--print-states: ${file} is not a regular file`);
    const size = name === 'permall' ? permanentSize(stateDir, st.size) : st.size;
    entries.push(`{"name": "${name}", "size": ${size}}`);
  }
  return `{ "type": "swtpm", "states": [${entries.length ? ` ${entries.join(', ')} ` : ''}] }`;
}

/** The size of the newest permanent state; the file's own size if it changed under us. */
function permanentSize(stateDir: string, fileSize: number): number {
  try {
    return newestPermanent(stateDir)?.bytes.length ?? fileSize;
  } catch (e) {
    throw new StartupError(`--print-states: ${(e as Error).message}`);
  }
}
