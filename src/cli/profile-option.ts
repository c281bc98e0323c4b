/**
 * TPM profile options, as swtpm and swtpm_setup spell them: the daemons' `--profile
 * name=NAME|profile=JSON|file=FILE|fd=N` and setup's `--profile JSON`, `--profile-name NAME`,
 * `--profile-file FILE`, `--profile-file-fd N`. Each yields a profile checked in full by
 * tpm/profile.ts; any problem is a UsageError that says what to change.
 */
import { readFileSync } from 'node:fs';
import { availableProfilesJson, parseProfile, ProfileError, type TpmProfile } from '../tpm/profile.js';
import { parseKeyValues, UsageError } from './key-value.js';

const PROFILE = { name: 'string', profile: 'string', file: 'string', fd: 'int', 'remove-disabled': 'string' } as const;

function read(source: string | number, option: string): string {
  try {
    return readFileSync(source, 'utf8');
  } catch (e) {
    const what = typeof source === 'number' ? `file descriptor ${source}` : source;
    throw new UsageError(`${option}: cannot read the profile from ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function check(json: string, option: string): TpmProfile {
  try {
    return parseProfile(json.trim());
  } catch (e) {
    if (e instanceof ProfileError) throw new UsageError(`${option}: ${e.message}`);
    throw e;
  }
}

/** A built-in profile's name as JSON (swtpm builds the same map for name=). */
const named = (name: string): string => JSON.stringify({ Name: name });

/** `vtpmd socket|cuse --profile ...`. */
export function parseProfileOption(spec: string, option = '--profile'): TpmProfile {
  const o = parseKeyValues(spec, PROFILE, option);
  if (o['remove-disabled'] !== undefined) {
    throw new UsageError(`${option}: remove-disabled is not supported: vtpmd has none of the algorithms a FIPS host disables (camellia, tdes) to remove`);
  }
  const given = (['name', 'profile', 'file', 'fd'] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1) throw new UsageError(`${option}: give exactly one of name=, profile=, file= or fd=`);
  if (o.name !== undefined) return check(named(o.name), option);
  if (o.profile !== undefined) return check(o.profile, option);
  return check(read(o.file ?? o.fd!, option), option);
}

export interface SetupProfileArgs {
  profile?: string;
  profileName?: string;
  profileFile?: string;
  profileFileFd?: string;
}

/**
 * `vtpmd setup`'s profile options. A --profile-name may carry swtpm_setup's `builtin:` prefix;
 * vtpmd has no profile directories, so `local:` and `distro:` names are refused.
 */
export function parseSetupProfile(a: SetupProfileArgs): TpmProfile | undefined {
  const given = ([['--profile', a.profile], ['--profile-name', a.profileName], ['--profile-file', a.profileFile], ['--profile-file-fd', a.profileFileFd]] as const)
    .filter(([, v]) => v !== undefined);
  if (given.length > 1) throw new UsageError(`give only one of ${given.map(([o]) => o).join(', ')}`);
  if (a.profile !== undefined) return check(a.profile, '--profile');
  if (a.profileName !== undefined) {
    const m = /^(local|distro|builtin):(.*)$/.exec(a.profileName);
    if (m && m[1] !== 'builtin') {
      throw new UsageError(`--profile-name: vtpmd has no ${m[1]} profile directory; name a built-in profile (see --print-profiles) or use --profile-file`);
    }
    return check(named(m ? m[2]! : a.profileName), '--profile-name');
  }
  if (a.profileFile !== undefined) return check(read(a.profileFile, '--profile-file'), '--profile-file');
  if (a.profileFileFd !== undefined) {
    if (!/^\d+$/.test(a.profileFileFd)) throw new UsageError(`--profile-file-fd: "${a.profileFileFd}" is not a file descriptor number`);
    return check(read(Number(a.profileFileFd), '--profile-file-fd'), '--profile-file-fd');
  }
  return undefined;
}

/** `vtpmd socket|cuse --print-profiles`: libtpms' AvailableProfiles map, printed as swtpm prints it (no newline). */
export function printProfilesText(): string {
  return availableProfilesJson();
}

/** `vtpmd setup --print-profiles`: swtpm_setup's map of profile sources; vtpmd has only built-in ones. */
export function setupPrintProfilesText(): string {
  return `{"builtin":${availableProfilesJson().slice('{"AvailableProfiles":'.length, -1)}}\n`;
}
