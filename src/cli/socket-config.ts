/**
 * `vtpmd socket` options → a checked configuration (swtpm-compat §4.2). Every problem is a
 * UsageError whose message says what to change.
 */
import path from 'node:path';
import type { Endpoint } from '../frontends/socket/socket-frontend.js';
import type { StateKeys } from '../storage/state-blob.js';
import { parseKeyOption } from './key-options.js';
import { parseKeyValues, UsageError } from './key-value.js';
import { parseProfileOption } from './profile-option.js';
import type { TpmProfile } from '../tpm/profile.js';

export interface SocketArgs {
  tpm2?: boolean;
  tpmstate?: string;
  server?: string;
  ctrl?: string;
  port?: string;
  flags?: string;
  pid?: string;
  log?: string;
  terminate?: boolean;
  key?: string;
  migrationKey?: string;
  profile?: string;
}

export interface LogConfig {
  file?: string;
  fd?: number;
  level: number;
  prefix?: string;
  truncate: boolean;
}

export interface SocketConfig {
  stateDir: string;
  /** backend-uri=file://: the whole state in this file (stateDir is its directory). */
  stateFile?: string;
  stateMode?: number;
  lock: boolean;
  data?: { endpoint: Endpoint; disconnect: boolean };
  ctrl?: { endpoint: Endpoint; terminate: boolean };
  terminate: boolean;
  notNeedInit: boolean;
  startup: 'clear' | 'state' | null;
  autoShutdown: boolean;
  pidFile?: string;
  pidFd?: number;
  log: LogConfig;
  /** `--key` / `--migration-key`, already read. */
  keys: StateKeys;
  /** `--profile`: the profile a TPM manufactured now gets. */
  profile?: TpmProfile;
}

const DEFAULT_BINDADDR = '127.0.0.1';
const DEFAULT_SOCKET_MODE = 0o770;

const TPMSTATE = { dir: 'string', 'backend-uri': 'string', mode: 'mode', lock: 'boolean', backup: 'boolean', fsync: 'boolean' } as const;
const SERVER = {
  type: 'string', port: 'uint', bindaddr: 'string', ifname: 'string', fd: 'int', disconnect: 'boolean',
  path: 'string', mode: 'mode', uid: 'string', gid: 'string',
} as const;
const CTRL = {
  type: 'string', port: 'uint', bindaddr: 'string', ifname: 'string', fd: 'int', clientfd: 'int',
  path: 'string', mode: 'mode', uid: 'string', gid: 'string', terminate: 'boolean',
} as const;
const FLAGS = {
  'not-need-init': 'boolean', 'startup-clear': 'boolean', 'startup-state': 'boolean',
  'startup-deactivated': 'boolean', 'startup-none': 'boolean', 'disable-auto-shutdown': 'boolean',
} as const;
const PID = { file: 'string', fd: 'int' } as const;
const LOG = { file: 'string', fd: 'int', level: 'uint', prefix: 'string', truncate: 'boolean' } as const;

function notYet(option: string, what: string): never {
  throw new UsageError(`${option}: ${what} is not supported by vtpmd yet`);
}

function checkPort(port: number, option: string): number {
  if (port < 1 || port > 65535) throw new UsageError(`${option}: port ${port} is outside 1..65535`);
  return port;
}

export function parseState(args: Pick<SocketArgs, 'tpmstate'>, env: NodeJS.ProcessEnv): Pick<SocketConfig, 'stateDir' | 'stateFile' | 'stateMode' | 'lock'> {
  if (args.tpmstate === undefined) {
    if (!env.TPM_PATH) throw new UsageError('--tpmstate dir=DIR is required (or set $TPM_PATH)');
    return { stateDir: path.resolve(env.TPM_PATH), lock: true };
  }
  const o = parseKeyValues(args.tpmstate, TPMSTATE, '--tpmstate');
  if (o.backup) notYet('--tpmstate', 'backup');
  let dir = o.dir;
  const uri = o['backend-uri'];
  if (uri !== undefined) {
    if (dir !== undefined) throw new UsageError('--tpmstate: give either dir= or backend-uri=, not both');
    if (uri.startsWith('file://')) {
      const file = uri.slice('file://'.length);
      if (!path.isAbsolute(file)) throw new UsageError(`--tpmstate: backend-uri '${uri}' needs an absolute path (file:///PATH)`);
      // swtpm locks a file backend only when asked; vtpmd's lock is a directory's .lock file.
      if (o.lock) notYet('--tpmstate', 'lock with backend-uri=file://');
      return { stateDir: path.dirname(file), stateFile: file, ...(o.mode !== undefined ? { stateMode: o.mode } : {}), lock: false };
    }
    if (!uri.startsWith('dir://')) throw new UsageError(`--tpmstate: backend-uri '${uri}' must start with dir:// or file://`);
    dir = uri.slice('dir://'.length);
  }
  if (!dir) throw new UsageError('--tpmstate: dir=DIR (or backend-uri=dir://DIR) is required');
  return { stateDir: path.resolve(dir), ...(o.mode !== undefined ? { stateMode: o.mode } : {}), lock: o.lock ?? true };
}

function parseServer(spec: string, env: NodeJS.ProcessEnv): NonNullable<SocketConfig['data']> {
  const o = parseKeyValues(spec, SERVER, '--server');
  const type = o.type ?? 'tcp';
  if (o.fd !== undefined) notYet('--server', 'fd=');
  if (o.uid !== undefined || o.gid !== undefined) notYet('--server', 'uid=/gid=');
  if (type === 'tcp') {
    if (o.ifname !== undefined) notYet('--server', 'ifname=');
    let port = o.port;
    if (port === undefined) {
      const fromEnv = env.TPM_PORT !== undefined && /^\d+$/.test(env.TPM_PORT) ? Number(env.TPM_PORT) : undefined;
      if (fromEnv === undefined) throw new UsageError('--server type=tcp needs port=N ($TPM_PORT is not set or not a number)');
      port = fromEnv;
    }
    return { endpoint: { type: 'tcp', port: checkPort(port, '--server'), host: o.bindaddr ?? DEFAULT_BINDADDR }, disconnect: o.disconnect ?? false };
  }
  if (type === 'unixio') {
    if (!o.path) throw new UsageError('--server type=unixio needs path=SOCKET');
    return { endpoint: { type: 'unix', path: path.resolve(o.path), mode: o.mode ?? DEFAULT_SOCKET_MODE }, disconnect: o.disconnect ?? false };
  }
  throw new UsageError(`--server: unsupported type '${type}' (use tcp or unixio)`);
}

function parseCtrl(spec: string): NonNullable<SocketConfig['ctrl']> {
  const o = parseKeyValues(spec, CTRL, '--ctrl');
  if (o.fd !== undefined || o.clientfd !== undefined) notYet('--ctrl', 'fd=/clientfd=');
  if (o.uid !== undefined || o.gid !== undefined) notYet('--ctrl', 'uid=/gid=');
  const terminate = o.terminate ?? false;
  if (o.type === 'tcp') {
    if (o.ifname !== undefined) notYet('--ctrl', 'ifname=');
    if (o.port === undefined) throw new UsageError('--ctrl type=tcp needs port=N');
    return { endpoint: { type: 'tcp', port: checkPort(o.port, '--ctrl'), host: o.bindaddr ?? DEFAULT_BINDADDR }, terminate };
  }
  if (o.type === 'unixio') {
    if (!o.path) throw new UsageError('--ctrl type=unixio needs path=SOCKET');
    return { endpoint: { type: 'unix', path: path.resolve(o.path), mode: o.mode ?? DEFAULT_SOCKET_MODE }, terminate };
  }
  throw new UsageError(o.type === undefined ? '--ctrl needs type=tcp or type=unixio' : `--ctrl: unsupported type '${o.type}' (use tcp or unixio)`);
}

/** Read last, after every other option was checked, so a usage error never consumes a key file with remove=. */
function parseKeys(args: { key?: string; migrationKey?: string }): StateKeys {
  const keys: StateKeys = {};
  if (args.key !== undefined) keys.file = parseKeyOption(args.key, '--key');
  if (args.migrationKey !== undefined) keys.migration = parseKeyOption(args.migrationKey, '--migration-key');
  return keys;
}

export function parseSocketConfig(args: SocketArgs, env: NodeJS.ProcessEnv = process.env): SocketConfig {
  if (!args.tpm2) throw new UsageError('vtpmd emulates TPM 2.0 only; pass --tpm2');

  let serverSpec = args.server;
  if (args.port !== undefined) {
    if (serverSpec !== undefined) throw new UsageError('give either -p/--port or --server, not both');
    if (!/^(0x[0-9a-f]+|\d+)$/i.test(args.port) || Number(args.port) >= 0x10000) {
      throw new UsageError(`-p/--port: cannot parse port number '${args.port}'`);
    }
    env = { ...env, TPM_PORT: String(Number(args.port)) };
    serverSpec = 'type=tcp,disconnect';
  }

  const flags = args.flags !== undefined ? parseKeyValues(args.flags, FLAGS, '--flags') : {};
  if (flags['startup-deactivated'] && !flags['startup-clear'] && !flags['startup-state']) {
    throw new UsageError('--flags startup-deactivated is not valid for a TPM 2; use startup-clear or startup-state');
  }
  const startup = flags['startup-clear'] ? 'clear' : flags['startup-state'] ? 'state' : null;

  const pid = args.pid !== undefined ? parseKeyValues(args.pid, PID, '--pid') : undefined;
  if (pid && pid.file === undefined && pid.fd === undefined) throw new UsageError('--pid needs file=PATH or fd=N');

  const logOpts = args.log !== undefined ? parseKeyValues(args.log, LOG, '--log') : {};
  const log: LogConfig = { level: logOpts.level ?? 1, truncate: logOpts.truncate ?? false };
  if (logOpts.file !== undefined) log.file = logOpts.file;
  if (logOpts.fd !== undefined) log.fd = logOpts.fd;
  if (logOpts.prefix !== undefined) log.prefix = logOpts.prefix;

  const data = serverSpec !== undefined ? parseServer(serverSpec, env) : undefined;
  const ctrl = args.ctrl !== undefined ? parseCtrl(args.ctrl) : undefined;
  if (!data && !ctrl) throw new UsageError('give --server (data channel) and/or --ctrl (control channel)');
  if (data && ctrl && data.endpoint.type === 'tcp' && ctrl.endpoint.type === 'tcp' && data.endpoint.port === ctrl.endpoint.port) {
    throw new UsageError(`--server and --ctrl both use port ${data.endpoint.port}; use two ports (tpm2-tss expects ctrl = data + 1)`);
  }

  const profile = args.profile !== undefined ? parseProfileOption(args.profile) : undefined;
  const config: SocketConfig = {
    ...parseState(args, env),
    ...(profile !== undefined ? { profile } : {}),
    terminate: args.terminate ?? false,
    notNeedInit: (flags['not-need-init'] ?? false) || startup !== null,
    startup,
    autoShutdown: !(flags['disable-auto-shutdown'] ?? false),
    log,
    keys: parseKeys(args),
  };
  if (data) config.data = data;
  if (ctrl) config.ctrl = ctrl;
  if (pid?.file !== undefined) config.pidFile = path.resolve(pid.file);
  if (pid?.fd !== undefined) config.pidFd = pid.fd;
  return config;
}
