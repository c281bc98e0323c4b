#!/usr/bin/env node
// npm run bench: vtpmd vs swtpm, side by side. Each daemon runs `socket --tpm2 --flags
// not-need-init` on a temp state dir; after TPM2_Startup(CLEAR) every workload runs over ONE kept
// data connection for a fixed time after a warm-up, timing each command (the NV workloads' indices
// are defined over that connection first). Prints ops/s, p50, p99, each daemon's CPU time per
// operation (less disturbed by the host's load than the rates) and the vtpmd/swtpm throughput
// ratio, then each daemon's RSS. Plain Node, no dependencies.
//
// Environment: BENCH_SECONDS (per workload, default 2), BENCH_WARMUP_MS (default 300),
// BENCH_ROUNDS (alternating rounds per workload, default 4), BENCH_RSA_SECONDS (for the uncached
// RSA CreatePrimary, default 10), BENCH_ONLY (a substring: run only the workloads it names).
import { spawn, spawnSync } from 'node:child_process';
import { be16, be32, command, PW_AUTH, SHA256, sessionWorkload } from './bench-client.mjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VTPMD_MAIN = path.join(ROOT, 'dist', 'main.js');
/** The I/O floor (scripts/echo-floor.mjs): vtpmd's data path without the TPM, run beside GetRandom. */
const ECHO_FLOOR = path.join(ROOT, 'scripts', 'echo-floor.mjs');
const FLOOR_WORKLOAD = 'GetRandom(32)';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 300);

// ---- TPM command bytes ---------------------------------------------------------------------

const STARTUP_CLEAR = command(0x8001, 0x144, be16(0));

let rsaCounter = 0;
function tpm2b(b) {
  return Buffer.concat([be16(b.length), b]);
}
/** TPM2_CreatePrimary(owner) of an RSA-2048 restricted decryption key with AES-128-CFB. */
function createPrimaryRsa(data) {
  const template = Buffer.concat([be16(0x0001), be16(SHA256), be32(0x00030072), be16(0),
    be16(0x0006), be16(128), be16(0x0043), be16(0x0010), be16(2048), be32(0), be16(0)]);
  const sensitive = Buffer.concat([be16(0), tpm2b(data)]);
  return command(0x8002, 0x131, be32(0x40000001), PW_AUTH, tpm2b(sensitive), tpm2b(template), be16(0), be32(0));
}
/** FlushContext of the handle a CreatePrimary response carries. */
function flushCreated(resp) {
  return command(0x8001, 0x165, resp.subarray(10, 14));
}
const ALL_WORKLOADS = [
  { name: 'GetRandom(32)', bytes: command(0x8001, 0x17b, be16(32)) },
  { name: 'PCR_Read(sha256 0-7)', bytes: command(0x8001, 0x17e, be32(1), be16(SHA256), Buffer.from([3, 0xff, 0, 0])) },
  { name: 'PCR_Extend(sha256, 16)', bytes: command(0x8002, 0x182, be32(16), PW_AUTH, be32(1), be16(SHA256), Buffer.alloc(32, 0xab)) },
  { name: 'Hash(1 KiB, sha256)', bytes: command(0x8001, 0x17d, be16(1024), Buffer.alloc(1024, 0x5a), be16(SHA256), be32(0x40000001)) },
  // The RSA-2048 storage key tpm2_createprimary -G rsa makes. Uncached: inSensitive.data changes
  // every call, so each one searches for primes; cached: the same template and data every time.
  { name: 'CreatePrimary RSA-2048 (new key)', bytes: () => createPrimaryRsa(be32(rsaCounter++)), after: flushCreated, seconds: Number(process.env.BENCH_RSA_SECONDS ?? 10) },
  { name: 'CreatePrimary RSA-2048 (same key)', bytes: () => createPrimaryRsa(Buffer.alloc(0)), after: flushCreated },
  // NV: every write is durable before its response (a file write and fsync in vtpmd).
  // The data changes with every write: a TPM may skip writing bytes the index already holds.
  { name: 'NV_Write(256 B)', bytes: nvWriteCounting() },
  { name: 'NV_Read(256 B)', bytes: command(0x8002, 0x14e, be32(0x40000001), be32(0x01000100), PW_AUTH, be16(256), be16(0)) },
  { name: 'NV_Increment', bytes: command(0x8002, 0x134, be32(0x40000001), be32(0x01000101), PW_AUTH) },
  // Load of an ECC P-256 signing key made by Create at bench start, then FlushContext: one
  // operation is both commands. The blobs differ per daemon (each wraps for its own parent).
  { name: 'Load+FlushContext(ECC)', perDaemon: (setup) => [setup.load, setup.flushLoaded] },
  // An ECDSA P-256 signing primary, derived anew each call (inSensitive.data changes).
  { name: 'CreatePrimary ECC P-256', bytes: () => createPrimaryEccSigning(be32(eccCounter++)), after: flushCreated },
  // Sign of a SHA-256 digest with the scheme of a persistent signing primary (signSetup).
  { name: 'Sign ECC P-256', perDaemon: (setup) => [setup.signEcc] },
  { name: 'Sign RSA-2048', perDaemon: (setup) => [setup.signRsa] },
  // TPM2_Quote of PCRs 0-7 (SHA-256) by an ECC P-256 restricted signing primary in the
  // endorsement hierarchy (an attestation key, persistent), ECDSA-SHA256 from the key's scheme.
  { name: 'Quote (ECC P-256)', perDaemon: (setup) => [setup.quote] },
];

/** NV_Write of 256 bytes to 0x01000100 under ownerAuth, different data each call. */
function nvWriteCounting() {
  const data = Buffer.alloc(256, 0x3c);
  const bytes = command(0x8002, 0x137, be32(0x40000001), be32(0x01000100), PW_AUTH, be16(256), data, be16(0));
  const at = bytes.length - 2 - 256;
  let n = 0;
  return () => {
    bytes.writeUInt32BE(++n >>> 0, at);
    return bytes;
  };
}

/** TPM2_NV_DefineSpace under ownerAuth: empty auth, SHA-256, no policy. */
function nvDefine(handle, attributes, size) {
  const pub = Buffer.concat([be32(handle), be16(SHA256), be32(attributes), be16(0), be16(size)]);
  return command(0x8002, 0x12a, be32(0x40000001), PW_AUTH, be16(0), be16(pub.length), pub);
}
const OWNER_RW = 0x00020002;
/** The NV workloads' indices, defined (and the read one written) over each bench connection. */
const SETUP = [
  nvDefine(0x01000100, OWNER_RW, 256),
  nvDefine(0x01000101, OWNER_RW | 0x10, 8),
  command(0x8002, 0x137, be32(0x40000001), be32(0x01000100), PW_AUTH, be16(256), Buffer.alloc(256, 0x3c), be16(0)),
];

const WORKLOADS = ALL_WORKLOADS.filter((w) => !process.env.BENCH_ONLY || w.name.includes(process.env.BENCH_ONLY));


// A P-256 storage primary (owner) at 0x80000000 and, under it, a P-256 ECDSA signing key.
const sized = (b) => Buffer.concat([be16(b.length), b]);
const EMPTY_SENSITIVE = sized(Buffer.concat([be16(0), be16(0)]));
const eccTemplate = (attributes, symmetric, scheme) => sized(Buffer.concat([
  be16(0x0023), be16(SHA256), be32(attributes), be16(0), symmetric, scheme, be16(0x0003), be16(0x0010), be16(0), be16(0),
]));
const STORAGE = eccTemplate(0x00030072, Buffer.concat([be16(0x0006), be16(128), be16(0x0043)]), be16(0x0010));
const SIGNING = eccTemplate(0x00040072, be16(0x0010), Buffer.concat([be16(0x0018), be16(SHA256)]));
const CREATE_TAIL = Buffer.concat([be16(0), be32(0)]);
const PRIMARY = command(0x8002, 0x131, be32(0x40000001), PW_AUTH, EMPTY_SENSITIVE, STORAGE, CREATE_TAIL);
const CREATE = command(0x8002, 0x153, be32(0x80000000), PW_AUTH, EMPTY_SENSITIVE, SIGNING, CREATE_TAIL);
const AK = eccTemplate(0x00050072, be16(0x0010), Buffer.concat([be16(0x0018), be16(SHA256)]));
const AK_PRIMARY = command(0x8002, 0x131, be32(0x4000000b), PW_AUTH, EMPTY_SENSITIVE, AK, CREATE_TAIL);
const flush = (handle) => command(0x8001, 0x165, be32(handle));

let eccCounter = 0;
/** TPM2_CreatePrimary(owner) of the ECDSA P-256 signing key SIGNING describes. */
function createPrimaryEccSigning(data) {
  const sensitive = Buffer.concat([be16(0), tpm2b(data)]);
  return command(0x8002, 0x131, be32(0x40000001), PW_AUTH, tpm2b(sensitive), SIGNING, CREATE_TAIL);
}
/** An RSA-2048 RSASSA-SHA256 signing key template. */
const RSA_SIGNING = sized(Buffer.concat([be16(0x0001), be16(SHA256), be32(0x00040072), be16(0), be16(0x0010),
  be16(0x0014), be16(SHA256), be16(2048), be32(0), be16(0)]));
const SIGN_ECC_HANDLE = 0x81000010;
const SIGN_RSA_HANDLE = 0x81000011;
/** TPM2_Sign of a fixed SHA-256 digest, the key's own scheme, no ticket (TPM_RH_NULL). */
const signCommand = (handle) => command(0x8002, 0x15d, be32(handle), PW_AUTH, tpm2b(Buffer.alloc(32, 0x11)), be16(0x0010),
  be16(0x8024), be32(0x40000007), be16(0));

/** Sends a setup command; throws on an error. */
async function transmitOk(conn, what, bytes) {
  let r = await conn.transmit(bytes);
  // libtpms answers TPM_RC_RETRY while its self-test of an algorithm is pending, as a TSS would.
  for (let i = 0; i < 10 && r.readUInt32BE(6) === 0x922; i++) r = await conn.transmit(bytes);
  if (r.readUInt32BE(6) !== 0) throw new Error(`${what}: TPM rc 0x${r.readUInt32BE(6).toString(16)}`);
  return r;
}

/** The Sign workloads' keys: ECC and RSA signing primaries made persistent, so they hold no transient slot. */
async function signSetup(conn) {
  for (const [template, handle] of [[SIGNING, SIGN_ECC_HANDLE], [RSA_SIGNING, SIGN_RSA_HANDLE]]) {
    const sensitive = tpm2b(Buffer.concat([be16(0), be16(0)]));
    const r = await transmitOk(conn, 'CreatePrimary (signing)', command(0x8002, 0x131, be32(0x40000001), PW_AUTH, sensitive, template, CREATE_TAIL));
    const transient = r.subarray(10, 14);
    await transmitOk(conn, 'EvictControl', command(0x8002, 0x120, be32(0x40000001), transient, PW_AUTH, be32(handle)));
    await transmitOk(conn, 'FlushContext', command(0x8001, 0x165, transient));
  }
  return { signEcc: signCommand(SIGN_ECC_HANDLE), signRsa: signCommand(SIGN_RSA_HANDLE) };
}

/**
 * On one daemon: the storage primary, a signing key Create made under it (Load and FlushContext
 * commands for it, the handle learned by one trial Load) and the attestation key with the Quote
 * command that uses it.
 */
async function objectSetup(conn) {
  await transmitOk(conn, 'CreatePrimary', PRIMARY);
  const created = await transmitOk(conn, 'Create', CREATE);
  // header, parameterSize, then TPM2B_PRIVATE and TPM2B_PUBLIC as Load takes them.
  let at = 14;
  const priv = created.subarray(at, at + 2 + created.readUInt16BE(at));
  at += priv.length;
  const pub = created.subarray(at, at + 2 + created.readUInt16BE(at));
  const load = command(0x8002, 0x157, be32(0x80000000), PW_AUTH, priv, pub);
  // The AK is made persistent, as attestation keys usually are, so it takes no transient slot
  // from the other workloads (libtpms needs a free one for CreatePrimary).
  const akTransient = (await transmitOk(conn, 'CreatePrimary(AK)', AK_PRIMARY)).readUInt32BE(10);
  const ak = 0x81000100;
  await transmitOk(conn, 'EvictControl(AK)', command(0x8002, 0x120, be32(0x40000001), be32(akTransient), PW_AUTH, be32(ak)));
  await transmitOk(conn, 'FlushContext(AK)', flush(akTransient));
  const loaded = (await transmitOk(conn, 'Load', load)).readUInt32BE(10);
  await transmitOk(conn, 'FlushContext', flush(loaded));
  const pcrs = Buffer.concat([be32(1), be16(SHA256), Buffer.from([3, 0xff, 0, 0])]);
  const quote = command(0x8002, 0x158, be32(ak), PW_AUTH, tpm2b(Buffer.alloc(16, 0x6e)), be16(0x0010), pcrs);
  return { load, flushLoaded: flush(loaded), quote };
}

// ---- session workloads (scripts/bench-client.mjs: a client that keeps its rolling nonces) ----

const SESSION_WORKLOADS = [
  {
    name: 'PCR_Extend via HMAC session',
    setup: (conn) => sessionWorkload(conn.transmit, {
      salted: false, code: 0x182, handles: [16], names: [be32(16)], attrs: 1,
      params: Buffer.concat([be32(1), be16(SHA256), Buffer.alloc(32, 0xab)]),
    }),
  },
  {
    name: 'GetRandom(32) salted+encrypted',
    setup: (conn) => sessionWorkload(conn.transmit, { salted: true, code: 0x17b, handles: [], names: [], attrs: 0x41, params: be16(32) }),
  },
];

// ---- processes and sockets -------------------------------------------------------------------

function listen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(s));
  });
}
// Below Linux's ephemeral range (32768-60999 by default): polling a port there before the daemon
// listens can connect a socket to itself (TCP simultaneous open), and the TIME_WAIT that leaves
// keeps the daemon from binding.
const PORT_LOW = 20000;
const PORT_HIGH = 32000;
async function freePortPair() {
  for (let i = 0; i < 50; i++) {
    const p = PORT_LOW + 2 * Math.floor(Math.random() * ((PORT_HIGH - PORT_LOW) / 2));
    const a = await listen(p);
    if (!a) continue;
    const b = await listen(p + 1);
    await new Promise((r) => a.close(r));
    if (!b) continue;
    await new Promise((r) => b.close(r));
    return p;
  }
  throw new Error('no two adjacent free ports');
}
function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function haveSwtpm() {
  return spawnSync('swtpm', ['--version'], { stdio: 'ignore' }).status === 0;
}

async function startDaemon(impl) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), `vtpmd-bench-${impl}-`));
  const port = await freePortPair();
  const args = ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--server', `type=tcp,port=${port}`,
    '--ctrl', `type=tcp,port=${port + 1}`, '--flags', 'not-need-init'];
  const [file, argv] =
    impl === 'vtpmd' ? [process.execPath, [...VTPMD_DAEMON_NODE_FLAGS, VTPMD_MAIN, ...args]]
    : impl === 'floor' ? [process.execPath, [...VTPMD_DAEMON_NODE_FLAGS, ECHO_FLOOR, String(port), String(port + 1)]]
    : ['swtpm', args];
  const spawnedAt = process.hrtime.bigint();
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let exited = false;
  const exit = new Promise((r) => child.once('exit', () => ((exited = true), r())));
  const deadline = Date.now() + 15000;
  while (!(await canConnect(port + 1)) || !(await canConnect(port))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${impl} did not start: ${file} ${argv.join(' ')}\n${stderr}`);
    }
    await sleep(5);
  }
  return {
    impl, port, pid: child.pid, stateDir, spawnedAt,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const t = setTimeout(() => !exited && child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** One kept-open data connection; send a command, resolve with the response framed by its size. */
async function connectData(port) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.setNoDelay(true);
  let buf = Buffer.alloc(0);
  let waiter = null;
  sock.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    if (waiter && buf.length >= 10 && buf.length >= buf.readUInt32BE(2)) {
      const n = buf.readUInt32BE(2);
      const resp = buf.subarray(0, n);
      buf = buf.subarray(n);
      const w = waiter;
      waiter = null;
      w.resolve(resp);
    }
  });
  sock.on('close', () => waiter?.reject(new Error('connection closed')));
  return {
    transmit(bytes) {
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
        sock.write(bytes);
      });
    },
    close: () => sock.destroy(),
  };
}

/**
 * The V8 flags the installed launcher (scripts/install) gives `vtpmd socket` and `vtpmd cuse`
 * (scripts/daemon-node-flags); BENCH_VTPMD_NODE_FLAGS (space-separated, may be empty) compares others.
 */
const VTPMD_DAEMON_NODE_FLAGS = (process.env.BENCH_VTPMD_NODE_FLAGS ?? readFileSync(new URL('./daemon-node-flags', import.meta.url), 'utf8'))
  .split(/\s+/)
  .filter((f) => f !== '');

/**
 * Private (unshared) resident memory: what each further daemon adds on a host. The node
 * binary's pages, most of a Node process's RSS, are shared by every daemon.
 */
function privateKiB(pid) {
  try {
    const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return ['Private_Clean', 'Private_Dirty'].reduce((sum, k) => sum + Number(new RegExp(`${k}:\\s+(\\d+)`).exec(roll)[1]), 0);
  } catch {
    return NaN;
  }
}

/** CPU time of a process so far (user + system, all threads), in µs; /proc counts USER_HZ = 100 ticks. */
function cpuMicros(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return NaN;
  }
}

function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Runs `w` for `seconds` on one connection; returns every latency (ms) and the elapsed seconds. */
async function runRound(conn, w, seconds) {
  const lat = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let now = start;
  while (now < end) {
    const sequence = w.step ? [w.step.bytes()] : w.sequence.map((b) => (typeof b === 'function' ? b() : b));
    const t = process.hrtime.bigint();
    let resp;
    for (const bytes of sequence) {
      resp = await conn.transmit(bytes);
      const rc = resp.readUInt32BE(6);
      if (rc !== 0) throw new Error(`${w.name}: TPM rc 0x${rc.toString(16)}`);
    }
    const done = process.hrtime.bigint();
    lat.push(Number(done - t) / 1e6);
    // A session step takes its new nonceTPM; clean-up commands (FlushContext) are not timed.
    w.step?.done(resp);
    if (w.after) await conn.transmit(w.after(resp));
    now = process.hrtime.bigint();
  }
  return { lat, elapsed: Number(now - start) / 1e9 };
}

function summarize(lat, elapsed, cpu) {
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { ops: lat.length / elapsed, p50: q(0.5), p99: q(0.99), n: lat.length, cpuPerOp: cpu / lat.length };
}

// ---- main ------------------------------------------------------------------------------------

const impls = [];
if (existsSync(VTPMD_MAIN)) impls.push('vtpmd');
else console.log(`note: ${path.relative(ROOT, VTPMD_MAIN)} does not exist (run npm run build): benchmarking swtpm only`);
if (haveSwtpm()) impls.push('swtpm');
else console.log('note: swtpm is not installed: benchmarking vtpmd only');
if (impls.length === 0) {
  console.error('nothing to benchmark');
  process.exit(1);
}

// Both daemons run side by side and every workload alternates between them in short rounds
// (the order flipping each round), so load from elsewhere on the machine hits both alike.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const daemons = {};
const conns = {};
/**
 * Start-up: from spawning the daemon on a new state directory (so it manufactures a TPM) to the
 * answer of its first command (TPM2_Startup), the median of STARTUP_RUNS starts.
 */
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 5);
async function startupMs(impl) {
  const times = [];
  for (let i = 0; i < STARTUP_RUNS; i++) {
    const d = await startDaemon(impl);
    const conn = await connectData(d.port);
    await conn.transmit(STARTUP_CLEAR);
    times.push(Number(process.hrtime.bigint() - d.spawnedAt) / 1e6);
    conn.close();
    await d.stop();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const setups = {};
const all = Object.fromEntries(impls.map((impl) => [impl, { results: {}, rss: NaN, idleRss: NaN, idlePrivate: NaN, startupMs: NaN }]));
try {
  if (STARTUP_RUNS > 0) for (const impl of impls) all[impl].startupMs = await startupMs(impl);
  for (const impl of impls) {
    daemons[impl] = await startDaemon(impl);
    conns[impl] = await connectData(daemons[impl].port);
    const s = await conns[impl].transmit(STARTUP_CLEAR);
    if (s.readUInt32BE(6) !== 0) throw new Error(`${impl}: Startup rc 0x${s.readUInt32BE(6).toString(16)}`);
    for (const bytes of SETUP) {
      const r = await conns[impl].transmit(bytes);
      if (r.readUInt32BE(6) !== 0) throw new Error(`${impl}: NV setup rc 0x${r.readUInt32BE(6).toString(16)}`);
    }
    setups[impl] = { ...(await objectSetup(conns[impl])), ...(await signSetup(conns[impl])) };
  }
  const floorRuns = impls.includes('vtpmd') && WORKLOADS.some((w) => w.name === FLOOR_WORKLOAD);
  if (floorRuns) {
    daemons.floor = await startDaemon('floor');
    conns.floor = await connectData(daemons.floor.port);
    all.floor = { results: {} };
  }
  // Idle memory: started, Startup and the NV/object setup done, then two quiet seconds.
  await sleep(2000);
  for (const impl of impls) {
    all[impl].idleRss = rssKiB(daemons[impl].pid);
    all[impl].idlePrivate = privateKiB(daemons[impl].pid);
  }
  // Session workloads keep one session per daemon (its nonces roll with every command).
  const sessionWorkloads = SESSION_WORKLOADS.filter((w) => !process.env.BENCH_ONLY || w.name.includes(process.env.BENCH_ONLY));
  for (const sw of sessionWorkloads) {
    sw.steps = {};
    for (const impl of impls) sw.steps[impl] = await sw.setup(conns[impl]);
  }
  const round = (impl, w, seconds) =>
    runRound(
      conns[impl],
      w.steps
        ? { name: w.name, step: w.steps[impl] }
        : { name: w.name, sequence: w.perDaemon ? w.perDaemon(setups[impl]) : [w.bytes], after: w.after },
      seconds,
    );
  for (const w of [...WORKLOADS, ...sessionWorkloads]) {
    process.stderr.write(`  ${w.name} ...\n`);
    const rotation = floorRuns && w.name === FLOOR_WORKLOAD ? [...impls, 'floor'] : impls;
    const acc = Object.fromEntries(rotation.map((impl) => [impl, { lat: [], elapsed: 0, cpu: 0 }]));
    for (const impl of rotation) await round(impl, w, WARMUP_MS / 1000);
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? rotation : [...rotation].reverse();
      for (const impl of order) {
        const cpuBefore = cpuMicros(daemons[impl].pid);
        const { lat, elapsed } = await round(impl, w, (w.seconds ?? SECONDS) / ROUNDS);
        acc[impl].cpu += cpuMicros(daemons[impl].pid) - cpuBefore;
        acc[impl].lat.push(...lat);
        acc[impl].elapsed += elapsed;
      }
    }
    for (const impl of rotation) all[impl].results[w.name] = summarize(acc[impl].lat, acc[impl].elapsed, acc[impl].cpu);
  }
  for (const impl of impls) all[impl].rss = rssKiB(daemons[impl].pid);
} finally {
  for (const impl of [...impls, 'floor']) conns[impl]?.close();
  for (const impl of [...impls, 'floor']) await daemons[impl]?.stop();
}

const fmtOps = (x) => (x === undefined ? '-' : x.ops.toFixed(0));
const fmtMs = (v) => (v === undefined ? '-' : `${v.toFixed(3)}ms`);
const fmtCpu = (x) => (x === undefined || !Number.isFinite(x.cpuPerOp) ? '-' : x.cpuPerOp.toFixed(0));
const rows = [['workload', 'vtpmd ops/s', 'p50', 'p99', 'cpu µs', 'swtpm ops/s', 'p50', 'p99', 'cpu µs', 'ratio']];
for (const w of [...WORKLOADS, ...SESSION_WORKLOADS]) {
  const v = all.vtpmd?.results[w.name];
  const s = all.swtpm?.results[w.name];
  rows.push([w.name, fmtOps(v), fmtMs(v?.p50), fmtMs(v?.p99), fmtCpu(v), fmtOps(s), fmtMs(s?.p50), fmtMs(s?.p99), fmtCpu(s),
    v && s ? (v.ops / s.ops).toFixed(2) : '-']);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
console.log(`\n${SECONDS} s per workload and daemon in ${ROUNDS} alternating rounds after ${WARMUP_MS} ms warm-up, one kept-open data connection each`);
console.log('cpu µs: the daemon\'s CPU time (user + system, from /proc, 10 ms ticks) per operation, clean-up commands included\n');
for (const [i, r] of rows.entries()) {
  console.log(r.map((c, j) => (j === 0 ? String(c).padEnd(widths[j]) : String(c).padStart(widths[j]))).join('  '));
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
const floor = all.floor?.results[FLOOR_WORKLOAD];
if (floor) {
  const sw = all.swtpm?.results[FLOOR_WORKLOAD];
  console.log(`\nI/O floor (scripts/echo-floor.mjs: vtpmd's data path in Node, a fixed answer, no TPM work), in the ${FLOOR_WORKLOAD} rounds:`);
  console.log(`  ${fmtOps(floor)} ops/s, p50 ${fmtMs(floor.p50)}, p99 ${fmtMs(floor.p99)}, cpu ${fmtCpu(floor)} µs` +
    (sw ? `: ${(floor.ops / sw.ops).toFixed(2)} of swtpm's ${FLOOR_WORKLOAD} rate, ${(floor.cpuPerOp / sw.cpuPerOp).toFixed(2)} of its CPU per command` : ''));
}
console.log('');
const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
if (STARTUP_RUNS > 0) for (const impl of impls) console.log(`${impl} start-up to the first answered command: ${all[impl].startupMs.toFixed(0)} ms (median of ${STARTUP_RUNS})`);
for (const impl of impls) console.log(`${impl} idle: RSS ${mib(all[impl].idleRss)}, private ${mib(all[impl].idlePrivate)}`);
for (const impl of impls) console.log(`${impl} RSS after the run: ${(all[impl].rss / 1024).toFixed(1)} MiB (${all[impl].rss} kB)`);
