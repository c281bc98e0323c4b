// Every implemented control command over a real control connection (socket layout, big-endian),
// against a Device with a fake engine: success and error replies, byte for byte.
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CMD, PTM_CAP, PTM_CAP_REQUIRED_BY_QEMU } from '../../../src/control/codes.js';
import { capabilities, CONTROL_TABLE } from '../../../src/control/handlers.js';
import { Device } from '../../../src/device/device.js';
import { CtrlConnection } from '../../../src/frontends/socket/ctrl-channel.js';
import { CC, fakeWorld, tpmCommand } from '../device/fake-engine.js';

let server: net.Server;
let port: number;
let device: Device;
let world: ReturnType<typeof fakeWorld>;
let shutdowns: number;
let adopted: (net.Socket | null)[];

beforeEach(async () => {
  world = fakeWorld();
  device = new Device({ storage: world.storage, engines: world.factory });
  shutdowns = 0;
  adopted = [];
  server = net.createServer((s) => {
    new CtrlConnection(s, {
      device,
      log: { error() {}, warn() {}, info() {}, debug() {}, close() {} },
      fdPassing: true,
      adoptDataSocket: (fd) => {
        adopted.push(fd);
        return fd ? 0 : 3;
      },
      onShutdown: () => shutdowns++,
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
afterEach(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

/** Sends the hex chunks (separate writes, `gapMs` apart) and returns the reply as hex ('' if closed without one). */
async function ctrl(chunks: string | string[], gapMs = 0): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => s.once('connect', () => r()));
  const got: Buffer[] = [];
  const done = new Promise<string>((resolve) => {
    let idle: NodeJS.Timeout | undefined;
    s.on('data', (d) => {
      got.push(d);
      clearTimeout(idle);
      idle = setTimeout(() => resolve(Buffer.concat(got).toString('hex')), 40);
    });
    s.on('close', () => resolve(Buffer.concat(got).toString('hex')));
  });
  for (const c of [chunks].flat()) {
    s.write(Buffer.from(c.replace(/ /g, ''), 'hex'));
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  const out = await done;
  s.destroy();
  return out;
}

const running = async () => {
  expect(await ctrl('00000002 00000000')).toBe('00000000');
};

describe('control channel (socket layout)', () => {
  it('GET_CAPABILITY: result 0 and the mask of implemented commands', async () => {
    expect(await ctrl('00000001')).toBe('00000000' + '00003caf');
    expect(capabilities({ fdPassing: true }) & PTM_CAP_REQUIRED_BY_QEMU).toBe(0x348f);
    expect(capabilities({ fdPassing: false }) & PTM_CAP.SET_DATAFD).toBe(0);
  });

  it('unknown and not-yet-implemented commands: 00 00 00 0a', async () => {
    for (const code of ['000000ff', '00000006', '00000008', '0000000a', '0000000c', '00000012', '00000013']) {
      expect(await ctrl(code)).toBe('0000000a');
    }
    expect(CONTROL_TABLE.has(CMD.HASH_START)).toBe(false);
  });

  it('INIT: body exactly 4 bytes; manufactures and starts the TPM', async () => {
    expect(await ctrl('00000002 00000000 00')).toBe('00000003');
    expect(device.running).toBe(false);
    await running();
    expect(device.running).toBe(true);
    expect(world.storage.permall).not.toBeNull();
  });

  it('INIT failure (damaged state): 00 00 00 09, process keeps serving, a later INIT works', async () => {
    world.storage.failLoad = new Error('damaged');
    expect(await ctrl('00000002 00000000')).toBe('00000009');
    world.storage.failLoad = null;
    await running();
  });

  it('a body that stays short is answered 00 00 00 03 after 500 ms (newer swtpm; 0.7.1 closes)', async () => {
    const t0 = Date.now();
    expect(await ctrl('00000002 0000')).toBe('00000003');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    // the TPM was not touched and the connection is still usable
    expect(world.engines).toHaveLength(0);
  });

  it('short bodies after 500 ms: gate first (0x0a while stopped), then length (0x03); < 4 bytes → 0x03', async () => {
    expect(await ctrl('0000000b')).toBe('0000000a'); // RESET_TPMESTABLISHED, TPM stopped
    expect(await ctrl('00000005')).toBe('00000003'); // SET_LOCALITY without loc
    expect(await ctrl('0000')).toBe('00000003'); // not even a command code
    await running();
    expect(await ctrl('0000000b')).toBe('00000003'); // RESET_TPMESTABLISHED without loc, running
  });

  it('after a timed-out request the connection serves the next one', async () => {
    const s = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    const replies: Buffer[] = [];
    s.on('data', (d) => replies.push(d));
    s.write(Buffer.from('00000002 00'.replace(/ /g, ''), 'hex'));
    await new Promise((r) => setTimeout(r, 650));
    s.write(Buffer.from('0000000200000000', 'hex'));
    await new Promise((r) => setTimeout(r, 100));
    s.destroy();
    expect(Buffer.concat(replies).toString('hex')).toBe('00000003' + '00000000');
  });

  it('a body split across writes within 500 ms is collected', async () => {
    expect(await ctrl(['0000', '0002 0000', '0000'], 20)).toBe('00000000');
  });

  it('GET_TPMESTABLISHED: needs a running TPM; res, bit, 3 pad', async () => {
    expect(await ctrl('00000004')).toBe('0000000a');
    await running();
    expect(await ctrl('00000004 00')).toBe('00000003');
    expect(await ctrl('00000004')).toBe('00000000' + '00000000');
    device.tpmEstablished = true;
    expect(await ctrl('00000004')).toBe('00000000' + '01000000');
  });

  it('RESET_TPMESTABLISHED: running; 1–4 byte loc; only locality 3 or 4', async () => {
    expect(await ctrl('0000000b 03')).toBe('0000000a');
    await running();
    device.tpmEstablished = true;
    device.locality = 0;
    expect(await ctrl('0000000b 00')).toBe('0000003d');
    expect(await ctrl('0000000b 05')).toBe('0000003d');
    expect(device.tpmEstablished).toBe(true);
    expect(await ctrl('0000000b 03000000')).toBe('00000000');
    expect(device.tpmEstablished).toBe(false);
    expect(await ctrl('0000000b 04')).toBe('00000000');
    expect(device.locality).toBe(0);
  });

  it('SET_LOCALITY: 1–4 bytes, 0..4 accepted, 5 → 0x3d, works while stopped', async () => {
    expect(await ctrl('00000005 04')).toBe('00000000');
    expect(device.locality).toBe(4);
    expect(await ctrl('00000005 02000000')).toBe('00000000');
    expect(device.locality).toBe(2);
    expect(await ctrl('00000005 05')).toBe('0000003d');
    expect(device.locality).toBe(2);
  });

  it('CANCEL_TPM_CMD: running, empty body', async () => {
    expect(await ctrl('00000009')).toBe('0000000a');
    await running();
    expect(await ctrl('00000009')).toBe('00000000');
    expect(await ctrl('00000009 00')).toBe('00000003');
  });

  it('STOP: auto-shutdown, TPM stopped, TPM commands then fail; body must be empty', async () => {
    await running();
    await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
    expect(await ctrl('0000000e 00')).toBe('00000003');
    expect(await ctrl('0000000e')).toBe('00000000');
    expect(device.running).toBe(false);
    expect(world.engine().executed.at(-1)).toMatchObject({ cc: CC.Shutdown, su: 1 });
    expect(Buffer.from(await device.executeTpm(tpmCommand(CC.GetRandom))).toString('hex')).toBe('80010000000a00000101');
  });

  it('GET_CONFIG: 8 zero bytes; extra body → 0x03', async () => {
    expect(await ctrl('0000000f')).toBe('0000000000000000');
    expect(await ctrl('0000000f 00')).toBe('00000003');
  });

  it('SET_BUFFERSIZE: query always; set only while stopped; clamped; res,size,min,max', async () => {
    expect(await ctrl('00000011 00000000')).toBe('00000000' + '00001000' + '00000af8' + '00001000');
    expect(await ctrl('00000011 00000064')).toBe('00000000' + '00000af8' + '00000af8' + '00001000');
    expect(await ctrl('00000011 00002710')).toBe('00000000' + '00001000' + '00000af8' + '00001000');
    expect(await ctrl('00000011 00000fa0')).toBe('00000000' + '00000fa0' + '00000af8' + '00001000');
    expect(await ctrl('00000011 0000')).toBe('00000003');
    await running();
    expect(world.engine().bufferSize).toBe(4000);
    expect(await ctrl('00000011 00000fa0')).toBe('0000000a');
    expect(await ctrl('00000011 00000000')).toBe('00000000' + '00000fa0' + '00000af8' + '00001000');
  });

  it('SET_DATAFD without a descriptor: 0x03 from the front end', async () => {
    expect(await ctrl('00000010')).toBe('00000003');
    expect(adopted).toEqual([null]);
  });

  it('SHUTDOWN: body must be empty; replies, then asks the process to end', async () => {
    await running();
    expect(await ctrl('00000003 00')).toBe('00000003');
    expect(shutdowns).toBe(0);
    expect(await ctrl('00000003')).toBe('00000000');
    expect(shutdowns).toBe(1);
    expect(device.running).toBe(false);
  });

  it('several commands on one connection, one reply each', async () => {
    const s = net.connect(port, '127.0.0.1');
    const replies: string[] = [];
    await new Promise<void>((r) => s.once('connect', () => r()));
    for (const c of ['00000001', '0000000500', '0000000f']) {
      const got = new Promise<string>((r) => s.once('data', (d) => r(d.toString('hex'))));
      s.write(Buffer.from(c, 'hex'));
      replies.push(await got);
    }
    s.destroy();
    expect(replies).toEqual(['0000000000003caf', '00000000', '0000000000000000']);
  });
});
