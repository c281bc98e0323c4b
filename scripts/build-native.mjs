#!/usr/bin/env node
/**
 * Builds src/native (vtpmd's one N-API addon) with node-gyp against the running Node's headers,
 * unless the built file is newer than its sources, and puts it beside the compiled JS in
 * dist/native/. Needs python3, make and a C compiler (Debian: build-essential) and Node's
 * headers (Debian's nodejs package has them in /usr/include/node).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'src', 'native');
const built = path.join(dir, 'build', 'Release', 'vtpmd_native.node');
const target = path.join(root, 'dist', 'native', 'vtpmd_native.node');
const sources = fs.readdirSync(dir).filter((f) => /\.(c|h|gyp)$/.test(f)).map((f) => path.join(dir, f));

const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : -1);
const fresh = mtime(built) >= Math.max(...sources.map(mtime));

if (!fresh) {
  // npm run sets npm_config_node_gyp to the node-gyp it bundles; outside npm, find that one.
  const prefix = path.dirname(path.dirname(process.execPath));
  const nodeGyp =
    process.env.npm_config_node_gyp ??
    path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const args = [nodeGyp, 'rebuild', '--silent'];
  // Build against the headers of the Node that runs us, never a download.
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  const r = spawnSync(process.execPath, args, { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(
      'vtpmd: building the native addon (src/native) failed. It needs python3, make, a C compiler ' +
        "and Node's headers: on Debian, apt-get install build-essential python3 (nodejs ships the headers).",
    );
    process.exit(1);
  }
}
// Replaced by a rename, never rewritten in place: a running daemon has the file mapped, and
// changing its pages under it ends that daemon with SIGBUS.
fs.mkdirSync(path.dirname(target), { recursive: true });
const same = fs.existsSync(target) && fs.readFileSync(target).equals(fs.readFileSync(built));
if (!same) {
  const temp = `${target}.${process.pid}.tmp`;
  fs.copyFileSync(built, temp);
  fs.renameSync(temp, target);
}
