/**
 * `vtpmd setup --create-config-files [overwrite][,root][,skip-if-exist]`: a user's own setup
 * configuration, as swtpm_setup writes swtpm_setup.conf, swtpm-localca.conf and
 * swtpm-localca.options into the user's configuration directory, so that an unprivileged user
 * (libvirt's session mode) provisions with a local CA of their own. The vtpmd files live in
 * `<config dir>/vtpmd/` and `vtpmd setup` reads `setup.conf` from there before /etc.
 */
import { existsSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The three files, by role. */
export const USER_CONFIG_FILES = { setup: path.join('vtpmd', 'setup.conf'), localca: path.join('vtpmd', 'localca.conf'), options: path.join('vtpmd', 'localca.options') } as const;

/** `$XDG_CONFIG_HOME`, else `~/.config` (GLib's user config dir, which swtpm_setup uses). */
export function userConfigDir(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(env.HOME ?? os.homedir(), '.config');
}

export interface ConfigFilesRequest {
  overwrite: boolean;
  /** Allow root to write files that shadow /etc/vtpmd. */
  root: boolean;
  /** When one of the files exists, succeed without writing anything. */
  skipIfExist: boolean;
}

export class ConfigFilesError extends Error {
  readonly code = 'VTPMD_CONFIG_FILES';
}

/** `overwrite,root,skip-if-exist` (comma or space separated, any order; empty: none). */
export function parseConfigFilesFlags(text: string): ConfigFilesRequest {
  const tokens = text.split(/[, ]+/).filter((t) => t !== '');
  const known = ['overwrite', 'root', 'skip-if-exist'];
  const bad = tokens.filter((t) => !known.includes(t));
  if (bad.length > 0) throw new ConfigFilesError(`--create-config-files: unknown flag "${bad[0]}"; use overwrite, root and skip-if-exist`);
  const request = { overwrite: tokens.includes('overwrite'), root: tokens.includes('root'), skipIfExist: tokens.includes('skip-if-exist') };
  if (request.overwrite && request.skipIfExist) throw new ConfigFilesError('--create-config-files: overwrite and skip-if-exist exclude each other');
  return request;
}

/** swtpm-localca.options' content: the platform named after the running system, as swtpm_setup does. */
function platformOptions(): string {
  const word = (s: string) => s.replace(/ /g, '_');
  return `--platform-manufacturer ${word(os.type())}\n--platform-version ${word(os.version())}\n--platform-model ${word(os.type())}\n`;
}

/**
 * Writes the files and returns the lines to report; throws ConfigFilesError with what to do.
 * `uid` is the caller's (0 needs `root`).
 */
export function createConfigFiles(request: ConfigFilesRequest, uid: number, env: Record<string, string | undefined> = process.env): string[] {
  const dir = userConfigDir(env);
  if (uid === 0 && !request.root) {
    throw new ConfigFilesError('--create-config-files: as root the files would shadow those in /etc/vtpmd; add the root flag (--create-config-files root) to write them anyway');
  }
  const files = { setup: path.join(dir, USER_CONFIG_FILES.setup), localca: path.join(dir, USER_CONFIG_FILES.localca), options: path.join(dir, USER_CONFIG_FILES.options) };
  const existing = Object.values(files).find((f) => existsSync(f));
  if (existing !== undefined && !request.overwrite) {
    if (request.skipIfExist) return [`${existing} exists; not writing the configuration files (skip-if-exist).`];
    throw new ConfigFilesError(`--create-config-files: ${existing} already exists; add the overwrite flag to replace it, or skip-if-exist to keep it`);
  }
  const caDir = path.join(dir, 'vtpmd', 'localca');
  try {
    mkdirSync(caDir, { recursive: true, mode: 0o775 });
  } catch (e) {
    throw new ConfigFilesError(`--create-config-files: cannot create ${caDir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const content: Record<keyof typeof files, string> = {
    setup: `create_certs_tool_config = ${files.localca}\ncreate_certs_tool_options = ${files.options}\n`,
    localca: `statedir = ${caDir}\nsigningkey = ${path.join(caDir, 'signkey.pem')}\nissuercert = ${path.join(caDir, 'issuercert.pem')}\ncertserial = ${path.join(caDir, 'certserial')}\n`,
    options: platformOptions(),
  };
  const lines: string[] = [];
  const written: string[] = [];
  for (const key of ['setup', 'localca', 'options'] as const) {
    try {
      writeFileSync(files[key], content[key], { mode: 0o644 });
    } catch (e) {
      // All three or none, as swtpm_setup leaves it.
      for (const f of written) unlinkSync(f);
      throw new ConfigFilesError(`--create-config-files: cannot write ${files[key]}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    written.push(files[key]);
    lines.push(`Writing ${files[key]}.`);
  }
  return lines;
}
