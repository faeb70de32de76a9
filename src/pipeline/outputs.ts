/**
 * Where a file's batches are encoded: by the format writers on this thread, or, for a large file on
 * a machine with a core to spare, by the same writers on a thread of their own (format-thread.ts),
 * fed with the batches' buffers transferred, while this thread parses. Either way the encoded
 * bytes reach the outputs' sinks from this thread, in order.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { FormatRegistry } from '../formats/registry.js';
import type { ByteSink, FormatOptions, FormatWriter } from '../formats/types.js';
import type { TableSchema, TypedBatch } from '../types.js';
import type { FormatThreadSetup, FromFormatThread, ToFormatThread } from './format-thread.js';

export interface BatchOutputs {
  write(batch: TypedBatch): Promise<void>;
  finish(): Promise<void>;
  /** Stops encoding; the sinks are aborted by their owner. */
  close(): Promise<void>;
}

export interface OutputSpec {
  format: string;
  options: FormatOptions;
  sink: ByteSink;
}

/**
 * Sources at least this large get a format thread: below it, starting a thread (~30 ms) and moving
 * batches costs more than the overlap saves (measured: bench, engine section).
 */
export const FORMAT_THREAD_MIN_BYTES = 16 * 1024 * 1024;

export function canUseFormatThread(registry: FormatRegistry, sourceBytes: number | undefined, minBytes = FORMAT_THREAD_MIN_BYTES): boolean {
  return registry.modules !== undefined && sourceBytes !== undefined && sourceBytes >= minBytes && os.availableParallelism() > 1;
}

export function openOutputs(registry: FormatRegistry, schema: TableSchema, outputs: OutputSpec[], threaded: boolean): BatchOutputs {
  if (threaded) return new ThreadedOutputs(registry.modules ?? [], schema, outputs);
  const writers = outputs.map((output) => registry.get(output.format).createWriter(schema, output.sink, output.options));
  return new InlineOutputs(writers);
}

class InlineOutputs implements BatchOutputs {
  constructor(private readonly writers: FormatWriter[]) {}

  async write(batch: TypedBatch): Promise<void> {
    for (const writer of this.writers) await writer.write(batch);
  }

  async finish(): Promise<void> {
    for (const writer of this.writers) await writer.finish();
  }

  async close(): Promise<void> {}
}

/** Batches sent to the thread and not yet written to the sinks; bounds the memory of the overlap. */
const MAX_BATCHES_IN_FLIGHT = 2;
/** The thread holds little JavaScript heap: batches live in ArrayBuffers outside it. */
const FORMAT_THREAD_HEAP_MB = 128;

class ThreadedOutputs implements BatchOutputs {
  readonly #worker: Worker;
  readonly #sinks: ByteSink[];
  #nextId = 0;
  #inFlight = 0;
  #wake: (() => void) | undefined;
  /** Sink writes, chained so that each output's bytes arrive in order. */
  #writing: Promise<void> = Promise.resolve();
  #failure: Error | undefined;
  readonly #finished: Promise<void>;
  #resolveFinished!: () => void;
  #rejectFinished!: (error: Error) => void;
  #done = false;

  constructor(modules: readonly string[], schema: TableSchema, outputs: OutputSpec[]) {
    this.#sinks = outputs.map((output) => output.sink);
    this.#finished = new Promise<void>((resolve, reject) => {
      this.#resolveFinished = resolve;
      this.#rejectFinished = reject;
    });
    this.#finished.catch(() => undefined);
    const setup: FormatThreadSetup = {
      pluginModules: [...modules],
      schema,
      outputs: outputs.map((output) => ({ format: output.format, options: output.options })),
    };
    this.#worker = new Worker(new URL('./format-thread.js', import.meta.url), {
      workerData: setup,
      resourceLimits: { maxOldGenerationSizeMb: FORMAT_THREAD_HEAP_MB },
    });
    this.#worker.on('message', (message: FromFormatThread) => this.#receive(message));
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => {
      if (!this.#done) this.#fail(new Error(`the format thread exited (code ${code}) before it finished`));
    });
  }

  async write(batch: TypedBatch): Promise<void> {
    while (this.#inFlight >= MAX_BATCHES_IN_FLIGHT && !this.#failure) await new Promise<void>((resolve) => (this.#wake = resolve));
    if (this.#failure) throw this.#failure;
    this.#inFlight++;
    const message: ToFormatThread = { kind: 'batch', id: this.#nextId++, batch };
    this.#worker.postMessage(message, transferList(batch));
  }

  async finish(): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#worker.postMessage({ kind: 'finish' } satisfies ToFormatThread);
    await this.#finished;
  }

  async close(): Promise<void> {
    this.#done = true;
    await this.#worker.terminate();
  }

  #receive(message: FromFormatThread): void {
    switch (message.kind) {
      case 'bytes': {
        const sink = this.#sinks[message.output]!;
        this.#writing = this.#writing.then(() => (this.#failure ? undefined : sink.write(message.bytes)));
        this.#writing.catch((error: unknown) => this.#fail(error as Error));
        break;
      }
      case 'batch-done':
        this.#writing = this.#writing.then(() => {
          this.#inFlight--;
          this.#wakeWriter();
        });
        break;
      case 'finished':
        this.#writing.then(() => {
          this.#done = true;
          this.#resolveFinished();
        }, () => undefined);
        break;
      case 'failed': {
        const error = new Error(message.message);
        if (message.stack) error.stack = message.stack;
        this.#fail(error);
        break;
      }
    }
  }

  #fail(error: Error): void {
    if (this.#failure || this.#done) return;
    this.#failure = error;
    this.#rejectFinished(error);
    this.#wakeWriter();
  }

  #wakeWriter(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** Every distinct buffer under the batch's columns: moved to the thread, not copied. */
function transferList(batch: TypedBatch): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const column of batch.columns) {
    const arrays = column.type === 'string' ? [column.bytes, column.offsets] : [column.values];
    if (column.nulls) arrays.push(column.nulls);
    for (const array of arrays) if (array.buffer instanceof ArrayBuffer && array.buffer.byteLength > 0) buffers.add(array.buffer);
  }
  return [...buffers];
}
