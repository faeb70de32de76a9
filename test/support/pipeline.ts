/** A fresh S3 → SQS pipeline on the emulator for one test file, with the helpers its stories need. */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutBucketNotificationConfigurationCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { writeFile } from 'node:fs/promises';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { setupPipeline, type SetupResult } from '../../src/cli/setup.js';
import { sharedEmulator, uniqueName } from './emulator.js';

export interface TestPipeline extends SetupResult {
  endpoint: string;
  clients: AwsClients;
  /** Environment for `serve` pointing at this pipeline. */
  env: Record<string, string>;
  put(key: string, body: string | Uint8Array): Promise<string>;
  /** Puts an object into any bucket, with user metadata; returns its ETag. */
  putObject(bucket: string, key: string, body: string | Uint8Array, metadata?: Record<string, string>): Promise<string>;
  /** An object's LastModified and user metadata, or undefined when it is not there. */
  head(bucket: string, key: string): Promise<{ lastModified: Date; etag: string; metadata: Record<string, string> } | undefined>;
  exists(bucket: string, key: string): Promise<boolean>;
  waitForObject(bucket: string, key: string, timeoutMs?: number): Promise<void>;
  download(bucket: string, key: string, path: string): Promise<void>;
  listKeys(bucket: string, prefix?: string): Promise<string[]>;
  send(body: string): Promise<string>;
  /** Receives up to `max` messages from a queue without deleting them (they reappear after `visibility`). */
  peek(queueUrl: string, max?: number, visibility?: number): Promise<Message[]>;
  depth(queueUrl: string): Promise<{ visible: number; inFlight: number }>;
  close(): void;
}

/**
 * `notifications: false` removes the bucket notification once `setup` made it: objects put then
 * reach nobody, as when a notification was missed (the s3:TestEvent that setting it sent may
 * still be on the queue).
 */
export async function createTestPipeline(name: string, options: { maxReceiveCount?: number; notifications?: boolean } = {}): Promise<TestPipeline> {
  const emulator = await sharedEmulator();
  const clients = createAwsClients({ endpoint: emulator.endpoint });
  const setup = await setupPipeline(clients, {
    inputBucket: uniqueName(`${name}-in`),
    outputBucket: uniqueName(`${name}-out`),
    queue: uniqueName(`${name}-q`),
    maxReceiveCount: options.maxReceiveCount ?? 5,
  });
  if (options.notifications === false) {
    await clients.s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: setup.inputBucket, NotificationConfiguration: {} }));
  }
  const pipeline: TestPipeline = {
    ...setup,
    endpoint: emulator.endpoint,
    clients,
    env: {
      AWS_ENDPOINT_URL: emulator.endpoint,
      QUEUE_URL: setup.queueUrl,
      OUTPUT_BUCKET: setup.outputBucket,
      METRICS_NAMESPACE: uniqueName(`${name}-ns`),
    },
    async put(key, body) {
      const result = await clients.s3.send(new PutObjectCommand({ Bucket: setup.inputBucket, Key: key, Body: body }));
      return result.ETag!;
    },
    async putObject(bucket, key, body, metadata) {
      const result = await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...(metadata ? { Metadata: metadata } : {}) }));
      return result.ETag!;
    },
    async head(bucket, key) {
      try {
        const head = await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { lastModified: head.LastModified!, etag: head.ETag!, metadata: head.Metadata ?? {} };
      } catch (error) {
        if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
        throw error;
      }
    },
    async exists(bucket, key) {
      try {
        await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (error) {
        if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
        throw error;
      }
    },
    async waitForObject(bucket, key, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(await pipeline.exists(bucket, key))) {
        if (Date.now() > deadline) throw new Error(`s3://${bucket}/${key} did not appear within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async download(bucket, key, path) {
      const object = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      await writeFile(path, await object.Body!.transformToByteArray());
    },
    async listKeys(bucket, prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        keys.push(...(page.Contents ?? []).map((object) => object.Key!));
        token = page.NextContinuationToken;
      } while (token);
      return keys;
    },
    async send(body) {
      const result = await clients.sqs.send(new SendMessageCommand({ QueueUrl: setup.queueUrl, MessageBody: body }));
      return result.MessageId!;
    },
    async peek(queueUrl, max = 10, visibility = 0) {
      const result = await clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: max,
          WaitTimeSeconds: 1,
          VisibilityTimeout: visibility,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      return result.Messages ?? [];
    },
    async depth(queueUrl) {
      const { Attributes = {} } = await clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return { visible: Number(Attributes.ApproximateNumberOfMessages ?? 0), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) };
    },
    close() {
      clients.destroy();
    },
  };
  return pipeline;
}

/** An S3 event body as AWS sends it, for replaying a notification by hand. */
export function s3EventBody(bucket: string, key: string, etag: string, eventTime = new Date()): string {
  const encoded = encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: eventTime.toISOString(),
        eventName: 'ObjectCreated:Put',
        s3: { s3SchemaVersion: '1.0', bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` }, object: { key: encoded, eTag: etag.replace(/"/g, '') } },
      },
    ],
  });
}

/** A CSV of about `megabytes` MB with mixed column types; slow enough to convert for lifecycle tests. */
export function largeCsv(megabytes: number): Buffer {
  const header = 'id,created_at,amount,ratio,flag,code,name,day\n';
  const parts: string[] = [header];
  let size = header.length;
  let i = 0;
  while (size < megabytes * 1e6) {
    const line = `${i},2024-03-${String((i % 28) + 1).padStart(2, '0')}T10:${String(i % 60).padStart(2, '0')}:00Z,${i * 3},${(i % 1000) / 7},${i % 2 === 0},C${i % 977},name ${i % 5000},2024-01-${String((i % 28) + 1).padStart(2, '0')}\n`;
    parts.push(line);
    size += line.length;
    i++;
  }
  return Buffer.from(parts.join(''));
}
