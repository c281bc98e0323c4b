// Run tpm2-tools and swtpm_ioctl as child processes with a timeout.
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
  /** The command line, for assertion messages. */
  cmd: string;
}

export interface RunOptions {
  /** Bytes or text written to stdin (stdin is closed afterwards; /dev/null when absent). */
  input?: Uint8Array | string;
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
}

/** Run any program; never rejects on a non-zero exit (check `code`), rejects on timeout. */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const cmd = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timeout after ${timeoutMs} ms: ${cmd}\nstderr: ${Buffer.concat(err).toString()}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBytes.toString(), stderr: Buffer.concat(err).toString(), stdoutBytes, cmd });
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // tool may exit before reading everything
      child.stdin!.end(typeof opts.input === 'string' ? opts.input : Buffer.from(opts.input));
    }
  });
}

/**
 * Run a tpm2-tools program (`tpm2_getrandom`, ...) against a TCTI (`-T` and TPM2TOOLS_TCTI).
 * `tool` may be given with or without the `tpm2_` prefix.
 */
export function tpm2(tool: string, tcti: string, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  const file = tool.startsWith('tpm2_') ? tool : `tpm2_${tool}`;
  return run(file, ['-T', tcti, ...args], {
    ...opts,
    env: { TPM2TOOLS_TCTI: tcti, TSS2_LOG: 'all+NONE', ...opts.env },
  });
}

/** Like `tpm2` but throws with the tool's stderr when it exits non-zero. */
export async function tpm2ok(tool: string, tcti: string, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  const r = await tpm2(tool, tcti, args, opts);
  if (r.code !== 0) throw new Error(`${r.cmd} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Runs a tpm2-tools step, then flushes the transient objects it left loaded (a TPM has three object slots). */
export async function tpm2Step(d: { tcti: string }, tool: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await tpm2(tool, d.tcti, args, opts);
  await tpm2('flushcontext', d.tcti, ['-t']);
  return r;
}

/** `tpm2Step` for a step that must succeed: throws with the tool's stderr when it exits non-zero. */
export async function tpm2StepOk(d: { tcti: string }, tool: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await tpm2Step(d, tool, args, opts);
  if (r.code !== 0) throw new Error(`${r.cmd} exited ${r.code}\n${r.stderr}`);
  return r;
}

/** `swtpm_ioctl --tcp 127.0.0.1:PORT ...` or `swtpm_ioctl --unix PATH ...`. */
export function swtpmIoctl(target: { ctrlPort: number } | { ctrlPath: string }, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const t = 'ctrlPath' in target && typeof target.ctrlPath === 'string'
    ? ['--unix', target.ctrlPath]
    : ['--tcp', `127.0.0.1:${(target as { ctrlPort: number }).ctrlPort}`];
  return run('swtpm_ioctl', [...t, ...args], { timeoutMs: 15_000, ...opts });
}

/** Parse `tpm2_getcap properties-*` YAML-ish output into name → raw value. */
export function parseProperties(text: string): Map<string, number> {
  const m = new Map<string, number>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^(TPM2?_PT_[A-Z0-9_]+):\s*(\S*)/.exec(line);
    if (head) {
      current = head[1];
      if (head[2]) m.set(current, Number(head[2]));
      continue;
    }
    const raw = /^\s+raw:\s*(0x[0-9a-fA-F]+|\d+)/.exec(line);
    if (raw && current) m.set(current, Number(raw[1]));
  }
  return m;
}

/** Parse `tpm2_pcrread` output into bank → (index → lowercase hex digest). */
export function parsePcrReadOutput(text: string): Map<string, Map<number, string>> {
  const banks = new Map<string, Map<number, string>>();
  let bank: Map<number, string> | undefined;
  for (const line of text.split('\n')) {
    const b = /^\s{2}(\w+):\s*$/.exec(line);
    if (b) {
      bank = new Map();
      banks.set(b[1]!, bank);
      continue;
    }
    const v = /^\s+(\d+)\s*:\s*0x([0-9A-Fa-f]+)/.exec(line);
    if (v && bank) bank.set(Number(v[1]), v[2]!.toLowerCase());
  }
  return banks;
}

/** Parse simple `key: value` YAML lines (e.g. tpm2_readclock) into a flat map (last key wins). */
export function parseYamlScalars(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const kv = /^\s*([\w-]+):\s*(\S.*)$/.exec(line);
    if (kv) m.set(kv[1]!, kv[2]!.trim());
  }
  return m;
}
