/**
 * Creates the AWS SDK clients, all sharing one tuned HTTP agent per process: keep-alive on, and
 * enough sockets for every object in flight (GET, two uploads and SQS calls for each).
 * Endpoint and credentials come from the standard AWS environment (AWS_ENDPOINT_URL, AWS_REGION…).
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
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
  s3: S3Client;
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
  // cacheMiddleware resolves each command's middleware stack once instead of on every call (about
  // 40% of an S3 call's CPU here); nothing in the service changes a stack after its first request.
  const common = { region, requestHandler, retryStrategy: new UnmeteredRetryStrategy(3), cacheMiddleware: true, ...(endpoint ? { endpoint } : {}) };
  const s3 = new S3Client({
    ...common,
    // Path-style addressing is what emulators answer; real AWS accepts it for every bucket name we create.
    forcePathStyle: Boolean(endpoint),
    // The SDK's default streams every body through a JavaScript CRC. S3Store sets a CRC32 computed by
    // zlib on each upload instead (S3 still verifies it), and a GET is covered by TLS and the CSV
    // checks (gzip's own CRC, strict UTF-8, row shape).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const sqs = new SQSClient(common);
  const cloudwatch = new CloudWatchClient(common);
  return {
    s3,
    sqs,
    cloudwatch,
    destroy() {
      s3.destroy();
      sqs.destroy();
      cloudwatch.destroy();
    },
  };
}
