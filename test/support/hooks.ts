/** Mocha global teardown: stops the emulator the test files shared, once, after every file ran. */
import { stopSharedEmulator } from './emulator.js';

export async function mochaGlobalTeardown(): Promise<void> {
  await stopSharedEmulator();
}
