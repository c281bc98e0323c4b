/**
 * The options of `vtpmd socket`, `vtpmd cuse` and `vtpmd setup`, declared once: yargs builds
 * its parser and help from them, and an ordinary run parses them with Node's util.parseArgs
 * instead, so that a daemon never loads yargs (its text layout modules are about 6 MiB of a
 * daemon's private memory) and neither a daemon nor a provisioning run pays its 80 ms of
 * start-up. Anything util.parseArgs does not take as given (--help, --version, an unknown or
 * malformed option, an option without its value) goes to yargs, which gives the message.
 */
import { parseArgs } from 'node:util';

export interface CommandOption {
  type: 'string' | 'boolean';
  /** A one-letter alias (-p) or a second long name (--tpmstate). */
  alias?: string;
  describe: string;
}

const TPMSTATE: CommandOption = { type: 'string', describe: 'dir=DIR[,mode=0640][,lock] or backend-uri=dir://DIR' };
const FLAGS: CommandOption = { type: 'string', describe: 'not-need-init,startup-clear|startup-state|startup-none,disable-auto-shutdown' };
const PID: CommandOption = { type: 'string', describe: 'file=PATH | fd=N' };
const LOG: CommandOption = { type: 'string', describe: 'file=PATH|fd=N[,level=N][,prefix=S][,truncate]' };
const KEY: CommandOption = { type: 'string', describe: 'state encryption: file=F|fd=N[,format=hex|binary][,mode=aes-128-cbc|aes-256-cbc][,remove] or pwdfile=F|pwdfd=N[,kdf=pbkdf2|sha512][,mode=...]' };
const MIGRATION_KEY: CommandOption = { type: 'string', describe: 'encryption of GET_STATEBLOB blobs: same syntax as --key' };
const PRINT_STATES: CommandOption = { type: 'boolean', describe: 'print the state blobs in --tpmstate as JSON and exit' };
const PROFILE: CommandOption = { type: 'string', describe: 'name=NAME|profile=JSON|file=FILE|fd=N: the TPM profile of a TPM manufactured now (an existing TPM keeps its own)' };
const PRINT_PROFILES: CommandOption = { type: 'boolean', describe: 'print the built-in TPM profiles as JSON and exit' };

const CHROOT: CommandOption = {
  alias: 'R',
  type: 'string',
  describe: 'chroot to this directory at start-up (needs root); every other path is then inside it',
};

export const SOCKET_OPTIONS: Record<string, CommandOption> = {
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
  chroot: CHROOT,
  daemon: { alias: 'd', type: 'boolean', describe: 'run in the background once the sockets are ready' },
  terminate: { alias: 't', type: 'boolean', describe: 'exit when the data connection closes' },
  profile: PROFILE,
  'print-capabilities': { type: 'boolean', describe: 'print the supported features as JSON and exit' },
  'print-states': PRINT_STATES,
  'print-profiles': PRINT_PROFILES,
};

export const CUSE_OPTIONS: Record<string, CommandOption> = {
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
  runas: { alias: 'r', type: 'string', describe: 'become this user once the device exists (needs root); the state directory must be writable by it' },
  chroot: CHROOT,
  daemon: { alias: 'd', type: 'boolean', describe: 'run in the background once the device exists' },
  profile: PROFILE,
  'print-states': PRINT_STATES,
  'print-profiles': PRINT_PROFILES,
};

export const SETUP_OPTIONS: Record<string, CommandOption> = {
  tpm2: { type: 'boolean', describe: 'provision a TPM 2.0 (required)' },
  'tpm-state': { alias: 'tpmstate', type: 'string', describe: 'the state directory (dir://DIR or DIR)' },
  vmid: { type: 'string', describe: 'VM identifier: the certificates\' subject CN' },
  logfile: { type: 'string', describe: 'append the report here instead of stdout' },
  createek: { type: 'boolean', describe: 'create the EKs (persistent at the TCG handles)' },
  'create-ek-cert': { type: 'boolean', describe: 'EK certificates from the local CA, stored in NV' },
  'create-platform-cert': { type: 'boolean', describe: 'a platform certificate for the first EK, stored in NV' },
  'lock-nvram': { type: 'boolean', describe: 'write-lock the NV indices written' },
  overwrite: { type: 'boolean', describe: 'replace existing state' },
  'not-overwrite': { type: 'boolean', describe: 'leave existing state alone and succeed' },
  'pcr-banks': { type: 'string', describe: 'banks to activate, e.g. sha256,sha384 (- leaves them); default sha256' },
  ecc: { type: 'boolean', describe: 'an ECC P-384 storage primary key instead of RSA-3072' },
  'create-spk': { type: 'boolean', describe: 'a storage primary key at 0x81000001' },
  'allow-signing': { type: 'boolean', describe: 'EKs that can sign (non-standard template, published in NV)' },
  decryption: { type: 'boolean', describe: 'with --allow-signing: EKs that also decrypt' },
  display: { type: 'boolean', describe: 'print each EK public key and certificate' },
  config: { type: 'string', describe: 'swtpm_setup.conf-style file (default: ~/.config/vtpmd/setup.conf, else /etc/vtpmd/setup.conf, if present)' },
  ek1keyalgo: { type: 'string', describe: 'first EK: rsa2048|rsa3072|rsa4096|secp256r1|secp384r1|secp521r1 (default rsa2048)' },
  ek2keyalgo: { type: 'string', describe: 'second EK (default secp384r1); equal to the first: one EK' },
  'rsa-keysize': { type: 'string', describe: '2048|3072|4096|max: the first EK\'s size without --ek1keyalgo' },
  'write-ek-cert-files': { type: 'string', describe: 'also write ek-<algo>.crt (DER) into this directory' },
  'tpm-manufacturer': { type: 'string', describe: 'EK certificate TPM manufacturer (default: the TPM\'s, id:XXXXXXXX)' },
  'tpm-model': { type: 'string', describe: 'EK certificate TPM model (default swtpm)' },
  'tpm-version': { type: 'string', describe: 'EK certificate TPM version (default: the firmware version, id:XXXXXXXX)' },
  keyfile: { type: 'string', describe: 'encrypt the state with the AES key in this file (hex), as --key file=' },
  'keyfile-fd': { type: 'string', describe: 'like --keyfile, the key read from this file descriptor' },
  pwdfile: { type: 'string', describe: 'encrypt the state with a key derived from the passphrase in this file, as --key pwdfile=' },
  'pwdfile-fd': { type: 'string', describe: 'like --pwdfile, the passphrase read from this file descriptor' },
  cipher: { type: 'string', describe: 'aes-128-cbc (default) or aes-256-cbc; give the daemon the same mode=' },
  reconfigure: { type: 'boolean', describe: 'change the PCR banks (--pcr-banks) of an existing state; nothing else is created' },
  'create-config-files': { type: 'string', describe: '[overwrite][,root][,skip-if-exist]: write setup.conf, localca.conf and localca.options into ~/.config/vtpmd and exit' },
  profile: { type: 'string', describe: 'the TPM profile as JSON, e.g. {"Name":"custom","Commands":"..."}' },
  'profile-name': { type: 'string', describe: 'a built-in TPM profile by name (builtin:NAME too), e.g. default-v1' },
  'profile-file': { type: 'string', describe: 'the TPM profile (JSON) from this file' },
  'profile-file-fd': { type: 'string', describe: 'the TPM profile (JSON) from this file descriptor' },
  'print-capabilities': { type: 'boolean', describe: 'print the supported features as JSON and exit' },
  'print-profiles': { type: 'boolean', describe: 'print the available TPM profiles as JSON and exit' },
};

/**
 * `argv` (after the command word) as yargs would give it to the command, or null when yargs
 * must handle it. A repeated option yields an array, as with yargs; the command keeps the last.
 */
export function parseCommandArgv(argv: string[], options: Record<string, CommandOption>): Record<string, unknown> | null {
  if (argv.some((a) => /^-(-help|-version|h)$/.test(a))) return null;
  const config: Record<string, { type: 'string' | 'boolean'; multiple: true; short?: string }> = {};
  const longAliases: [string, string][] = [];
  for (const [name, o] of Object.entries(options)) {
    config[name] = { type: o.type, multiple: true, ...(o.alias?.length === 1 ? { short: o.alias } : {}) };
    if (o.alias !== undefined && o.alias.length > 1) {
      config[o.alias] = { type: o.type, multiple: true };
      longAliases.push([o.alias, name]);
    }
  }
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, options: config, strict: true, allowPositionals: false }).values;
  } catch {
    return null;
  }
  for (const [alias, name] of longAliases) {
    if (values[alias] === undefined) continue;
    // Both spellings on one line: yargs knows their order.
    if (values[name] !== undefined) return null;
    values[name] = values[alias];
    delete values[alias];
  }
  return values;
}
