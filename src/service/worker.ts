/**
 * Runs on a worker thread: converts one S3 object with the same engine as `convert`, so CPU work
 * never blocks the thread that talks to SQS. Failures are classified here, where they are raised,
 * because an Error's class does not survive the trip back to the main thread.
 */
import { createAwsClients, type AwsClients } from '../aws.js';
import { classifyFailure, type Failure } from '../errors.js';
import { formatPluginModules } from '../config/settings.js';
import { loadFormats } from '../formats/plugins.js';
import { convertObject, normalizeEtag, SOURCE_ETAG, type EngineOptions } from '../pipeline/convert.js';
import { S3Store } from '../storage/s3.js';
import type { Column } from '../types.js';

export interface ConvertTask {
  source: { bucket: string; key: string; etag?: string };
  outputs: { format: string; bucket: string; key: string }[];
  options: EngineOptions;
  /** Skip when every output already carries the source's ETag (a duplicate delivery). */
  skipDuplicates: boolean;
  aws: { endpoint?: string; region?: string; concurrency: number };
  /** Set to 1 by the pool when the task should stop at the next safe point. */
  cancel?: Int32Array;
}

export type TaskResult =
  | { outcome: 'converted'; rows: number; columns: Column[]; bytesIn: number; bytesOut: number; conversionMs: number }
  | { outcome: 'duplicate' }
  | { outcome: 'failed'; failure: Failure };

// The same formats as the main thread: built-in, plus the modules FORMAT_PLUGINS names (validated there).
const registry = await loadFormats(formatPluginModules());
let clients: AwsClients | undefined;

export default async function convertTask(task: ConvertTask): Promise<TaskResult> {
  clients ??= createAwsClients(task.aws);
  const controller = new AbortController();
  const poll = setInterval(() => {
    if (task.cancel && Atomics.load(task.cancel, 0) === 1) controller.abort();
  }, 50);
  try {
    const source = S3Store.forBucket(clients, task.source.bucket);
    const outputs = task.outputs.map((output) => ({
      format: output.format,
      store: source.bucket === output.bucket ? source : S3Store.forBucket(clients!, output.bucket),
      key: output.key,
    }));
    if (task.skipDuplicates && task.source.etag) {
      const etag = normalizeEtag(task.source.etag);
      const heads = await Promise.all(outputs.map((output) => output.store.head(output.key)));
      if (heads.every((head) => head?.metadata[SOURCE_ETAG] === etag)) return { outcome: 'duplicate' };
    }
    const summary = await convertObject({
      source: { store: source, key: task.source.key },
      outputs,
      options: task.options,
      registry,
      signal: controller.signal,
    });
    return {
      outcome: 'converted',
      rows: summary.rows,
      columns: summary.columns,
      bytesIn: summary.bytesIn,
      bytesOut: summary.outputs.reduce((sum, output) => sum + output.bytes, 0),
      conversionMs: summary.seconds * 1000,
    };
  } catch (error) {
    return { outcome: 'failed', failure: classifyFailure(error) };
  } finally {
    clearInterval(poll);
  }
}
