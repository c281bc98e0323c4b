// In the guest: swtpm cuse's read/write semantics on the real device (swtpm-compat §3.5, §7.8).
// Prints one JSON object.
import fs from 'node:fs';

const dev = process.argv[2];
const out = {};
const fd = fs.openSync(dev, 'r+');
try {
  fs.closeSync(fs.openSync(dev, 'r+'));
  out.secondOpen = 'ok';
} catch (e) {
  out.secondOpen = e.code;
}
const getRandom16 = Buffer.from('80010000000c0000017b0010', 'hex');
const startupClear = Buffer.from('80010000000c000001440000', 'hex');
const read = (n) => {
  const b = Buffer.alloc(n);
  return b.subarray(0, fs.readSync(fd, b, 0, n, null));
};
out.writeSize = fs.writeSync(fd, getRandom16);
out.first4 = read(4).toString('hex');
out.rest = read(4096).length;
out.afterUsedUp = read(4096).length;
fs.writeSync(fd, getRandom16);
read(4);
fs.writeSync(fd, startupClear); // a second Startup: TPM_RC_INITIALIZE; the GetRandom leftover is gone
out.afterDrop = read(4096).toString('hex');
fs.closeSync(fd);
// The device is free again after close.
fs.closeSync(fs.openSync(dev, 'r+'));
out.reopen = 'ok';
console.log(JSON.stringify(out));
