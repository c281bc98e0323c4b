/**
 * The data channel (swtpm-compat §4.1): raw TPM commands in, one response per command out, no
 * length prefix. Each response goes out in one write.
 *
 * swtpm takes whatever one read() returns (once it has 10 bytes) as the command. vtpmd frames by
 * the header's commandSize instead, so a command split across TCP segments still arrives whole,
 * but it keeps swtpm's answers for everything a real client never sends:
 *
 * - Extra bytes that arrive in the same chunk as the end of a command belong to it: the engine
 *   sees the whole lot and answers TPM_RC_COMMAND_SIZE, as swtpm does. TPM clients never
 *   pipeline commands, so bytes arriving in a later chunk start the next command.
 * - A commandSize below the header size or above MAX_FRAME: the bytes received so far are the
 *   command and the engine gives its verdict (a bad tag comes before a bad size, as in libtpms).
 * - A commandSize larger than what arrived: after INCOMPLETE_MS of silence the bytes received
 *   are handed to the engine as they are (TPM_RC_COMMAND_SIZE), so a single-command client such
 *   as tpm2-tss or QEMU gets its answer quickly instead of waiting for bytes that never come.
 * - Fewer than 10 bytes: swtpm waits for the rest of the header forever; vtpmd waits
 *   INCOMPLETE_HEADER_MS of silence and then lets the engine answer.
 *
 * The connection stays open in every case: the next chunk starts the next command.
 */
import * as fs from 'node:fs';
import type net from 'node:net';
import type { Logger } from '../../common/log.js';
import type { Device } from '../../device/device.js';
import { serveConnection } from '../../native/syscalls.js';
import { concatBytes } from '../../tpm/crypto/bytes.js';
import { slabCopy } from '../../common/slab-copy.js';

const HEADER_SIZE = 10;
const SIZE_OFFSET = 2;
/** Largest commandSize worth collecting (4096 + slack for odd clients); above it, see above. */
export const MAX_FRAME = 4096 + 1024;
/** Silence after which a command shorter than its commandSize is handed over as it is. */
export const INCOMPLETE_MS = 150;
/** Silence after which fewer than 10 bytes (no complete header) are handed over. */
export const INCOMPLETE_HEADER_MS = 2000;

export interface DataConnectionOptions {
  device: Device;
  log: Logger;
  /** `--server ...,disconnect`: close after each response. */
  disconnect: boolean;
}

/** What the framer has for the connection. */
export type Frame =
  /** A command to execute (possibly malformed: the engine answers it). */
  | { command: Uint8Array; reason: 'complete' | 'extra' | 'badSize' }
  /** More bytes are needed; `waitMs` of silence ends the wait (then call `flush`). */
  | { waitMs: number };

/**
 * Splits a byte stream into TPM commands, keeping the chunk boundaries it was pushed with: a
 * chunk that arrives after a command is complete always starts a new command.
 */
export class CommandFramer {
  /** Chunks of the command being collected, then whole chunks not yet looked at. */
  private chunks: Uint8Array[] = [];

  /** Takes `chunk` as it is: the caller gives up the bytes (a view of a reused buffer must be copied first). */
  push(chunk: Uint8Array): void {
    if (chunk.length > 0) this.chunks.push(chunk);
  }

  get buffered(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }

  /** The next command, or how long to wait for more bytes; null when nothing is buffered. */
  next(): Frame | null {
    if (this.chunks.length === 0) return null;
    // Collect chunks until the header is in and its commandSize is reached (or impossible).
    let have = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      have += this.chunks[i]!.length;
      if (have < HEADER_SIZE) continue;
      const size = this.headerSize();
      if (size < HEADER_SIZE || size > MAX_FRAME) return { command: this.take(i + 1), reason: 'badSize' };
      if (have === size) return { command: this.take(i + 1), reason: 'complete' };
      if (have > size) return { command: this.take(i + 1), reason: 'extra' };
    }
    return { waitMs: have < HEADER_SIZE ? INCOMPLETE_HEADER_MS : INCOMPLETE_MS };
  }

  /** Everything buffered, for the incomplete-command timeout. */
  flush(): Uint8Array {
    return this.take(this.chunks.length);
  }

  private headerSize(): number {
    // Almost always the whole header is in the first chunk. A split header is read across the
    // chunks, not joined: a client that sends a byte at a time would otherwise have every byte
    // copy all the bytes before it.
    const first = this.chunks[0]!;
    if (first.length >= HEADER_SIZE) return new DataView(first.buffer, first.byteOffset, HEADER_SIZE).getUint32(SIZE_OFFSET);
    let size = 0;
    let at = 0;
    for (const chunk of this.chunks) {
      for (let i = 0; i < chunk.length && at < SIZE_OFFSET + 4; i++, at++) {
        if (at >= SIZE_OFFSET) size = size * 256 + chunk[i]!;
      }
      if (at === SIZE_OFFSET + 4) break;
    }
    return size;
  }

  private take(n: number): Uint8Array {
    if (n === 1) return this.chunks.shift()!;
    return concatBytes(...this.chunks.splice(0, n));
  }
}

/**
 * Serves TPM commands on one connection until it closes. The connection is read and written by
 * the native addon (serveConnection): the hot path is one read, the engine, one write, with no
 * stream machinery in between. `socket` is Node's handle of the connection, accepted paused (or
 * made unreadable) so that Node never reads it; it stands for the connection towards the front
 * end: destroying it closes the connection, and it is destroyed when the connection ends.
 */
export function serveDataConnection(socket: net.Socket, options: DataConnectionOptions): void {
  const { device, log } = options;
  const framer = new CommandFramer();
  let busy = false;
  let timer: NodeJS.Timeout | undefined;

  const clearTimer = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };

  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    log.warn('data connection without a descriptor: closed');
    socket.destroy();
    return;
  }
  const conn = serveConnection(fd, {
    data(chunk, fds) {
      for (const d of fds) fs.closeSync(d); // nothing is passed on the data channel
      framer.push(slabCopy(chunk)); // the view is of a buffer the next read reuses
      // While a queued command runs, pump() picks up what arrived meanwhile when it is done.
      if (!busy) pump();
    },
    close(errno) {
      if (errno) log.debug(`data connection: ${errno}`);
      clearTimer();
      socket.destroy();
    },
  });
  // A response is one small write that the client waits for: never hold it back (Nagle).
  socket.setNoDelay(true);
  socket.on('error', (e) => log.debug(`data connection: ${e.message}`));
  socket.once('close', () => conn.close());

  const deliver = (response: Uint8Array) => {
    if (!conn.write(response)) return;
    if (options.disconnect) conn.close(true);
  };

  /** Runs one command: at once when the device is idle (the hot path), else after the queue. */
  const run = (command: Uint8Array): void => {
    const now = device.executeTpmNow(command);
    if (now) {
      deliver(now);
      return;
    }
    busy = true;
    void device.executeTpm(command).then((response) => {
      busy = false;
      deliver(response);
      pump();
    });
  };

  const pump = (): void => {
    clearTimer();
    while (!busy && !conn.closed) {
      const frame = framer.next();
      if (frame === null) return;
      if ('waitMs' in frame) {
        timer = setTimeout(() => {
          timer = undefined;
          if (busy || conn.closed || framer.buffered === 0) return;
          const command = framer.flush();
          log.warn(`data channel: incomplete command (${command.length} bytes); handing it to the TPM as it is`);
          run(command);
          pump();
        }, frame.waitMs);
        return;
      }
      if (frame.reason === 'badSize') log.warn(`data channel: impossible commandSize in a ${frame.command.length}-byte command`);
      else if (frame.reason === 'extra') log.warn(`data channel: ${frame.command.length} bytes arrived for a shorter command`);
      run(frame.command);
    }
  };
}
