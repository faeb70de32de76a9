/**
 * Creates the AWS SDK clients, all sharing one tuned HTTP agent per process: keep-alive on, and
 * enough sockets for every object in flight (GET, two uploads and SQS calls for each).
 * Endpoint and credentials come from the standard AWS environment (AWS_ENDPOINT_URL, AWS_REGION…).
 *
 * What is safe about the SDK's `cacheMiddleware` (it resolves a command's middleware stack once,
 * about 40% of an S3 call's CPU): the cached handler shares one execution context between every
 * call of that command on that client, and the endpoint middleware writes the resolved endpoint
 * into it. S3 endpoints carry the bucket (path-style and virtual-hosted alike), so concurrent calls
 * for two buckets on one caching client can go to the wrong bucket (a GET answered 404 by the other
 * bucket looks like a deleted object: issue 16). Hence:
 * - `s3` never caches: it serves any bucket.
 * - `s3ForBucket(b)` caches, and refuses any call for another bucket, so every call on it resolves
 *   the same endpoint. Keys are not part of the endpoint and do not mix (tested).
 * - SQS and CloudWatch do not cache: their calls are batched (a receive or delete per ten files, a
 *   metrics send per minute), so a cache would save nothing worth its risk (SQS's queue-URL
 *   middleware also writes the endpoint into the shared context for some queue URLs).
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { RetryErrorInfo, RetryStrategyV2, StandardRetryToken } from '@smithy/types';

function retryToken(count: number, delay: number): StandardRetryToken {
  return { getRetryCount: () => count, getRetryDelay: () => delay, getRetryCost: () => 0 } as StandardRetryToken;
}

/**
 * The SDK's standard retries (3 attempts, exponential backoff with full jitter) without its retry
 * quota: a retried call that ends in a 404 never refunds the quota, so a storm drains it for good.
 */
class UnmeteredRetryStrategy implements RetryStrategyV2 {
  constructor(private readonly maxAttempts: number) {}
  async acquireInitialRetryToken(): Promise<StandardRetryToken> {
    return retryToken(0, 0);
  }
  async refreshRetryTokenForRetry(token: StandardRetryToken, info: RetryErrorInfo): Promise<StandardRetryToken> {
    const count = token.getRetryCount() + 1;
    if (count >= this.maxAttempts || (info.errorType !== 'TRANSIENT' && info.errorType !== 'THROTTLING')) throw new Error('No retry token available');
    const base = info.errorType === 'THROTTLING' ? 500 : 100;
    return retryToken(count, Math.floor(Math.random() * Math.min(20_000, base * 2 ** count)));
  }
  recordSuccess(): void {}
}

export interface AwsClientOptions {
  /** Objects expected in flight at once; sizes the socket pool. */
  concurrency?: number;
  /** Overrides AWS_ENDPOINT_URL (tests and the emulator). */
  endpoint?: string;
  region?: string;
}

export interface AwsClients {
  /** Any bucket; resolves each call's middleware afresh (safe under any concurrency). */
  s3: S3Client;
  /**
   * A client for `bucket` only, with its middleware cached: the hot path's calls (GET, HEAD, PUT,
   * multipart) cost less CPU. A call naming another bucket is refused, never sent.
   */
  s3ForBucket(bucket: string): S3Client;
  sqs: SQSClient;
  cloudwatch: CloudWatchClient;
  destroy(): void;
}

export function createAwsClients(options: AwsClientOptions = {}): AwsClients {
  const maxSockets = Math.max(50, (options.concurrency ?? 16) * 4);
  const agentOptions = { keepAlive: true, keepAliveMsecs: 1000, maxSockets };
  const requestHandler = new NodeHttpHandler({
    httpAgent: new HttpAgent(agentOptions),
    httpsAgent: new HttpsAgent(agentOptions),
    connectionTimeout: 5_000,
    requestTimeout: 120_000,
  });
  const endpoint = options.endpoint ?? process.env.AWS_ENDPOINT_URL ?? undefined;
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const common = { region, requestHandler, retryStrategy: new UnmeteredRetryStrategy(3), ...(endpoint ? { endpoint } : {}) };
  const s3Config: S3ClientConfig = {
    ...common,
    // Path-style addressing is what emulators answer; real AWS accepts it for every bucket name we create.
    forcePathStyle: Boolean(endpoint),
    // The SDK's default streams every body through a JavaScript CRC. S3Store sets a CRC32 computed by
    // zlib on each upload instead (S3 still verifies it), and a GET is covered by TLS and the CSV
    // checks (gzip's own CRC, strict UTF-8, row shape).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  const s3 = new S3Client(s3Config);
  const perBucket = new Map<string, S3Client>();
  const s3ForBucket = (bucket: string): S3Client => {
    let client = perBucket.get(bucket);
    if (client) return client;
    client = bucketBound(new S3Client({ ...s3Config, cacheMiddleware: true }), bucket);
    // A handful of buckets is the norm; the cap only bounds a queue fed by very many. An evicted client
    // holds nothing but its cache (the sockets belong to the shared request handler).
    if (perBucket.size >= MAX_CACHED_BUCKETS) perBucket.delete(perBucket.keys().next().value!);
    perBucket.set(bucket, client);
    return client;
  };
  // With an endpoint set (an emulator), the SDK sends every queue's calls there, whatever host the
  // queue URL names (LocalStack's name port 4566, not the one mapped on this side).
  const sqs = new SQSClient(common);
  const cloudwatch = new CloudWatchClient(common);
  return {
    s3,
    s3ForBucket,
    sqs,
    cloudwatch,
    destroy() {
      s3.destroy();
      perBucket.clear();
      sqs.destroy();
      cloudwatch.destroy();
    },
  };
}

/** Buckets that keep a caching client of their own at once. */
const MAX_CACHED_BUCKETS = 64;

/** Refuses, before anything is sent, a call whose Bucket is not the one this client serves. */
function bucketBound(client: S3Client, bucket: string): S3Client {
  client.middlewareStack.add(
    (next) => async (args) => {
      const named = (args.input as { Bucket?: unknown }).Bucket;
      if (named !== undefined && named !== bucket) {
        throw new Error(`this S3 client serves s3://${bucket} only; a call for s3://${String(named)} must use its own client`);
      }
      return next(args);
    },
    { step: 'initialize', name: 's3cc-bucket-bound', override: true },
  );
  return client;
}
