// A small stand-in for tpm/engine.ts's Engine and for Storage, recording what happens.
import type { EngineFactory, TpmEngine } from '../../../src/device/device.js';
import type { Storage } from '../../../src/storage/storage.js';
import { LockError } from '../../../src/storage/lock.js';

export const CC = { Startup: 0x144, Shutdown: 0x145, NV_Write: 0x137, GetRandom: 0x17b } as const;

export function tpmCommand(cc: number, params: number[] = []): Uint8Array {
  const out = new Uint8Array(10 + params.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0x8001);
  v.setUint32(2, out.length);
  v.setUint32(6, cc);
  out.set(params, 10);
  return out;
}

export function rcOf(rsp: Uint8Array): number {
  return new DataView(rsp.buffer, rsp.byteOffset).getUint32(6);
}

export class FakeEngine implements TpmEngine {
  started = false;
  bufferSize = 4096;
  inits = 0;
  /** Every executed command code with its locality, internal ones included. */
  executed: { cc: number; su?: number; locality: number }[] = [];
  tpmEstablished = false;
  /** hashStart/hashData/hashEnd calls, with the data. */
  hashing: string[] = [];
  /** What restoreVolatile got (it refuses a blob starting 0xff). */
  restoredVolatile: Uint8Array | null = null;
  /** What Shutdown answers (to test the SU_STATE → SU_CLEAR fallback). */
  shutdownRc: (su: number) => number = () => 0;
  private dirty = false;

  constructor(
    public state: Uint8Array,
    private readonly events: string[],
    manufactured: boolean,
  ) {
    this.dirty = manufactured;
  }

  init(): void {
    this.inits++;
    this.started = false;
  }

  execute(command: Uint8Array, locality: number): Uint8Array {
    const cc = rcOf(command);
    const su = command.length >= 12 ? (command[10]! << 8) | command[11]! : undefined;
    this.executed.push(su === undefined ? { cc, locality } : { cc, su, locality });
    this.events.push(`execute 0x${cc.toString(16)}`);
    let rc = 0;
    if (cc === CC.Startup) {
      if (this.started) rc = 0x100;
      else this.started = true;
    } else if (!this.started) {
      rc = 0x100;
    } else if (cc === CC.Shutdown) {
      rc = this.shutdownRc(su ?? 0);
    } else if (cc === CC.NV_Write) {
      this.state = new Uint8Array([...this.state, command[10] ?? 0]);
      this.dirty = true;
    }
    const rsp = tpmCommand(rc);
    return rsp;
  }

  hashStart(): void {
    this.hashing.push('start');
    this.tpmEstablished = true;
  }

  hashData(data: Uint8Array): void {
    this.hashing.push(`data ${Buffer.from(data).toString('hex')}`);
  }

  hashEnd(): void {
    this.hashing.push('end');
  }

  resetTpmEstablished(): void {
    this.tpmEstablished = false;
  }

  /** "V" + started flag + the permanent state. */
  volatileBlob(): Uint8Array {
    return new Uint8Array([0x56, this.started ? 1 : 0, ...this.state]);
  }

  restoreVolatile(blob: Uint8Array): void {
    if (blob[0] !== 0x56) throw new Error('not a volatile state');
    this.restoredVolatile = blob.slice();
    this.started = blob[1] === 1;
  }

  takePermanentChanges(): Uint8Array | null {
    if (!this.dirty) return null;
    this.dirty = false;
    return this.state.slice();
  }

  permanentBlob(): Uint8Array {
    return this.state.slice();
  }
}

export class MemoryStorage implements Storage {
  permall: Uint8Array | null = null;
  volatile: Uint8Array | null = null;
  /** lock() throws a LockError this many more times. */
  lockBusy = 0;
  locked = false;
  failStore = false;
  failLoad: Error | null = null;
  constructor(private readonly events: string[]) {}
  lock(): void {
    if (this.locked) return;
    if (this.lockBusy > 0) {
      this.lockBusy--;
      throw new LockError('state directory is in use by process 1');
    }
    this.locked = true;
  }
  unlock(): void {
    this.locked = false;
  }
  loadPermanent(): Uint8Array | null {
    if (this.failLoad) throw this.failLoad;
    return this.permall;
  }
  storePermanent(blob: Uint8Array): void {
    if (this.failStore) throw new Error('disk full');
    this.events.push(`store ${blob.length}`);
    this.permall = blob.slice();
  }
  /** How often the device asked for a checkpoint. */
  checkpoints = 0;
  checkpoint(): void {
    this.checkpoints++;
  }
  loadVolatile(): Uint8Array | null {
    return this.volatile;
  }
  storeVolatile(blob: Uint8Array): void {
    this.events.push(`store volatile ${blob.length}`);
    this.volatile = blob.slice();
  }
  deleteVolatile(): void {
    if (this.volatile) this.events.push('delete volatile');
    this.volatile = null;
  }
}

export function fakeWorld() {
  const events: string[] = [];
  const storage = new MemoryStorage(events);
  const engines: FakeEngine[] = [];
  const factory: EngineFactory = {
    manufacture: () => {
      events.push('manufacture');
      const e = new FakeEngine(new Uint8Array([1, 2, 3]), events, true);
      engines.push(e);
      return e;
    },
    restore: (blob) => {
      events.push('restore');
      if (blob[0] === 0xff) throw new Error('bad magic');
      const e = new FakeEngine(blob.slice(), events, false);
      engines.push(e);
      return e;
    },
    maxBufferSize: 4096,
  };
  return { events, storage, engines, factory, engine: () => engines[engines.length - 1]! };
}
