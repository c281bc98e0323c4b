/**
 * The local CA's configuration file, in swtpm-localca.conf's format: `key = value` lines,
 * `#` comments, `${NAME}` expanded from the environment (and from `env:NAME=value` lines, which
 * also reach the environment the CA runs with). Keys: statedir, signingkey, signingkey_password,
 * issuercert, certserial.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Where the CA lives when no configuration names a place. */
export const DEFAULT_LOCALCA_DIR = '/var/lib/vtpmd/localca';

export interface LocalCaConfig {
  statedir: string;
  /** PEM private key (PKCS#8, or PKCS#1 RSA) that signs the certificates. */
  signingkey: string;
  signingkeyPassword?: string;
  /** PEM certificate of that key: the issuer of every certificate. */
  issuercert: string;
  /** Decimal serial of the last certificate issued. */
  certserial: string;
  /** The `env:` lines. */
  env: Record<string, string>;
}

export class LocalCaConfigError extends Error {
  readonly code = 'VTPMD_LOCALCA_CONFIG';
}

/** `${NAME}` → env[NAME] (missing names expand to nothing, as swtpm's expansion does). */
export function expandVars(value: string, env: Record<string, string | undefined>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => env[name] ?? '');
}

/** Parses the text of a configuration file; relative paths are taken from `baseDir`. */
export function parseLocalCaConfig(
  text: string,
  options: { baseDir?: string; env?: Record<string, string | undefined>; defaultDir?: string } = {},
): LocalCaConfig {
  const fileEnv: Record<string, string> = {};
  const values = new Map<string, string>();
  const lookup = (): Record<string, string | undefined> => ({ ...(options.env ?? process.env), ...fileEnv });
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const env = /^env:([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (env) {
      fileEnv[env[1]!] = expandVars(env[2]!, lookup());
      return;
    }
    const kv = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!kv) throw new LocalCaConfigError(`line ${i + 1}: expected "key = value", got "${line}"`);
    values.set(kv[1]!, expandVars(kv[2]!, lookup()));
  });
  const resolve = (p: string) => (options.baseDir && !path.isAbsolute(p) ? path.resolve(options.baseDir, p) : p);
  const statedir = resolve(values.get('statedir') ?? options.defaultDir ?? DEFAULT_LOCALCA_DIR);
  const password = values.get('signingkey_password');
  if ((values.get('signingkey') ?? '').startsWith('pkcs11:')) {
    throw new LocalCaConfigError('signingkey: PKCS#11 keys are not supported; give a PEM file');
  }
  return {
    statedir,
    signingkey: resolve(values.get('signingkey') ?? path.join(statedir, 'signkey.pem')),
    ...(password !== undefined && password !== '' ? { signingkeyPassword: password } : {}),
    issuercert: resolve(values.get('issuercert') ?? path.join(statedir, 'issuercert.pem')),
    certserial: resolve(values.get('certserial') ?? path.join(statedir, 'certserial')),
    env: fileEnv,
  };
}

/** Reads a configuration file, or gives the defaults under `defaultDir` when `file` is undefined. */
export function loadLocalCaConfig(file: string | undefined, defaultDir: string = DEFAULT_LOCALCA_DIR): LocalCaConfig {
  if (file === undefined) return parseLocalCaConfig('', { defaultDir });
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LocalCaConfigError(`cannot read the local CA configuration ${file}: ${(e as Error).message}`);
  }
  try {
    return parseLocalCaConfig(text, { baseDir: path.dirname(path.resolve(file)), defaultDir });
  } catch (e) {
    throw new LocalCaConfigError(`${file}: ${(e as Error).message}`);
  }
}
