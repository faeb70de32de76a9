/**
 * Converts one CSV object into one output per format: read and infer over every row, then write
 * all formats from the same typed batches, then publish every output or none.
 */
import { Transform, type Readable } from 'node:stream';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { openCsv, type CsvParserName } from '../csv/read.js';
import { SchemaInference } from '../csv/infer.js';
import { toTypedBatch } from '../csv/values.js';
import { ObjectGoneError, PermanentError, type PermanentCode } from '../errors.js';
import type { FormatRegistry } from '../formats/registry.js';
import type { FormatOptions, FormatWriter } from '../formats/types.js';
import type { ObjectStore, PendingObject } from '../storage/types.js';
import type { Column, ColumnType, TableSchema } from '../types.js';
import { allWritten, FormatThread, threadableStore } from './parallel.js';
import { RowSpool } from './spool.js';
import { normalizeEtag, SOURCE_ETAG } from '../versions/metadata.js';

export interface EngineOptions {
  parser: CsvParserName;
  /** Detected from the header line when absent. */
  delimiter?: string;
  encoding: 'utf-8' | 'latin1';
  /** Types the user pinned by column name; other columns are inferred. */
  pinnedTypes?: ReadonlyMap<string, ColumnType>;
  rowGroupSize: number;
  /** Per format name, e.g. `{ parquet: { compression: 'zstd' } }`. */
  formatOptions: Readonly<Record<string, FormatOptions>>;
  /** Refuse sources larger than this (stored bytes). */
  maxObjectBytes?: number;
  tmpDir?: string;
  /** Source bytes held in memory between the passes before spilling to a temporary file. */
  memorySpoolBytes?: number;
  /**
   * When the rows spilled (a large file) and there are several outputs, write each format after the
   * first on a thread of its own. Off by default: measured on 2 cores it saves at most the cheaper
   * format's time and costs ~30% more CPU (the spool is read back once per thread), so it only
   * helps a single large file on an otherwise idle machine (`convert --parallel-formats`).
   */
  parallelFormats?: boolean;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  parser: 'fast-csv',
  encoding: 'utf-8',
  rowGroupSize: 50_000,
  formatOptions: {},
};

export interface OutputTarget {
  format: string;
  store: ObjectStore;
  key: string;
}

export interface ConvertRequest {
  /** `etag`: convert exactly this version; if the key holds another, SourceChangedError is thrown. */
  source: { store: ObjectStore; key: string; etag?: string };
  outputs: OutputTarget[];
  options: EngineOptions;
  registry: FormatRegistry;
  /** Written into each output's metadata (S3 user metadata; ignored by local files), with `source-etag`. */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
  /** Called as input bytes are read; `total` when the store knows the size. */
  onProgress?: (bytesRead: number, total: number | undefined) => void;
  /**
   * Makes every written output visible, once all are fully written; resolves with their sizes in
   * bytes. The default commits each one and removes those already published if one fails. The
   * service passes its own, which decides by the version rules whether each output may be replaced.
   */
  publish?: Publisher;
  /**
   * Turns the schema inferred from this file into the schema written (a dataset's registered types,
   * issue 15). Without it, the file is written with the types inferred from it.
   */
  resolveSchema?: SchemaResolver;
}

/** An output fully written and not yet visible. */
export interface StagedOutput {
  target: OutputTarget;
  pending: PendingObject;
}

/** What is known of the source version the outputs were made from. */
export interface SourceVersion {
  store: ObjectStore;
  key: string;
  /** As returned by the GET (quoted), when the store has ETags. */
  etag?: string;
}

export type Publisher = (staged: StagedOutput[], source: SourceVersion) => Promise<number[]>;

/** The schema a file is written with, and where each written column comes from in the file. */
export interface WrittenSchema {
  schema: TableSchema;
  /** For each written column, the index of the file's column that feeds it, or -1: all nulls. */
  sourceColumns: number[];
  /** The failure a value that does not fit its written type raises (default SCHEMA_VIOLATION). */
  violationCode?: PermanentCode;
  /** Changes resolving made elsewhere (a dataset schema registered or evolved), for logs and metrics. */
  changes?: SchemaChangeNote[];
}

/** One change to a dataset's registered schema, as the service logs and counts it. */
export interface SchemaChangeNote {
  dataset: string;
  /** e.g. `registered`, `column-added`, `type-widened`. */
  kind: string;
  column?: string;
  from?: string;
  to?: string;
}

/**
 * `empty`: per column of `schema`, true when the file held no value in it (an all-empty column fits
 * any registered type, though its inferred type is string).
 */
export type SchemaResolver = (file: { key: string; schema: TableSchema; empty: readonly boolean[] }) => Promise<WrittenSchema>;

export interface OutputSummary {
  format: string;
  location: string;
  bytes: number;
}

export interface ConversionSummary {
  source: string;
  sourceEtag?: string;
  rows: number;
  columns: Column[];
  delimiter: string;
  bytesIn: number;
  outputs: OutputSummary[];
  seconds: number;
  spilled: boolean;
  /** Formats written on threads of their own (0: all on the calling thread). */
  formatThreads: number;
  /** Set when `resolveSchema` changed a registered schema. */
  schemaChanges?: SchemaChangeNote[];
}

const DEFAULT_MEMORY_SPOOL_BYTES = 8 * 1024 * 1024;

// Which version an output holds is the version rules' to say (src/versions/); re-exported for old callers.
export { normalizeEtag, SOURCE_ETAG };

export async function convertObject(request: ConvertRequest): Promise<ConversionSummary> {
  const started = performance.now();
  const { source, options, registry } = request;
  const plugins = request.outputs.map((output) => registry.get(output.format));
  const object = await source.store.get(source.key, source.etag === undefined ? undefined : { ifMatch: source.etag });
  const sourceName = `${source.store.root}/${source.key}`;
  if (options.maxObjectBytes !== undefined && object.size !== undefined && object.size > options.maxObjectBytes) {
    object.body.destroy();
    throw new PermanentError(
      'OBJECT_TOO_LARGE',
      `${sourceName} is ${object.size} bytes, above the limit of ${options.maxObjectBytes} (MAX_OBJECT_BYTES)`,
    );
  }

  const counter = countBytes(object.body, object.size, options.maxObjectBytes, sourceName, request.onProgress);
  const spool = new RowSpool(options.tmpDir ?? os.tmpdir(), options.memorySpoolBytes ?? DEFAULT_MEMORY_SPOOL_BYTES);
  const pending: PendingObject[] = [];
  const threads: FormatThread[] = [];
  try {
    // Pass 1: parse every row, infer the exact schema, keep the rows.
    const table = await openCsv(counter.stream, {
      parser: options.parser,
      delimiter: options.delimiter,
      encoding: options.encoding,
      chunkRows: options.rowGroupSize,
      maxBytes: options.maxObjectBytes,
    });
    const pinned = table.columns.map((name) => options.pinnedTypes?.get(name));
    const inference = new SchemaInference(table.columns.length, pinned);
    let rows = 0;
    let bytesAtLastChunk = 0;
    for await (const chunk of table.chunks) {
      request.signal?.throwIfAborted();
      inference.observe(chunk.rows);
      rows += chunk.rows.length;
      await spool.add(chunk, heapWeight(chunk));
      bytesAtLastChunk = counter.bytes;
    }
    const inferred: TableSchema = { columns: table.columns.map((name, i) => ({ name, type: inference.types()[i]! })) };
    const written: WrittenSchema = request.resolveSchema
      ? await request.resolveSchema({ key: source.key, schema: inferred, empty: inference.emptyColumns() })
      : { schema: inferred, sourceColumns: inferred.columns.map((_, i) => i) };
    const { schema } = written;
    const types = schema.columns.map((column) => column.type);
    const names = schema.columns.map((column) => column.name);

    // Pass 2: one typed batch feeds every format. A spilled file is large enough for threads to
    // pay: there each format after the first replays the spool file on a thread of its own.
    const writers: FormatWriter[] = [];
    // The source's ETag in every output lets a duplicate delivery see the work is already done.
    const metadata = object.etag ? { ...request.metadata, [SOURCE_ETAG]: normalizeEtag(object.etag) } : request.metadata;
    const threadsCanPay = options.parallelFormats === true && request.outputs.length > 1 && os.availableParallelism() > 1 && !request.resolveSchema;
    const spoolFile = threadsCanPay ? await spool.file() : undefined;
    for (const [i, output] of request.outputs.entries()) {
      const plugin = plugins[i]!;
      const formatOptions = options.formatOptions[plugin.name] ?? {};
      const store = spoolFile !== undefined && i > 0 ? await threadableStore(plugin, output.store) : undefined;
      if (spoolFile !== undefined && store) {
        const thread = new FormatThread({ spoolFile, schema, format: plugin.name, formatOptions, store, key: output.key, metadata });
        threads.push(thread);
        pending.push(thread);
        continue;
      }
      const sink = await output.store.put(output.key, { contentType: plugin.contentType, metadata });
      pending.push(sink);
      writers.push(plugin.createWriter(schema, sink, formatOptions));
    }
    for await (const chunk of spool.chunks()) {
      request.signal?.throwIfAborted();
      for (const thread of threads) thread.throwIfFailed();
      const batch = toTypedBatch(chunk, types, names, written.sourceColumns, written.violationCode);
      for (const writer of writers) await writer.write(batch);
    }
    for (const writer of writers) await writer.finish();
    await allWritten(threads, request.signal);
    request.signal?.throwIfAborted();

    const publish = request.publish ?? publishAll;
    const sizes = await publish(
      request.outputs.map((target, i) => ({ target, pending: pending[i]! })),
      { store: source.store, key: source.key, etag: object.etag },
    );
    return {
      source: sourceName,
      sourceEtag: object.etag,
      rows,
      columns: schema.columns,
      delimiter: table.delimiter,
      bytesIn: counter.bytes,
      outputs: request.outputs.map((output, i) => ({
        format: output.format,
        location: `${output.store.root}/${output.key}`,
        bytes: sizes[i]!,
      })),
      seconds: (performance.now() - started) / 1000,
      spilled: spool.spilled,
      formatThreads: threads.length,
      ...(written.changes?.length ? { schemaChanges: written.changes } : {}),
    };
  } catch (error) {
    counter.stream.destroy();
    await Promise.all(pending.map((object) => object.abort()));
    throw error;
  } finally {
    // The threads read the spool file: they must be gone before it is removed.
    await Promise.all(threads.map((thread) => thread.terminate()));
    await spool.dispose();
  }
}

/**
 * The default publisher: publishes only if the source still is the object read (a newer version's own
 * notification converts that one), then commits every output; if one fails, the ones already
 * published are removed again.
 */
export async function publishAll(staged: StagedOutput[], source: SourceVersion): Promise<number[]> {
  const current = await source.store.head(source.key);
  if (source.etag && current?.etag && normalizeEtag(current.etag) !== normalizeEtag(source.etag)) {
    throw new ObjectGoneError(`${source.store.root}/${source.key} was overwritten while it converted; outputs left to the newer version`);
  }
  const results = await Promise.allSettled(staged.map((output) => output.pending.commit()));
  const failed = results.find((result) => result.status === 'rejected');
  if (!failed) return results.map((result) => (result as PromiseFulfilledResult<number>).value);
  await Promise.all(
    results.map((result, i) =>
      result.status === 'fulfilled' ? staged[i]!.target.store.delete(staged[i]!.target.key).catch(() => undefined) : staged[i]!.pending.abort(),
    ),
  );
  throw (failed as PromiseRejectedResult).reason;
}

/** Counts stored bytes as they stream past, and enforces the size limit when the store did not say. */
function countBytes(
  body: Readable,
  total: number | undefined,
  limit: number | undefined,
  name: string,
  onProgress: ConvertRequest['onProgress'],
): { stream: Readable; readonly bytes: number } {
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.byteLength;
      if (limit !== undefined && bytes > limit) {
        callback(new PermanentError('OBJECT_TOO_LARGE', `${name} is larger than the limit of ${limit} bytes (MAX_OBJECT_BYTES)`));
        return;
      }
      onProgress?.(bytes, total);
      callback(null, chunk);
    },
  });
  body.on('error', (error) => stream.destroy(error));
  body.pipe(stream);
  return {
    stream,
    get bytes() {
      return bytes;
    },
  };
}

/** What a chunk of parsed rows costs on the heap: UTF-16 characters plus array and string headers. */
function heapWeight(chunk: { rows: string[][] }): number {
  let weight = 0;
  for (const row of chunk.rows) {
    weight += 32 + 8 * row.length;
    for (const field of row) weight += 16 + 2 * field.length;
  }
  return weight;
}
