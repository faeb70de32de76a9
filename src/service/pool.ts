/** The worker-thread pool (piscina) that runs conversions, sized to the cores. */
import { Piscina } from 'piscina';
import type { ConvertTask, TaskResult } from './worker.js';

export interface ConversionPool {
  run(task: ConvertTask, signal?: AbortSignal): Promise<TaskResult>;
  readonly threads: number;
  close(): Promise<void>;
}

export function createConversionPool(options: { threads: number; concurrency: number; heapMb: number }): ConversionPool {
  // Several objects share a thread: while one waits on S3, another converts.
  const perThread = Math.max(1, Math.ceil(options.concurrency / options.threads));
  const piscina = new Piscina({
    filename: new URL('./worker.js', import.meta.url).href,
    minThreads: options.threads,
    maxThreads: options.threads,
    concurrentTasksPerWorker: perThread,
    idleTimeout: Number.POSITIVE_INFINITY,
    // Without a limit V8 lets garbage from large files grow the heap towards gigabytes before collecting.
    resourceLimits: { maxOldGenerationSizeMb: options.heapMb },
  });
  return {
    threads: options.threads,
    // Cancellation is cooperative: piscina's own abort terminates the thread wherever it is, even
    // between the uploads of publishAll. The worker checks this flag at safe points instead.
    run: (task, signal) => {
      const cancel = new Int32Array(new SharedArrayBuffer(4));
      signal?.addEventListener('abort', () => Atomics.store(cancel, 0, 1), { once: true });
      if (signal?.aborted) Atomics.store(cancel, 0, 1);
      return piscina.run({ ...task, cancel }) as Promise<TaskResult>;
    },
    close: () => piscina.destroy(),
  };
}
