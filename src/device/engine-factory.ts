/** The production EngineFactory: tpm/engine.ts's Engine with the default environment. */
import { Engine, MAX_BUFFER_SIZE, defaultEnv, type EngineEnv } from '../tpm/engine.js';
import { profileJson, type TpmProfile } from '../tpm/profile.js';
import type { EngineFactory } from './device.js';

/**
 * `profile` (--profile) is what a TPM manufactured here gets; a TPM restored from its state keeps
 * the profile it was manufactured with (libtpms: a profile only applies to a new TPM), and a
 * different one asked for is reported in the log.
 */
export function realEngines(env: EngineEnv = defaultEnv, profile?: TpmProfile): EngineFactory {
  return {
    manufacture: () => Engine.manufacture(env, profile),
    restore: (blob) => {
      const engine = Engine.restore(blob, env);
      if (profile !== undefined && profileJson(profile) !== profileJson(engine.profile)) {
        env.log(`the profile '${profile.name}' asked for is not applied: the TPM keeps the profile '${engine.profile.name}' it was manufactured with`);
      }
      return engine;
    },
    maxBufferSize: MAX_BUFFER_SIZE,
  };
}
