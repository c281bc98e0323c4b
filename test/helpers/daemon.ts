// Start vtpmd or Debian's swtpm as a child process in swtpm socket mode, on free ports and a
// fresh temp state dir, wait until both sockets accept, and make sure nothing outlives the test.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, onTestFinished } from 'vitest';

export type Impl = 'vtpmd' | 'swtpm';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const VTPMD_MAIN = path.join(REPO_ROOT, 'dist', 'main.js');

/** True when the vtpmd daemon has been built. */
export function vtpmdAvailable(): boolean {
  return existsSync(VTPMD_MAIN);
}

/** True when Debian's swtpm is on PATH (it is on the dev machine and in CI). */
export function swtpmAvailable(): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(path.join(d, 'swtpm')));
}

/**
 * The implementations a parameterised suite runs against, with a skip reason for the ones that
 * cannot run here. `VTPMD_TEST_IMPLS=swtpm` (comma list) restricts the set.
 */
export function implementations(): { impl: Impl; skip: string | false }[] {
  const wanted = (process.env.VTPMD_TEST_IMPLS ?? 'vtpmd,swtpm').split(',').map((s) => s.trim());
  const all: { impl: Impl; skip: string | false }[] = [
    { impl: 'vtpmd', skip: vtpmdAvailable() ? false : `${VTPMD_MAIN} does not exist (run npm run build)` },
    { impl: 'swtpm', skip: swtpmAvailable() ? false : 'swtpm is not installed' },
  ];
  for (const e of all) {
    if (!wanted.includes(e.impl)) e.skip = 'excluded by VTPMD_TEST_IMPLS';
    if (e.skip) console.warn(`[vtpmd tests] skipping ${e.impl}: ${e.skip}`);
  }
  return all;
}

/**
 * One `describe` per implementation; the ones that cannot run are skipped with the reason in the
 * title. `only` restricts the set (e.g. ['vtpmd'] for vtpmd-only suites).
 */
export function describeImpls(title: string, fn: (impl: Impl) => void, only?: Impl[]): void {
  for (const { impl, skip } of implementations()) {
    if (only && !only.includes(impl)) continue;
    describe.skipIf(skip !== false)(`${title} [${impl}]${skip ? ` (skipped: ${skip})` : ''}`, () => fn(impl));
  }
}

export interface DaemonOptions {
  impl: Impl;
  /** `--flags` values, e.g. ['not-need-init']. Nothing is passed when empty. */
  flags?: string[];
  /** Reuse this state dir (it is then not removed at cleanup). Default: a fresh temp dir. */
  stateDir?: string;
  /** Appended to the command line after the standard options. */
  extraArgs?: string[];
  transport?: 'tcp' | 'unix';
  /** Readiness timeout in ms (default 10 s). */
  readyTimeoutMs?: number;
}

export interface Daemon {
  impl: Impl;
  /** Data port (tcp) — control port is port + 1, as the tpm2-tss swtpm TCTI requires. */
  port: number;
  ctrlPort: number;
  dataPath?: string;
  ctrlPath?: string;
  stateDir: string;
  pid: number;
  /** TCTI string for tpm2-tools (`-T`). */
  tcti: string;
  args: string[];
  process: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the daemon wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, wait for exit, SIGKILL after `timeoutMs` (default 5 s). */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL now (no graceful shutdown), wait for exit. */
  kill(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// cleanup registry

type Cleanup = () => Promise<void> | void;
const pending = new Set<Cleanup>();

/**
 * Register cleanup for a resource: at the end of the current test when called inside one,
 * otherwise at the end of the file (setup.ts runs `runAllCleanups` in afterAll). A process 'exit'
 * hook SIGKILLs anything still alive as a last resort.
 */
export function registerCleanup(fn: Cleanup): void {
  pending.add(fn);
  const once = async () => {
    if (!pending.delete(fn)) return;
    await fn();
  };
  try {
    onTestFinished(once);
  } catch {
    // not inside a test (beforeAll / describe body): the file-level afterAll handles it
  }
}

export async function runAllCleanups(): Promise<void> {
  const fns = [...pending].reverse();
  pending.clear();
  for (const fn of fns) {
    try {
      await fn();
    } catch (e) {
      console.warn('[vtpmd tests] cleanup failed:', e);
    }
  }
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** A fresh temp dir, removed at cleanup. */
export function makeTempDir(prefix = 'vtpmd-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  registerCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------
// ports

function listenOn(port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(null));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(srv));
  });
}

const close = (s: net.Server) => new Promise<void>((r) => s.close(() => r()));

// Ports come from below the kernel's ephemeral range (32768-60999 by default), so no outgoing
// connection of a client in another test can take one between this check and the daemon's
// bind; each vitest worker gets a slice of its own so two workers never pick the same pair.
const PORT_BASE = 20_000;
const PORT_SLICE = 1_500;
const worker = Number.parseInt(process.env.VITEST_POOL_ID ?? '1', 10) || 1;
const sliceStart = PORT_BASE + ((worker - 1) % 8) * PORT_SLICE;
let nextOffset = Math.floor(Math.random() * (PORT_SLICE / 2)) * 2;

// Ports handed out by this process, so parallel starts in one worker never collide.
const handedOut = new Set<number>();

/** A free port P such that P+1 is free too (tpm2-tss: ctrl = data + 1). */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < PORT_SLICE / 2; attempt++) {
    const p = sliceStart + nextOffset;
    nextOffset = (nextOffset + 2) % PORT_SLICE;
    if (handedOut.has(p) || handedOut.has(p + 1)) continue;
    const a = await listenOn(p);
    if (!a) continue;
    const b = await listenOn(p + 1);
    await close(a);
    if (!b) continue;
    await close(b);
    handedOut.add(p);
    handedOut.add(p + 1);
    return p;
  }
  throw new Error(`no two adjacent free TCP ports in ${sliceStart}-${sliceStart + PORT_SLICE - 1}`);
}

// ---------------------------------------------------------------------------------------------
// readiness

function tryConnect(target: { port: number } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const s = 'path' in target ? net.connect(target.path) : net.connect(target.port, '127.0.0.1');
    const done = (ok: boolean) => {
      s.removeAllListeners();
      s.on('error', () => {});
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------

/**
 * Starts the daemon; when it loses a port to another process between the free-port check and
 * its bind ("address already in use"), it tries again on other ports instead of failing a test.
 */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDaemonOnce(opts);
    } catch (err) {
      const lostPort = /already in use/i.test(String((err as Error).message)) && (opts.transport ?? 'tcp') === 'tcp';
      if (!lostPort || attempt >= 3) throw err;
    }
  }
}

async function startDaemonOnce(opts: DaemonOptions): Promise<Daemon> {
  const transport = opts.transport ?? 'tcp';
  let stateDir = opts.stateDir;
  if (!stateDir) stateDir = makeTempDir(`vtpmd-state-${opts.impl}-`);

  let port = 0;
  let ctrlPort = 0;
  let dataPath: string | undefined;
  let ctrlPath: string | undefined;
  let serverOpt: string;
  let ctrlOpt: string;
  let tcti: string;
  if (transport === 'tcp') {
    port = await freePortPair();
    ctrlPort = port + 1;
    serverOpt = `type=tcp,port=${port}`;
    ctrlOpt = `type=tcp,port=${ctrlPort}`;
    tcti = `swtpm:host=127.0.0.1,port=${port}`;
  } else {
    const sockDir = makeTempDir('vtpmd-sock-');
    dataPath = path.join(sockDir, 'tpm.sock');
    ctrlPath = `${dataPath}.ctrl`; // the tpm2-tss swtpm TCTI's naming
    serverOpt = `type=unixio,path=${dataPath}`;
    ctrlOpt = `type=unixio,path=${ctrlPath}`;
    tcti = `swtpm:path=${dataPath}`;
  }

  const args = ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--server', serverOpt, '--ctrl', ctrlOpt];
  if (opts.flags && opts.flags.length > 0) args.push('--flags', opts.flags.join(','));
  if (opts.extraArgs) args.push(...opts.extraArgs);

  let file: string;
  let argv: string[];
  if (opts.impl === 'vtpmd') {
    if (!vtpmdAvailable()) throw new Error(`${VTPMD_MAIN} does not exist: run npm run build`);
    file = process.execPath;
    argv = [VTPMD_MAIN, ...args];
  } else {
    file = 'swtpm';
    argv = args;
  }

  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  live.add(child);
  let out = '';
  const append = (d: Buffer) => {
    out += d.toString();
    if (out.length > 256 * 1024) out = out.slice(-128 * 1024);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);

  let hasExited = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      live.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (err) => {
      append(Buffer.from(`spawn error: ${err.message}\n`));
      hasExited = true;
      live.delete(child);
      resolve({ code: null, signal: null });
    });
  });

  const kill = async () => {
    if (!hasExited) child.kill('SIGKILL');
    await exited;
  };
  const stop = async (timeoutMs = 5000) => {
    if (hasExited) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => {
      if (!hasExited) child.kill('SIGKILL');
    }, timeoutMs);
    await exited;
    clearTimeout(t);
  };
  registerCleanup(() => kill());

  const cmdline = `${file} ${argv.join(' ')}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
  const ctrlTarget = ctrlPath ? { path: ctrlPath } : { port: ctrlPort };
  const dataTarget = dataPath ? { path: dataPath } : { port };
  for (;;) {
    if (hasExited) {
      const r = await exited;
      throw new Error(`${opts.impl} exited (code ${r.code}, signal ${r.signal}) before it was ready.\n` +
        `command: ${cmdline}\noutput:\n${out}`);
    }
    if ((await tryConnect(ctrlTarget)) && (await tryConnect(dataTarget))) break;
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`${opts.impl} did not accept connections within ${opts.readyTimeoutMs ?? 10_000} ms.\n` +
        `command: ${cmdline}\noutput:\n${out}`);
    }
    await sleep(25);
  }

  return {
    impl: opts.impl,
    port,
    ctrlPort,
    dataPath,
    ctrlPath,
    stateDir,
    pid: child.pid!,
    tcti,
    args,
    process: child,
    exited,
    output: () => out,
    stop,
    kill,
  };
}

/** Resolves true if the promise settles within ms. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (t = setTimeout(() => r(false), ms)));
  const res = await Promise.race([p.then(() => true as const), timeout]);
  clearTimeout(t);
  return res;
}
