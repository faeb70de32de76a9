/**
 * Runs on a worker thread (see threaded-writers.ts): encodes every output format of one file from
 * the typed batches it receives (their buffers transferred, not copied) and sends the encoded bytes
 * back, so the calling thread keeps parsing while this one encodes and compresses.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadFormats } from '../formats/plugins.js';
import type { FormatWriter } from '../formats/types.js';
import type { TableSchema, TypedBatch } from '../types.js';
import type { FormatOptions } from '../formats/types.js';

/** What the thread is told when it starts. */
export interface FormatThreadSetup {
  pluginModules: string[];
  schema: TableSchema;
  /** One writer per output, in output order. */
  outputs: { format: string; options: FormatOptions }[];
}

/** Calling thread → format thread. */
export type ToFormatThread = { kind: 'batch'; id: number; batch: TypedBatch } | { kind: 'finish' };

/** Format thread → calling thread: encoded bytes of one output, a batch done, the end, or a failure. */
export type FromFormatThread =
  | { kind: 'bytes'; output: number; bytes: Uint8Array }
  | { kind: 'batch-done'; id: number }
  | { kind: 'finished' }
  | { kind: 'failed'; message: string; stack?: string };

const port = parentPort!;
const setup = workerData as FormatThreadSetup;

async function run(): Promise<void> {
  const registry = await loadFormats(setup.pluginModules);
  const writers: FormatWriter[] = setup.outputs.map((output, i) =>
    registry.get(output.format).createWriter(setup.schema, {
      // Transferred: the encoded bytes are this thread's to give away.
      write: async (chunk: Uint8Array) => {
        const bytes = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice();
        port.postMessage({ kind: 'bytes', output: i, bytes } satisfies FromFormatThread, [bytes.buffer as ArrayBuffer]);
      },
    }, output.options),
  );
  // Messages are handled one at a time, in order.
  let queue = Promise.resolve();
  port.on('message', (message: ToFormatThread) => {
    queue = queue.then(async () => {
      if (message.kind === 'batch') {
        for (const writer of writers) await writer.write(message.batch);
        port.postMessage({ kind: 'batch-done', id: message.id } satisfies FromFormatThread);
      } else {
        for (const writer of writers) await writer.finish();
        port.postMessage({ kind: 'finished' } satisfies FromFormatThread);
        port.close();
      }
    }).catch((error: unknown) => {
      port.postMessage({ kind: 'failed', message: (error as Error)?.message ?? String(error), stack: (error as Error)?.stack } satisfies FromFormatThread);
      port.close();
    });
  });
}

await run().catch((error: unknown) => {
  port.postMessage({ kind: 'failed', message: (error as Error)?.message ?? String(error), stack: (error as Error)?.stack } satisfies FromFormatThread);
});
