/**
 * Mocha root hooks (loaded by .mocharc.yml): after every file ran, stop the emulator the test files
 * shared, so no LocalStack container or moto server outlives the run.
 */
import type { RootHookObject } from 'mocha';
import { stopSharedEmulator } from './emulator.js';

export const mochaHooks: RootHookObject = {
  async afterAll() {
    await stopSharedEmulator();
  },
};
