/**
 * `--print-capabilities` (swtpm-compat §4.3): one line of JSON in swtpm's exact spacing, listing
 * only the features vtpmd implements.
 */
import { readFileSync } from 'node:fs';
import { RSA_KEY_BITS } from '../tpm/algorithms.js';
import { ALL_COMMAND_RANGES, BUILTIN_PROFILES, CAN_BE_DISABLED } from '../tpm/profile.js';

/** In swtpm's order; each entry is something vtpmd really does. */
const FEATURES = [
  'tpm-2.0',
  'flags-opt-startup',
  'flags-opt-disable-auto-shutdown',
  'ctrl-opt-terminate',
  'cmdarg-key-fd',
  'cmdarg-pwd-fd',
  'cmdarg-print-states',
  'cmdarg-chroot',
  'nvram-backend-dir',
  'nvram-backend-file',
  // swtpm_setup reads these to know which RSA EK sizes it may ask for.
  ...RSA_KEY_BITS.map((bits) => `rsa-keysize-${bits}`),
  'cmdarg-profile',
  'cmdarg-print-profiles',
];

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function capabilitiesJson(version = packageVersion()): string {
  const features = FEATURES.map((f) => `"${f}"`).join(', ');
  // swtpm's "profiles": the built-in names and what a custom profile may switch off.
  const names = BUILTIN_PROFILES.map((p) => `"${p.name}"`).join(', ');
  const { algorithms, commands, implementedAlgorithms } = CAN_BE_DISABLED;
  const profiles =
    `"names": [ ${names} ], ` +
    `"algorithms": { "canbedisabled": "${algorithms}", "implemented": "${implementedAlgorithms}" }, ` +
    `"commands": { "canbedisabled": "${commands}", "implemented": "${ALL_COMMAND_RANGES}" } `;
  return `{ "type": "swtpm", "features": [ ${features} ], "profiles": { ${profiles}}, "version": "${version}" }`;
}
