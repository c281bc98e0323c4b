/**
 * `vtpmd setup`: provisions a state directory offline, with the engine in-process behind a
 * Device (the state lock is taken as the daemon takes it). Exit codes as swtpm_setup's: 0 on
 * success or when --not-overwrite finds existing state, 1 on any error, and a failed or
 * interrupted (SIGTERM, SIGINT, SIGHUP) run leaves no new state files behind.
 */
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createLogger, openLogFile, type Logger } from '../common/log.js';
import { Device } from '../device/device.js';
import { realEngines } from '../device/engine-factory.js';
import { journalFileName, stateFileName, STATE_NAMES } from '../storage/layout.js';
import { DirStorage } from '../storage/storage.js';
import { WriteBackStorage } from '../storage/write-back.js';
import { defaultEnv } from '../tpm/engine.js';
import { provision, type ProvisionResult } from '../setup/provision.js';
import { x509Lib } from '../setup/x509-provider.js';
import { parseKeyOption } from './key-options.js';
import { UsageError } from './key-value.js';
import type { SetupConfig } from './setup-config.js';

/** A setup failure the CLI reports as one line and exit code 1. */
export class SetupError extends Error {
  readonly code = 'VTPMD_STARTUP';
}

/** swtpm_setup writes its report to the log file, or to stdout without one. */
function openSetupLog(file: string | undefined): Logger {
  if (file === undefined) return createLogger({ fd: 1, level: 'info' });
  try {
    return createLogger({ fd: openLogFile(file, false), level: 'info', ownsFd: true });
  } catch (e) {
    throw new UsageError(`--logfile: cannot open ${file}: ${(e as Error).message}`);
  }
}

function stateFiles(dir: string): string[] {
  return [...Object.values(STATE_NAMES).map(stateFileName), journalFileName()].map((f) => path.join(dir, f));
}

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** --display: each EK's public key and certificate. */
function display(result: ProvisionResult): string {
  const x = x509Lib();
  let out = '';
  for (const ek of result.eks) {
    out += `EK ${ek.algorithm}${ek.handle !== null ? ` (persistent handle 0x${ek.handle.toString(16)})` : ''}:\n`;
    out += pem('PUBLIC KEY', ek.publicKey.spki);
    if (ek.certificate) {
      const c = new x.X509Certificate(ek.certificate);
      out += `EK certificate${ek.certIndex !== null ? ` (NV index 0x${ek.certIndex.toString(16)})` : ''}: serial ${BigInt(`0x${c.serialNumber}`)}, subject ${c.subject}, issuer ${c.issuer}\n`;
      out += pem('CERTIFICATE', ek.certificate);
    }
  }
  return out;
}

export async function runSetup(config: SetupConfig): Promise<number> {
  const log = openSetupLog(config.logfile);
  const reconfigure = config.action === 'reconfigure';
  let created = false;
  // --not-overwrite never touches existing state, not even its lock (a daemon may be running on it).
  const permanentFile = path.join(config.stateDir, stateFileName(STATE_NAMES.permanent));
  if (!reconfigure && config.existing === 'keep' && existsSync(permanentFile)) {
    log.info(`TPM state in ${config.stateDir} exists; not overwriting it (--not-overwrite).`);
    log.close();
    return 0;
  }
  let storage: DirStorage | undefined;
  // A stop while provisioning (systemd's start timeout, Ctrl-C) must not leave a half-made state:
  // --not-overwrite would take it for a provisioned one on the next start.
  const interrupted = (signal: NodeJS.Signals) => {
    if (created) for (const f of stateFiles(config.stateDir)) rmSync(f, { force: true });
    storage?.unlock();
    const message = `interrupted by ${signal}${created ? '; the partial state was removed' : ''}`;
    if (config.logfile !== undefined) log.error(message);
    log.close();
    process.stderr.write(`vtpmd setup: ${message}\n`);
    process.exit(1);
  };
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  for (const sig of signals) process.once(sig, interrupted);
  try {
    // The key is read (and its fd closed) once, as the daemon reads --key.
    const fileKey = config.key !== undefined ? parseKeyOption(config.key.spec, config.key.option) : undefined;
    storage = new DirStorage({ dir: config.stateDir, lock: true, ...(fileKey ? { fileKey } : {}) });
    if (reconfigure && !existsSync(permanentFile)) {
      throw new SetupError(`there is no TPM state in ${config.stateDir} to reconfigure; run vtpmd setup without --reconfigure to manufacture one`);
    }
    try {
      storage.lock();
    } catch (e) {
      throw new SetupError(`${(e as Error).message}`);
    }
    const existing = stateFiles(config.stateDir).filter((f) => existsSync(f));
    if (!reconfigure && existing.some((f) => f.endsWith(STATE_NAMES.permanent))) {
      if (config.existing === 'keep') {
        log.info(`TPM state in ${config.stateDir} exists; not overwriting it (--not-overwrite).`);
        return 0;
      }
      if (config.existing === 'error') {
        throw new SetupError(`TPM state already exists in ${config.stateDir}; add --overwrite to replace it or --not-overwrite to keep it`);
      }
    }
    if (!reconfigure && config.existing === 'overwrite') for (const f of existing) rmSync(f, { force: true });
    if (config.provision.certFilesDir !== undefined && !existsSync(config.provision.certFilesDir)) {
      throw new SetupError(`--write-ek-cert-files: the directory ${config.provision.certFilesDir} does not exist`);
    }

    // A failed reconfiguration leaves the state as it was (every write is atomic); a failed
    // manufacturing run removes what it created.
    created = !reconfigure;
    log.info(`Starting vTPM ${reconfigure ? 'reconfiguration' : 'manufacturing'} in ${config.stateDir} @ ${new Date().toISOString()}`);
    if (fileKey) log.info('The TPM\'s state is encrypted with the key given.');
    const pending = new WriteBackStorage(storage);
    const device = new Device({ storage: pending, engines: realEngines({ ...defaultEnv, log: (m) => log.error(m) }, config.profile), log, autoShutdown: false });
    // The new PCR allocation takes effect at the next TPM Reset, so a reconfigured TPM starts anew.
    const init = await device.init({ quiet: true, deleteVolatile: reconfigure });
    if (!init.ok) throw new SetupError(`could not start the TPM: ${init.error.message}`);
    const startup = await device.startup('clear');
    const rc = new DataView(startup.buffer, startup.byteOffset).getUint32(6);
    if (rc !== 0) throw new SetupError(`TPM2_Startup(CLEAR) failed: rc 0x${rc.toString(16)}`);
    if (device.activeProfile) log.info(`Active profile: ${device.activeProfile.name}`);
    const result = await provision(device, config.provision);
    await device.stop();
    pending.flush();
    for (const line of result.lines) log.info(line);
    for (const w of result.warnings) log.warn(w);
    log.info('Successfully authored TPM state.');
    if (config.display) process.stdout.write(display(result));
    created = false;
    return 0;
  } catch (e) {
    if (created) for (const f of stateFiles(config.stateDir)) rmSync(f, { force: true });
    const err = e as Error & { code?: string };
    const message = err.code?.startsWith('VTPMD_') ? err.message : (err.stack ?? String(err));
    if (config.logfile !== undefined) log.error(message);
    process.stderr.write(`vtpmd setup: ${message}\n`);
    return 1;
  } finally {
    for (const sig of signals) process.off(sig, interrupted);
    storage?.unlock();
    log.close();
  }
}
