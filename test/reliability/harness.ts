/**
 * Shared plumbing for the reliability tests: a fresh pipeline (buckets, queue, DLQ, notification)
 * per test, the environment for a real `serve` child process, and independent checks of what
 * landed in S3 and SQS (Python's pyarrow and fastavro read the outputs, not our own code).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import type { AwsClients } from '../../src/aws.js';
import { setupPipeline, type SetupResult } from '../../src/cli/setup.js';
import { parseNotification } from '../../src/events/parse.js';
import { uniqueName } from '../support/emulator.js';
import { runPython } from '../support/python.js';

export interface Pipeline extends SetupResult {
  maxReceiveCount: number;
}

export async function createPipeline(
  clients: AwsClients,
  label: string,
  options: { maxReceiveCount?: number; visibilityTimeout?: number } = {},
): Promise<Pipeline> {
  const maxReceiveCount = options.maxReceiveCount ?? 5;
  const result = await setupPipeline(clients, {
    inputBucket: uniqueName(`${label}-in`),
    outputBucket: uniqueName(`${label}-out`),
    queue: uniqueName(`${label}-q`),
    maxReceiveCount,
    ...(options.visibilityTimeout === undefined ? {} : { visibilityTimeout: options.visibilityTimeout }),
  });
  // setup wrote the notification, so S3 sent an s3:TestEvent; the service acknowledges it.
  return { ...result, maxReceiveCount };
}

/** The environment of a `serve` child for `pipeline`, talking to AWS at `endpoint`. */
export function serviceEnv(pipeline: Pipeline, endpoint: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    QUEUE_URL: pipeline.queueUrl,
    DLQ_URL: pipeline.dlqUrl,
    OUTPUT_BUCKET: pipeline.outputBucket,
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    METRICS_ENABLED: 'false',
    WORKER_THREADS: '2',
    CONCURRENCY: '8',
    VISIBILITY_TIMEOUT: '30',
    HEARTBEAT_INTERVAL: '5',
    SHUTDOWN_GRACE_SECONDS: '10',
    ...overrides,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export async function queueDepth(clients: AwsClients, queueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const { Attributes = {} } = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

export async function listKeys(clients: AwsClients, bucket: string, prefix = ''): Promise<Map<string, { size: number; etag: string }>> {
  const keys = new Map<string, { size: number; etag: string }>();
  let token: string | undefined;
  do {
    const page = await clients.s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, EncodingType: 'url' }),
    );
    for (const object of page.Contents ?? []) {
      // EncodingType url keeps keys with control characters intact through the XML.
      keys.set(decodeURIComponent(object.Key!.replace(/\+/g, ' ')), { size: object.Size ?? 0, etag: object.ETag ?? '' });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

export interface DeadLetter {
  body: string;
  /** Keys the notification names (undefined when the body itself is malformed). */
  keys: string[] | undefined;
  code: string | undefined;
  reason: string | undefined;
  attributes: Record<string, string>;
}

/** Receives and deletes every message on `queueUrl` until it stays empty for `quietMs`. */
export async function drainQueue(clients: AwsClients, queueUrl: string, quietMs = 2_000): Promise<Message[]> {
  const all: Message[] = [];
  let quietSince = Date.now();
  while (Date.now() - quietSince < quietMs) {
    const { Messages = [] } = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        VisibilityTimeout: 300,
      }),
    );
    if (Messages.length === 0) continue;
    quietSince = Date.now();
    all.push(...Messages);
    await clients.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle! })),
      }),
    );
  }
  return all;
}

export function asDeadLetter(message: Message): DeadLetter {
  const attributes = Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue ?? '']));
  let keys: string[] | undefined;
  try {
    const notification = parseNotification(message.Body ?? '');
    keys = notification.kind === 'objects' ? notification.objects.map((object) => object.key) : [];
  } catch {
    keys = undefined;
  }
  return { body: message.Body ?? '', keys, code: attributes['error-code'], reason: attributes['error-message'], attributes };
}

export async function putObject(clients: AwsClients, bucket: string, key: string, body: Uint8Array | string): Promise<string> {
  const answer = await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  return (answer.ETag ?? '').replace(/"/g, '');
}

/** Runs `work` over `items`, `limit` at a time. */
export async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let nextIndex = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (nextIndex < items.length) {
        const i = nextIndex++;
        results[i] = await work(items[i]!, i);
      }
    }),
  );
  return results;
}

/** Resident memory of a process in bytes, from /proc/<pid>/status (Linux). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export interface OutputCheck {
  key: string;
  /** Rows read back, or undefined when the object is missing or unreadable. */
  rows?: number;
  bytes?: number;
  sourceEtag?: string;
  /** First column's values, when asked for (small files only). */
  firstColumn?: unknown[];
  error?: string;
}

const READ_OUTPUTS = `
import json, sys, io, boto3, botocore, pyarrow.parquet as pq, fastavro
endpoint, bucket, want_values = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
with open(sys.argv[4], encoding='utf-8') as f:
    keys = json.load(f)
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test',
                  config=botocore.config.Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 5}))
out = []
for key in keys:
    entry = {'key': key}
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
        data = obj['Body'].read()
        entry['bytes'] = len(data)
        entry['sourceEtag'] = obj.get('Metadata', {}).get('source-etag')
        if key.endswith('.parquet'):
            table = pq.read_table(io.BytesIO(data))
            entry['rows'] = table.num_rows
            if want_values and table.num_columns:
                entry['firstColumn'] = [None if v is None else str(v) for v in table.column(0).to_pylist()]
        else:
            records = list(fastavro.reader(io.BytesIO(data)))
            entry['rows'] = len(records)
            if want_values and records:
                first = next(iter(records[0]))
                entry['firstColumn'] = [None if r[first] is None else str(r[first]) for r in records]
    except Exception as error:
        entry['error'] = f'{type(error).__name__}: {error}'[:500]
    out.append(entry)
print(json.dumps(out))
`;

/** Reads each output with pyarrow (Parquet) or fastavro (Avro) straight from the emulator. */
export async function readOutputs(endpoint: string, bucket: string, keys: string[], values = false): Promise<OutputCheck[]> {
  // Keys go through a file: a few hundred keys of up to 1 KiB would pass argv's per-string limit.
  const dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-read-'));
  try {
    const list = path.join(dir, 'keys.json');
    await writeFile(list, JSON.stringify(keys));
    return JSON.parse(await runPython(READ_OUTPUTS, [endpoint, bucket, values ? '1' : '0', list])) as OutputCheck[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The output keys the default template gives a source key. */
export function outputKeysFor(sourceKey: string): { parquet: string; avro: string } {
  const stem = sourceKey.replace(/\.csv(\.gz)?$/i, '');
  return { parquet: `parquet/${stem}.parquet`, avro: `avro/${stem}.avro` };
}

/** Log lines of one kind, e.g. every `converted`. */
export function logsWith(logs: Record<string, unknown>[], msg: string): Record<string, unknown>[] {
  return logs.filter((line) => line.msg === msg);
}

/**
 * Writes a service's JSON log lines to `$RELIABILITY_LOG_DIR` (default: the temp directory), so a
 * failure in CI can be read afterwards; returns the file.
 */
export async function saveLogs(logs: Record<string, unknown>[], name: string): Promise<string> {
  const dir = process.env.RELIABILITY_LOG_DIR ?? path.join(os.tmpdir(), 's3cc-reliability');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}.jsonl`);
  await writeFile(file, logs.map((line) => JSON.stringify(line)).join('\n') + '\n');
  return file;
}
