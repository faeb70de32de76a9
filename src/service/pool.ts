/**
 * The worker threads that do the CPU work of conversions, admitted by size:
 * - a file is weighed by its bytes; a thread takes files while their weights add up to at most its
 *   budget, and a file that heavy runs with no other file beside it, so a large file converts with
 *   bounded company;
 * - a *light* task (a small file's bytes, which needs little memory and a few milliseconds) goes to
 *   the least busy thread at once, beside anything, so small files never wait behind a large one;
 * - when a thread dies (its heap limit reached), the crash is charged only to the task that caused
 *   it: a task that had the thread to itself fails with `WorkerCrashError`; tasks that shared it are
 *   run again, each with a thread to itself, and only one that crashes then is charged.
 *
 * One piscina pool of one thread per thread: piscina keeps the thread alive (and replaces it after a
 * crash), placement is ours.
 */
import { Piscina } from 'piscina';

export interface PoolOptions {
  threads: number;
  /** Old-generation heap limit of each thread (WORKER_HEAP_MB). */
  heapMb: number;
  /** Sum of file weights a thread takes at once; a file at least this heavy runs without other files. */
  budgetBytes: number;
  /** The module that runs a task (default: ./worker.js); tests give their own. */
  filename?: string;
}

export interface RunOptions {
  /** Bytes of source (for files; ignored for light tasks). */
  weight: number;
  /** A small task that may share any thread and never waits for room. */
  light?: boolean;
  /** Set when the task should stop at its next safe point (cooperative: a thread is never terminated). */
  signal?: AbortSignal;
}

/** A thread died while running this task with the thread to itself. */
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

type Admission = 'light' | 'file' | 'exclusive';

interface Waiting {
  admission: Admission;
  weight: number;
  start: (slot: Slot) => void;
}

interface Slot {
  thread: Thread;
  running: Running;
}

interface Thread {
  piscina: Piscina;
  /** Sum of the weights of the files (not light tasks) running on it, each at most the budget. */
  load: number;
  running: Set<Running>;
  /** A task running again after a shared crash: nothing else may join it. */
  exclusive: boolean;
}

interface Running {
  admission: Admission;
  weight: number;
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
        concurrentTasksPerWorker: 256,
        idleTimeout: Number.POSITIVE_INFINITY,
        // Without a limit V8 lets garbage from large files grow the heap towards gigabytes before collecting.
        resourceLimits: { maxOldGenerationSizeMb: options.heapMb },
      }),
      load: 0,
      running: new Set(),
      exclusive: false,
    }));
  }

  get threads(): number {
    return this.#threads.length;
  }

  /** Runs `task` on a thread with room for it, and again with a thread to itself if its thread crashed while shared. */
  async run(task: Task, options: RunOptions): Promise<Result> {
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const onAbort = () => Atomics.store(cancel, 0, 1);
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      try {
        return await this.#runOn(task, cancel, options.light ? 'light' : 'file', options.weight);
      } catch (error) {
        if (!(error instanceof SharedCrashError)) throw error;
        // Its thread died while it had company: any of them may have caused it. Alone, a crash is its own.
        return await this.#runOn(task, cancel, 'exclusive', options.weight);
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async #runOn(task: Task, cancel: Int32Array, admission: Admission, weight: number): Promise<Result> {
    const slot = await this.#admit(admission, weight);
    try {
      return (await slot.thread.piscina.run({ ...task, cancel })) as Result;
    } catch (error) {
      if (this.#closed) throw error;
      const code = (error as { code?: string }).code;
      const message = (error as Error).message ?? String(error);
      if (slot.running.companions > 0) throw new SharedCrashError(message);
      throw new WorkerCrashError(message, code);
    } finally {
      this.#leave(slot);
      this.#dispatch();
    }
  }

  #admit(admission: Admission, weight: number): Promise<Slot> {
    return new Promise((start) => {
      this.#waiting.push({ admission, weight, start });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    // Light tasks never wait behind files. Files are served first come, first served: a heavy file
    // at the head waits for a thread without files and holds back the files behind it, so a stream
    // of smaller ones cannot starve it.
    for (let i = 0; i < this.#waiting.length; ) {
      const next = this.#waiting[i]!;
      const thread = this.#roomFor(next);
      if (thread) {
        this.#waiting.splice(i, 1);
        next.start(this.#occupy(thread, next));
      } else if (next.admission === 'light') {
        i++;
      } else {
        // The first file that must wait blocks the files behind it, not the light tasks.
        i = this.#skipFiles(i + 1);
      }
    }
  }

  /** From `from`, the index of the next light task (files behind a waiting file wait too). */
  #skipFiles(from: number): number {
    let i = from;
    while (i < this.#waiting.length && this.#waiting[i]!.admission !== 'light') i++;
    return i;
  }

  #roomFor(waiting: Waiting): Thread | undefined {
    let best: Thread | undefined;
    for (const thread of this.#threads) {
      if (!this.#fits(thread, waiting)) continue;
      if (!best || thread.running.size < best.running.size || (thread.running.size === best.running.size && thread.load < best.load)) best = thread;
    }
    return best;
  }

  #fits(thread: Thread, waiting: Waiting): boolean {
    if (thread.exclusive) return false;
    if (waiting.admission === 'exclusive') return thread.running.size === 0;
    if (waiting.admission === 'light') return true;
    const files = [...thread.running].filter((running) => running.admission === 'file');
    if (files.length === 0) return true;
    return waiting.weight < this.#budget && thread.load + Math.max(1, waiting.weight) <= this.#budget;
  }

  #occupy(thread: Thread, waiting: Waiting): Slot {
    for (const other of thread.running) other.companions = Math.max(other.companions, thread.running.size);
    const running: Running = { admission: waiting.admission, weight: Math.min(waiting.weight, this.#budget), companions: thread.running.size };
    thread.running.add(running);
    if (waiting.admission === 'file') thread.load += running.weight;
    if (waiting.admission === 'exclusive') thread.exclusive = true;
    return { thread, running };
  }

  #leave(slot: Slot): void {
    const { thread, running } = slot;
    thread.running.delete(running);
    if (running.admission === 'file') thread.load -= running.weight;
    if (running.admission === 'exclusive') thread.exclusive = false;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#threads.map((thread) => thread.piscina.destroy()));
  }
}

/** Internal: the thread died while this task shared it; run it again with a thread to itself. */
class SharedCrashError extends Error {
  override readonly name = 'SharedCrashError';
}
