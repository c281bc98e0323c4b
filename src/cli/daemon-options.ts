/**
 * The options of `vtpmd socket` and `vtpmd cuse`, declared once: yargs builds its parser and
 * help from them, and a daemon's ordinary start parses them with Node's util.parseArgs instead,
 * so that the daemon never loads yargs (its text layout modules are about 6 MiB of a daemon's
 * resident memory and 80 ms of its start-up). Anything util.parseArgs does not take as given
 * (--help, --version, an unknown or malformed option) goes to yargs, which gives the message.
 */
import { parseArgs } from 'node:util';

export interface DaemonOption {
  type: 'string' | 'boolean';
  alias?: string;
  describe: string;
}

const TPMSTATE: DaemonOption = { type: 'string', describe: 'dir=DIR[,mode=0640][,lock] or backend-uri=dir://DIR' };
const FLAGS: DaemonOption = { type: 'string', describe: 'not-need-init,startup-clear|startup-state|startup-none,disable-auto-shutdown' };
const PID: DaemonOption = { type: 'string', describe: 'file=PATH | fd=N' };
const LOG: DaemonOption = { type: 'string', describe: 'file=PATH|fd=N[,level=N][,prefix=S][,truncate]' };
const KEY: DaemonOption = { type: 'string', describe: 'state encryption: file=F|fd=N[,format=hex|binary][,mode=aes-128-cbc|aes-256-cbc][,remove] or pwdfile=F|pwdfd=N[,kdf=pbkdf2|sha512][,mode=...]' };
const MIGRATION_KEY: DaemonOption = { type: 'string', describe: 'encryption of GET_STATEBLOB blobs: same syntax as --key' };
const PRINT_STATES: DaemonOption = { type: 'boolean', describe: 'print the state blobs in --tpmstate as JSON and exit' };

export const SOCKET_OPTIONS: Record<string, DaemonOption> = {
  tpm2: { type: 'boolean', describe: 'emulate a TPM 2.0 (required)' },
  tpmstate: TPMSTATE,
  server: { type: 'string', describe: 'type=tcp[,port=P][,bindaddr=A][,disconnect] | type=unixio,path=S[,mode=0770]' },
  ctrl: { type: 'string', describe: 'type=tcp,port=P[,bindaddr=A][,terminate] | type=unixio,path=S[,mode=0770][,terminate]' },
  port: { alias: 'p', type: 'string', describe: 'legacy: --server type=tcp,disconnect on this port' },
  flags: FLAGS,
  pid: PID,
  log: LOG,
  key: KEY,
  'migration-key': MIGRATION_KEY,
  runas: { alias: 'r', type: 'string', describe: 'run as this user (needs root); files and sockets are created as that user' },
  daemon: { alias: 'd', type: 'boolean', describe: 'run in the background once the sockets are ready' },
  terminate: { alias: 't', type: 'boolean', describe: 'exit when the data connection closes' },
  'print-capabilities': { type: 'boolean', describe: 'print the supported features as JSON and exit' },
  'print-states': PRINT_STATES,
};

export const CUSE_OPTIONS: Record<string, DaemonOption> = {
  tpm2: { type: 'boolean', describe: 'emulate a TPM 2.0 (required)' },
  name: { alias: 'n', type: 'string', describe: 'device name: /dev/NAME (required)' },
  maj: { alias: 'M', type: 'string', describe: 'device major number (default: dynamic)' },
  min: { alias: 'm', type: 'string', describe: 'device minor number' },
  tpmstate: TPMSTATE,
  flags: FLAGS,
  pid: PID,
  log: LOG,
  key: KEY,
  'migration-key': MIGRATION_KEY,
  'print-states': PRINT_STATES,
};

/**
 * `argv` (after the command word) as yargs would give it to the command, or null when yargs
 * must handle it. A repeated option yields an array, as with yargs; the command keeps the last.
 */
export function parseDaemonArgv(argv: string[], options: Record<string, DaemonOption>): Record<string, unknown> | null {
  if (argv.some((a) => /^-(-help|-version|h)$/.test(a))) return null;
  const config = Object.fromEntries(
    Object.entries(options).map(([name, o]) => [name, { type: o.type, multiple: true, ...(o.alias ? { short: o.alias } : {}) }]),
  );
  try {
    return parseArgs({ args: argv, options: config, strict: true, allowPositionals: false }).values;
  } catch {
    return null;
  }
}
