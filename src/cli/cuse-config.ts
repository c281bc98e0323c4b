/**
 * `vtpmd cuse` options → a checked configuration, with swtpm cuse's option names
 * (swtpm-compat §4.2: `-n/--name` required, `-M/--maj`, `-m/--min`; no --server or --ctrl).
 * --tpmstate, --flags, --pid and --log mean what they mean for `vtpmd socket`, so they are
 * parsed by the same code.
 */
import { parseSocketConfig, type LogConfig } from './socket-config.js';
import { UsageError } from './key-value.js';
import type { StateKeys } from '../storage/state-blob.js';
import type { RunAs } from './runas.js';
import type { TpmProfile } from '../tpm/profile.js';

export interface CuseArgs {
  tpm2?: boolean;
  name?: string;
  maj?: string;
  min?: string;
  tpmstate?: string;
  flags?: string;
  pid?: string;
  log?: string;
  key?: string;
  migrationKey?: string;
  runas?: string;
  profile?: string;
}

export interface CuseConfig {
  name: string;
  devMajor?: number;
  devMinor?: number;
  stateDir: string;
  /** backend-uri=file://: the whole state in this file (stateDir is its directory). */
  stateFile?: string;
  stateMode?: number;
  lock: boolean;
  notNeedInit: boolean;
  startup: 'clear' | 'state' | null;
  autoShutdown: boolean;
  pidFile?: string;
  pidFd?: number;
  log: LogConfig;
  keys: StateKeys;
  /** `--profile`: the profile a TPM manufactured now gets. */
  profile?: TpmProfile;
  /** -r/--runas: the user to become once the device exists (looked up by the CLI). */
  runas?: RunAs;
}

/** A device name the kernel accepts as DEVNAME and that is a plain file name under /dev. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

function devNumber(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${option}: '${value}' is not a device number`);
  const n = Number(value);
  // MAJOR is 12 bits, MINOR 20 bits (linux/kdev_t.h).
  const max = option.includes('maj') ? 0xfff : 0xfffff;
  if (n > max) throw new UsageError(`${option}: ${n} is larger than ${max}`);
  return n;
}

export function parseCuseConfig(args: CuseArgs, env: NodeJS.ProcessEnv = process.env): CuseConfig {
  if (!args.tpm2) throw new UsageError('vtpmd emulates TPM 2.0 only; pass --tpm2');
  if (args.name === undefined || args.name === '') throw new UsageError('-n/--name NAME is required (the device becomes /dev/NAME, e.g. -n vtpm0)');
  if (!NAME.test(args.name)) {
    throw new UsageError(`-n/--name: '${args.name}' is not a valid device name (letters, digits, '.', '_', '+', '-'; no '/')`);
  }
  // The options shared with `vtpmd socket` go through its parser; the control channel given
  // here only satisfies its "data and/or control channel" rule and is dropped.
  const maj = devNumber(args.maj, '-M/--maj');
  const min = devNumber(args.min, '-m/--min');
  if (min !== undefined && maj === undefined) throw new UsageError('-m/--min needs -M/--maj as well');
  const shared = parseSocketConfig(
    {
      tpm2: true,
      ctrl: 'type=unixio,path=/nonexistent',
      ...(args.tpmstate !== undefined ? { tpmstate: args.tpmstate } : {}),
      ...(args.flags !== undefined ? { flags: args.flags } : {}),
      ...(args.pid !== undefined ? { pid: args.pid } : {}),
      ...(args.log !== undefined ? { log: args.log } : {}),
      ...(args.key !== undefined ? { key: args.key } : {}),
      ...(args.migrationKey !== undefined ? { migrationKey: args.migrationKey } : {}),
      ...(args.profile !== undefined ? { profile: args.profile } : {}),
    },
    env,
  );
  const config: CuseConfig = {
    name: args.name,
    stateDir: shared.stateDir,
    lock: shared.lock,
    notNeedInit: shared.notNeedInit,
    startup: shared.startup,
    autoShutdown: shared.autoShutdown,
    log: shared.log,
    keys: shared.keys,
  };
  if (maj !== undefined) config.devMajor = maj;
  if (min !== undefined) config.devMinor = min;
  if (shared.stateMode !== undefined) config.stateMode = shared.stateMode;
  if (shared.stateFile !== undefined) config.stateFile = shared.stateFile;
  if (shared.pidFile !== undefined) config.pidFile = shared.pidFile;
  if (shared.pidFd !== undefined) config.pidFd = shared.pidFd;
  if (shared.profile !== undefined) config.profile = shared.profile;
  return config;
}
