// The systemd notification protocol as a service manager sees it: a datagram socket in
// NOTIFY_SOCKET receives READY=1 only once the control channel answers, with the daemon's own
// pid in the credentials (so NotifyAccess=main suffices, root or not), and STOPPING=1 on
// SIGTERM. The listener is a small python3 program (test/helpers/notify-listener.py) that
// probes the control port the moment READY=1 arrives.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';
import { freePortPair, makeTempDir, registerCleanup, REPO_ROOT, VTPMD_MAIN, vtpmdAvailable } from '../helpers/daemon.js';

const haveTools = spawnSync('python3', ['--version']).status === 0;
const skip = !vtpmdAvailable() ? 'dist/main.js is not built' : !haveTools ? 'python3 is missing' : false;
if (skip) console.log(`[vtpmd tests] sd_notify: skipped (${skip})`);

interface Record_ {
  listening?: string;
  fields?: Record<string, string>;
  pid?: number | null;
  probe?: string;
}

describe.skipIf(skip !== false)('systemd notification (NOTIFY_SOCKET)', () => {
  it('READY=1 after the control channel answers, from the daemon pid; STOPPING=1 on SIGTERM', { timeout: 30_000 }, async () => {
    const dir = makeTempDir('vtpmd-notify-');
    const port = await freePortPair();
    // An abstract socket ("@name", as systemd may name one); the guest test uses a path.
    const socketPath = `@vtpmd-notify-${process.pid}-${port}`;

    const listener = spawn('python3', [path.join(REPO_ROOT, 'test/helpers/notify-listener.py'), socketPath, String(port + 1)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    registerCleanup(() => {
      if (listener.exitCode === null) listener.kill('SIGKILL');
    });
    const records: Record_[] = [];
    let wake: () => void = () => undefined;
    readline.createInterface({ input: listener.stdout }).on('line', (line) => {
      records.push(JSON.parse(line) as Record_);
      wake();
    });
    const waitFor = async (pred: () => boolean, ms: number) => {
      const end = Date.now() + ms;
      while (!pred() && Date.now() < end) await new Promise<void>((r) => ((wake = r), setTimeout(r, 100)));
      return pred();
    };
    expect(await waitFor(() => records.some((r) => r.listening), 10_000)).toBe(true);

    const daemon = spawn(
      process.execPath,
      [VTPMD_MAIN, 'socket', '--tpm2', '--tpmstate', `dir=${path.join(dir, 'state')}`,
        '--server', `type=tcp,port=${port}`, '--ctrl', `type=tcp,port=${port + 1}`, '--flags', 'not-need-init'],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: socketPath } },
    );
    registerCleanup(() => {
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    });
    let stderr = '';
    daemon.stderr.on('data', (d: Buffer) => (stderr += d.toString()));

    expect(await waitFor(() => records.some((r) => r.fields?.READY === '1'), 15_000), stderr).toBe(true);
    const ready = records.find((r) => r.fields?.READY === '1')!;
    // The probe ran when READY arrived: GET_CAPABILITY answered (result 0, the capability bits).
    expect(ready.probe).toMatch(/^00000000[0-9a-f]{8}$/);
    expect(ready.fields?.STATUS).toBe(`serving data 127.0.0.1:${port}, control 127.0.0.1:${port + 1}`);
    // Sent by the daemon itself: its own pid in the credentials, root or not.
    expect(ready.pid).toBe(daemon.pid);
    // Nothing but READY came before it.
    expect(records.filter((r) => r.fields).indexOf(ready)).toBe(0);

    daemon.kill('SIGTERM');
    expect(await waitFor(() => records.some((r) => r.fields?.STOPPING === '1'), 10_000), stderr).toBe(true);
    const stopping = records.find((r) => r.fields?.STOPPING === '1')!;
    expect(stopping.fields?.STATUS).toBe('stopping: SIGTERM');
    expect(records.indexOf(stopping)).toBeGreaterThan(records.indexOf(ready));
    expect(await new Promise((r) => daemon.once('exit', r))).toBe(0);
  });

  it('without NOTIFY_SOCKET nothing is sent and the daemon serves as usual, with no other program on PATH', { timeout: 20_000 }, async () => {
    const dir = makeTempDir('vtpmd-notify-');
    const port = await freePortPair();
    const env = { ...process.env };
    delete env.NOTIFY_SOCKET;
    // A PATH with node alone: locking and notifying go through the addon, no helper program.
    env.PATH = path.dirname(process.execPath);
    const daemon = spawn(
      process.execPath,
      [VTPMD_MAIN, 'socket', '--tpm2', '--tpmstate', `dir=${path.join(dir, 'state')}`,
        '--server', `type=tcp,port=${port}`, '--ctrl', `type=tcp,port=${port + 1}`, '--flags', 'not-need-init',
        '--pid', `file=${path.join(dir, 'pid')}`],
      { stdio: ['ignore', 'ignore', 'pipe'], env },
    );
    registerCleanup(() => {
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    });
    let stderr = '';
    daemon.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const fs = await import('node:fs');
    // SIGTERM the moment the pid file appears (as a supervisor that waits for it would): the
    // daemon must already handle it then, and stop cleanly with 0.
    const sawPid = await new Promise<boolean>((resolve) => {
      const watcher = fs.watch(dir, (_event, name) => {
        if (name !== 'pid') return;
        watcher.close();
        clearTimeout(timer);
        daemon.kill('SIGTERM');
        resolve(true);
      });
      const timer = setTimeout(() => (watcher.close(), resolve(false)), 10_000);
    });
    expect(sawPid, stderr).toBe(true);
    expect(await new Promise((r) => daemon.once('exit', r))).toBe(0);
    expect(stderr).not.toMatch(/NOTIFY_SOCKET|cannot lock/);
  });
});
