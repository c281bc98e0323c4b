/**
 * The command line (yargs): `vtpmd socket ...` with swtpm's options. The only layer that sets
 * exit codes: a usage or start-up problem prints one line (no stack) and exits with 1.
 *
 * Each command's code (the engine, storage, the X.509 library) is imported only when that
 * command runs: a daemon does not load the provisioning code, `vtpmd setup` starts without the
 * front ends, and `--version` or `--help` load neither.
 */
import { capabilitiesJson, packageVersion } from './capabilities.js';
import { CUSE_OPTIONS, parseCommandArgv, SETUP_OPTIONS, SOCKET_OPTIONS } from './command-options.js';
import { UsageError } from './key-value.js';
import { isDaemonChild, launchDaemon, reportDaemonFailure } from './daemonize.js';
import { enterChroot } from './chroot.js';
import { becomeUser, resolveRunAs } from './runas.js';
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
  const state = parseState({ tpmstate: String(tpmstate) }, {});
  if (state.stateFile !== undefined) throw new UsageError('--print-states is not supported for backend-uri=file:// yet');
  process.stdout.write(printStatesJson(state.stateDir));
  return 0;
}

/** `--print-profiles` (socket, cuse): the built-in profiles, as swtpm prints libtpms' list. */
async function printProfiles(): Promise<number> {
  const { printProfilesText } = await import('./profile-option.js');
  process.stdout.write(printProfilesText());
  return 0;
}

/** `rawArgs`: the command line as given, for --daemon to start the background process with. */
async function socketCommand(argv: Record<string, unknown>, rawArgs: string[]): Promise<number> {
  if (last(argv['print-capabilities'] as boolean | undefined)) {
    process.stdout.write(`${capabilitiesJson()}\n`);
    return 0;
  }
  if (last(argv['print-states'] as boolean | undefined)) return printStates(argv);
  if (last(argv['print-profiles'] as boolean | undefined)) return printProfiles();
  if (last(argv.daemon as boolean | undefined) && !isDaemonChild()) return launchDaemon(rawArgs);
  // Loaded before a chroot, which leaves the modules behind.
  const [{ parseSocketConfig }, { runSocketDaemon }] = await Promise.all([import('./socket-config.js'), import('./socket-daemon.js')]);
  // Before anything is opened, as swtpm does: chroot, then the user (looked up before the chroot).
  const runas = last(argv.runas as string | string[] | undefined);
  const account = runas !== undefined ? resolveRunAs(String(runas)) : undefined;
  const chroot = last(argv.chroot as string | string[] | undefined);
  if (chroot !== undefined) enterChroot(String(chroot));
  if (account) becomeUser(account);
  const args: SocketArgs = {};
  for (const key of ['tpmstate', 'server', 'ctrl', 'port', 'flags', 'pid', 'log', 'profile'] as const) {
    const v = last(argv[key] as string | string[] | undefined);
    if (v !== undefined) args[key] = String(v);
  }
  keyArgs(argv, args);
  args.tpm2 = last(argv.tpm2 as boolean | undefined) ?? false;
  args.terminate = last(argv.terminate as boolean | undefined) ?? false;
  return runSocketDaemon(parseSocketConfig(args));
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
  if (last(argv['print-profiles'] as boolean | undefined)) {
    const { setupPrintProfilesText } = await import('./profile-option.js');
    process.stdout.write(setupPrintProfilesText());
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
    profile: str('profile'),
    profileName: str('profile-name'),
    profileFile: str('profile-file'),
    profileFileFd: str('profile-file-fd'),
  } as import('./setup-config.js').SetupArgs);
  const { runSetup } = await import('./setup-command.js');
  return runSetup(config);
}

/** `rawArgs`: the command line as given, for --daemon to start the background process with. */
async function cuseCommand(argv: Record<string, unknown>, rawArgs: string[]): Promise<number> {
  if (last(argv['print-states'] as boolean | undefined)) return printStates(argv);
  if (last(argv['print-profiles'] as boolean | undefined)) return printProfiles();
  if (last(argv.daemon as boolean | undefined) && !isDaemonChild()) return launchDaemon(rawArgs);
  const args: CuseArgs = { tpm2: last(argv.tpm2 as boolean | undefined) ?? false };
  for (const key of ['name', 'maj', 'min', 'tpmstate', 'flags', 'pid', 'log', 'runas', 'profile'] as const) {
    const v = last(argv[key] as string | string[] | undefined);
    if (v !== undefined) args[key] = String(v);
  }
  keyArgs(argv, args);
  const [{ parseCuseConfig }, { runCuseDaemon }] = await Promise.all([import('./cuse-config.js'), import('./cuse-daemon.js')]);
  // Looked up now, so that a bad user is reported before /dev/cuse is opened (and before a
  // chroot, whose root need not have a user database).
  const account = args.runas !== undefined ? resolveRunAs(args.runas) : undefined;
  // As swtpm cuse: chroot first, so /dev/cuse and every other path (key files too) are inside it.
  const chroot = last(argv.chroot as string | string[] | undefined);
  if (chroot !== undefined) enterChroot(String(chroot));
  const config = parseCuseConfig(args);
  if (account) config.runas = account;
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
        result = cuseCommand(a as Record<string, unknown>, argv);
        result.catch(() => undefined);
      },
    )
    .command(
      'setup',
      'provision a TPM 2.0 state directory: EKs, certificates, PCR banks (swtpm_setup)',
      (y) => y.options(SETUP_OPTIONS),
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
    // An ordinary run parses its options without yargs (see command-options.ts).
    const commands = {
      socket: [SOCKET_OPTIONS, (a: Record<string, unknown>) => socketCommand(a, argv)],
      cuse: [CUSE_OPTIONS, (a: Record<string, unknown>) => cuseCommand(a, argv)],
      setup: [SETUP_OPTIONS, setupCommand],
    } as const;
    const command = commands[argv[0] as keyof typeof commands] as (typeof commands)[keyof typeof commands] | undefined;
    const parsed = command ? parseCommandArgv(argv.slice(1), command[0]) : null;
    code = command && parsed ? await command[1](parsed) : await viaYargs(argv);
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
