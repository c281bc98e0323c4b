/**
 * The command line (yargs): `vtpmd socket ...` with swtpm's options. The only layer that sets
 * exit codes: a usage or start-up problem prints one line (no stack) and exits with 1.
 */
import yargs from 'yargs';
import { capabilitiesJson, packageVersion } from './capabilities.js';
import { UsageError } from './key-value.js';
import { isDaemonChild, launchDaemon, reportDaemonFailure } from './daemonize.js';
import { printStatesJson } from './print-states.js';
import { dropPrivileges } from './runas.js';
import { parseSocketConfig, parseState, type SocketArgs } from './socket-config.js';
import { parseCuseConfig, type CuseArgs } from './cuse-config.js';

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
function printStates(argv: Record<string, unknown>): number {
  const tpmstate = last(argv.tpmstate as string | string[] | undefined);
  if (tpmstate === undefined) throw new UsageError('--print-states needs --tpmstate dir=DIR');
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
  const config = parseSocketConfig(args);
  const { runSocketDaemon } = await import('./socket-daemon.js');
  return runSocketDaemon(config);
}

async function cuseCommand(argv: Record<string, unknown>): Promise<number> {
  if (last(argv['print-states'] as boolean | undefined)) return printStates(argv);
  const args: CuseArgs = { tpm2: last(argv.tpm2 as boolean | undefined) ?? false };
  for (const key of ['name', 'maj', 'min', 'tpmstate', 'flags', 'pid', 'log'] as const) {
    const v = last(argv[key] as string | string[] | undefined);
    if (v !== undefined) args[key] = String(v);
  }
  keyArgs(argv, args);
  const config = parseCuseConfig(args);
  const { runCuseDaemon } = await import('./cuse-daemon.js');
  return runCuseDaemon(config);
}

export async function main(argv: string[]): Promise<void> {
  let code = 0;
  try {
    let result: Promise<number> | undefined;
    await yargs(argv)
      .scriptName('vtpmd')
      .usage('$0 <command> [options]')
      .command(
        'socket',
        'serve a TPM 2.0 on swtpm-compatible data and control sockets',
        (y) =>
          y
            .option('tpm2', { type: 'boolean', describe: 'emulate a TPM 2.0 (required)' })
            .option('tpmstate', { type: 'string', describe: 'dir=DIR[,mode=0640][,lock] or backend-uri=dir://DIR' })
            .option('server', { type: 'string', describe: 'type=tcp[,port=P][,bindaddr=A][,disconnect] | type=unixio,path=S[,mode=0770]' })
            .option('ctrl', { type: 'string', describe: 'type=tcp,port=P[,bindaddr=A][,terminate] | type=unixio,path=S[,mode=0770][,terminate]' })
            .option('port', { alias: 'p', type: 'string', describe: 'legacy: --server type=tcp,disconnect on this port' })
            .option('flags', { type: 'string', describe: 'not-need-init,startup-clear|startup-state|startup-none,disable-auto-shutdown' })
            .option('pid', { type: 'string', describe: 'file=PATH | fd=N' })
            .option('log', { type: 'string', describe: 'file=PATH|fd=N[,level=N][,prefix=S][,truncate]' })
            .option('key', { type: 'string', describe: 'state encryption: file=F|fd=N[,format=hex|binary][,mode=aes-128-cbc|aes-256-cbc][,remove] or pwdfile=F|pwdfd=N[,kdf=pbkdf2|sha512][,mode=...]' })
            .option('migration-key', { type: 'string', describe: 'encryption of GET_STATEBLOB blobs: same syntax as --key' })
            .option('runas', { alias: 'r', type: 'string', describe: 'run as this user (needs root); files and sockets are created as that user' })
            .option('daemon', { alias: 'd', type: 'boolean', describe: 'run in the background once the sockets are ready' })
            .option('terminate', { alias: 't', type: 'boolean', describe: 'exit when the data connection closes' })
            .option('print-capabilities', { type: 'boolean', describe: 'print the supported features as JSON and exit' })
            .option('print-states', { type: 'boolean', describe: 'print the state blobs in --tpmstate as JSON and exit' }),
        (a) => {
          result = socketCommand(a as Record<string, unknown>, argv);
          result.catch(() => undefined); // awaited below; avoid an early unhandled-rejection report
        },
      )
      .command(
        'cuse',
        'serve a TPM 2.0 as the character device /dev/NAME through CUSE (swtpm cuse)',
        (y) =>
          y
            .option('tpm2', { type: 'boolean', describe: 'emulate a TPM 2.0 (required)' })
            .option('name', { alias: 'n', type: 'string', describe: 'device name: /dev/NAME (required)' })
            .option('maj', { alias: 'M', type: 'string', describe: 'device major number (default: dynamic)' })
            .option('min', { alias: 'm', type: 'string', describe: 'device minor number' })
            .option('tpmstate', { type: 'string', describe: 'dir=DIR[,mode=0640][,lock] or backend-uri=dir://DIR' })
            .option('flags', { type: 'string', describe: 'not-need-init,startup-clear|startup-state|startup-none,disable-auto-shutdown' })
            .option('pid', { type: 'string', describe: 'file=PATH | fd=N' })
            .option('log', { type: 'string', describe: 'file=PATH|fd=N[,level=N][,prefix=S][,truncate]' })
            .option('key', { type: 'string', describe: 'state encryption: file=F|fd=N[,format=hex|binary][,mode=aes-128-cbc|aes-256-cbc][,remove] or pwdfile=F|pwdfd=N[,kdf=pbkdf2|sha512][,mode=...]' })
            .option('migration-key', { type: 'string', describe: 'encryption of GET_STATEBLOB blobs: same syntax as --key' })
            .option('print-states', { type: 'boolean', describe: 'print the state blobs in --tpmstate as JSON and exit' }),
        (a) => {
          result = cuseCommand(a as Record<string, unknown>);
          result.catch(() => undefined);
        },
      )
      .demandCommand(1, 'give a command: vtpmd socket --tpm2 ... or vtpmd cuse --tpm2 -n vtpm0 ...')
      .strict()
      .version(packageVersion())
      .help()
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new UsageError(msg);
      })
      .parseAsync();
    if (result) code = await result;
  } catch (e) {
    const err = e as Error & { code?: string };
    const known = err instanceof UsageError || err.code === 'VTPMD_STARTUP' || err.name === 'YError';
    process.stderr.write(`vtpmd: ${known ? err.message : (err.stack ?? String(err))}\n`);
    reportDaemonFailure(`vtpmd: ${err.message}`);
    if (err instanceof UsageError || err.name === 'YError') process.stderr.write(`Try "vtpmd ${argv[0] === 'cuse' ? 'cuse' : 'socket'} --help".\n`);
    code = 1;
  }
  process.exit(code);
}
