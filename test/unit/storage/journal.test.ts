// The permanent state's journal (src/storage/journal.ts): a change is one overwrite of a
// preallocated slot and an fdatasync; a crash at any step leaves the previous or the new state
// loadable, never a mix and never an error; checkpoints fold the journal into tpm2-00.permall.
import * as fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { printStatesJson } from '../../../src/cli/print-states.js';
import { wrapState } from '../../../src/storage/envelope.js';
import { encodeRecord, Journal, JOURNAL_HEADER_SIZE, newestRecord, permallDigest, readJournal, recordSize, slotSizeFor } from '../../../src/storage/journal.js';
import { stateKey } from '../../../src/storage/state-key.js';
import { DirStorage, StateFileError } from '../../../src/storage/storage.js';
import { SimFs, type CrashKind } from './sim-fs.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const DIR = '/state';
const PERMALL = `${DIR}/tpm2-00.permall`;
const JOURNAL = `${DIR}/tpm2-00.permall.journal`;
const CRASHES: CrashKind[] = ['synced', 'everything', 'torn'];

/** State number n: n in every byte, so a mix of two states is visible. */
const state = (n: number, size = 300) => new Uint8Array(size).fill(n);
const idOf = (blob: Uint8Array | null) => {
  if (!blob) return null;
  expect(blob.every((b) => b === blob[0]), 'a state mixed from two').toBe(true);
  return blob[0];
};

/** A directory whose permall holds state 1, synced. */
const sim = () => SimFs.withFiles({ [PERMALL]: wrapState(state(1)) });
const storageOn = (fs: SimFs) => new DirStorage({ dir: DIR, lock: false, fs });
/** What vtpmd does at INIT: checkpoint, then load. */
const restart = (fs: SimFs) => {
  const s = storageOn(fs);
  s.checkpoint();
  return s;
};

const tempDir = tempDirs('vtpmd-journal-');

describe('journal writes', () => {
  it('a change after the first is one write of a slot and one fdatasync; the permall stays as it was until a checkpoint', () => {
    const f = sim();
    const s = restart(f);
    s.storePermanent(state(2)); // creates and formats the journal
    const permallBefore = f.file(PERMALL)!.slice();
    f.log.length = 0;
    s.storePermanent(state(3));
    s.storePermanent(state(4));
    expect(f.log).toEqual([`write ${recordSize(wrapState(state(3)).length)}@${slotSizeFor(wrapState(state(2)).length)}`, 'fdatasync', `write ${recordSize(wrapState(state(4)).length)}@0`, 'fdatasync']);
    expect(f.file(PERMALL)).toEqual(permallBefore);
    expect(idOf(s.loadPermanent())).toBe(4);
    expect(idOf(storageOn(f).loadPermanent())).toBe(4); // another reader sees it too
    f.log.length = 0;
    s.checkpoint();
    expect(f.log.filter((l) => l.startsWith('rename'))).toEqual([`rename ${DIR}/TMP2-00.permall`]);
    expect(newestRecord(f.file(JOURNAL)!)).toBeNull(); // headers zeroed
    expect(idOf(storageOn(f).loadPermanent())).toBe(4);
    f.log.length = 0;
    s.checkpoint(); // nothing new: nothing written
    expect(f.log).toEqual([]);
    restart(f); // nor at the next start, with a journal already zeroed
    expect(f.log).toEqual([]);
  });

  it('the first store without a known permall replaces the permall; no journal file until one is needed', () => {
    const f = new SimFs();
    const s = storageOn(f);
    expect(s.loadPermanent()).toBeNull();
    s.checkpoint();
    s.storePermanent(state(1));
    expect(f.names()).toEqual([PERMALL]);
    s.storePermanent(state(2));
    expect(f.names()).toEqual([PERMALL, JOURNAL]);
    expect(idOf(storageOn(f).loadPermanent())).toBe(2);
  });

  it('a state larger than a slot replaces the permall and grows the journal for the next one', () => {
    const f = sim();
    const s = restart(f);
    s.storePermanent(state(2));
    const small = f.file(JOURNAL)!.length;
    const big = 3 * small;
    s.storePermanent(state(3, big));
    expect(idOf(storageOn(f).loadPermanent())).toBe(3);
    expect(f.file(JOURNAL)!.length).toBeGreaterThan(2 * big);
    f.log.length = 0;
    s.storePermanent(state(4, big));
    expect(f.log.map((l) => l.split(' ')[0])).toEqual(['write', 'fdatasync']);
    expect(idOf(storageOn(f).loadPermanent())).toBe(4);
  });
});

describe('reading a damaged or stale journal', () => {
  function twoRecords(): SimFs {
    const f = sim();
    const s = restart(f);
    s.storePermanent(state(2));
    s.storePermanent(state(3));
    s.storePermanent(state(4)); // slot 0 holds 4 (newest), slot 1 holds 3
    return f;
  }
  const edit = (f: SimFs, name: string, change: (b: Uint8Array) => Uint8Array) => SimFs.withFiles({ [PERMALL]: f.file(PERMALL)!, [JOURNAL]: f.file(JOURNAL)!, [name]: change(f.file(name)!.slice()) });

  it('a bad checksum in the newest slot: the older slot loads', () => {
    const f = edit(twoRecords(), JOURNAL, (b) => {
      b[JOURNAL_HEADER_SIZE + 20] ^= 1;
      return b;
    });
    expect(idOf(storageOn(f).loadPermanent())).toBe(3);
  });

  it('a damaged header in the newest slot: the older slot loads', () => {
    const f = edit(twoRecords(), JOURNAL, (b) => {
      b[12] ^= 0x40; // length
      return b;
    });
    expect(idOf(storageOn(f).loadPermanent())).toBe(3);
  });

  it('both slots bad, a truncated journal, an empty one: the permall loads', () => {
    const bothBad = edit(twoRecords(), JOURNAL, (b) => {
      b[JOURNAL_HEADER_SIZE + 1] ^= 1;
      b[b.length / 2 + JOURNAL_HEADER_SIZE + 1] ^= 1;
      return b;
    });
    expect(idOf(storageOn(bothBad).loadPermanent())).toBe(1);
    expect(idOf(storageOn(edit(twoRecords(), JOURNAL, (b) => b.subarray(0, b.length - 100))).loadPermanent())).toBe(1);
    expect(idOf(storageOn(edit(twoRecords(), JOURNAL, () => new Uint8Array(0))).loadPermanent())).toBe(1);
  });

  it('a permall put back by hand (a backup) wins over the journal written after the old one', () => {
    const f = edit(twoRecords(), PERMALL, () => wrapState(state(9)));
    expect(idOf(storageOn(f).loadPermanent())).toBe(9);
    const s = restart(f); // the stale records are zeroed, and new ones follow the restored permall
    expect(newestRecord(f.file(JOURNAL)!)).toBeNull();
    s.storePermanent(state(10));
    expect(idOf(storageOn(f).loadPermanent())).toBe(10);
  });

  it('a journal without a permall is no state', () => {
    const f = twoRecords();
    const only = SimFs.withFiles({ [JOURNAL]: f.file(JOURNAL)! });
    expect(storageOn(only).loadPermanent()).toBeNull();
  });

  it('a reopened journal numbers new records above the valid ones and writes beside the newest', () => {
    const f = new SimFs();
    const slot = slotSizeFor(1000);
    const file = new Uint8Array(2 * slot);
    const base = new Uint8Array(32).fill(7);
    file.set(encodeRecord(41n, base, state(5)), 0);
    file.set(encodeRecord(42n, base, state(6)), slot); // newest in slot 1
    f.writeSync(f.openSync(JOURNAL, fs.constants.O_CREAT | fs.constants.O_RDWR), file, 0, file.length);
    const j = new Journal(JOURNAL, DIR, { mode: 0o600, explicit: false }, f);
    j.append(base, state(7));
    const [a, b] = readJournal(f.file(JOURNAL)!);
    expect([a!.sequence, idOf(a!.payload)]).toEqual([43n, 7]);
    expect([b!.sequence, idOf(b!.payload)]).toEqual([42n, 6]);
    j.close();
  });
});

describe('a crash at every step leaves the previous or the new state, never a mix, never an error', () => {
  type Step = { store: number; size?: number } | 'checkpoint' | 'restart';
  const scenarios: [string, Step[]][] = [
    ['journal writes, checkpoints, a restart', ['restart', { store: 2 }, { store: 3 }, { store: 4 }, 'checkpoint', { store: 5 }, { store: 6 }, 'restart', { store: 7 }, 'checkpoint', { store: 8 }]],
    ['a state outgrowing the slots, then shrinking', ['restart', { store: 2 }, { store: 3, size: 40_000 }, { store: 4, size: 40_000 }, { store: 5 }, 'checkpoint']],
    ['stores before any checkpoint', [{ store: 2 }, { store: 3 }, 'restart', { store: 4 }]],
  ];

  /** Runs `steps`; returns the last state whose store returned and the one in flight at a crash. */
  function run(f: SimFs, steps: Step[]): { acked: number; inFlight: number | null; crashed: boolean } {
    let s = storageOn(f);
    let acked = 1;
    for (const step of steps) {
      const inFlight = typeof step === 'object' ? step.store : null;
      try {
        if (step === 'restart') s = restart(f);
        else if (step === 'checkpoint') s.checkpoint();
        else s.storePermanent(state(step.store, step.size));
      } catch (e) {
        expect(String(e)).toMatch(/simulated crash/);
        return { acked, inFlight, crashed: true };
      }
      if (inFlight !== null) acked = inFlight;
    }
    return { acked, inFlight: null, crashed: false };
  }

  it.each(scenarios)('%s', (_name, steps) => {
    const dry = sim();
    expect(run(dry, steps).crashed).toBe(false);
    const total = dry.mutations;
    let checked = 0;
    for (let k = 1; k <= total; k++) {
      const f = sim();
      f.failAt = k;
      // A crash the storage survives without an error (growing the journal after the permall
      // already holds the state) shows at the next step, or not at all after the last one.
      const { acked, inFlight } = run(f, steps);
      for (const kind of CRASHES) {
        const image = f.crashImage(kind);
        const allowed = [acked, inFlight].filter((x) => x !== null);
        const where = `crash at ${f.log.length + 1} (${dry.log[k - 1]}), ${kind}`;
        const loaded = idOf(storageOn(image).loadPermanent());
        expect(allowed, where).toContain(loaded);
        // After the restart the same state stays, in the permall, and the journal works on.
        const s = restart(image);
        expect(idOf(s.loadPermanent()), where).toBe(loaded);
        expect(idOf(newestPermanentFileOnly(image)), where).toBe(loaded);
        s.storePermanent(state(99));
        expect(idOf(storageOn(image).loadPermanent()), where).toBe(99);
        checked++;
      }
    }
    expect(checked).toBe(total * CRASHES.length);
  });

  /** The state in the permall file alone (what a checkpoint must have made current). */
  function newestPermanentFileOnly(f: SimFs): Uint8Array | null {
    return storageOn(SimFs.withFiles({ [PERMALL]: f.file(PERMALL)! })).loadPermanent();
  }
});

describe('journal on disk', () => {
  it('under --key the journal holds the state encrypted, exactly as the permall would', () => {
    const dir = tempDir();
    const key = stateKey(new Uint8Array(32).fill(0x5c));
    const marker = new TextEncoder().encode('PLAINTEXT-MARKER-in-the-NV-state');
    const blob = (n: number) => {
      const b = new Uint8Array(2000).fill(n);
      b.set(marker, 100);
      return b;
    };
    const s = new DirStorage({ dir, fileKey: key });
    s.lock();
    s.checkpoint();
    s.storePermanent(blob(1));
    s.storePermanent(blob(2));
    s.storePermanent(blob(3));
    const journal = fs.readFileSync(path.join(dir, 'tpm2-00.permall.journal'));
    expect(journal.includes(Buffer.from(marker))).toBe(false);
    const record = newestRecord(new Uint8Array(journal))!;
    expect(new DataView(record.payload.buffer, record.payload.byteOffset).getUint16(4)).toBe(0x09); // encrypted, 256-bit key
    expect(record.base).toEqual(permallDigest(new Uint8Array(fs.readFileSync(path.join(dir, 'tpm2-00.permall')))));
    expect(new DirStorage({ dir, lock: false, fileKey: key }).loadPermanent()).toEqual(blob(3));
    expect(() => new DirStorage({ dir, lock: false }).loadPermanent()).toThrow(StateFileError);
    expect(() => new DirStorage({ dir, lock: false }).loadPermanent()).toThrow(/encrypted; give the --key/);
    s.unlock();
    for (const f of fs.readdirSync(dir)) expect(fs.readFileSync(path.join(dir, f)).includes(Buffer.from(marker)), f).toBe(false);
  });

  it('--print-states reports the size of the newest permanent state, journal or file', () => {
    const dir = tempDir();
    const s = new DirStorage({ dir });
    s.lock();
    s.checkpoint();
    s.storePermanent(state(1, 100));
    const size = (n: number) => `{ "type": "swtpm", "states": [ {"name": "permall", "size": ${n}} ] }`;
    expect(printStatesJson(dir)).toBe(size(wrapState(state(1, 100)).length));
    s.storePermanent(state(2, 700));
    expect(fs.statSync(path.join(dir, 'tpm2-00.permall')).size).toBe(wrapState(state(1, 100)).length);
    expect(printStatesJson(dir)).toBe(size(wrapState(state(2, 700)).length));
    s.checkpoint();
    expect(fs.statSync(path.join(dir, 'tpm2-00.permall')).size).toBe(wrapState(state(2, 700)).length);
    expect(printStatesJson(dir)).toBe(size(wrapState(state(2, 700)).length));
    s.unlock();
  });
});
