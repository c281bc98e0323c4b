// WriteBackStorage (vtpmd setup): nothing reaches the directory before flush(), reads see the
// pending state, flush() writes each changed file once.
import * as fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirStorage, newestPermanent } from '../../../src/storage/storage.js';
import { WriteBackStorage } from '../../../src/storage/write-back.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const tempDir = tempDirs('vtpmd-wb-');

function storage() {
  const dir = tempDir();
  const inner = new DirStorage({ dir });
  return { dir, inner, pending: new WriteBackStorage(inner) };
}

describe('WriteBackStorage', () => {
  it('holds stores in memory until flush, then writes them through the storage beneath', () => {
    const { dir, inner, pending } = storage();
    pending.lock();
    pending.storePermanent(Uint8Array.of(1));
    pending.storePermanent(Uint8Array.of(2, 3));
    pending.storeVolatile(Uint8Array.of(9));
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('tpm2-'))).toEqual([]);
    expect(pending.loadPermanent()).toEqual(Uint8Array.of(2, 3));
    expect(pending.loadVolatile()).toEqual(Uint8Array.of(9));
    pending.flush();
    expect(inner.loadPermanent()).toEqual(Uint8Array.of(2, 3));
    expect(inner.loadVolatile()).toEqual(Uint8Array.of(9));
    pending.unlock();
  });

  it('a deleted volatile state is deleted at flush; untouched state is read from beneath and not rewritten', () => {
    const { dir, inner, pending } = storage();
    inner.lock();
    inner.storePermanent(Uint8Array.of(7));
    inner.storeVolatile(Uint8Array.of(8));
    const before = fs.statSync(path.join(dir, 'tpm2-00.permall')).mtimeMs;
    expect(pending.loadPermanent()).toEqual(Uint8Array.of(7));
    pending.deleteVolatile();
    expect(pending.loadVolatile()).toBeNull();
    expect(inner.loadVolatile()).toEqual(Uint8Array.of(8));
    pending.flush();
    expect(inner.loadVolatile()).toBeNull();
    expect(fs.statSync(path.join(dir, 'tpm2-00.permall')).mtimeMs).toBe(before);
    inner.unlock();
  });

  it('flush leaves the permanent state in tpm2-00.permall itself, not in the journal (a reconfigured directory)', () => {
    const { dir, inner, pending } = storage();
    inner.lock();
    inner.storePermanent(Uint8Array.of(1));
    inner.storePermanent(Uint8Array.of(2)); // a running daemon's change: in the journal
    expect(newestPermanent(dir)?.fromJournal).toBe(true);
    inner.unlock();
    pending.lock();
    pending.checkpoint(); // INIT folds it
    expect(newestPermanent(dir)?.fromJournal).toBe(false);
    expect(pending.loadPermanent()).toEqual(Uint8Array.of(2));
    pending.storePermanent(Uint8Array.of(3));
    pending.flush();
    expect(newestPermanent(dir)?.fromJournal).toBe(false);
    expect(inner.loadPermanent()).toEqual(Uint8Array.of(3));
    pending.unlock();
  });
});
