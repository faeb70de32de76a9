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
    run: (task, signal) => piscina.run(task, signal ? { signal } : {}) as Promise<TaskResult>,
    close: () => piscina.destroy(),
  };
}
