// End-to-end smoke test: the built daemon as a process, a control GET_CAPABILITY, and
// TPM2_Startup + GetRandom over the data socket; then CMD_SHUTDOWN ends it and removes the pid file.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freePortPair, VTPMD_MAIN, vtpmdAvailable } from '../../helpers/daemon.js';

if (!vtpmdAvailable()) console.warn(`[vtpmd tests] skipping the daemon smoke test: ${VTPMD_MAIN} is missing (run npx tsc -p .)`);

/** One request on a new connection; `ctrlLength` is the expected control reply size (else a TPM response). */
function exchange(port: number, request: string, ctrlLength?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('error', reject);
    s.on('connect', () => s.write(Buffer.from(request.replace(/ /g, ''), 'hex')));
    s.on('data', (d) => {
      got.push(d);
      const all = Buffer.concat(got);
      const want = ctrlLength ?? (all.length >= 6 ? all.readUInt32BE(2) : 10);
      if (all.length >= want) {
        s.destroy();
        resolve(all.toString('hex'));
      }
    });
    s.on('close', () => resolve(Buffer.concat(got).toString('hex')));
  });
}

async function waitFor(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe.skipIf(!vtpmdAvailable())('vtpmd socket (process)', () => {
  it('serves control and data channels and shuts down on CMD_SHUTDOWN', { timeout: 30_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpmd-smoke-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const port = await freePortPair();
    const state = path.join(dir, 'state'); // does not exist yet: the daemon creates it
    const pidFile = path.join(dir, 'pid');
    const child = spawn(process.execPath, [
      VTPMD_MAIN, 'socket', '--tpm2',
      '--server', `type=tcp,port=${port}`,
      '--ctrl', `type=tcp,port=${port + 1}`,
      '--tpmstate', `dir=${state}`,
      '--pid', `file=${pidFile}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });

    expect(await waitFor(() => fs.existsSync(pidFile) || child.exitCode !== null, 6_000), output).toBe(true);
    expect(fs.readFileSync(pidFile, 'utf8')).toBe(String(child.pid));

    // GET_CAPABILITY: QEMU's required bits are all set.
    const caps = await exchange(port + 1, '00000001', 8);
    expect(caps.slice(0, 8)).toBe('00000000');
    expect(Number.parseInt(caps.slice(8), 16) & 0x348f).toBe(0x348f);

    // Stopped TPM: swtpm's fatal response. Then INIT, Startup(CLEAR), GetRandom(8).
    expect(await exchange(port, '8001 0000000a 00000181')).toBe('80010000000a00000101');
    expect(await exchange(port + 1, '00000002 00000000', 4)).toBe('00000000');
    expect(fs.existsSync(path.join(state, 'tpm2-00.permall'))).toBe(true);
    expect(await exchange(port, '8001 0000000c 00000144 0000')).toBe('80010000000a00000000');
    const rnd = await exchange(port, '8001 0000000c 0000017b 0008');
    expect(rnd.slice(0, 20)).toBe('800100000014' + '00000000');
    expect(rnd.slice(20, 24)).toBe('0008');
    expect(rnd.length).toBe(40);

    // SHUTDOWN: the reply, then the process exits 0 and removes its pid file.
    expect(await exchange(port + 1, '00000003', 4)).toBe('00000000');
    expect(await exited).toBe(0);
    expect(fs.existsSync(pidFile)).toBe(false);
  });

  it('rejects a missing --tpm2 with a clear message and exit code 1', async () => {
    const child = spawn(process.execPath, [VTPMD_MAIN, 'socket', '--ctrl', 'type=tcp,port=1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(err).toContain('vtpmd emulates TPM 2.0 only; pass --tpm2');
    expect(err).not.toMatch(/at .*\.js:\d+/);
  });
  it('a second daemon on a locked state dir exits 1 and says so once (twice only with --log file=)', { timeout: 30_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpmd-lock-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const run = async (extra: string[] = []) => {
      const port = await freePortPair();
      const child = spawn(process.execPath, [
        VTPMD_MAIN, 'socket', '--tpm2', '--flags', 'not-need-init',
        '--server', `type=tcp,port=${port}`, '--ctrl', `type=tcp,port=${port + 1}`,
        '--tpmstate', `dir=${dir}`, ...extra,
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      onTestFinished(() => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      return { child, port, err: () => err, exited: new Promise<number | null>((r) => child.on('exit', (c) => r(c))) };
    };
    const first = await run();
    expect(await waitFor(() => fs.existsSync(path.join(dir, 'tpm2-00.permall')) || first.child.exitCode !== null, 6_000)).toBe(true);
    expect(first.child.exitCode).toBeNull();

    const second = await run();
    expect(await second.exited).toBe(1);
    const lines = second.err().trim().split('\n');
    expect(lines, second.err()).toHaveLength(1);
    expect(lines[0]).toMatch(/^vtpmd: could not initialize the TPM: state directory .* is in use by (process \d+|another process) \(a vtpmd or swtpm\); stop it or use another --tpmstate dir$/);

    const logFile = path.join(dir, 'log');
    const third = await run(['--log', `file=${logFile}`]);
    expect(await third.exited).toBe(1);
    expect(third.err().trim().split('\n')).toHaveLength(1);
    expect(fs.readFileSync(logFile, 'utf8')).toMatch(/Error: could not initialize the TPM: state directory .* is in use/);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
  });
});
