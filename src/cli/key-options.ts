/**
 * `--key` and `--migration-key` (swtpm-compat §4.2, §5.3), with swtpm's option names:
 * `file=F|fd=N[,format=hex|binary][,mode=aes-cbc|aes-128-cbc|aes-256-cbc][,remove]` for a key,
 * `pwdfile=F|pwdfd=N[,kdf=pbkdf2|sha512][,mode=...][,remove]` for a passphrase. The key is read
 * here, once, at start-up; neither it nor the passphrase is ever logged.
 */
import * as fs from 'node:fs';
import { keyFromPassphrase, stateKey, type StateKey } from '../storage/state-key.js';
import { parseKeyValues, UsageError } from './key-value.js';

const KEY = {
  file: 'string', mode: 'string', format: 'string', remove: 'boolean',
  pwdfile: 'string', kdf: 'string', fd: 'int', pwdfd: 'int',
} as const;

function keyLength(mode: string | undefined, option: string): 16 | 32 {
  switch (mode ?? 'aes-128-cbc') {
    case 'aes-cbc':
    case 'aes-128-cbc':
      return 16;
    case 'aes-256-cbc':
      return 32;
    default:
      throw new UsageError(`${option}: unknown mode '${mode}' (use aes-128-cbc, aes-cbc or aes-256-cbc)`);
  }
}

function readSource(file: string | undefined, fd: number | undefined, option: string, what: string): Buffer {
  try {
    if (file !== undefined) return fs.readFileSync(file);
    try {
      return fs.readFileSync(fd!);
    } finally {
      try {
        fs.closeSync(fd!);
      } catch {
        /* already closed */
      }
    }
  } catch (e) {
    const from = file !== undefined ? file : `fd ${fd}`;
    throw new UsageError(`${option}: cannot read the ${what} from ${from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * A hex key file: optional `0x`, exactly as many hex digits as the mode needs, then the end or
 * white space (anything after that is ignored, as swtpm does).
 */
function hexKey(text: string, len: number, option: string): Uint8Array {
  const digits = /^(?:0x)?([0-9a-fA-F]*)(?:\s[\s\S]*)?$/.exec(text)?.[1];
  if (digits === undefined || digits.length % 2 !== 0 || digits.length === 0) {
    throw new UsageError(`${option}: the key file is not a hex key (${len * 2} hex digits, optionally starting with 0x)`);
  }
  if (digits.length !== len * 2) {
    throw new UsageError(`${option}: the key has ${digits.length} hex digits, the mode needs ${len * 2} (aes-128-cbc: 32, aes-256-cbc: 64)`);
  }
  return new Uint8Array(Buffer.from(digits, 'hex'));
}

export function parseKeyOption(spec: string, option: string): StateKey {
  const o = parseKeyValues(spec, KEY, option);
  const sources = [o.file, o.fd, o.pwdfile, o.pwdfd].filter((x) => x !== undefined).length;
  if (sources === 0) throw new UsageError(`${option}: give file=, fd=, pwdfile= or pwdfd=`);
  if (sources > 1) throw new UsageError(`${option}: give only one of file=, fd=, pwdfile= and pwdfd=`);
  for (const fd of [o.fd, o.pwdfd]) {
    if (fd !== undefined && fd < 0) throw new UsageError(`${option}: fd ${fd} is not a file descriptor`);
  }
  const len = keyLength(o.mode, option);
  let key: StateKey;
  if (o.file !== undefined || o.fd !== undefined) {
    if (o.kdf !== undefined) throw new UsageError(`${option}: kdf= applies to pwdfile= and pwdfd= only`);
    const format = o.format ?? 'hex';
    if (format !== 'hex' && format !== 'binary') throw new UsageError(`${option}: unknown format '${format}' (use hex or binary)`);
    const raw = readSource(o.file, o.fd, option, 'key');
    if (format === 'hex') {
      key = stateKey(hexKey(raw.toString('latin1'), len, option));
    } else {
      // swtpm takes a binary key of up to the mode's size that is itself 16 or 32 bytes.
      if (raw.length > len || (raw.length !== 16 && raw.length !== 32)) {
        throw new UsageError(`${option}: a binary key must be ${len} bytes for this mode, the file has ${raw.length}`);
      }
      key = stateKey(raw);
    }
  } else {
    if (o.format !== undefined) throw new UsageError(`${option}: format= applies to file= and fd= only`);
    const kdf = o.kdf ?? 'pbkdf2';
    const pass = readSource(o.pwdfile, o.pwdfd, option, 'passphrase');
    if (kdf !== 'pbkdf2' && kdf !== 'sha512') throw new UsageError(`${option}: unknown kdf '${kdf}' (use pbkdf2 or sha512)`);
    key = keyFromPassphrase(pass, len, kdf);
    pass.fill(0);
  }
  const removable = o.file ?? o.pwdfile;
  if (o.remove && removable !== undefined) {
    try {
      fs.unlinkSync(removable);
    } catch (e) {
      throw new UsageError(`${option}: remove: cannot delete ${removable}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return key;
}
