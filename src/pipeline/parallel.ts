/**
 * Writes formats on threads of their own when a file is large enough for it to pay: each format
 * after the first gets a worker thread that replays the spool file, builds its own typed batches and
 * writes its own output, while the calling thread writes the first format. To the engine each thread
 * is one more PendingObject, so publishing stays all-or-nothing.
 */
import { Worker } from 'node:worker_threads';
import { ObjectGoneError, PermanentError, TransientError, type PermanentCode } from '../errors.js';
import { registerBuiltinFormats } from '../formats/builtin.js';
import { FormatRegistry } from '../formats/registry.js';
import type { FormatOptions, FormatPlugin } from '../formats/types.js';
import type { ObjectStore, PendingObject, StoreDescriptor } from '../storage/types.js';
import type { TableSchema } from '../types.js';

/** Everything a format thread needs to write one output by itself. */
export interface FormatJob {
  /** A completed spool file (`RowSpool.file`). */
  spoolFile: string;
  schema: TableSchema;
  format: string;
  formatOptions: FormatOptions;
  store: StoreDescriptor;
  key: string;
  metadata?: Record<string, string>;
}

/** Calling thread → format thread, sent once the calling thread has decided the outcome. */
export type ThreadCommand = { kind: 'commit' } | { kind: 'abort' };

/** Format thread → calling thread. */
export type ThreadReport =
  | { kind: 'written' }
  | { kind: 'committed'; bytes: number }
  | { kind: 'aborted' }
  | { kind: 'failed'; error: ThreadError };

/** An error as it crosses the thread boundary: structured clone keeps neither its class nor its code. */
export interface ThreadError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  /** What `classifyFailure` reads on an AWS SDK error. */
  httpStatusCode?: number;
  throttling?: boolean;
}

/** How long a thread asked to abort may take to discard its output before it is terminated. */
const ABORT_GRACE_MS = 10_000;

let threadFormats: FormatRegistry | undefined;

/**
 * The formats a thread can rebuild by itself: the built-in ones. A plugin registered at run time (a
 * test's, an embedder's) has no module a thread could import, so it stays on the calling thread.
 */
export function threadFormatRegistry(): FormatRegistry {
  threadFormats ??= registerBuiltinFormats(new FormatRegistry());
  return threadFormats;
}

/** The store's descriptor when this plugin and store can be used from another thread, else undefined. */
export async function threadableStore(plugin: FormatPlugin, store: ObjectStore): Promise<StoreDescriptor | undefined> {
  const registry = threadFormatRegistry();
  if (!registry.has(plugin.name) || registry.get(plugin.name) !== plugin || !store.describe) return undefined;
  return store.describe();
}

/** One output written on its own worker thread, seen by the engine as the output's PendingObject. */
export class FormatThread implements PendingObject {
  readonly #worker: Worker;
  readonly #format: string;
  readonly #written = settleable<void>();
  readonly #outcome = settleable<ThreadReport>();
  #failure: Error | undefined;
  #settled = false;

  constructor(job: FormatJob) {
    this.#format = job.format;
    this.#worker = new Worker(new URL('./format-thread.js', import.meta.url), { workerData: job });
    this.#worker.on('message', (report: ThreadReport) => this.#receive(report));
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => this.#fail(new Error(`the ${this.#format} thread exited (code ${code}) before it finished`)));
  }

  /** Resolves once the whole output is written and waits, unpublished, for commit or abort. */
  get written(): Promise<void> {
    return this.#written.promise;
  }

  /** Lets the calling thread stop early instead of finishing its own format for nothing. */
  throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  async write(): Promise<void> {
    throw new Error(`the ${this.#format} thread writes its output itself`);
  }

  async commit(): Promise<number> {
    this.#send({ kind: 'commit' });
    const report = await this.#outcome.promise;
    if (report.kind !== 'committed') throw new Error(`the ${this.#format} thread discarded its output instead of publishing it`);
    return report.bytes;
  }

  /** Asks the thread to discard its output; terminates it when it does not answer in time. */
  async abort(): Promise<void> {
    if (!this.#settled) {
      this.#send({ kind: 'abort' });
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, ABORT_GRACE_MS)));
      await Promise.race([this.#outcome.promise.catch(() => undefined), grace]);
      clearTimeout(timer);
    }
    await this.terminate();
  }

  /** Ends the thread whatever it is doing; called once the engine no longer needs it. */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }

  #send(command: ThreadCommand): void {
    if (!this.#settled) this.#worker.postMessage(command);
  }

  #receive(report: ThreadReport): void {
    if (report.kind === 'written') {
      this.#written.resolve();
      return;
    }
    if (report.kind === 'failed') {
      this.#fail(fromThreadError(report.error));
      return;
    }
    if (this.#settled) return;
    this.#settled = true;
    this.#outcome.resolve(report);
  }

  #fail(error: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#failure = error;
    this.#written.reject(error);
    this.#outcome.reject(error);
  }
}

/** Waits until every thread has written its output; the first failure or an abort ends the wait. */
export async function allWritten(threads: readonly FormatThread[], signal: AbortSignal | undefined): Promise<void> {
  if (threads.length === 0) return;
  signal?.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([Promise.all(threads.map((thread) => thread.written)), aborted]);
  } finally {
    signal?.removeEventListener('abort', onAbort!);
  }
}

export function toThreadError(error: unknown): ThreadError {
  const e = (error ?? {}) as {
    name?: unknown;
    message?: unknown;
    code?: unknown;
    stack?: unknown;
    $metadata?: { httpStatusCode?: number };
    $retryable?: { throttling?: boolean };
  };
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : String(error),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.stack === 'string' ? { stack: e.stack } : {}),
    ...(e.$metadata?.httpStatusCode !== undefined ? { httpStatusCode: e.$metadata.httpStatusCode } : {}),
    ...(e.$retryable?.throttling !== undefined ? { throttling: e.$retryable.throttling } : {}),
  };
}

/** Rebuilds an error so that `instanceof`, `code` and `classifyFailure` answer as they would have in the thread. */
export function fromThreadError(data: ThreadError): Error {
  let error: Error;
  if (data.name === 'PermanentError') error = new PermanentError(data.code as PermanentCode, data.message);
  else if (data.name === 'TransientError') error = new TransientError(data.code ?? 'UNEXPECTED', data.message);
  else if (data.name === 'ObjectGoneError') error = new ObjectGoneError(data.message);
  else {
    error = Object.assign(new Error(data.message), {
      name: data.name,
      ...(data.code !== undefined ? { code: data.code } : {}),
      ...(data.httpStatusCode !== undefined ? { $metadata: { httpStatusCode: data.httpStatusCode } } : {}),
      ...(data.throttling !== undefined ? { $retryable: { throttling: data.throttling } } : {}),
    });
  }
  // The thread's stack says where it really failed.
  if (data.stack) error.stack = data.stack;
  return error;
}

/** A promise with its resolve and reject at hand; a rejection nobody awaits is not unhandled. */
function settleable<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: Error): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
