// Loaded by vitest.config.ts (setupFiles) in every test file: whatever a helper started outside a
// test (beforeAll, describe body) is stopped when the file ends.
import { afterAll } from 'vitest';
import { runAllCleanups } from './daemon.js';

afterAll(async () => {
  await runAllCleanups();
});
