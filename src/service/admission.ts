/**
 * Where each file converts, decided by its size before its body is read (the S3 event's `size`, or
 * the GET's Content-Length when the event has none): a small plain CSV on the main thread, inline,
 * where it costs no thread hop and no second heap; anything else on a worker thread, admitted by
 * weight (pool.ts). A worker crash is charged to the file that caused it: dead-lettered at once when
 * it ran out of memory alone on its thread, never retried five times.
 */
import type { AwsClients } from '../aws.js';
import { classifyFailure, SourceChangedError } from '../errors.js';
import type { FormatRegistry } from '../formats/registry.js';
import { S3Store } from '../storage/s3.js';
import { runConversion, type ConvertTask, type TaskResult } from './conversion.js';
import { WorkerCrashError, type ConversionPool } from './pool.js';

/**
 * Plain CSVs up to this size convert on the main thread. The largest takes about 10 ms of CPU,
 * which is the longest the event loop is held by one (measured: bench small-files section).
 */
export const INLINE_MAX_BYTES = 256 * 1024;

/**
 * A gzip's stored size says little about what it holds: weighed as this many times its size (and
 * never inline, where a gzip bomb would hold the main thread).
 */
const GZIP_WEIGHT = 8;

export type Placement = { lane: 'inline' } | { lane: 'thread'; weight: number } | { lane: 'unknown' };

/** The lane for a source of `size` stored bytes (undefined: not known before the GET). */
export function placeBySize(key: string, size: number | undefined, inlineMaxBytes = INLINE_MAX_BYTES): Placement {
  const gzip = /\.gz$/i.test(key);
  if (size === undefined) return gzip ? { lane: 'thread', weight: Number.POSITIVE_INFINITY } : { lane: 'unknown' };
  if (gzip) return { lane: 'thread', weight: size * GZIP_WEIGHT };
  return size <= inlineMaxBytes ? { lane: 'inline' } : { lane: 'thread', weight: size };
}

export interface AdmissionDeps {
  clients: AwsClients;
  registry: FormatRegistry;
  pool: ConversionPool<ConvertTask, TaskResult>;
  /** WORKER_HEAP_MB, for the reason given when a file does not fit. */
  heapMb: number;
  inlineMaxBytes?: number;
}

/** Runs `task` in its lane; never rejects. */
export async function convertInLane(announced: ConvertTask, deps: AdmissionDeps, signal: AbortSignal): Promise<TaskResult> {
  let task = announced;
  const inlineMax = deps.inlineMaxBytes ?? INLINE_MAX_BYTES;
  let placement = placeBySize(task.source.key, task.source.size, inlineMax);
  if (placement.lane !== 'thread') {
    // Small, or no size in the event: the GET's Content-Length decides before any of the body is
    // read (an event's size is not taken on trust for the main thread).
    let opened;
    try {
      opened = await S3Store.forBucket(deps.clients, task.source.bucket).get(task.source.key, task.source.etag ? { ifMatch: task.source.etag } : undefined);
    } catch (error) {
      if (error instanceof SourceChangedError) return { outcome: 'superseded', reason: error.message };
      return { outcome: 'failed', failure: classifyFailure(error) };
    }
    placement = placeBySize(task.source.key, opened.size, inlineMax);
    if (placement.lane === 'inline') return runConversion(task, { clients: deps.clients, registry: deps.registry, signal, opened });
    // Too large for the main thread: the worker reads it again (one more GET, for such files only).
    opened.body.destroy();
    if (opened.size !== undefined) task = { ...task, source: { ...task.source, size: opened.size } };
  }
  const weight = placement.lane === 'thread' ? placement.weight : Number.POSITIVE_INFINITY;
  try {
    return await deps.pool.run(task, weight, signal);
  } catch (error) {
    if (!(error instanceof WorkerCrashError)) return { outcome: 'failed', failure: classifyFailure(error) };
    // The fate adds the object's name in front of these reasons.
    if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return {
        outcome: 'failed',
        failure: {
          kind: 'permanent',
          code: 'OUT_OF_MEMORY',
          message:
            `${task.source.size === undefined ? 'it' : `${task.source.size} bytes of CSV`} did not fit in memory: converting it ran its worker thread ` +
            `out of heap (WORKER_HEAP_MB=${deps.heapMb}) although it had the thread to itself, so it would fail the same way again. ` +
            'Raise WORKER_HEAP_MB (and the task memory with it) or split the file, then redrive this message.',
        },
      };
    }
    return { outcome: 'failed', failure: { kind: 'transient', code: 'WORKER_CRASHED', message: `its worker thread died: ${error.message}` } };
  }
}
