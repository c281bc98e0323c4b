/**
 * swtpm's option-string syntax (swtpm src/swtpm/options.c; swtpm-compat §4.2): comma-separated
 * `key=value` items; a bare `key` means "true"; booleans are true for `true`/`1` (any case) and
 * false otherwise; a value starting with `{` runs to the matching `}` (JSON); an unknown key is an
 * error naming it; modes are octal ≤ 0777. The first occurrence of a key wins, as in swtpm.
 */

export type OptType = 'string' | 'int' | 'uint' | 'boolean' | 'mode';
export type OptSpec = Record<string, OptType>;

type ValueOf<T extends OptType> = T extends 'string' ? string : T extends 'boolean' ? boolean : number;
export type Parsed<S extends OptSpec> = { [K in keyof S]?: ValueOf<S[K]> };

/** A usage error: the CLI prints the message (no stack) and exits with 1. */
export class UsageError extends Error {
  readonly code = 'VTPMD_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function tokenize(opts: string, option: string): string[] {
  const tokens: string[] = [];
  let rest: string | null = opts;
  while (rest !== null) {
    const str: string = rest;
    const comma = str.indexOf(',');
    let equals = str.indexOf('=');
    if (comma >= 0 && equals > comma) equals = -1;
    if (equals >= 0 && str[equals + 1] === '{') {
      let depth = 1;
      let end = -1;
      for (let i = equals + 2; i < str.length && end < 0; i++) {
        if (str[i] === '{') depth++;
        else if (str[i] === '}' && --depth === 0) end = i;
      }
      if (end < 0) throw new UsageError(`${option}: unterminated JSON map`);
      const after = str[end + 1];
      if (after === undefined) {
        tokens.push(str);
        rest = null;
      } else if (after === ',') {
        tokens.push(str.slice(0, end + 1));
        rest = str.slice(end + 2);
      } else {
        throw new UsageError(`${option}: unexpected character following JSON map`);
      }
    } else if (comma < 0) {
      tokens.push(str);
      rest = null;
    } else {
      tokens.push(str.slice(0, comma));
      rest = str.slice(comma + 1);
    }
  }
  return tokens;
}

function convert(type: OptType, value: string, key: string, option: string): string | number | boolean {
  switch (type) {
    case 'string':
      return value;
    case 'boolean':
      return value.toLowerCase() === 'true' || value === '1';
    case 'int':
    case 'uint': {
      if (!/^[+-]?\d+$/.test(value)) throw new UsageError(`${option}: invalid number '${value}' for ${key}`);
      const n = Number(value);
      const [lo, hi] = type === 'int' ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** 32 - 1];
      if (n < lo || n > hi) throw new UsageError(`${option}: number ${value} for ${key} is outside the valid range`);
      return n;
    }
    case 'mode': {
      if (!/^[0-7]+$/.test(value)) throw new UsageError(`${option}: invalid mode '${value}' for ${key} (octal, e.g. 0640)`);
      const n = Number.parseInt(value, 8);
      if (n > 0o777) throw new UsageError(`${option}: mode ${value} is invalid (at most 0777)`);
      return n;
    }
  }
}

export function parseKeyValues<S extends OptSpec>(opts: string, spec: S, option: string): Parsed<S> {
  const out: Record<string, string | number | boolean> = {};
  for (const tok of tokenize(opts, option)) {
    const eq = tok.indexOf('=');
    const key = eq > 0 && eq < tok.length - 1 ? tok.slice(0, eq) : tok;
    const type = Object.hasOwn(spec, key) ? spec[key] : undefined;
    if (type === undefined) {
      const known = Object.keys(spec).join(', ');
      throw new UsageError(`${option}: unknown option '${tok}' (known: ${known})`);
    }
    const value = key === tok ? 'true' : tok.slice(eq + 1);
    if (!(key in out)) out[key] = convert(type, value, key, option);
  }
  return out as Parsed<S>;
}
