/**
 * `-d/--daemon` (swtpm-compat §4.2): run in the background. The launching process starts the
 * daemon again as a new session (setsid) with the same options, waits until it serves (its
 * sockets accept and the TPM is powered on as asked) and then exits 0; if the daemon dies
 * first, the launcher prints its error and exits with its exit code. The daemon reports
 * readiness or its start-up error on a pipe on fd 3 (named by VTPMD_DAEMON_READY_FD); its own
 * stdin, stdout and stderr are /dev/null, as swtpm's are once it daemonizes, so it holds
 * nothing of the launcher's open.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { UsageError } from './key-value.js';

const READY_ENV = 'VTPMD_DAEMON_READY_FD';
const READY_FD = 3;

/** True in the background process. */
export function isDaemonChild(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[READY_ENV] === String(READY_FD);
}

/** In the background process, once it serves: tells the launcher and closes the pipe. */
export function reportDaemonReady(env: NodeJS.ProcessEnv = process.env): void {
  if (!isDaemonChild(env)) return;
  delete env[READY_ENV];
  try {
    fs.writeSync(READY_FD, 'ready\n');
    fs.closeSync(READY_FD);
  } catch {
    /* the launcher is gone; nothing to tell */
  }
}

/** In the background process, when it cannot start: the launcher prints `message`. */
export function reportDaemonFailure(message: string, env: NodeJS.ProcessEnv = process.env): void {
  if (!isDaemonChild(env)) return;
  try {
    fs.writeSync(READY_FD, `error ${message.replace(/\n/g, ' ')}\n`);
  } catch {
    /* the launcher is gone */
  }
}

/**
 * The launcher: `argv` are the CLI arguments. Options that name inherited descriptors (fd=,
 * pwdfd=) cannot follow the daemon into its new session, so they are refused here.
 */
export async function launchDaemon(argv: string[]): Promise<number> {
  if (argv.some((a) => /(^|,)(fd|pwdfd)=/.test(a))) {
    throw new UsageError('-d/--daemon cannot pass file descriptors (fd=, pwdfd=) to the background daemon; use file=, pwdfile= or run without --daemon');
  }
  const args = argv.filter((a) => a !== '-d' && a !== '--daemon' && a !== '--daemon=true');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [READY_ENV]: String(READY_FD) },
  });
  const pipe = child.stdio[3] as NodeJS.ReadableStream;
  return new Promise<number>((resolve) => {
    let ready = false;
    let text = '';
    pipe.on('data', (d: Buffer) => {
      text += d.toString();
      if (ready || !/^ready$/m.test(text)) return;
      ready = true;
      child.unref();
      (pipe as unknown as { destroy(): void }).destroy();
      resolve(0);
    });
    pipe.on('error', () => undefined);
    child.once('exit', (code) => {
      if (ready) return;
      for (const line of text.split('\n')) if (line.startsWith('error ')) process.stderr.write(`${line.slice(6)}\n`);
      resolve(code || 1);
    });
    child.once('error', () => {
      if (!ready) resolve(1);
    });
  });
}
