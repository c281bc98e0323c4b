#!/usr/bin/env node
// The engine alone, in-process (no daemon, no socket): how long TPM2 commands take in
// Engine.execute, in a hot loop and after 100 µs of sleep before each command. The second is the
// daemon's cadence: between two commands of a client its thread sleeps, and what a command then
// touches (code, objects, OpenSSL's tables) is no longer in the caches, which on this machine
// makes a command 2-5 times slower than in a hot loop. Medians, since single commands vary.
//
// Usage: node scripts/bench-engine.mjs [NAME-SUBSTRING]
// Environment: ENGINE_DIST, a build directory to load instead of dist/ (to compare two builds
// alternately: copy dist/ aside, change the code, rebuild, run both in turns).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { b2, be16, be32, command, PW_AUTH as PW, SHA256, sessionWorkload } from './bench-client.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = process.env.ENGINE_DIST ? path.resolve(process.env.ENGINE_DIST) : path.join(ROOT, 'dist');
const { Engine } = await import(path.join(DIST, 'tpm', 'engine.js'));

const IDLE_US = 100;
const HOT_RUNS = 30_000;
const IDLE_RUNS = 4_000;

// ---- the engine and the workloads --------------------------------------------------------------

const EMPTY_SENSITIVE = b2(Buffer.concat([be16(0), be16(0)]));
const CREATE_TAIL = Buffer.concat([be16(0), be32(0)]);
const eccTemplate = (attributes, symmetric, scheme) =>
  b2(Buffer.concat([be16(0x23), be16(SHA256), be32(attributes), be16(0), symmetric, scheme, be16(3), be16(0x10), be16(0), be16(0)]));
const AES128CFB = Buffer.concat([be16(6), be16(128), be16(0x43)]);

const engine = Engine.manufacture();
engine.init();
const rcOf = (r) => ((r[6] << 24) | (r[7] << 16) | (r[8] << 8) | r[9]) >>> 0;
/** Engine.execute of a Buffer command (the engine takes plain Uint8Arrays); throws on an error. */
function transmit(bytes) {
  const r = Buffer.from(engine.execute(new Uint8Array(bytes)));
  if (rcOf(r) !== 0) throw new Error(`command 0x${bytes.subarray(6, 10).toString('hex')}: rc 0x${rcOf(r).toString(16)}`);
  return r;
}
transmit(command(0x8001, 0x144, be16(0)));

/** Load of an ECC P-256 signing key Create made under a storage primary; FlushContext untimed. */
function loadWorkload() {
  const storage = eccTemplate(0x00030072, AES128CFB, be16(0x10));
  const signing = eccTemplate(0x00040072, be16(0x10), Buffer.concat([be16(0x18), be16(SHA256)]));
  const parent = transmit(command(0x8002, 0x131, be32(0x40000001), PW, EMPTY_SENSITIVE, storage, CREATE_TAIL)).readUInt32BE(10);
  const created = transmit(command(0x8002, 0x153, be32(parent), PW, EMPTY_SENSITIVE, signing, CREATE_TAIL));
  let at = 14;
  const priv = created.subarray(at, at + 2 + created.readUInt16BE(at));
  at += priv.length;
  const pub = created.subarray(at, at + 2 + created.readUInt16BE(at));
  const load = command(0x8002, 0x157, be32(parent), PW, priv, pub);
  return { bytes: () => load, done: (r) => transmit(command(0x8001, 0x165, r.subarray(10, 14))) };
}

const asyncTransmit = async (bytes) => transmit(bytes);
const fixed = (bytes) => ({ bytes: () => bytes, done() {} });
const WORKLOADS = {
  'GetRandom(32)': () => fixed(command(0x8001, 0x17b, be16(32))),
  'PCR_Read(sha256 0-7)': () => fixed(command(0x8001, 0x17e, be32(1), be16(SHA256), Buffer.from([3, 0xff, 0, 0]))),
  'PCR_Extend(sha256, 16)': () => fixed(command(0x8002, 0x182, be32(16), PW, be32(1), be16(SHA256), Buffer.alloc(32, 0xab))),
  'Hash(1 KiB, sha256)': () => fixed(command(0x8001, 0x17d, be16(1024), Buffer.alloc(1024, 0x5a), be16(SHA256), be32(0x40000001))),
  'Load(ECC)': loadWorkload,
  'PCR_Extend via HMAC session': () => sessionWorkload(asyncTransmit, {
    salted: false, code: 0x182, handles: [16], names: [be32(16)], attrs: 1,
    params: Buffer.concat([be32(1), be16(SHA256), Buffer.alloc(32, 0xab)]),
  }),
  'GetRandom(32) salted+encrypted': () => sessionWorkload(asyncTransmit, { salted: true, code: 0x17b, handles: [], names: [], attrs: 0x41, params: be16(32) }),
};

// ---- timing ----------------------------------------------------------------------------------

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Median µs of Engine.execute over `runs` commands, each after `idleUs` of sleep (0: none). */
function median(workload, runs, idleUs) {
  const times = new Float64Array(runs);
  for (let i = 0; i < runs; i++) {
    // The engine takes plain Uint8Arrays; a fresh copy each time, as a front end hands it over.
    const bytes = new Uint8Array(workload.bytes());
    if (idleUs > 0) Atomics.wait(sleeper, 0, 0, idleUs / 1000);
    const start = process.hrtime.bigint();
    const r = engine.execute(bytes);
    times[i] = Number(process.hrtime.bigint() - start) / 1000;
    if (rcOf(r) !== 0) throw new Error(`rc 0x${rcOf(r).toString(16)}`);
    workload.done(Buffer.from(r));
  }
  times.sort();
  return times[runs >> 1];
}

const only = process.argv[2];
console.log(`Engine.execute, median µs (${path.relative(process.cwd(), DIST) || '.'}): hot loop | after ${IDLE_US} µs of sleep`);
for (const [name, make] of Object.entries(WORKLOADS)) {
  if (only && !name.includes(only)) continue;
  const w = await make();
  const hot = median(w, HOT_RUNS, 0);
  const idle = median(w, IDLE_RUNS, IDLE_US);
  console.log(`${name.padEnd(32)} ${hot.toFixed(2).padStart(7)} | ${idle.toFixed(2).padStart(7)}`);
}
