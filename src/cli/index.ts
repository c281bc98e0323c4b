/**
 * The command line (yargs): `vtpmd socket ...` with swtpm's options. The only layer that sets
 * exit codes: a usage or start-up problem prints one line (no stack) and exits with 1.
 *
 * Each command's code (the engine, storage, the X.509 library) is imported only when that
 * command runs: a daemon does not load the provisioning code, `vtpmd setup` starts without the
 * front ends, and `--version` or `--help` load neither.
 */
import { capabilitiesJson, packageVersion } from './capabilities.js';
import { CUSE_OPTIONS, parseDaemonArgv, SOCKET_OPTIONS } from './daemon-options.js';
import { UsageError } from './key-value.js';
import { isDaemonChild, launchDaemon, reportDaemonFailure } from './daemonize.js';
import { dropPrivileges } from './runas.js';
import type { SocketArgs } from './socket-config.js';
import type { CuseArgs } from './cuse-config.js';

/** getopt semantics: a repeated option keeps its last value. */
function last<T>(v: T | T[] | undefined): T | undefined {
  return Array.isArray(v) ? v[v.length - 1] : v;
}

function keyArgs(argv: Record<string, unknown>, args: { key?: string; migrationKey?: string }): void {
  const key = last(argv.key as string | string[] | undefined);
  const migrationKey = last(argv['migration-key'] as string | string[] | undefined);
  if (key !== undefined) args.key = String(key);
  if (migrationKey !== undefined) args.migrationKey = String(migrationKey);
}

/** `--print-states` needs an explicit --tpmstate, as in swtpm. */
async function printStates(argv: Record<string, unknown>): Promise<number> {
  const tpmstate = last(argv.tpmstate as string | string[] | undefined);
  if (tpmstate === undefined) throw new UsageError('--print-states needs --tpmstate dir=DIR');
  const [{ printStatesJson }, { parseState }] = await Promise.all([import('./print-states.js'), import('./socket-config.js')]);
  process.stdout.write(printStatesJson(parseState({ tpmstate: String(tpmstate) }, {}).stateDir));
  return 0;
}

/** `rawArgs`: the command line as given, for --daemon to start the background process with. */
async function socketCommand(argv: Record<string, unknown>, rawArgs: string[]): Promise<number> {
  if (last(argv['print-capabilities'] as boolean | undefined)) {
    process.stdout.write(`${capabilitiesJson()}\n`);
    return 0;
  }
  if (last(argv['print-states'] as boolean | undefined)) return printStates(argv);
  if (last(argv.daemon as boolean | undefined) && !isDaemonChild()) return launchDaemon(rawArgs);
  const runas = last(argv.runas as string | string[] | undefined);
  // Before anything is opened, as swtpm does; a usage problem with the user is reported first.
  if (runas !== undefined) dropPrivileges(String(runas));
  const args: SocketArgs = {};
  for (const key of ['tpmstate', 'server', 'ctrl', 'port', 'flags', 'pid', 'log'] as const) {
    const v = last(argv[key] as string | string[] | undefined);
    if (v !== undefined) args[key] = String(v);
  }
  keyArgs(argv, args);
  args.tpm2 = last(argv.tpm2 as boolean | undefined) ?? false;
  args.terminate = last(argv.terminate as boolean | undefined) ?? false;
  const { parseSocketConfig } = await import('./socket-config.js');
  const config = parseSocketConfig(args);
  const { runSocketDaemon } = await import('./socket-daemon.js');
  return runSocketDaemon(config);
}

async function setupCommand(argv: Record<string, unknown>): Promise<number> {
  const configFiles = last(argv['create-config-files'] as string | string[] | undefined);
  if (configFiles !== undefined) {
    // As swtpm_setup: only the files are written, every other option is ignored.
    const { createConfigFiles, parseConfigFilesFlags, ConfigFilesError } = await import('../setup/config-files.js');
    try {
      for (const line of createConfigFiles(parseConfigFilesFlags(String(configFiles)), process.getuid?.() ?? -1)) process.stdout.write(`${line}\n`);
      return 0;
    } catch (e) {
      if (e instanceof ConfigFilesError) throw new UsageError(e.message);
      throw e;
    }
  }
  const { parseSetupArgs, setupCapabilitiesJson } = await import('./setup-config.js');
  if (last(argv['print-capabilities'] as boolean | undefined)) {
    process.stdout.write(`${setupCapabilitiesJson(packageVersion())}\n`);
    return 0;
  }
  const pick = <T>(key: string) => last(argv[key] as T | T[] | undefined);
  const str = (key: string) => {
    const v = pick<string | number>(key);
    return v === undefined ? undefined : String(v);
  };
  const config = parseSetupArgs({
    tpm2: pick<boolean>('tpm2'),
    tpmState: str('tpm-state') ?? str('tpmstate'),
    vmid: str('vmid'),
    logfile: str('logfile'),
    createek: pick<boolean>('createek'),
    createEkCert: pick<boolean>('create-ek-cert'),
    createPlatformCert: pick<boolean>('create-platform-cert'),
    lockNvram: pick<boolean>('lock-nvram'),
    overwrite: pick<boolean>('overwrite'),
    notOverwrite: pick<boolean>('not-overwrite'),
    pcrBanks: str('pcr-banks'),
    ecc: pick<boolean>('ecc'),
    createSpk: pick<boolean>('create-spk'),
    allowSigning: pick<boolean>('allow-signing'),
    decryption: pick<boolean>('decryption'),
    display: pick<boolean>('display'),
    config: str('config'),
    ek1keyalgo: str('ek1keyalgo'),
    ek2keyalgo: str('ek2keyalgo'),
    rsaKeysize: str('rsa-keysize'),
    writeEkCertFiles: str('write-ek-cert-files'),
    tpmManufacturer: str('tpm-manufacturer'),
    tpmModel: str('tpm-model'),
    tpmVersion: str('tpm-version'),
    keyfile: str('keyfile'),
    keyfileFd: str('keyfile-fd'),
    pwdfile: str('pwdfile'),
    pwdfileFd: str('pwdfile-fd'),
    cipher: str('cipher'),
    reconfigure: pick<boolean>('reconfigure'),
  } as import('./setup-config.js').SetupArgs);
  const { runSetup } = await import('./setup-command.js');
  return runSetup(config);
}

async function cuseCommand(argv: Record<string, unknown>): Promise<number> {
  if (last(argv['print-states'] as boolean | undefined)) return printStates(argv);
  const args: CuseArgs = { tpm2: last(argv.tpm2 as boolean | undefined) ?? false };
  for (const key of ['name', 'maj', 'min', 'tpmstate', 'flags', 'pid', 'log'] as const) {
    const v = last(argv[key] as string | string[] | undefined);
    if (v !== undefined) args[key] = String(v);
  }
  keyArgs(argv, args);
  const { parseCuseConfig } = await import('./cuse-config.js');
  const config = parseCuseConfig(args);
  const { runCuseDaemon } = await import('./cuse-daemon.js');
  return runCuseDaemon(config);
}

/** yargs takes a lone "-" for a positional; swtpm_setup's `--pcr-banks -` means "leave the banks". */
function joinDashValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--pcr-banks' && argv[i + 1] === '-') out.push(`--pcr-banks=${argv[++i]}`);
    else out.push(argv[i]!);
  }
  return out;
}

/** Everything but a daemon's ordinary start: help, version, setup, and messages for bad options. */
async function viaYargs(argv: string[]): Promise<number> {
  let result: Promise<number> | undefined;
  const { default: yargs } = await import('yargs');
  await yargs(argv)
    .scriptName('vtpmd')
    .usage('$0 <command> [options]')
    // yargs renders the help text before every command it runs (to have it at hand on a
    // failure); wrapping it to the terminal's width cost 35-60 ms of each start-up.
    .wrap(null)
    .command(
      'socket',
      'serve a TPM 2.0 on swtpm-compatible data and control sockets',
      (y) => y.options(SOCKET_OPTIONS),
      (a) => {
        result = socketCommand(a as Record<string, unknown>, argv);
        result.catch(() => undefined); // awaited below; avoid an early unhandled-rejection report
      },
    )
    .command(
      'cuse',
      'serve a TPM 2.0 as the character device /dev/NAME through CUSE (swtpm cuse)',
      (y) => y.options(CUSE_OPTIONS),
      (a) => {
        result = cuseCommand(a as Record<string, unknown>);
        result.catch(() => undefined);
      },
    )
    .command(
      'setup',
      'provision a TPM 2.0 state directory: EKs, certificates, PCR banks (swtpm_setup)',
      (y) =>
        y
          .option('tpm2', { type: 'boolean', describe: 'provision a TPM 2.0 (required)' })
          .option('tpm-state', { alias: 'tpmstate', type: 'string', describe: 'the state directory (dir://DIR or DIR)' })
          .option('vmid', { type: 'string', describe: 'VM identifier: the certificates\' subject CN' })
          .option('logfile', { type: 'string', describe: 'append the report here instead of stdout' })
          .option('createek', { type: 'boolean', describe: 'create the EKs (persistent at the TCG handles)' })
          .option('create-ek-cert', { type: 'boolean', describe: 'EK certificates from the local CA, stored in NV' })
          .option('create-platform-cert', { type: 'boolean', describe: 'a platform certificate for the first EK, stored in NV' })
          .option('lock-nvram', { type: 'boolean', describe: 'write-lock the NV indices written' })
          .option('overwrite', { type: 'boolean', describe: 'replace existing state' })
          .option('not-overwrite', { type: 'boolean', describe: 'leave existing state alone and succeed' })
          .option('pcr-banks', { type: 'string', describe: 'banks to activate, e.g. sha256,sha384 (- leaves them); default sha256' })
          .option('ecc', { type: 'boolean', describe: 'an ECC P-384 storage primary key instead of RSA-3072' })
          .option('create-spk', { type: 'boolean', describe: 'a storage primary key at 0x81000001' })
          .option('allow-signing', { type: 'boolean', describe: 'EKs that can sign (non-standard template, published in NV)' })
          .option('decryption', { type: 'boolean', describe: 'with --allow-signing: EKs that also decrypt' })
          .option('display', { type: 'boolean', describe: 'print each EK public key and certificate' })
          .option('config', { type: 'string', describe: `swtpm_setup.conf-style file (default ${'/etc/vtpmd/setup.conf'} if present)` })
          .option('ek1keyalgo', { type: 'string', describe: 'first EK: rsa2048|rsa3072|rsa4096|secp256r1|secp384r1|secp521r1 (default rsa2048)' })
          .option('ek2keyalgo', { type: 'string', describe: 'second EK (default secp384r1); equal to the first: one EK' })
          .option('rsa-keysize', { type: 'string', describe: '2048|3072|4096|max: the first EK\'s size without --ek1keyalgo' })
          .option('write-ek-cert-files', { type: 'string', describe: 'also write ek-<algo>.crt (DER) into this directory' })
          .option('tpm-manufacturer', { type: 'string', describe: 'EK certificate TPM manufacturer (default: the TPM\'s, id:XXXXXXXX)' })
          .option('tpm-model', { type: 'string', describe: 'EK certificate TPM model (default swtpm)' })
          .option('tpm-version', { type: 'string', describe: 'EK certificate TPM version (default: the firmware version, id:XXXXXXXX)' })
          .option('keyfile', { type: 'string', describe: 'encrypt the state with the AES key in this file (hex), as --key file=' })
          .option('keyfile-fd', { type: 'string', describe: 'like --keyfile, the key read from this file descriptor' })
          .option('pwdfile', { type: 'string', describe: 'encrypt the state with a key derived from the passphrase in this file, as --key pwdfile=' })
          .option('pwdfile-fd', { type: 'string', describe: 'like --pwdfile, the passphrase read from this file descriptor' })
          .option('cipher', { type: 'string', describe: 'aes-128-cbc (default) or aes-256-cbc; give the daemon the same mode=' })
          .option('reconfigure', { type: 'boolean', describe: 'change the PCR banks (--pcr-banks) of an existing state; nothing else is created' })
          .option('create-config-files', { type: 'string', describe: '[overwrite][,root][,skip-if-exist]: write setup.conf, localca.conf and localca.options into ~/.config/vtpmd and exit' })
          .option('print-capabilities', { type: 'boolean', describe: 'print the supported features as JSON and exit' }),
      (a) => {
        result = setupCommand(a as Record<string, unknown>);
        result.catch(() => undefined);
      },
    )
    .demandCommand(1, 'give a command: vtpmd socket --tpm2 ..., vtpmd cuse --tpm2 -n vtpm0 ... or vtpmd setup --tpm2 --tpm-state DIR ...')
    .strict()
    .version(packageVersion())
    .help()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    })
    .parseAsync();
  return result ? await result : 0;
}

export async function main(rawArgv: string[]): Promise<void> {
  const argv = joinDashValues(rawArgv);
  let code = 0;
  try {
    // A daemon's start: the options are parsed without yargs (see daemon-options.ts).
    const daemonOptions = argv[0] === 'socket' ? SOCKET_OPTIONS : argv[0] === 'cuse' ? CUSE_OPTIONS : undefined;
    const parsed = daemonOptions ? parseDaemonArgv(argv.slice(1), daemonOptions) : null;
    code = parsed ? await (argv[0] === 'socket' ? socketCommand(parsed, argv) : cuseCommand(parsed)) : await viaYargs(argv);
  } catch (e) {
    const err = e as Error & { code?: string };
    const known = err instanceof UsageError || err.code === 'VTPMD_STARTUP' || err.name === 'YError';
    process.stderr.write(`vtpmd: ${known ? err.message : (err.stack ?? String(err))}\n`);
    reportDaemonFailure(`vtpmd: ${err.message}`);
    if (err instanceof UsageError || err.name === 'YError') process.stderr.write(`Try "vtpmd ${argv[0] === 'cuse' || argv[0] === 'setup' ? argv[0] : 'socket'} --help".\n`);
    code = 1;
  }
  process.exit(code);
}
