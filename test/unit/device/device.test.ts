import { describe, expect, it, vi } from 'vitest';
import { CHECKPOINT_IDLE_MS, Device, MIN_BUFFER_SIZE, NOT_RUNNING_RESPONSE } from '../../../src/device/device.js';
import { CC, fakeWorld, rcOf, tpmCommand } from './fake-engine.js';

function makeDevice(autoShutdown = true) {
  const w = fakeWorld();
  const device = new Device({ storage: w.storage, engines: w.factory, autoShutdown });
  return { ...w, device };
}

describe('Device', () => {
  it('answers TPM commands with swtpm\'s 10-byte failure while stopped, and they do not count as lastCommand', async () => {
    const { device } = makeDevice();
    const rsp = await device.executeTpm(tpmCommand(CC.GetRandom, [0, 8]));
    expect(Buffer.from(rsp).toString('hex')).toBe('80010000000a00000101');
    expect(Buffer.from(NOT_RUNNING_RESPONSE).toString('hex')).toBe('80010000000a00000101');
    expect(device.lastCommandCode).toBe(0);
  });

  it('INIT with no state manufactures and writes permall at once', async () => {
    const { device, storage, events, engine } = makeDevice();
    expect((await device.init()).ok).toBe(true);
    expect(device.running).toBe(true);
    expect(storage.locked).toBe(true);
    expect(storage.permall).toEqual(new Uint8Array([1, 2, 3]));
    expect(events).toEqual(['manufacture', 'store 3']);
    expect(engine().inits).toBe(1);
    expect(rcOf(await device.executeTpm(tpmCommand(CC.GetRandom)))).toBe(0x100);
  });

  it('INIT restores stored state; a damaged state fails INIT, keeps the TPM stopped, and a later INIT works', async () => {
    const { device, storage, events } = makeDevice();
    storage.permall = new Uint8Array([0xff]);
    const r = await device.init();
    expect(r.ok).toBe(false);
    expect(device.running).toBe(false);
    storage.permall = new Uint8Array([7, 7]);
    expect((await device.init()).ok).toBe(true);
    expect(events).toEqual(['restore', 'restore']);
  });

  it('runs concurrent commands strictly in order', async () => {
    const { device, engine } = makeDevice();
    await device.init();
    const order: number[] = [];
    const cmds = [CC.Startup, CC.GetRandom, CC.NV_Write, CC.GetRandom];
    await Promise.all(cmds.map((cc, i) => device.executeTpm(tpmCommand(cc, [i])).then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2, 3]);
    expect(engine().executed.map((e) => e.cc)).toEqual(cmds);
  });

  it('persists changed permanent state before the response resolves', async () => {
    const { device, events } = makeDevice();
    await device.init();
    await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
    events.length = 0;
    const p = device.executeTpm(tpmCommand(CC.NV_Write, [9])).then(() => events.push('response'));
    await p;
    expect(events).toEqual(['execute 0x137', 'store 4', 'response']);
  });

  it('a failed state write turns the response into TPM_RC_FAILURE', async () => {
    const { device, storage } = makeDevice();
    await device.init();
    await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
    storage.failStore = true;
    expect(rcOf(await device.executeTpm(tpmCommand(CC.NV_Write, [9])))).toBe(0x101);
  });

  it('uses the current locality for commands and keeps it across INIT/STOP', async () => {
    const { device, engine } = makeDevice();
    device.locality = 3;
    await device.init();
    await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
    await device.stop();
    await device.init();
    expect(device.locality).toBe(3);
    await device.executeTpm(tpmCommand(CC.Startup, [0, 0]), 2);
    expect(engine().executed.at(-1)!.locality).toBe(2);
  });

  describe('automatic TPM2_Shutdown (swtpm-compat §2)', () => {
    it('STOP sends Shutdown(SU_STATE) after a started TPM', async () => {
      const { device, engines } = makeDevice();
      await device.init();
      await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
      await device.stop();
      expect(engines[0]!.executed.at(-1)).toMatchObject({ cc: CC.Shutdown, su: 1 });
      expect(device.lastCommandCode).toBe(CC.Shutdown);
      expect(device.running).toBe(false);
    });

    it('falls back to SU_CLEAR on an error other than TPM_RC_INITIALIZE', async () => {
      const { device, engines } = makeDevice();
      await device.init();
      await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
      engines[0]!.shutdownRc = (su) => (su === 1 ? 0x18f : 0);
      await device.init();
      expect(engines[0]!.executed.slice(1)).toEqual([
        { cc: CC.Shutdown, su: 1, locality: 0 },
        { cc: CC.Shutdown, su: 0, locality: 0 },
      ]);
      expect(engines).toHaveLength(2);
    });

    it('gives up on TPM_RC_INITIALIZE (no Startup yet) and is skipped after a client Shutdown', async () => {
      const { device, engines } = makeDevice();
      await device.init();
      await device.init(); // no Startup: one attempt, rc 0x100
      expect(engines[0]!.executed).toEqual([{ cc: CC.Shutdown, su: 1, locality: 0 }]);
      await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
      await device.executeTpm(tpmCommand(CC.Shutdown, [0, 0]));
      await device.stop();
      expect(engines[1]!.executed.map((e) => e.cc)).toEqual([CC.Startup, CC.Shutdown]);
    });

    it('is not sent with disable-auto-shutdown', async () => {
      const { device, engine } = makeDevice(false);
      await device.init();
      await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
      await device.close();
      expect(engine().executed.map((e) => e.cc)).toEqual([CC.Startup]);
    });

    it('close() shuts down, then releases the lock', async () => {
      const { device, storage, engine } = makeDevice();
      await device.init();
      await device.startup('clear');
      expect(device.lastCommandCode).toBe(CC.Startup);
      await device.close();
      expect(engine().executed.map((e) => e.cc)).toEqual([CC.Startup, CC.Shutdown]);
      expect(storage.locked).toBe(false);
    });
  });

  it('buffer size: query, clamp to [min, max], applied at INIT', async () => {
    const { device, engine } = makeDevice();
    expect(device.bufferSize(0)).toEqual({ size: 4096, min: MIN_BUFFER_SIZE, max: 4096 });
    expect(device.bufferSize(100).size).toBe(MIN_BUFFER_SIZE);
    expect(device.bufferSize(10000).size).toBe(4096);
    expect(device.bufferSize(4000).size).toBe(4000);
    await device.init();
    expect(engine().bufferSize).toBe(4000);
  });

  it('checkpoints the storage once the TPM has been idle for a second after a change: once per burst, never for reads', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const { device, storage } = makeDevice();
      await device.init();
      await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
      await vi.advanceTimersByTimeAsync(2 * CHECKPOINT_IDLE_MS);
      const before = storage.checkpoints;
      for (let i = 0; i < 5; i++) {
        await device.executeTpm(tpmCommand(CC.NV_Write, [i]));
        await vi.advanceTimersByTimeAsync(0.6 * CHECKPOINT_IDLE_MS);
      }
      expect(storage.checkpoints).toBe(before); // never idle for a whole second yet
      await vi.advanceTimersByTimeAsync(CHECKPOINT_IDLE_MS);
      expect(storage.checkpoints).toBe(before + 1);
      await device.executeTpm(tpmCommand(CC.GetRandom));
      await vi.advanceTimersByTimeAsync(5 * CHECKPOINT_IDLE_MS);
      expect(storage.checkpoints).toBe(before + 1);
      expect(storage.permall!.length).toBe(3 + 5);
    } finally {
      vi.useRealTimers();
    }
  });

  it('checkpoints before INIT reads the state, at STOP and close, and before a state blob leaves or arrives', async () => {
    const { device, storage } = makeDevice();
    const step = async (f: () => Promise<unknown>) => {
      const n = storage.checkpoints;
      await f();
      return storage.checkpoints - n;
    };
    expect(await step(() => device.init())).toBe(1);
    expect(await step(() => device.getStateBlob('permanent'))).toBe(1);
    expect(await step(() => device.stop())).toBe(1);
    expect(await step(() => device.setStateBlob('permanent', new Uint8Array(0), false))).toBe(1);
    expect(await step(() => device.init())).toBe(1);
    expect(await step(() => device.getStateBlob('savestate'))).toBe(1);
    expect(storage.locked).toBe(false);
    expect(await step(() => device.close())).toBe(1);
  });
});
