// The swtpm control channel: swtpm_ioctl as the client, plus raw requests for exact bytes.
import { existsSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeImpls, makeTempDir, settlesWithin, startDaemon, type Daemon } from '../helpers/daemon.js';
import { CMD, CtrlClient, ctrlRaw, ctrlRequest, u32be } from '../helpers/ctrl.js';
import { CC, RC, TPM_CAP, TpmClient, cmd, dataTarget, parseResponse, R, transmitOnce } from '../helpers/tpm.js';
import { parsePcrReadOutput, swtpmIoctl, tpm2, tpm2ok } from '../helpers/tools.js';

/** The bits QEMU and cloud-hypervisor require of a TPM 2 emulator (swtpm-compat §1.1). */
const PTM_CAP_REQUIRED_BY_QEMU = 0x348f;

const FATAL = '80010000000a00000101'; // TPM_RC_FAILURE, what a stopped TPM answers
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** GetCapability(TPM_PROPERTIES, MAX_COMMAND_SIZE, 2) → [max command, max response]. */
async function maxSizes(d: Daemon): Promise<number[]> {
  const r = await transmitOnce(dataTarget(d), cmd.getCapability(TPM_CAP.TPM_PROPERTIES, 0x11e, 2));
  expect(r.rc).toBe(0);
  const rd = new R(r.body);
  rd.u8(); // moreData
  expect(rd.u32()).toBe(TPM_CAP.TPM_PROPERTIES);
  const n = rd.u32();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    rd.u32();
    out.push(rd.u32());
  }
  return out;
}

describeImpls('control channel', (impl) => {
  it('swtpm_ioctl -c prints the capability mask; raw GET_CAPABILITY is 8 bytes', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    const r = await swtpmIoctl(d, ['-c']);
    expect(r.code).toBe(0);
    const m = /ptm capability is 0x([0-9a-f]+)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const caps = parseInt(m![1]!, 16);
    // QEMU and cloud-hypervisor refuse to start without these bits (swtpm-compat §1.1)
    expect(caps & PTM_CAP_REQUIRED_BY_QEMU).toBe(PTM_CAP_REQUIRED_BY_QEMU);
    // swtpm 0.7.1 sets every bit up to SEND_COMMAND_HEADER (newer adds LOCK_STORAGE 0x10000);
    // vtpmd sets the bits of what it implements, checked command by command below
    if (impl === 'swtpm') expect(caps & 0xffff).toBe(0xffff);
    else console.log(`[vtpmd] control capability mask 0x${caps.toString(16)}`);
    const raw = await ctrlRequest(d, CMD.GET_CAPABILITY);
    expect(raw.length).toBe(8);
    expect(raw.readUInt32BE(0)).toBe(0);
    expect(raw.readUInt32BE(4)).toBe(caps);
  });

  it('the control capability mask is exact: a set bit\'s commands answer, an unset bit\'s get 0x0A', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    await tpm2ok('startup', d.tcti, ['-c']);
    const caps = (await ctrlRequest(d, CMD.GET_CAPABILITY)).readUInt32BE(4);
    const c = await CtrlClient.connect(d);
    const wrong: string[] = [];
    /** Sends the request; its result word must be 0x0A exactly when `bit` is not set. */
    const probe = async (bit: number, name: string, code: number, body: Uint8Array = Buffer.alloc(0)) => {
      const res = (await c.request(code, body, { quietMs: 200 })).readUInt32BE(0);
      const set = (caps & (1 << bit)) !== 0;
      if (set === (res === 0x0a)) wrong.push(`bit ${bit} ${name}: ${set ? 'advertised' : 'not advertised'}, answers 0x${res.toString(16)}`);
    };
    try {
      // TPM running: the run-gated commands and those allowed in any state
      await probe(2, 'GET_TPMESTABLISHED', CMD.GET_TPMESTABLISHED);
      await probe(3, 'SET_LOCALITY', CMD.SET_LOCALITY, Buffer.from([0, 0, 0, 0]));
      await probe(4, 'HASH_START', CMD.HASH_START);
      await probe(4, 'HASH_DATA', CMD.HASH_DATA, Buffer.concat([u32be(4), Buffer.from('1234')]));
      await probe(4, 'HASH_END', CMD.HASH_END);
      await probe(5, 'CANCEL_TPM_CMD', CMD.CANCEL_TPM_CMD);
      await probe(6, 'STORE_VOLATILE', CMD.STORE_VOLATILE);
      await probe(7, 'RESET_TPMESTABLISHED', CMD.RESET_TPMESTABLISHED, Buffer.from([3, 0, 0, 0]));
      await probe(8, 'GET_STATEBLOB', CMD.GET_STATEBLOB, Buffer.concat([u32be(0), u32be(1), u32be(0)]));
      await probe(11, 'GET_CONFIG', CMD.GET_CONFIG);
      await probe(12, 'SET_DATAFD (no descriptor over TCP)', CMD.SET_DATAFD);
      await probe(13, 'SET_BUFFERSIZE (query)', CMD.SET_BUFFERSIZE, u32be(0));
      await probe(14, 'GET_INFO', CMD.GET_INFO, Buffer.concat([u32be(0), u32be(1), u32be(0), u32be(0)]));
      await probe(16, 'LOCK_STORAGE', CMD.LOCK_STORAGE, u32be(0));
      // TPM stopped: SET_STATEBLOB (length 0 clears the cached blob), then INIT
      await probe(10, 'STOP', CMD.STOP);
      await probe(9, 'SET_STATEBLOB', CMD.SET_STATEBLOB, Buffer.concat([u32be(0), u32be(1), u32be(0)]));
      await probe(0, 'INIT', CMD.INIT, u32be(0));
      // bit 15 is data-channel framing, not a control command
      if (caps & (1 << 15)) {
        const t = await TpmClient.connect(dataTarget(d));
        try {
          t.sock.write(Buffer.concat([u32be(8), Buffer.from([0]), u32be(12), cmd.getRandom(8)]));
          const rsp = await new Promise<Buffer>((resolve) => t.sock.once('data', resolve));
          if (rsp.readUInt32BE(0) !== rsp.length - 8) wrong.push('bit 15 SEND_COMMAND_HEADER: advertised, not honoured');
        } finally {
          t.close();
        }
      }
      await probe(1, 'SHUTDOWN', CMD.SHUTDOWN);
    } finally {
      c.close();
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
    expect(caps & ~0x1ffff).toBe(0); // no bits beyond LOCK_STORAGE
    if (caps & 2) expect(await settlesWithin(d.exited, 4000)).toBe(true);
  });

  it('swtpm_ioctl -i re-initialises: TPM commands need Startup again (0x100)', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    await tpm2ok('startup', d.tcti, ['-c']);
    const r = await swtpmIoctl(d, ['-i']);
    expect(r.code, r.stderr).toBe(0);
    expect((await transmitOnce(dataTarget(d), cmd.getRandom(8))).rc).toBe(RC.INITIALIZE);
    await tpm2ok('startup', d.tcti, ['-c']);
    expect((await transmitOnce(dataTarget(d), cmd.getRandom(8))).rc).toBe(0);
  });

  it('swtpm_ioctl -e reports tpmEstablished 0 on a fresh TPM; raw response is 8 bytes', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    const r = await swtpmIoctl(d, ['-e']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tpmEstablished is 0/);
    expect(hex(await ctrlRequest(d, CMD.GET_TPMESTABLISHED))).toBe('0000000000000000');
  });

  it('swtpm_ioctl -l sets the locality used for TPM commands (PCR_Reset(20): loc 2 ok, loc 1 0x907)', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    await tpm2ok('startup', d.tcti, ['-c']);
    for (const loc of ['3', '4', '0']) expect((await swtpmIoctl(d, ['-l', loc])).code).toBe(0);
    expect((await swtpmIoctl(d, ['-l', '2'])).code).toBe(0);
    expect((await transmitOnce(dataTarget(d), cmd.pcrReset(20))).rc).toBe(0);
    expect((await swtpmIoctl(d, ['-l', '1'])).code).toBe(0);
    expect((await transmitOnce(dataTarget(d), cmd.pcrReset(20))).rc).toBe(RC.LOCALITY);
    // locality 5 is refused by the server with TPM_BAD_LOCALITY (0x3D); 4 is fine
    expect(hex(await ctrlRequest(d, CMD.SET_LOCALITY, Buffer.from([5, 0, 0, 0])))).toBe('0000003d');
    expect(hex(await ctrlRequest(d, CMD.SET_LOCALITY, Buffer.from([4])))).toBe('00000000');
    expect(hex(await ctrlRequest(d, CMD.SET_LOCALITY, Buffer.from([0, 0, 0, 0])))).toBe('00000000');
    expect((await transmitOnce(dataTarget(d), cmd.pcrReset(16))).rc).toBe(0);
  });

  it('swtpm_ioctl -s: the process exits within 4 s', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    await tpm2ok('startup', d.tcti, ['-c']);
    const r = await swtpmIoctl(d, ['-s']);
    expect(r.code, r.stderr).toBe(0);
    expect(await settlesWithin(d.exited, 4000)).toBe(true);
    const { code } = await d.exited;
    expect(code).toBe(0);
  });

  it('swtpm_ioctl --stop: TPM commands get the fatal response, run-gated ctrl commands 0x0A, -i revives', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    await tpm2ok('startup', d.tcti, ['-c']);
    expect((await swtpmIoctl(d, ['--stop'])).code).toBe(0);
    const c = await TpmClient.connect(dataTarget(d));
    try {
      expect(hex(await c.transmit(cmd.getRandom(8)))).toBe(FATAL);
      // the connection stays usable
      expect(hex(await c.transmit(cmd.readClock()))).toBe(FATAL);
    } finally {
      c.close();
    }
    expect(hex(await ctrlRequest(d, CMD.GET_TPMESTABLISHED))).toBe('0000000a');
    const e = await swtpmIoctl(d, ['-e']);
    expect(e.code).not.toBe(0);
    // allowed while stopped: GET_CAPABILITY, GET_CONFIG, SET_BUFFERSIZE query
    expect((await ctrlRequest(d, CMD.GET_CAPABILITY)).readUInt32BE(0)).toBe(0);
    expect(hex(await ctrlRequest(d, CMD.GET_CONFIG))).toBe('0000000000000000');
    expect((await swtpmIoctl(d, ['-i'])).code).toBe(0);
    expect((await transmitOnce(dataTarget(d), cmd.getRandom(8))).rc).toBe(RC.INITIALIZE);
  });

  it('swtpm_ioctl -b 4000 before INIT sets MAX_COMMAND/RESPONSE_SIZE; -b 0 queries; set after INIT is refused', async () => {
    const d = await startDaemon({ impl }); // no not-need-init: TPM not running
    const q = await swtpmIoctl(d, ['-b', '0']);
    expect(q.code).toBe(0);
    expect(q.stdout).toMatch(/TPM buffersize: 4096/);
    const minSize = Number(/minimum size\s*:\s*(\d+)/.exec(q.stdout)?.[1]);
    expect(minSize).toBeGreaterThan(2000);
    expect(minSize).toBeLessThan(4000);
    expect(q.stdout).toMatch(/maximum size\s*:\s*4096/);
    const s = await swtpmIoctl(d, ['-b', '4000']);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/TPM buffersize: 4000/);
    // raw: 16 bytes result, size, min, max
    const raw = await ctrlRequest(d, CMD.SET_BUFFERSIZE, u32be(0));
    expect(raw.length).toBe(16);
    expect([raw.readUInt32BE(0), raw.readUInt32BE(4), raw.readUInt32BE(8), raw.readUInt32BE(12)]).toEqual([0, 4000, minSize, 4096]);
    expect((await swtpmIoctl(d, ['-i'])).code).toBe(0);
    expect((await swtpmIoctl(d, ['-b', '0'])).stdout).toMatch(/TPM buffersize: 4000/);
    const late = await swtpmIoctl(d, ['-b', '3000']);
    expect(late.code).not.toBe(0);
    expect(late.stderr).toMatch(/0xa\b/i);
    expect(hex(await ctrlRequest(d, CMD.SET_BUFFERSIZE, u32be(3000)))).toBe('0000000a');
    await tpm2ok('startup', d.tcti, ['-c']);
    expect(await maxSizes(d)).toEqual([4000, 4000]);
  });

  it('unknown control command → 00 00 00 0a', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    for (const c of [0x00, 0x14, 0xff, 0xffffffff]) {
      expect(hex(await ctrlRequest(d, c)), `cmd 0x${c.toString(16)}`).toBe('0000000a');
    }
  });

  it('INIT with a 3-byte body → 00 00 00 03; zero-input commands with a body → 00 00 00 03', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    // A short INIT body: swtpm waits 500 ms for the rest. swtpm 0.7.1 then closes the connection
    // without an answer; newer swtpm (and vtpmd) answer TPM_BAD_PARAMETER.
    const short = hex(await ctrlRaw(d, Buffer.concat([u32be(CMD.INIT), Buffer.from([0, 0, 0])]), { timeoutMs: 3000 }));
    expect(impl === 'swtpm' ? ['00000003', ''] : ['00000003']).toContain(short);
    expect(hex(await ctrlRaw(d, Buffer.concat([u32be(CMD.INIT), Buffer.from([0, 0, 0, 0, 0])]), { timeoutMs: 3000 }))).toBe('00000003');
    expect(hex(await ctrlRequest(d, CMD.STOP, u32be(0)))).toBe('00000003');
    expect(hex(await ctrlRequest(d, CMD.GET_CONFIG, u32be(0)))).toBe('00000003');
    // the daemon is unaffected
    expect(hex(await ctrlRequest(d, CMD.INIT, u32be(0)))).toBe('00000000');
    expect((await transmitOnce(dataTarget(d), cmd.getRandom(8))).rc).toBe(RC.INITIALIZE);
  });

  it('several requests on one kept-open control connection (QEMU style)', async () => {
    const d = await startDaemon({ impl });
    const c = await CtrlClient.connect(d);
    try {
      expect(hex(await c.request(CMD.GET_TPMESTABLISHED))).toBe('0000000a'); // not running yet
      expect((await c.request(CMD.SET_BUFFERSIZE, u32be(0))).length).toBe(16);
      expect(hex(await c.request(CMD.STOP))).toBe('00000000');
      expect(hex(await c.request(CMD.SET_BUFFERSIZE, u32be(4096))).slice(0, 16)).toBe('0000000000001000');
      expect(hex(await c.request(CMD.INIT, u32be(0)))).toBe('00000000');
      expect(hex(await c.request(CMD.GET_TPMESTABLISHED))).toBe('0000000000000000');
    } finally {
      c.close();
    }
  });

  it('before INIT a TPM command gets exactly 80 01 00 00 00 0a 00 00 01 01 (connection stays open)', async () => {
    const d = await startDaemon({ impl }); // no not-need-init
    const c = await TpmClient.connect(dataTarget(d));
    try {
      // QEMU's probe is TPM2_ReadClock
      expect(hex(await c.transmit(Buffer.from('80010000000a00000181', 'hex')))).toBe(FATAL);
      expect(hex(await c.transmit(cmd.startup()))).toBe(FATAL);
      expect(hex(await c.transmit(cmd.getRandom(16)))).toBe(FATAL);
    } finally {
      c.close();
    }
    expect(hex(await ctrlRequest(d, CMD.GET_TPMESTABLISHED))).toBe('0000000a');
    expect(hex(await ctrlRequest(d, CMD.INIT, u32be(0)))).toBe('00000000');
    expect((await transmitOnce(dataTarget(d), cmd.getRandom(8))).rc).toBe(RC.INITIALIZE);
    expect((await transmitOnce(dataTarget(d), cmd.startup())).rc).toBe(0);
    expect((await transmitOnce(dataTarget(d), cmd.getRandom(8))).rc).toBe(0);
  });

  it('tpm2-tss style empty connect-then-close on the data and control ports does not break the daemon', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    for (let i = 0; i < 10; i++) {
      for (const port of [d.port, d.ctrlPort]) {
        await new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.end();
            s.destroy();
            resolve();
          });
          s.once('error', reject);
        });
      }
    }
    await tpm2ok('startup', d.tcti, ['-c']);
    expect((await tpm2ok('getrandom', d.tcti, ['8'])).stdoutBytes.length).toBe(8);
    // a client that sends half a command and disconnects
    const c = await TpmClient.connect(dataTarget(d));
    c.sock.write(cmd.getRandom(8).subarray(0, 6));
    c.close();
    expect((await tpm2ok('getrandom', d.tcti, ['8'])).stdoutBytes.length).toBe(8);
  });

  it('TPM2_Startup through the data channel after INIT, then GetCapability works (raw framing)', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    const c = await TpmClient.connect(dataTarget(d));
    try {
      const s = parseResponse(await c.transmit(cmd.startup()));
      expect(s.rc).toBe(0);
      expect(hex(s.raw)).toBe('80010000000a00000000');
      const r = await c.call(cmd.getCapability(TPM_CAP.TPM_PROPERTIES, 0x100, 1));
      expect(r.rc).toBe(0);
      expect(c.leftover.length).toBe(0);
    } finally {
      c.close();
    }
    const again = await tpm2('startup', d.tcti, ['-c']);
    expect([0, 1]).toContain(again.code);
    expect(CC.Startup).toBe(0x144);
  });
});

describeImpls('control channel over unix sockets', (impl) => {
  it('swtpm_ioctl --unix -c / -i / -e and raw unknown command', async () => {
    const d = await startDaemon({ impl, transport: 'unix' });
    const t = { ctrlPath: d.ctrlPath! };
    expect((await swtpmIoctl(t, ['-c'])).stdout).toMatch(/ptm capability is 0x[0-9a-f]+/);
    expect(hex(await ctrlRequest(t, 0xff))).toBe('0000000a');
    expect(hex(await transmitOnce(dataTarget(d), cmd.getRandom(8)).then((r) => r.raw))).toBe(FATAL);
    expect((await swtpmIoctl(t, ['-i'])).code).toBe(0);
    expect((await swtpmIoctl(t, ['-e'])).stdout).toMatch(/tpmEstablished is 0/);
    await tpm2ok('startup', d.tcti, ['-c']);
    expect((await tpm2ok('getrandom', d.tcti, ['8'])).stdoutBytes.length).toBe(8);
  });
});

/** PCR `n` of each bank as lowercase hex, through tpm2_pcrread. */
async function pcrs(tcti: string, n: number): Promise<{ sha1: string; sha256: string }> {
  const r = await tpm2ok('pcrread', tcti, [`sha1:${n}+sha256:${n}`]);
  const banks = parsePcrReadOutput(r.stdout);
  return { sha1: banks.get('sha1')!.get(n)!, sha256: banks.get('sha256')!.get(n)! };
}
const stateFile = (d: Daemon, name: string) => path.join(d.stateDir, `tpm2-00.${name}`);
const DIGEST = '22'.repeat(32);

describeImpls('H-CRTM / DRTM hashing and tpmEstablished', (impl) => {
  it('swtpm_ioctl -h 1234 after Startup: PCR 17 = H(0 || H(data)); -e = 1; -r 3 then -e = 0', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    await tpm2ok('startup', d.tcti, ['-c']);
    expect((await swtpmIoctl(d, ['-e'])).stdout).toMatch(/tpmEstablished is 0/);
    const h = await swtpmIoctl(d, ['-h', '1234']);
    expect(h.code, h.stderr).toBe(0);
    expect(await pcrs(d.tcti, 17)).toEqual({
      sha1: '97e976e4f22cd6d24afd212085ad7a86647f2ae5',
      sha256: 'fca5d649bfb0c922fd330f79b20043289dafd60d01a4c4373cf28adb56c9b454',
    });
    expect((await pcrs(d.tcti, 18)).sha256).toBe('00'.repeat(32)); // reset from all-ones by the DRTM
    expect((await swtpmIoctl(d, ['-e'])).stdout).toMatch(/tpmEstablished is 1/);
    expect(hex(await ctrlRequest(d, CMD.GET_TPMESTABLISHED))).toBe('0000000001000000');
    expect((await swtpmIoctl(d, ['-r', '3'])).code).toBe(0);
    expect((await swtpmIoctl(d, ['-e'])).stdout).toMatch(/tpmEstablished is 0/);
  });

  it('-h before Startup (H-CRTM): PCR 0 = H(0…04 || H(data)) after Startup(CLEAR)', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    expect((await swtpmIoctl(d, ['-h', '1234'])).code).toBe(0);
    await tpm2ok('startup', d.tcti, ['-c']);
    expect(await pcrs(d.tcti, 0)).toEqual({
      sha1: '650ef867669ee66b4afb2d348823d8b7021f6727',
      sha256: '340a233fac4ca014986e45dd95ec776a7a3f86a21074f43a4390c5b8c3abeaf4',
    });
    expect((await swtpmIoctl(d, ['-e'])).stdout).toMatch(/tpmEstablished is 1/);
  });

  it('raw HASH_* bytes: gates (0x0A while stopped), empty bodies, data split across writes; 8 KiB of "a"', async () => {
    const d = await startDaemon({ impl });
    expect(hex(await ctrlRequest(d, CMD.HASH_START))).toBe('0000000a');
    expect(hex(await ctrlRequest(d, CMD.INIT, u32be(0)))).toBe('00000000');
    await tpm2ok('startup', d.tcti, ['-c']);
    expect(hex(await ctrlRequest(d, CMD.HASH_START, u32be(0)))).toBe('00000003');
    const c = await CtrlClient.connect(d);
    try {
      expect(hex(await c.request(CMD.HASH_START))).toBe('00000000');
      const data = Buffer.alloc(8192, 'a');
      c.write(Buffer.concat([u32be(CMD.HASH_DATA), u32be(4096), data.subarray(0, 2000)]));
      await new Promise((r) => setTimeout(r, 50));
      c.write(data.subarray(2000, 4096)); // the rest of the first chunk, in a second write
      expect(hex(await c.read({ expectLen: 4 }))).toBe('00000000');
      expect(hex(await c.request(CMD.HASH_DATA, Buffer.concat([u32be(4096), data.subarray(4096)])))).toBe('00000000');
      expect(hex(await c.request(CMD.HASH_END))).toBe('00000000');
    } finally {
      c.close();
    }
    // swtpm-compat §7.5: PCR17 after hashing 8 KiB of 'a'
    expect((await pcrs(d.tcti, 17)).sha256).toMatch(/^e517e39b[0-9a-f]{52}4cb9$/);
  });
});

describeImpls('volatile state and state blobs', (impl) => {
  it('-v writes tpm2-00.volatilestate; -i resumes from it (PCRs kept, no Startup) and deletes it', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    await tpm2ok('startup', d.tcti, ['-c']);
    await tpm2ok('pcrextend', d.tcti, [`10:sha256=${DIGEST}`]);
    const before = await pcrs(d.tcti, 10);
    expect(existsSync(stateFile(d, 'volatilestate'))).toBe(false);
    expect((await swtpmIoctl(d, ['-v'])).code).toBe(0);
    expect(existsSync(stateFile(d, 'volatilestate'))).toBe(true);
    await tpm2ok('pcrextend', d.tcti, [`10:sha256=${DIGEST}`]);
    expect((await swtpmIoctl(d, ['-i'])).code).toBe(0);
    expect(existsSync(stateFile(d, 'volatilestate'))).toBe(false);
    expect(await pcrs(d.tcti, 10)).toEqual(before);
    expect((await transmitOnce(dataTarget(d), cmd.startup())).rc).toBe(RC.INITIALIZE); // already started
  });

  it('--save permanent/volatile, --stop, --load both, -i: PCRs restored; volatile file gone after --save', async () => {
    const dir = makeTempDir();
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    await tpm2ok('startup', d.tcti, ['-c']);
    await tpm2ok('pcrextend', d.tcti, [`10:sha256=${DIGEST}`]);
    const before = await pcrs(d.tcti, 10);
    const perm = path.join(dir, 'perm');
    const vol = path.join(dir, 'vol');
    expect((await swtpmIoctl(d, ['--save', 'permanent', perm])).code).toBe(0);
    expect((await swtpmIoctl(d, ['--save', 'volatile', vol])).code).toBe(0);
    expect(existsSync(stateFile(d, 'volatilestate'))).toBe(false);
    expect(statSync(perm).size).toBeGreaterThan(10);
    expect(statSync(vol).size).toBeGreaterThan(10);
    // loading needs a stopped TPM
    const early = await swtpmIoctl(d, ['--load', 'permanent', perm]);
    expect(early.code).not.toBe(0);
    expect((await swtpmIoctl(d, ['--stop'])).code).toBe(0);
    expect((await swtpmIoctl(d, ['--load', 'permanent', perm])).code).toBe(0);
    expect((await swtpmIoctl(d, ['--load', 'volatile', vol])).code).toBe(0);
    expect((await swtpmIoctl(d, ['-i'])).code).toBe(0);
    expect(await pcrs(d.tcti, 10)).toEqual(before);
    // a second INIT without blobs: the loaded state is the one on disk now
    expect((await swtpmIoctl(d, ['-i'])).code).toBe(0);
    expect((await transmitOnce(dataTarget(d), cmd.getRandom(8))).rc).toBe(RC.INITIALIZE);
  });

  it('the blobs move state to another instance: PCRs and the permanent state arrive', async () => {
    const dir = makeTempDir();
    const src = await startDaemon({ impl, flags: ['not-need-init'] });
    await tpm2ok('startup', src.tcti, ['-c']);
    await tpm2ok('pcrextend', src.tcti, [`10:sha256=${DIGEST}`]);
    const before = await pcrs(src.tcti, 10);
    for (const t of ['permanent', 'volatile']) expect((await swtpmIoctl(src, ['--save', t, path.join(dir, t)])).code).toBe(0);
    const dst = await startDaemon({ impl });
    for (const t of ['permanent', 'volatile']) expect((await swtpmIoctl(dst, ['--load', t, path.join(dir, t)])).code).toBe(0);
    expect((await swtpmIoctl(dst, ['-i'])).code).toBe(0);
    expect(await pcrs(dst.tcti, 10)).toEqual(before);
    expect(existsSync(stateFile(dst, 'permall'))).toBe(true);
  });

  it('GET_STATEBLOB SAVESTATE: TPM_RETRY (0x800) with a 16-byte header; bad type: 0x09 header', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    const save = await ctrlRequest(d, CMD.GET_STATEBLOB, Buffer.concat([u32be(0), u32be(3), u32be(0)]), { expectLen: 16 });
    expect(hex(save)).toBe('00000800' + '00'.repeat(12));
    const bad = await ctrlRequest(d, CMD.GET_STATEBLOB, Buffer.concat([u32be(0), u32be(7), u32be(0)]), { expectLen: 16 });
    // newer swtpm (and vtpmd): TPM_FAIL; Debian's swtpm 0.7.1 answers TPM_RETRY for an unknown type too
    expect(impl === 'swtpm' ? ['00000009', '00000800'] : ['00000009']).toContain(hex(bad).slice(0, 8));
    expect(hex(bad).slice(8)).toBe('00'.repeat(12));
    // the TPM keeps working (the lock is taken again before the next command)
    await tpm2ok('startup', d.tcti, ['-c']);
  });
});

describeImpls('GET_INFO and LOCK_STORAGE', (impl) => {
  it('swtpm_ioctl --info 1 / 2 / 3 print libtpms\' JSON', async () => {
    const d = await startDaemon({ impl });
    const spec = '{"TPMSpecification":{"family":"2.0","level":0,"revision":164}}';
    const attrs = '{"TPMAttributes":{"manufacturer":"id:00001014","version":"id:20191023","model":"swtpm"}}';
    expect((await swtpmIoctl(d, ['--info', '1'])).stdout.trim()).toBe(spec);
    expect((await swtpmIoctl(d, ['--info', '2'])).stdout.trim()).toBe(attrs);
    expect((await swtpmIoctl(d, ['--info', '3'])).stdout.trim()).toBe(`{${spec.slice(1, -1)},${attrs.slice(1, -1)}}`);
    expect((await swtpmIoctl(d, ['--info', '0'])).stdout.trim()).toBe('{}');
    const raw = await ctrlRequest(d, CMD.GET_INFO, Buffer.concat([u32be(0), u32be(1), u32be(0), u32be(0)]), { quietMs: 200 });
    expect(hex(raw)).toBe('00000000' + u32be(spec.length + 1).toString('hex').repeat(2) + Buffer.from(spec + '\0').toString('hex'));
    expect(hex(await ctrlRequest(d, CMD.GET_INFO, Buffer.concat([u32be(0), u32be(1), u32be(spec.length), u32be(0)])))).toBe('00000003');
  });

  it('LOCK_STORAGE: 0 once the lock is held (where advertised)', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init'] });
    const caps = (await ctrlRequest(d, CMD.GET_CAPABILITY)).readUInt32BE(4);
    const r = hex(await ctrlRequest(d, CMD.LOCK_STORAGE, u32be(3)));
    expect(r).toBe(caps & (1 << 16) ? '00000000' : '0000000a');
    if (impl === 'vtpmd') expect(caps & (1 << 16)).not.toBe(0);
  });
});
