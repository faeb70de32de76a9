/**
 * The I/O floor of the set-up: a consumer shaped like `serve` (same SDK clients, per-bucket caching
 * S3 clients and HTTP agent, same sqs-consumer pollers, CONCURRENCY objects in flight, deletes
 * batched ten to a call) that makes exactly the calls serve makes for a first delivery of a small
 * file, and converts nothing:
 *   ReceiveMessage (10 a call) → GetObject with If-Match (the announced ETag) → PutObject with
 *   If-None-Match: * and a CRC32, once per format, one after the other → DeleteMessageBatch (10 a call)
 * It uploads the source bytes as both "outputs". Run by bench/run.ts with QUEUE_URL and OUTPUT_BUCKET.
 */
import { performance } from 'node:perf_hooks';
import { crc32 } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Message } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import { createAwsClients } from '../src/aws.js';
import { stemOf } from '../src/events/keys.js';
import { parseNotification } from '../src/events/parse.js';
import { createLogger } from '../src/service/log.js';
import { AckBatcher } from '../src/service/acks.js';

const queueUrl = process.env.QUEUE_URL!;
const outputBucket = process.env.OUTPUT_BUCKET!;
const concurrency = Number(process.env.CONCURRENCY ?? 16);
const batchSize = Number(process.env.BATCH_SIZE ?? 10);
const waitTimeSeconds = Number(process.env.WAIT_TIME_SECONDS ?? 1);

const logger = createLogger({ level: 'info', pretty: false });
const clients = createAwsClients({ concurrency });
const { sqs } = clients;
const acks = new AckBatcher(sqs, queueUrl, logger);
const formats = [
  { name: 'parquet', extension: 'parquet', contentType: 'application/vnd.apache.parquet' },
  { name: 'avro', extension: 'avro', contentType: 'application/avro' },
];

async function copyObject(bucket: string, key: string, etag: string | undefined): Promise<void> {
  const outputs = formats.map((format) => ({ ...format, key: `${format.name}/${stemOf(key)}.${format.extension}` }));
  const started = performance.now();
  const object = await clients.s3ForBucket(bucket).send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(etag ? { IfMatch: `"${etag}"` } : {}) }));
  const body = await object.Body!.transformToByteArray();
  const checksum = Buffer.allocUnsafe(4);
  checksum.writeUInt32BE(crc32(body));
  for (const output of outputs) {
    await clients.s3ForBucket(outputBucket).send(
      new PutObjectCommand({
        Bucket: outputBucket,
        Key: output.key,
        Body: body,
        ContentLength: body.byteLength,
        ContentType: output.contentType,
        ChecksumCRC32: checksum.toString('base64'),
        IfNoneMatch: '*',
        Metadata: { 'source-etag': (object.ETag ?? '').replace(/"/g, ''), 'source-bucket': bucket, 'source-key': encodeURI(key) },
      }),
    );
  }
  logger.info({ bucket, key, ms: Math.round(performance.now() - started) }, 'converted');
}

async function handleMessage(message: Message): Promise<Message | undefined> {
  const notification = parseNotification(message.Body ?? '');
  if (notification.kind === 'test-event') return message;
  await Promise.all(notification.objects.map((event) => copyObject(event.bucket, event.key, event.eTag)));
  return message;
}

const pollers = Math.ceil(concurrency / batchSize) + 1;
for (let i = 0; i < pollers; i++) {
  const consumer = Consumer.create({
    queueUrl,
    sqs,
    useQueueUrlAsEndpoint: false,
    batchSize,
    waitTimeSeconds,
    visibilityTimeout: Number(process.env.VISIBILITY_TIMEOUT ?? 120),
    heartbeatInterval: Number(process.env.HEARTBEAT_INTERVAL ?? 30),
    messageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
    messageAttributeNames: ['All'],
    strictReturn: false,
    shouldDeleteMessages: false,
    handleMessage: async (message) => {
      const handled = await handleMessage(message);
      // As serve's leases do: the delete is queued, batched, and not waited for.
      if (handled) void acks.delete(handled);
      return undefined;
    },
  });
  consumer.on('error', (error) => logger.warn({ err: error }, 'sqs-consumer error'));
  consumer.on('processing_error', (error) => logger.error({ err: error }, 'message handler failed'));
  consumer.start();
  process.once('SIGTERM', () => consumer.stop());
}
logger.info({ pollers, concurrency }, 'serving');
process.once('SIGTERM', () => setTimeout(() => process.exit(0), 200));
