/**
 * Runs on a worker thread: the CPU work of a conversion, so it never blocks the thread that talks to
 * SQS. A small file arrives as bytes and leaves as output bytes (the main thread does its I/O); a
 * larger one is streamed from S3, converted and published here.
 */
import { createAwsClients, type AwsClients } from '../aws.js';
import { formatPluginModules } from '../config/settings.js';
import { loadFormats } from '../formats/plugins.js';
import { convertBytes, convertStreaming, type BytesResult, type TaskResult, type WorkerTask } from './conversion.js';

// The same formats as the main thread: built-in, plus the modules FORMAT_PLUGINS names (validated there).
const registry = await loadFormats(formatPluginModules());
let clients: AwsClients | undefined;

export default async function runWorkerTask(work: WorkerTask): Promise<TaskResult | BytesResult> {
  // Cancellation is cooperative (see pool.ts): the flag is read at the engine's safe points.
  const controller = new AbortController();
  const poll = setInterval(() => {
    if (work.cancel && Atomics.load(work.cancel, 0) === 1) controller.abort();
  }, 50);
  try {
    if (work.kind === 'bytes') return await convertBytes(work.job, registry, controller.signal);
    clients ??= createAwsClients(work.task.aws);
    return await convertStreaming(work.task, { clients, registry, signal: controller.signal });
  } finally {
    clearInterval(poll);
  }
}
