/**
 * The layering design.md and style.md §3 ask for, checked on every import in src/:
 * cli → {frontends, setup} → ... → device → {tpm, storage} → {common, native}, one way only; the engine
 * (tpm/) does no I/O; only tpm/crypto/ touches a crypto library within the engine, and setup/
 * (the local CA) may use node:crypto besides.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';

const SRC = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Layer of a path under src/ (its first folder; main.ts is the top). */
const RANK: Record<string, number> = { main: 7, cli: 6, setup: 5, frontends: 4, control: 3, device: 2, tpm: 1, storage: 1, common: 0, native: 0 };
const layerOf = (file: string): string => {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length === 1 ? 'main' : rel[0]!;
};

const imports = files(SRC).flatMap((file) => {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => ({ file, spec: m[1]! }));
});

test('every import goes down the layers (or stays in its own folder)', () => {
  const bad: string[] = [];
  for (const { file, spec } of imports) {
    if (!spec.startsWith('.')) continue;
    const target = path.resolve(path.dirname(file), spec);
    const from = layerOf(file);
    const to = layerOf(target);
    if (from === to) continue;
    // storage/ may use the engine's crypto (encryption at rest goes through one crypto interface).
    if (from === 'storage' && path.relative(SRC, target).startsWith(`tpm${path.sep}crypto`)) continue;
    if (!(RANK[to]! < RANK[from]!)) bad.push(`${path.relative(SRC, file)} imports ${spec}`);
  }
  expect(bad).toEqual([]);
});

test('the engine (tpm/) does no I/O: no fs, net, child_process, timers', () => {
  const io = /^node:(fs|net|dgram|child_process|http|https|worker_threads|timers|os)/;
  const bad = imports.filter(({ file, spec }) => layerOf(file) === 'tpm' && io.test(spec)).map(({ file, spec }) => `${path.relative(SRC, file)}: ${spec}`);
  expect(bad).toEqual([]);
});

test('only tpm/crypto/ imports node:crypto or @noble/* (and setup/ node:crypto, for the CA)', () => {
  const bad = imports
    .filter(({ spec }) => spec === 'node:crypto' || spec === 'crypto' || spec.startsWith('@noble/'))
    .filter(({ file }) => !path.relative(SRC, file).startsWith(`tpm${path.sep}crypto${path.sep}`))
    .filter(({ file, spec }) => !(layerOf(file) === 'setup' && spec === 'node:crypto'))
    .map(({ file, spec }) => `${path.relative(SRC, file)}: ${spec}`);
  expect(bad).toEqual([]);
});
