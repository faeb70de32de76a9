/**
 * Converts one CSV object into one output per format, in two passes: the first parses every row,
 * infers the exact schema and builds typed batches in the types seen so far; the second widens
 * them to the final types and hands each batch to every format; then every output is published,
 * or none.
 */
import { Readable, Transform } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { openCsv, type CsvParserName } from '../csv/read.js';
import { BatchBuilder, fitsTypes, writtenBatch, type BatchLimits, type BuiltBatch } from '../csv/batches.js';
import { ObjectGoneError, PermanentError, type PermanentCode } from '../errors.js';
import type { FormatRegistry } from '../formats/registry.js';
import type { FormatOptions } from '../formats/types.js';
import type { ObjectStore, PendingObject } from '../storage/types.js';
import type { Column, ColumnType, TableSchema, TypedBatch } from '../types.js';
import { BatchSpool } from './spool.js';
import { normalizeEtag, SOURCE_ETAG } from '../versions/metadata.js';
import { canUseFormatThread, openOutputs, type BatchOutputs, type OutputSpec } from './outputs.js';

export interface EngineOptions {
  parser: CsvParserName;
  /** Detected from the header line when absent. */
  delimiter?: string;
  encoding: 'utf-8' | 'latin1';
  /** Types the user pinned by column name; other columns are inferred. */
  pinnedTypes?: ReadonlyMap<string, ColumnType>;
  /** Most rows in a batch, and so in a Parquet row group. */
  rowGroupSize: number;
  /** Most bytes a batch's typed columns take: a wide row costs what its bytes cost. */
  rowGroupBytes?: number;
  /** Per format name, e.g. `{ parquet: { compression: 'zstd' } }`. */
  formatOptions: Readonly<Record<string, FormatOptions>>;
  /** Refuse sources larger than this (stored bytes). */
  maxObjectBytes?: number;
  tmpDir?: string;
  /**
   * Bytes of typed batches held in memory between the passes before spilling to a temporary file;
   * sources up to this size are also kept, to be read again without a second GET when needed.
   */
  memorySpoolBytes?: number;
  /**
   * Sources at least this large (stored bytes) have their formats encoded on a thread of their own
   * while the first pass parses, when the registry can be rebuilt there (see `loadFormats`) and
   * the machine has a second core. Default FORMAT_THREAD_MIN_BYTES (16 MiB).
   */
  formatThreadMinBytes?: number;
}

export const DEFAULT_ROW_GROUP_BYTES = 16 * 1024 * 1024;

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  parser: 'papaparse',
  encoding: 'utf-8',
  rowGroupSize: 50_000,
  rowGroupBytes: DEFAULT_ROW_GROUP_BYTES,
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
  /** The typed batches went to a temporary file between the passes. */
  spilled: boolean;
  /** The file was parsed a second time (a column became text after typed values were stored, or the written types needed the text). */
  readTwice: boolean;
  /** The formats were encoded on a thread of their own (a large file). */
  formatThread: boolean;
  /** Set when `resolveSchema` changed a registered schema. */
  schemaChanges?: SchemaChangeNote[];
}

const DEFAULT_MEMORY_SPOOL_BYTES = 8 * 1024 * 1024;

// Which version an output holds is the version rules' to say (src/versions/); re-exported for old callers.
export { normalizeEtag, SOURCE_ETAG };

/** Rows handed from the reader to the batch builder at once: small, so parsed text dies young. */
const CHUNK_ROWS = 1024;

export async function convertObject(request: ConvertRequest): Promise<ConversionSummary> {
  const started = performance.now();
  const { source, options, registry } = request;
  const plugins = request.outputs.map((output) => registry.get(output.format));
  const memoryBytes = options.memorySpoolBytes ?? DEFAULT_MEMORY_SPOOL_BYTES;
  const object = await source.store.get(source.key, source.etag === undefined ? undefined : { ifMatch: source.etag });
  const sourceName = `${source.store.root}/${source.key}`;
  checkSize(object.size, options.maxObjectBytes, sourceName, object.body);

  const counter = countBytes(object.body, object.size, options.maxObjectBytes, sourceName, request.onProgress, memoryBytes);
  const spool = new BatchSpool(options.tmpDir, memoryBytes);
  const limits: BatchLimits = { rows: options.rowGroupSize, bytes: options.rowGroupBytes ?? DEFAULT_ROW_GROUP_BYTES };
  const threaded = canUseFormatThread(registry, object.size, options.formatThreadMinBytes);
  // The source's ETag in every output lets a duplicate delivery see the work is already done.
  const metadata = object.etag ? { ...request.metadata, [SOURCE_ETAG]: normalizeEtag(object.etag) } : request.metadata;
  let pending: PendingObject[] = [];
  let outputs: BatchOutputs | undefined;
  const open = async (schema: TableSchema) => {
    pending = [];
    const specs: OutputSpec[] = [];
    for (const [i, output] of request.outputs.entries()) {
      const plugin = plugins[i]!;
      const sink = await output.store.put(output.key, { contentType: plugin.contentType, metadata });
      pending.push(sink);
      specs.push({ format: plugin.name, options: options.formatOptions[plugin.name] ?? {}, sink });
    }
    outputs = openOutputs(registry, schema, specs, threaded);
    return outputs;
  };
  const discard = async () => {
    await outputs?.close();
    await Promise.all(pending.map((object) => object.abort()));
    outputs = undefined;
    pending = [];
  };
  const write = async (batch: TypedBatch) => {
    request.signal?.throwIfAborted();
    await outputs!.write(batch);
  };
  /** The source read a second time, when the first pass could not write everything. */
  let second: Readable | undefined;

  try {
    // Pass 1: parse every row, infer the exact schema, build typed batches in the types seen so far.
    // Without a schema resolver the batches go to the formats at once, in the types of the first
    // batch; if a later batch needs wider types, those outputs are dropped and the file read again.
    const table = await openCsv(counter.stream, csvOptions(options));
    const pinned = table.columns.map((name) => options.pinnedTypes?.get(name));
    const builder = BatchBuilder.inferring(table.columns, pinned, limits);
    const streaming = request.resolveSchema === undefined;
    let streamedTypes: ColumnType[] | undefined;
    const take = async (batch: BuiltBatch) => {
      if (!streaming) return spool.add(batch);
      if (!streamedTypes) {
        streamedTypes = builder.types();
        await open(schemaOf(table.columns, streamedTypes));
      }
      if (fitsTypes(batch, streamedTypes)) return write(writtenBatch(batch, streamedTypes, identity(streamedTypes)));
      builder.stopBuilding();
      await discard();
    };
    let rows = 0;
    let dropped = false;
    for await (const chunk of table.chunks) {
      request.signal?.throwIfAborted();
      rows += chunk.rows.length;
      for (const batch of builder.add(chunk)) await take(batch);
      if (builder.textLost && !dropped) {
        // Nothing built so far can be written: free it now, not at the end of a long file.
        dropped = true;
        await Promise.all([spool.dispose(), discard()]);
      }
    }
    const last = builder.finish();
    if (last) await take(last);
    const inferredTypes = builder.types();
    const inferred: TableSchema = schemaOf(table.columns, inferredTypes);
    const written: WrittenSchema = request.resolveSchema
      ? await request.resolveSchema({ key: source.key, schema: inferred, empty: builder.emptyColumns() })
      : { schema: inferred, sourceColumns: identity(inferredTypes) };
    const { schema, sourceColumns } = written;
    const types = schema.columns.map((column) => column.type);

    // Pass 2: whatever the first pass could not write.
    let readTwice = false;
    if (streaming && outputs && !builder.textLost) {
      // Every batch was written as it came.
    } else if (builder.canWrite(types, sourceColumns)) {
      await open(schema);
      for await (const built of spool.batches()) await write(writtenBatch(built, types, sourceColumns));
    } else {
      // The text of some values is needed again: parse the file a second time, straight into the written types.
      readTwice = true;
      await spool.dispose();
      await open(schema);
      second = await readAgain(request, object.etag, counter);
      const again = await openCsv(second, csvOptions(options));
      const plan = types.map((type, c) => ({ source: sourceColumns[c]!, type }));
      const rebuilder = new BatchBuilder(table.columns, plan, limits, written.violationCode);
      for await (const chunk of again.chunks) for (const built of rebuilder.add(chunk)) await write(writtenBatch(built, types, identity(types)));
      const rest = rebuilder.finish();
      if (rest) await write(writtenBatch(rest, types, identity(types)));
    }
    await outputs!.finish();
    await outputs!.close();
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
      readTwice,
      formatThread: threaded,
      ...(written.changes?.length ? { schemaChanges: written.changes } : {}),
    };
  } catch (error) {
    counter.stream.destroy();
    second?.destroy();
    await discard();
    throw error;
  } finally {
    await outputs?.close();
    await spool.dispose();
  }
}

function schemaOf(names: readonly string[], types: readonly ColumnType[]): TableSchema {
  return { columns: names.map((name, i) => ({ name, type: types[i]! })) };
}

function identity(types: readonly unknown[]): number[] {
  return types.map((_, i) => i);
}

function csvOptions(options: EngineOptions) {
  return {
    parser: options.parser,
    delimiter: options.delimiter,
    encoding: options.encoding,
    chunkRows: CHUNK_ROWS,
    maxBytes: options.maxObjectBytes,
  };
}

function checkSize(size: number | undefined, limit: number | undefined, name: string, body: Readable): void {
  if (limit !== undefined && size !== undefined && size > limit) {
    body.destroy();
    throw new PermanentError('OBJECT_TOO_LARGE', `${name} is ${size} bytes, above the limit of ${limit} (MAX_OBJECT_BYTES)`);
  }
}

/**
 * The source's bytes once more: from memory when it was small enough to keep, else read again from
 * the store, the same version (If-Match on the ETag) or SourceChangedError.
 */
async function readAgain(request: ConvertRequest, etag: string | undefined, first: ByteCounter): Promise<Readable> {
  if (first.kept) return Readable.from(first.kept);
  const { store, key } = request.source;
  const object = await store.get(key, etag === undefined ? undefined : { ifMatch: etag });
  const name = `${store.root}/${key}`;
  checkSize(object.size, request.options.maxObjectBytes, name, object.body);
  return countBytes(object.body, object.size, request.options.maxObjectBytes, name, undefined, 0).stream;
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

interface ByteCounter {
  stream: Readable;
  readonly bytes: number;
  /** Every stored byte, while they total at most `keepBytes`. */
  readonly kept: Buffer[] | undefined;
}

/**
 * Counts stored bytes as they stream past, enforces the size limit when the store did not say, and
 * keeps a small source's bytes so that it can be parsed again without another read.
 */
function countBytes(
  body: Readable,
  total: number | undefined,
  limit: number | undefined,
  name: string,
  onProgress: ConvertRequest['onProgress'],
  keepBytes: number,
): ByteCounter {
  let bytes = 0;
  let kept: Buffer[] | undefined = (total ?? 0) <= keepBytes ? [] : undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.byteLength;
      if (limit !== undefined && bytes > limit) {
        callback(new PermanentError('OBJECT_TOO_LARGE', `${name} is larger than the limit of ${limit} bytes (MAX_OBJECT_BYTES)`));
        return;
      }
      if (kept) kept = bytes <= keepBytes ? (kept.push(chunk), kept) : undefined;
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
    get kept() {
      return kept;
    },
  };
}
