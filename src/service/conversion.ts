/**
 * Converts one announced source version into its outputs, in one of two ways:
 * - a small file: the main thread reads it (one GET of exactly that version) and publishes its
 *   outputs; a worker thread only turns the bytes it is handed into output bytes (`convertBytes`);
 * - a larger one: a worker thread streams it from S3, converts and publishes it (`convertStreaming`).
 * Either way the outputs go through the publish protocol of `versions/publish.ts`. Failures are
 * classified where they are raised: an Error's class does not survive a thread hop.
 */
import { Readable } from 'node:stream';
import type { AwsClients } from '../aws.js';
import { classifyFailure, SourceChangedError, type Failure } from '../errors.js';
import type { FormatRegistry } from '../formats/registry.js';
import { convertObject, type EngineOptions, type SchemaChangeNote } from '../pipeline/convert.js';
import { registryResolver, type SchemaRegistryConfig } from '../schema/resolver.js';
import { S3Store } from '../storage/s3.js';
import type { ObjectStore, PendingObject } from '../storage/types.js';
import type { Column } from '../types.js';
import { holdsVersion, outputMetadata, type SourceVersion } from '../versions/metadata.js';
import { versionedPublisher, type PublishRecord } from '../versions/publish.js';

export interface ConvertTask {
  /** The version announced; without an ETag the version read is whatever the GET returns. */
  source: { bucket: string; key: string; etag?: string; sequencer?: string; size?: number };
  outputs: { format: string; bucket: string; key: string }[];
  options: EngineOptions;
  /** HEAD the outputs first and skip when they already hold this version (a redelivery). */
  checkOutputsFirst: boolean;
  aws: { endpoint?: string; region?: string; concurrency: number };
  /** SCHEMA_REGISTRY and its rules; absent: the file is written with its own inferred types. */
  schemaRegistry?: SchemaRegistryConfig;
}

export type TaskResult = (
  | { outcome: 'converted'; rows: number; columns: Column[]; bytesIn: number; bytesOut: number; conversionMs: number; published: PublishRecord[]; schemaChanges?: SchemaChangeNote[] }
  | { outcome: 'duplicate' }
  | { outcome: 'superseded'; reason: string }
  | { outcome: 'failed'; failure: Failure }
) & {
  /** Cleanup that failed along the way (an upload left unaborted…), for the caller to log. */
  cleanupFailures?: string[];
};

/** A small source's bytes, to be converted without any I/O (on a worker thread). */
export interface BytesJob {
  key: string;
  bytes: Uint8Array;
  options: EngineOptions;
  formats: string[];
}

export type BytesResult =
  | { outcome: 'converted'; rows: number; columns: Column[]; bytesIn: number; outputs: Uint8Array[]; conversionMs: number }
  | { outcome: 'failed'; failure: Failure };

/** What a worker thread is asked to do; `cancel` is set to 1 when it should stop at the next safe point. */
export type WorkerTask = ({ kind: 'stream'; task: ConvertTask } | { kind: 'bytes'; job: BytesJob }) & { cancel?: Int32Array };

// ---- a larger file: streamed, converted and published on a worker thread ------------------------

export interface StreamingEnv {
  clients: AwsClients;
  registry: FormatRegistry;
  signal?: AbortSignal;
}

export async function convertStreaming(task: ConvertTask, env: StreamingEnv): Promise<TaskResult> {
  const cleanup = cleanupLog();
  const storeFor = storesOver(env.clients, cleanup.onFailure);
  try {
    const outputs = task.outputs.map((output) => ({ format: output.format, store: storeFor(output.bucket), key: output.key }));
    if (await alreadyPublished(task, storeFor)) return { outcome: 'duplicate' };
    const version = versionOf(task);
    const publish = versionedPublisher({ version, storeFor });
    const summary = await convertObject({
      source: { store: storeFor(task.source.bucket), key: task.source.key, ...(task.source.etag ? { etag: task.source.etag } : {}) },
      outputs,
      options: task.options,
      registry: env.registry,
      // source-etag is set again by the engine from the GET, which read exactly this version.
      metadata: outputMetadata(version),
      signal: env.signal,
      publish,
      // Built here, from plain data, so the registry is read and written with this thread's clients.
      ...(task.schemaRegistry
        ? { resolveSchema: registryResolver(env.clients, task.schemaRegistry, { sourceRoot: `s3://${task.source.bucket}`, pinned: task.options.pinnedTypes }) }
        : {}),
    });
    return cleanup.attach(
      publishedResult(publish.records, {
        rows: summary.rows,
        columns: summary.columns,
        bytesIn: summary.bytesIn,
        bytesOut: summary.outputs.reduce((sum, output) => sum + output.bytes, 0),
        conversionMs: summary.seconds * 1000,
        ...(summary.schemaChanges ? { schemaChanges: summary.schemaChanges } : {}),
      }),
    );
  } catch (error) {
    return cleanup.attach(failedResult(error));
  }
}

// ---- a small file: read and published by the main thread, converted by a worker ----------------

export interface SmallFileEnv {
  clients: AwsClients;
  registry: FormatRegistry;
  /** Converts the bytes elsewhere (a worker thread); never rejects. */
  convertBytes(job: BytesJob, signal: AbortSignal): Promise<BytesResult>;
  signal: AbortSignal;
}

/**
 * The main thread's part for a small file: read the announced version (the caller opened it with
 * If-Match, to see its size), hand the bytes over, publish the bytes that come back.
 */
export async function convertSmall(task: ConvertTask, env: SmallFileEnv, opened: { body: Readable; etag?: string }): Promise<TaskResult> {
  const cleanup = cleanupLog();
  const storeFor = storesOver(env.clients, cleanup.onFailure);
  const started = performance.now();
  try {
    if (await alreadyPublished(task, storeFor)) {
      opened.body.destroy();
      return { outcome: 'duplicate' };
    }
    const bytes = await wholeBody(opened.body);
    const converted = await env.convertBytes({ key: task.source.key, bytes, options: task.options, formats: task.outputs.map((output) => output.format) }, env.signal);
    if (converted.outcome === 'failed') return converted;
    // Shutdown ran out of grace meanwhile: publish nothing, so the message can go to another consumer.
    env.signal.throwIfAborted();
    const version = versionOf(task, opened.etag);
    const metadata = outputMetadata(version);
    const staged = await Promise.all(
      task.outputs.map(async (output, i) => {
        const store = storeFor(output.bucket);
        const pending = await store.put(output.key, { contentType: env.registry.get(output.format).contentType, metadata });
        await pending.write(converted.outputs[i]!);
        return { target: { format: output.format, store, key: output.key }, pending };
      }),
    );
    const publish = versionedPublisher({ version, storeFor });
    try {
      await publish(staged, { etag: opened.etag });
    } catch (error) {
      await Promise.all(staged.map((output) => output.pending.abort()));
      throw error;
    }
    return cleanup.attach(
      publishedResult(publish.records, {
        rows: converted.rows,
        columns: converted.columns,
        bytesIn: converted.bytesIn,
        bytesOut: converted.outputs.reduce((sum, output) => sum + output.byteLength, 0),
        conversionMs: performance.now() - started,
      }),
    );
  } catch (error) {
    // A body not read to its end would hold its connection.
    opened.body.destroy();
    return cleanup.attach(failedResult(error));
  }
}

/** The worker's part for a small file: bytes in, output bytes out, no I/O. */
export async function convertBytes(job: BytesJob, registry: FormatRegistry, signal?: AbortSignal): Promise<BytesResult> {
  const written = new Map<string, Uint8Array[]>();
  const source: ObjectStore = {
    root: 'memory',
    get: async () => ({ body: Readable.from([job.bytes]), size: job.bytes.byteLength }),
    head: async () => undefined,
    put: () => Promise.reject(new Error('the source is read-only')),
    delete: async () => {},
  };
  const sink: ObjectStore = {
    root: 'memory',
    get: () => Promise.reject(new Error('outputs are write-only here')),
    head: async () => undefined,
    put: async (key) => {
      const chunks: Uint8Array[] = [];
      written.set(key, chunks);
      const pending: PendingObject = { write: async (chunk) => void chunks.push(chunk), commit: async () => 0, abort: async () => {} };
      return pending;
    },
    delete: async () => {},
  };
  try {
    const summary = await convertObject({
      source: { store: source, key: job.key },
      outputs: job.formats.map((format) => ({ format, store: sink, key: format })),
      options: job.options,
      registry,
      signal,
      // Published by the main thread: here the outputs only need to be complete.
      publish: async (staged) => staged.map(() => 0),
    });
    return {
      outcome: 'converted',
      rows: summary.rows,
      columns: summary.columns,
      bytesIn: summary.bytesIn,
      outputs: job.formats.map((format) => Buffer.concat(written.get(format) ?? [])),
      conversionMs: summary.seconds * 1000,
    };
  } catch (error) {
    return { outcome: 'failed', failure: classifyFailure(error) };
  }
}

// ---- shared ------------------------------------------------------------------------------------------

function versionOf(task: ConvertTask, readEtag?: string): SourceVersion {
  return { bucket: task.source.bucket, key: task.source.key, etag: readEtag ?? task.source.etag ?? '', sequencer: task.source.sequencer };
}

/** A redelivery: the outputs may already hold this version (a HEAD each). */
async function alreadyPublished(task: ConvertTask, storeFor: (bucket: string) => S3Store): Promise<boolean> {
  if (!task.checkOutputsFirst || !task.source.etag) return false;
  const version = versionOf(task);
  const heads = await Promise.all(task.outputs.map((output) => storeFor(output.bucket).head(output.key)));
  return heads.every((head) => head !== undefined && holdsVersion(head.metadata, version));
}

function publishedResult(records: PublishRecord[], converted: Omit<Extract<TaskResult, { outcome: 'converted' }>, 'outcome' | 'published'>): TaskResult {
  // Every output already held this version (a repeat this process could not recognise): no write.
  if (records.every((record) => record.how === 'already')) return { outcome: 'duplicate' };
  return { outcome: 'converted', ...converted, published: records };
}

function failedResult(error: unknown): TaskResult {
  if (error instanceof SourceChangedError) return { outcome: 'superseded', reason: error.message };
  return { outcome: 'failed', failure: classifyFailure(error) };
}

function storesOver(clients: AwsClients, onCleanupFailure: (what: string, error: unknown) => void): (bucket: string) => S3Store {
  const stores = new Map<string, S3Store>();
  return (bucket) => {
    let store = stores.get(bucket);
    if (!store) stores.set(bucket, (store = S3Store.forBucket(clients, bucket, onCleanupFailure)));
    return store;
  };
}

function cleanupLog() {
  const failures: string[] = [];
  return {
    onFailure: (what: string, error: unknown) => failures.push(`could not ${what}: ${(error as Error)?.message ?? String(error)}`),
    attach: (result: TaskResult): TaskResult => (failures.length > 0 ? { ...result, cleanupFailures: failures } : result),
  };
}

/** The whole body of a small object, as one array the worker can take over (not a view into Node's shared pool). */
async function wholeBody(body: Readable): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Uint8Array);
    total += (chunk as Uint8Array).byteLength;
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}
