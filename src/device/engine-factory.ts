/** The production EngineFactory: tpm/engine.ts's Engine with the default environment. */
import { Engine, MAX_BUFFER_SIZE, defaultEnv, type EngineEnv } from '../tpm/engine.js';
import type { EngineFactory } from './device.js';

export function realEngines(env: EngineEnv = defaultEnv): EngineFactory {
  return {
    manufacture: () => Engine.manufacture(env),
    restore: (blob) => Engine.restore(blob, env),
    maxBufferSize: MAX_BUFFER_SIZE,
  };
}
