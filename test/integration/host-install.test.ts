// The host service as an operator installs it: scripts/install into a scratch prefix, the
// installed command runs from its pruned package, systemd accepts both template units
// (`systemd-analyze verify`) and rates their sandboxing (`systemd-analyze security`), the udev
// rule carries the chosen owner/group/mode, and --uninstall takes it all away again.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, REPO_ROOT, vtpmdAvailable } from '../helpers/daemon.js';

const INSTALL = path.join(REPO_ROOT, 'scripts', 'install');
const isRoot = process.getuid?.() === 0;
const haveAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !vtpmdAvailable() ? 'dist/main.js is not built' : !isRoot ? 'installing needs root' : false;
if (skip) console.log(`[vtpmd tests] host install: skipped (${skip})`);

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, cwd: opts.cwd });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function installInto(root: string, extra: string[] = []) {
  return run('bash', [INSTALL, '--prefix', `${root}/usr`, '--sysconfdir', `${root}/etc`, '--no-reload', ...extra]);
}

describe.skipIf(skip !== false)('scripts/install', () => {
  it('installs a runnable package, the units, the udev rule and the default config; --uninstall removes them', { timeout: 120_000 }, () => {
    const root = makeTempDir('vtpmd-install-');
    const r = installInto(root, ['--device-group', 'root', '--device-mode', '0640', '--device-owner', 'root']);
    expect(r.code, r.out).toBe(0);
    const bin = `${root}/usr/bin/vtpmd`;
    const units = `${root}/etc/systemd/system`;
    for (const f of [bin, `${units}/vtpmd@.service`, `${units}/vtpmd-socket@.service`, `${root}/etc/udev/rules.d/70-vtpmd.rules`, `${root}/etc/vtpmd/default.conf`]) {
      expect(fs.existsSync(f), f).toBe(true);
    }
    // The command runs from the installed copy, with production dependencies only.
    const caps = run(bin, ['socket', '--print-capabilities']);
    expect(caps.code, caps.out).toBe(0);
    expect(JSON.parse(caps.out).type).toBe('swtpm');
    // The daemons run with the V8 flags declared in scripts/daemon-node-flags; setup without.
    const flags = fs.readFileSync(path.join(REPO_ROOT, 'scripts/daemon-node-flags'), 'utf8').trim();
    expect(flags).toMatch(/^--/);
    expect(fs.readFileSync(bin, 'utf8')).toMatch(new RegExp(`socket\\|cuse\\) exec "[^"]+" ${flags} "[^"]+/dist/main\\.js"`));
    expect(fs.existsSync(`${root}/usr/lib/vtpmd/node_modules/yargs`)).toBe(true);
    expect(fs.existsSync(`${root}/usr/lib/vtpmd/node_modules/vitest`)).toBe(false);
    expect(fs.existsSync(`${root}/usr/lib/vtpmd/node_modules/typescript`)).toBe(false);
    // Exactly npm's production set: every package `npm ls --omit=dev` resolves, nothing else.
    const prod = run('npm', ['ls', '--omit=dev', '--all', '--parseable', '--loglevel=error'], { cwd: REPO_ROOT });
    expect(prod.code, prod.out).toBe(0);
    const nm = `${fs.realpathSync(REPO_ROOT)}/node_modules/`;
    const want = prod.out.trim().split('\n').filter((d) => d.startsWith(nm)).map((d) => d.slice(nm.length));
    expect(want).toContain('yargs');
    for (const rel of want) expect(fs.existsSync(`${root}/usr/lib/vtpmd/node_modules/${rel}/package.json`), rel).toBe(true);
    const installed = fs.readdirSync(`${root}/usr/lib/vtpmd/node_modules`).flatMap((d) =>
      d.startsWith('@') ? fs.readdirSync(`${root}/usr/lib/vtpmd/node_modules/${d}`).map((p) => `${d}/${p}`) : [d],
    );
    expect(installed.sort()).toEqual(want.filter((rel) => !rel.includes('/node_modules/')).sort());

    // Paths and device ownership follow the options.
    const cuse = fs.readFileSync(`${units}/vtpmd@.service`, 'utf8');
    expect(cuse).toContain(`ExecStart=${bin} cuse --tpm2 --name vtpm-%i --tpmstate dir=%S/vtpmd/%i`);
    expect(cuse).toContain(`ExecStartPre=${bin} setup --tpm2 --tpmstate %S/vtpmd/%i --not-overwrite`);
    expect(cuse).not.toMatch(/=\/usr\/bin\/vtpmd /);
    expect(fs.readFileSync(`${units}/vtpmd-socket@.service`, 'utf8')).toMatch(/^Group=root$/m);
    const rules = fs.readFileSync(`${root}/etc/udev/rules.d/70-vtpmd.rules`, 'utf8');
    expect(rules).toMatch(/KERNEL=="vtpm-\?\*", OWNER="root", GROUP="root", MODE="0640".*SYMLINK\+="vtpm\/%c"/);
    expect(rules).not.toContain('GROUP="kvm"');

    // A second install keeps an edited default.conf; --uninstall keeps it too, removes the rest.
    fs.appendFileSync(`${root}/etc/vtpmd/default.conf`, 'VTPMD_OPTIONS="--log level=2"\n');
    expect(installInto(root).code).toBe(0);
    expect(fs.readFileSync(`${root}/etc/vtpmd/default.conf`, 'utf8')).toContain('--log level=2');
    const u = installInto(root, ['--uninstall']);
    expect(u.code, u.out).toBe(0);
    expect(u.out).toContain('kept');
    for (const f of [bin, `${root}/usr/lib/vtpmd`, `${units}/vtpmd@.service`, `${units}/vtpmd-socket@.service`, `${root}/etc/udev/rules.d/70-vtpmd.rules`]) {
      expect(fs.existsSync(f), f).toBe(false);
    }
    expect(fs.existsSync(`${root}/etc/vtpmd/default.conf`)).toBe(true);
  });

  it('refuses clearly: not root, a bad mode, an unknown option', () => {
    const scratch = makeTempDir('vtpmd-install-');
    fs.chmodSync(scratch, 0o755);
    const copy = path.join(scratch, 'install');
    fs.copyFileSync(INSTALL, copy);
    fs.chmodSync(copy, 0o755);
    const asNobody = run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', copy]);
    expect(asNobody.code).toBe(1);
    expect(asNobody.out).toMatch(/install: run as root .*--destdir/);
    const mode = run('bash', [INSTALL, '--device-mode', 'rw-rw----']);
    expect(mode.code).toBe(1);
    expect(mode.out).toContain("--device-mode 'rw-rw----' is not an octal mode");
    const unknown = run('bash', [INSTALL, '--frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toContain("unknown option '--frobnicate'");
  });

  it.skipIf(!haveAnalyze)('systemd-analyze: both units verify, and their exposure rates OK or better', { timeout: 120_000 }, () => {
    const root = makeTempDir('vtpmd-install-');
    expect(installInto(root).code).toBe(0);
    // Instances of the templates, as systemd would load vtpmd@vm1 and vtpmd-socket@vm1.
    const dir = makeTempDir('vtpmd-units-');
    const scores: string[] = [];
    for (const unit of ['vtpmd', 'vtpmd-socket']) {
      const instance = path.join(dir, `${unit}@vm1.service`);
      fs.copyFileSync(`${root}/etc/systemd/system/${unit}@.service`, instance);
      const v = run('systemd-analyze', ['verify', instance]);
      expect(v.code, v.out).toBe(0);
      expect(v.out.trim(), v.out).toBe('');
      const s = run('systemd-analyze', ['security', '--offline=true', '--no-pager', instance]);
      const m = /Overall exposure level for \S+: (\d+\.\d+) (\w+)/.exec(s.out);
      expect(m, s.out).not.toBeNull();
      scores.push(`${unit}@: ${m![1]} ${m![2]}`);
      // systemd's scale: 0–10, "OK" up to 4.9 (then MEDIUM, EXPOSED, UNSAFE).
      expect(Number(m![1])).toBeLessThan(5);
      expect(['SAFE', 'OK']).toContain(m![2]);
    }
    console.log(`systemd-analyze security exposure: ${scores.join(', ')}`);
  });
});
