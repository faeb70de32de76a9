/**
 * The worker threads that convert files too large for the main thread, admitted by size: each
 * thread takes files while the sum of their weights (bytes of source) stays within its budget, so a
 * large file converts with bounded company, and one whose weight fills the budget runs alone. When
 * a thread dies (its heap limit reached), the crash is charged only to the file that caused it: a
 * file that was alone on the thread fails with `WorkerCrashError`; files that shared it are run
 * again, each alone, and only one that crashes alone is charged.
 *
 * One piscina pool of one thread per thread: piscina keeps the thread alive (and replaces it after a
 * crash), placement is ours.
 */
import { Piscina } from 'piscina';

export interface PoolOptions {
  threads: number;
  /** Old-generation heap limit of each thread (WORKER_HEAP_MB). */
  heapMb: number;
  /** Sum of weights a thread takes at once; a file at least this heavy runs alone. */
  budgetBytes: number;
  /** The module that runs a task (default: ./worker.js); tests give their own. */
  filename?: string;
}

/** A thread died while running this task and only this one (it did not share the thread). */
export class WorkerCrashError extends Error {
  override readonly name = 'WorkerCrashError';
  constructor(
    message: string,
    /** ERR_WORKER_OUT_OF_MEMORY when the heap limit killed the thread. */
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

interface Waiting {
  weight: number;
  start: (slot: Slot) => void;
}

interface Slot {
  thread: Thread;
  running: Running;
  /** What it adds to the thread's load: its weight, at most the budget. */
  admitted: number;
}

interface Thread {
  piscina: Piscina;
  /** Sum of the weights of the tasks running on it. */
  load: number;
  running: Set<Running>;
}

interface Running {
  /** Most tasks that ran beside this one on its thread at any moment. */
  companions: number;
}

export class ConversionPool<Task extends object = object, Result = unknown> {
  readonly #threads: Thread[];
  readonly #waiting: Waiting[] = [];
  readonly #budget: number;
  #closed = false;

  constructor(options: PoolOptions) {
    this.#budget = options.budgetBytes;
    this.#threads = Array.from({ length: options.threads }, () => ({
      piscina: new Piscina({
        filename: options.filename ?? new URL('./worker.js', import.meta.url).href,
        minThreads: 1,
        maxThreads: 1,
        concurrentTasksPerWorker: 64,
        idleTimeout: Number.POSITIVE_INFINITY,
        // Without a limit V8 lets garbage from large files grow the heap towards gigabytes before collecting.
        resourceLimits: { maxOldGenerationSizeMb: options.heapMb },
      }),
      load: 0,
      running: new Set(),
    }));
  }

  get threads(): number {
    return this.#threads.length;
  }

  /** Tasks running or waiting for room. */
  get size(): number {
    return this.#waiting.length + this.#threads.reduce((n, thread) => n + thread.running.size, 0);
  }

  /**
   * Runs `task` on a thread with room for `weight` bytes (waiting for one), and again alone if its
   * thread crashed while shared. `cancel` is set to 1 when `signal` aborts: cancellation is
   * cooperative, because terminating a thread could cut a publish between its two commits.
   */
  async run(task: Task, weight: number, signal?: AbortSignal): Promise<Result> {
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const onAbort = () => Atomics.store(cancel, 0, 1);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      try {
        return await this.#runOn(task, cancel, weight);
      } catch (error) {
        if (!(error instanceof SharedCrashError)) throw error;
        // Its thread died while it had company: any of them may have caused it. Alone now, a crash is its own.
        return await this.#runOn(task, cancel, Number.POSITIVE_INFINITY);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async #runOn(task: Task, cancel: Int32Array, weight: number): Promise<Result> {
    const slot = await this.#admit(weight);
    try {
      return (await slot.thread.piscina.run({ ...task, cancel })) as Result;
    } catch (error) {
      if (this.#closed) throw error;
      const code = (error as { code?: string }).code;
      const message = (error as Error).message ?? String(error);
      if (slot.running.companions > 0) throw new SharedCrashError(message);
      throw new WorkerCrashError(message, code);
    } finally {
      slot.thread.running.delete(slot.running);
      slot.thread.load -= slot.admitted;
      this.#dispatch();
    }
  }

  /** A place on a thread with room for `weight`; an idle thread always has room, so every file runs. */
  #admit(weight: number): Promise<Slot> {
    return new Promise((start) => {
      this.#waiting.push({ weight, start });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    // First come, first served: a heavy file at the head waits for an idle thread and holds back the
    // files behind it, so a stream of small ones cannot starve it.
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0]!;
      const thread = this.#roomFor(next.weight);
      if (!thread) return;
      this.#waiting.shift();
      next.start(this.#occupy(thread, next.weight));
    }
  }

  #roomFor(weight: number): Thread | undefined {
    let best: Thread | undefined;
    for (const thread of this.#threads) {
      const fits = thread.running.size === 0 || (weight < this.#budget && thread.load + Math.max(1, weight) <= this.#budget);
      if (fits && (!best || thread.load < best.load)) best = thread;
    }
    return best;
  }

  #occupy(thread: Thread, weight: number): Slot {
    for (const other of thread.running) other.companions = Math.max(other.companions, thread.running.size);
    const running: Running = { companions: thread.running.size };
    const admitted = Math.min(weight, this.#budget);
    thread.running.add(running);
    thread.load += admitted;
    return { thread, running, admitted };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#threads.map((thread) => thread.piscina.destroy()));
  }
}

/** Internal: the thread died while this task shared it; run it again alone. */
class SharedCrashError extends Error {
  override readonly name = 'SharedCrashError';
}
