/**
 * The I/O ceiling of the set-up: a consumer shaped like `serve` (same SDK clients and HTTP agent,
 * same sqs-consumer pollers, CONCURRENCY objects in flight, deletes batched by AckBatcher) that makes
 * the same S3 calls per file as a first delivery to serve (GET of the source, HEAD of the source
 * before publishing, 2 PUTs with a CRC32) but converts nothing: it
 * uploads the source bytes as both "outputs". Run by bench/run.ts with QUEUE_URL and OUTPUT_BUCKET.
 */
import { performance } from 'node:perf_hooks';
import { crc32 } from 'node:zlib';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
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
const { s3, sqs } = createAwsClients({ concurrency });
const acks = new AckBatcher(sqs, queueUrl, logger);
const formats = [
  { name: 'parquet', extension: 'parquet', contentType: 'application/vnd.apache.parquet' },
  { name: 'avro', extension: 'avro', contentType: 'application/avro' },
];

async function copyObject(bucket: string, key: string): Promise<void> {
  const outputs = formats.map((format) => ({ ...format, key: `${format.name}/${stemOf(key)}.${format.extension}` }));
  const started = performance.now();
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = await object.Body!.transformToByteArray();
  const source = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (source.ETag !== object.ETag) throw new Error(`${key} changed while it was copied`);
  const checksum = Buffer.allocUnsafe(4);
  checksum.writeUInt32BE(crc32(body));
  await Promise.all(
    outputs.map((output) =>
      s3.send(
        new PutObjectCommand({
          Bucket: outputBucket,
          Key: output.key,
          Body: body,
          ContentLength: body.byteLength,
          ContentType: output.contentType,
          ChecksumCRC32: checksum.toString('base64'),
          Metadata: { 'source-etag': (object.ETag ?? '').replace(/"/g, '') },
        }),
      ),
    ),
  );
  logger.info({ bucket, key, ms: Math.round(performance.now() - started) }, 'converted');
}

async function handleMessage(message: Message): Promise<Message | undefined> {
  const notification = parseNotification(message.Body ?? '');
  if (notification.kind === 'test-event') return message;
  await Promise.all(notification.objects.map((event) => copyObject(event.bucket, event.key)));
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
      if (handled) await acks.delete(handled);
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
