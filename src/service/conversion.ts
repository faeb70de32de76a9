/**
 * Converts one announced source version into its outputs, on whichever thread runs it (the main
 * thread for small files, a worker thread for the rest): the repeat check of a redelivery, the GET
 * of exactly that version, the engine, and the publish protocol of `versions/publish.ts`. Failures
 * are classified here, where they are raised: an Error's class does not survive a thread hop.
 */
import type { AwsClients } from '../aws.js';
import { classifyFailure, SourceChangedError, type Failure } from '../errors.js';
import type { FormatRegistry } from '../formats/registry.js';
import { convertObject, type EngineOptions } from '../pipeline/convert.js';
import { S3Store } from '../storage/s3.js';
import type { ObjectStore, SourceObject } from '../storage/types.js';
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
  /** Set to 1 by the pool when the task should stop at the next safe point (worker threads). */
  cancel?: Int32Array;
}

export type TaskResult = (
  | { outcome: 'converted'; rows: number; columns: Column[]; bytesIn: number; bytesOut: number; conversionMs: number; published: PublishRecord[] }
  | { outcome: 'duplicate' }
  | { outcome: 'superseded'; reason: string }
  | { outcome: 'failed'; failure: Failure }
) & {
  /** Cleanup that failed along the way (an upload left unaborted…), for the caller to log. */
  cleanupFailures?: string[];
};

export interface ConversionEnv {
  clients: AwsClients;
  registry: FormatRegistry;
  signal?: AbortSignal;
  /** The source already opened by the caller (to learn its size): used instead of a second GET. */
  opened?: SourceObject;
}

export async function runConversion(task: ConvertTask, env: ConversionEnv): Promise<TaskResult> {
  const cleanupFailures: string[] = [];
  const onCleanupFailure = (what: string, error: unknown) => cleanupFailures.push(`could not ${what}: ${(error as Error)?.message ?? String(error)}`);
  const stores = new Map<string, S3Store>();
  const storeFor = (bucket: string): S3Store => {
    let store = stores.get(bucket);
    if (!store) stores.set(bucket, (store = S3Store.forBucket(env.clients, bucket, onCleanupFailure)));
    return store;
  };
  const result = await convert(task, env, storeFor).catch((error: unknown): TaskResult => {
    if (error instanceof SourceChangedError) return { outcome: 'superseded', reason: error.message };
    return { outcome: 'failed', failure: classifyFailure(error) };
  });
  return cleanupFailures.length > 0 ? { ...result, cleanupFailures } : result;
}

async function convert(task: ConvertTask, env: ConversionEnv, storeFor: (bucket: string) => S3Store): Promise<TaskResult> {
  const outputs = task.outputs.map((output) => ({ format: output.format, store: storeFor(output.bucket), key: output.key }));
  const announced = task.source.etag;
  if (task.checkOutputsFirst && announced) {
    const version: SourceVersion = { bucket: task.source.bucket, key: task.source.key, etag: announced, sequencer: task.source.sequencer };
    const heads = await Promise.all(outputs.map((output) => output.store.head(output.key)));
    if (heads.every((head) => head !== undefined && holdsVersion(head.metadata, version))) {
      env.opened?.body.destroy();
      return { outcome: 'duplicate' };
    }
  }
  const source = storeFor(task.source.bucket);
  const publish = versionedPublisher({
    version: { bucket: task.source.bucket, key: task.source.key, etag: announced ?? '', sequencer: task.source.sequencer },
    storeFor,
  });
  const summary = await convertObject({
    source: { store: env.opened ? opened(source, env.opened) : source, key: task.source.key, ...(announced ? { etag: announced } : {}) },
    outputs,
    options: task.options,
    registry: env.registry,
    // source-etag is set again by the engine from the GET, which read exactly this version.
    metadata: outputMetadata({ bucket: task.source.bucket, key: task.source.key, etag: announced ?? '', sequencer: task.source.sequencer }),
    signal: env.signal,
    publish,
  });
  // Every output already held this version (a repeat this process could not recognise): no write.
  if (publish.records.every((record) => record.how === 'already')) return { outcome: 'duplicate' };
  return {
    outcome: 'converted',
    rows: summary.rows,
    columns: summary.columns,
    bytesIn: summary.bytesIn,
    bytesOut: summary.outputs.reduce((sum, output) => sum + output.bytes, 0),
    conversionMs: summary.seconds * 1000,
    published: publish.records,
  };
}

/** `store`, except that the first GET returns the object the caller already opened. */
function opened(store: ObjectStore, object: SourceObject): ObjectStore {
  let first: SourceObject | undefined = object;
  return {
    root: store.root,
    get: async (key, options) => {
      const taken = first;
      first = undefined;
      return taken ?? store.get(key, options);
    },
    head: (key) => store.head(key),
    put: (key, options) => store.put(key, options),
    delete: (key) => store.delete(key),
  };
}
