#!/usr/bin/env node
// The bench's I/O floor: `node scripts/echo-floor.mjs DATA-PORT CTRL-PORT` answers every command
// on its data port with a fixed 10-byte TPM_RC_SUCCESS response, through the same path vtpmd's
// data channel uses (Node's event loop and the native addon: one read, one callback into
// JavaScript, one write) but with no TPM work at all. What it costs per command is what any
// vtpmd command costs before the engine runs; the control port only accepts connections.
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { serveConnection } = await import(path.join(ROOT, 'dist', 'native', 'syscalls.js'));

const SUCCESS = new Uint8Array([0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0]);
const [dataPort, ctrlPort] = process.argv.slice(2).map(Number);
if (!(dataPort > 0 && ctrlPort > 0)) {
  console.error('usage: echo-floor.mjs DATA-PORT CTRL-PORT');
  process.exit(2);
}

net.createServer({ pauseOnConnect: true }, (socket) => {
  const conn = serveConnection(socket._handle.fd, {
    // The bench sends one command at a time and each arrives in one read.
    data: () => conn.write(SUCCESS),
    close: () => socket.destroy(),
  });
}).listen(dataPort, '127.0.0.1');
net.createServer((socket) => socket.on('error', () => {})).listen(ctrlPort, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
