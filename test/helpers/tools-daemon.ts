// One daemon and one scratch folder for a describe block of tpm2-tools tests.
import path from 'node:path';
import { beforeAll } from 'vitest';
import { type Daemon, type Impl, makeTempDir, startDaemon } from './daemon.js';

export interface ToolsDaemon {
  /** Powered on and started (not-need-init, startup-clear); there once the block's first beforeAll ran. */
  readonly d: Daemon;
  /** A path in the block's scratch folder (context, policy and key files). */
  file(name: string): string;
}

/** Registers the beforeAll that makes the scratch folder and starts the daemon. */
export function toolsDaemon(impl: Impl): ToolsDaemon {
  let d: Daemon | undefined;
  let work: string | undefined;
  beforeAll(async () => {
    work = makeTempDir();
    d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
  });
  return {
    get d() {
      if (!d) throw new Error('the daemon is started in beforeAll');
      return d;
    },
    file: (name) => path.join(work!, name),
  };
}
