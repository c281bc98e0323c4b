// In the guest: GetRandom and PCR_Extend per second through the CUSE device and through vtpmd's
// socket mode (same engine, same guest). A TCG guest on a busy host is noisy, so the paths take
// turns in short rounds (OPS commands each) after a warm-up, and each rate is total commands over
// total time of that path. Usage: throughput.mjs DEVICE PORT ROUNDS OPS [CUSE_PID SOCKET_PID].
// With the daemons' pids it also reports each daemon's CPU time per command (user and system, in
// µs, from /proc/PID/stat), which the host's load disturbs less than the rates. One JSON line.
import fs from 'node:fs';
import net from 'node:net';

const [dev, port] = [process.argv[2], Number(process.argv[3])];
const rounds = Number(process.argv[4] ?? 10);
const ops = Number(process.argv[5] ?? 20);
const pids = { device: process.argv[6], socket: process.argv[7] };
const TICK_US = 1e6 / 100; // USER_HZ
/** [utime, stime] in clock ticks; null without a pid. */
function cpu(pid) {
  if (!pid) return null;
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return [Number(fields[11]), Number(fields[12])];
}
const getRandom = Buffer.from('80010000000c0000017b0020', 'hex');
const extend = Buffer.concat([
  Buffer.from('80020000004100000182' + '00000010' + '00000009' + '40000009' + '0000' + '00' + '0000', 'hex'),
  Buffer.from('00000001000b', 'hex'),
  Buffer.alloc(32, 0xab),
]);

const fd = fs.openSync(dev, 'r+');
const buf = Buffer.alloc(4096);
function deviceRun(cmd, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    fs.writeSync(fd, cmd);
    const got = fs.readSync(fd, buf, 0, 4096, null);
    if (got < 10 || buf.readUInt32BE(6) !== 0) throw new Error(`device: bad response ${buf.subarray(0, got).toString('hex')}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const sock = await new Promise((resolve, reject) => {
  const s = net.connect(port, '127.0.0.1', () => resolve(s));
  s.on('error', reject);
});
function socketRun(cmd, n) {
  return new Promise((resolve, reject) => {
    let left = n;
    let got = Buffer.alloc(0);
    const t0 = process.hrtime.bigint();
    const onData = (d) => {
      got = Buffer.concat([got, d]);
      if (got.length < 10 || got.length < got.readUInt32BE(2)) return;
      if (got.readUInt32BE(6) !== 0) return reject(new Error(`socket: bad response ${got.toString('hex')}`));
      got = Buffer.alloc(0);
      if (--left > 0) return void sock.write(cmd);
      sock.off('data', onData);
      resolve(Number(process.hrtime.bigint() - t0) / 1e9);
    };
    sock.on('data', onData);
    sock.write(cmd);
  });
}

const result = { device: {}, socket: {}, ops: rounds * ops };
const used = { device: [0, 0], socket: [0, 0] };
async function measured(path, run) {
  const before = cpu(pids[path]);
  const t = await run();
  const after = cpu(pids[path]);
  if (before) used[path] = used[path].map((v, i) => v + after[i] - before[i]);
  return t;
}
for (const [name, cmd] of [['getRandom', getRandom], ['pcrExtend', extend]]) {
  deviceRun(cmd, ops);
  await socketRun(cmd, ops);
  let tDevice = 0;
  let tSocket = 0;
  for (let i = 0; i < rounds; i++) {
    tDevice += await measured('device', () => deviceRun(cmd, ops));
    tSocket += await measured('socket', () => socketRun(cmd, ops));
  }
  result.device[name] = Math.round((rounds * ops) / tDevice);
  result.socket[name] = Math.round((rounds * ops) / tSocket);
}
sock.destroy();
fs.closeSync(fd);
if (pids.device) {
  const perOp = (ticks) => Math.round((ticks * TICK_US) / (2 * rounds * ops));
  result.cpuPerCommandUs = Object.fromEntries(
    Object.entries(used).map(([path, [u, s]]) => [path, { user: perOp(u), system: perOp(s) }]),
  );
}
console.log(JSON.stringify(result));
