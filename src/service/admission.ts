/**
 * Where each file converts, decided by its size before its body is read (the S3 event's `size`, or
 * the GET's Content-Length when the event has none):
 * - a small file: the main thread does its I/O (GET, publish) and a worker thread its CPU work, on
 *   bytes handed over, so the event loop stays free and every core converts;
 * - a larger one: a worker thread streams, converts and publishes it, in bounded memory.
 * Worker threads admit files by weight (pool.ts), so a large file converts with bounded company. A
 * worker crash is charged to the file that caused it: dead-lettered at once when it ran out of
 * memory alone on its thread, never retried five times.
 */
import type { AwsClients } from '../aws.js';
import { classifyFailure, SourceChangedError, type Failure } from '../errors.js';
import type { FormatRegistry } from '../formats/registry.js';
import { S3Store } from '../storage/s3.js';
import { convertSmall, type BytesJob, type BytesResult, type ConvertTask, type TaskResult, type WorkerTask } from './conversion.js';
import { WorkerCrashError, type ConversionPool, type RunOptions } from './pool.js';

/**
 * Files up to this size are read whole by the main thread and converted from bytes on a worker.
 * Measured on 20 KB files (bench, small-files section) against converting on the main thread: as
 * much CPU within the noise, an event-loop delay p99 of ~25 ms instead of 60–90 ms, and every core
 * converts. Larger files stream on a worker thread, in bounded memory.
 */
export const SMALL_FILE_BYTES = 1024 * 1024;

/** A gzip's stored size says little about what it holds: it weighs this many times its size. */
const GZIP_WEIGHT = 8;

/**
 * `light`: a small plain CSV, whose conversion needs little memory and time; it may share any
 * thread and never waits behind a large file. A gzip is never light: what it holds is unknown.
 */
export type Placement = { lane: 'small'; weight: number; light: boolean } | { lane: 'stream'; weight: number } | { lane: 'unknown' };

/** The lane for a source of `size` stored bytes (undefined: not known before the GET). */
export function placeBySize(key: string, size: number | undefined, smallFileBytes = SMALL_FILE_BYTES): Placement {
  if (size === undefined) return { lane: 'unknown' };
  const gzip = /\.gz$/i.test(key);
  const weight = gzip ? size * GZIP_WEIGHT : size;
  return size <= smallFileBytes ? { lane: 'small', weight, light: !gzip } : { lane: 'stream', weight };
}

export interface AdmissionDeps {
  clients: AwsClients;
  registry: FormatRegistry;
  pool: ConversionPool<WorkerTask, TaskResult | BytesResult>;
  /** WORKER_HEAP_MB, for the reason given when a file does not fit. */
  heapMb: number;
  smallFileBytes?: number;
}

/** Runs `task` in its lane; never rejects. */
export async function convertInLane(announced: ConvertTask, deps: AdmissionDeps, signal: AbortSignal): Promise<TaskResult> {
  let task = announced;
  const smallMax = deps.smallFileBytes ?? SMALL_FILE_BYTES;
  // A dataset schema is read and registered with S3 calls in the middle of a conversion: such files
  // stream on a worker thread, which has its own clients (the bytes lane does no I/O there).
  const placement = task.schemaRegistry ? { lane: 'stream' as const, weight: task.source.size ?? Number.POSITIVE_INFINITY } : placeBySize(task.source.key, task.source.size, smallMax);
  const convertBytes = (job: BytesJob, small: { weight: number; light: boolean }) =>
    onPool(deps, { kind: 'bytes', job }, { ...small, signal }, task.source.size) as Promise<BytesResult>;
  if (placement.lane !== 'stream') {
    // Small by the event, or no size in it: the GET's Content-Length decides before any of the body
    // is read (an event's size is not taken on trust for reading a file whole).
    let opened;
    try {
      opened = await S3Store.forBucket(deps.clients, task.source.bucket).get(task.source.key, task.source.etag ? { ifMatch: task.source.etag } : undefined);
    } catch (error) {
      if (error instanceof SourceChangedError) return { outcome: 'superseded', reason: error.message };
      return { outcome: 'failed', failure: classifyFailure(error) };
    }
    const known = placeBySize(task.source.key, opened.size, smallMax);
    if (known.lane === 'small') {
      return convertSmall(task, { clients: deps.clients, registry: deps.registry, signal, convertBytes: (job) => convertBytes(job, known) }, opened);
    }
    // Too large to read whole: a worker streams it (one more GET, for such files only).
    opened.body.destroy();
    if (opened.size !== undefined) task = { ...task, source: { ...task.source, size: opened.size } };
    const weight = known.lane === 'stream' ? known.weight : Number.POSITIVE_INFINITY;
    return (await onPool(deps, { kind: 'stream', task }, { weight, signal }, opened.size)) as TaskResult;
  }
  return (await onPool(deps, { kind: 'stream', task }, { weight: placement.weight, signal }, task.source.size)) as TaskResult;
}

/** Runs work on a worker thread; a crash becomes the failure it is charged as. */
async function onPool(deps: AdmissionDeps, work: WorkerTask, options: RunOptions, size: number | undefined): Promise<TaskResult | BytesResult> {
  try {
    return await deps.pool.run(work, options);
  } catch (error) {
    return { outcome: 'failed', failure: crashFailure(error, deps.heapMb, size) };
  }
}

/** The fate puts the object's name in front of these reasons. */
function crashFailure(error: unknown, heapMb: number, size: number | undefined): Failure {
  if (!(error instanceof WorkerCrashError)) return classifyFailure(error);
  if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return {
      kind: 'permanent',
      code: 'OUT_OF_MEMORY',
      message:
        `${size === undefined ? 'it' : `${size} bytes of CSV`} did not fit in memory: converting it ran its worker thread ` +
        `out of heap (WORKER_HEAP_MB=${heapMb}) although it had the thread to itself, so it would fail the same way again. ` +
        'Raise WORKER_HEAP_MB (and the task memory with it) or split the file, then redrive this message.',
    };
  }
  return { kind: 'transient', code: 'WORKER_CRASHED', message: `its worker thread died: ${error.message}` };
}
