/**
 * Runs on a worker thread: converts one source with `runConversion`, so the CPU work of files too
 * large for the main thread never blocks the thread that talks to SQS.
 */
import { createAwsClients, type AwsClients } from '../aws.js';
import { FormatRegistry } from '../formats/registry.js';
import { registerBuiltinFormats } from '../formats/builtin.js';
import { runConversion, type ConvertTask, type TaskResult } from './conversion.js';

const registry = registerBuiltinFormats(new FormatRegistry());
let clients: AwsClients | undefined;

export default async function convertTask(task: ConvertTask): Promise<TaskResult> {
  clients ??= createAwsClients(task.aws);
  // Cancellation is cooperative (see pool.ts): the flag is read at the engine's safe points.
  const controller = new AbortController();
  const poll = setInterval(() => {
    if (task.cancel && Atomics.load(task.cancel, 0) === 1) controller.abort();
  }, 50);
  try {
    return await runConversion(task, { clients, registry, signal: controller.signal });
  } finally {
    clearInterval(poll);
  }
}
