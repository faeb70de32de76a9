/**
 * How backfill meets AWS failures, decided once here: a missing or forbidden bucket or queue
 * stops the run with one line naming it; throttling, 5xx, network faults and anything else the
 * service would retry are retried with backoff (beyond the SDK's own attempts), then stop the run
 * with one line saying what it was doing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { classifyFailure } from '../errors.js';

/** The run cannot go on. `message` is one line that names the bucket, object or queue. */
export class BackfillStopped extends Error {
  override readonly name = 'BackfillStopped';
  constructor(message: string, options?: { cause?: unknown }) {
    super(oneLine(message), options);
  }
}

interface AwsError {
  name?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const ACCESS_DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'AllAccessDisabled', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken']);
const NO_SUCH_QUEUE = new Set(['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', 'NonExistentQueue']);

function nameOf(error: unknown): string {
  const e = (error ?? {}) as AwsError;
  return e.Code ?? e.name ?? 'Error';
}

function statusOf(error: unknown): number | undefined {
  return ((error ?? {}) as AwsError).$metadata?.httpStatusCode;
}

function detail(error: unknown): string {
  const message = ((error ?? {}) as AwsError).message;
  const name = nameOf(error);
  return message && message !== name ? `${name}: ${message}` : name;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function deniedOrMissingCredentials(error: unknown): boolean {
  return ACCESS_DENIED.has(nameOf(error)) || statusOf(error) === 403;
}

/** A listing failure that no retry can fix, as the line to stop with; undefined otherwise. */
export function listingStop(error: unknown, bucket: string): BackfillStopped | undefined {
  const name = nameOf(error);
  if (name === 'NoSuchBucket') return new BackfillStopped(`bucket ${bucket} does not exist (NoSuchBucket)`, { cause: error });
  if (deniedOrMissingCredentials(error)) {
    return new BackfillStopped(`access denied listing bucket ${bucket}: the caller needs s3:ListBucket on it (${detail(error)})`, { cause: error });
  }
  if (name === 'PermanentRedirect' || statusOf(error) === 301) {
    return new BackfillStopped(`bucket ${bucket} is in another region than AWS_REGION (${detail(error)})`, { cause: error });
  }
  return undefined;
}

/** A HEAD failure (other than 404, which the caller reads as "absent") that no retry can fix. */
export function headStop(error: unknown, bucket: string, key: string): BackfillStopped | undefined {
  if (deniedOrMissingCredentials(error)) {
    return new BackfillStopped(
      `access denied reading s3://${bucket}/${key}: the caller needs s3:GetObject on the output bucket to check outputs written in the same second as their source (${detail(error)})`,
      { cause: error },
    );
  }
  return listingStop(error, bucket);
}

/** A SendMessageBatch failure that no retry can fix. */
export function queueStop(error: unknown, queueUrl: string): BackfillStopped | undefined {
  if (NO_SUCH_QUEUE.has(nameOf(error))) return new BackfillStopped(`queue ${queueUrl} does not exist (${nameOf(error)})`, { cause: error });
  if (deniedOrMissingCredentials(error)) {
    return new BackfillStopped(`access denied sending to queue ${queueUrl}: the caller needs sqs:SendMessage on it (${detail(error)})`, { cause: error });
  }
  return undefined;
}

/**
 * Worth another try after a pause: what the service itself would retry (throttling, 5xx, network,
 * and errors nobody recognised), once the failures that name a resource were taken out. An
 * unrecognised error that persists stops the run after the last attempt, with its text.
 */
export function isRetryable(error: unknown): boolean {
  const failure = classifyFailure(error);
  return failure.kind === 'transient' && failure.code !== 'ABORTED';
}

export interface RetryOptions {
  /** What the call does, for the line that stops the run: "listing s3://bucket/prefix". */
  what: string;
  /** Failures that stop the run at once, with their own line. */
  stop: (error: unknown) => BackfillStopped | undefined;
  signal?: AbortSignal | undefined;
  /** Calls in all, each already retried by the SDK (default 5). */
  attempts?: number;
  /** First pause; each next one doubles, up to 20 s (default 500 ms). */
  baseMs?: number;
}

/** The pause before retry `attempt` (1-based): doubling, half of it random so retries spread out. */
export function backoffMs(attempt: number, baseMs: number): number {
  const ceiling = Math.min(20_000, baseMs * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Calls `call` until it succeeds, retrying what `isRetryable` allows; anything else stops the run. */
export async function withRetries<T>(call: () => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = options.attempts ?? 5;
  const baseMs = options.baseMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const stop = options.stop(error);
      if (stop) throw stop;
      if (!isRetryable(error)) throw new BackfillStopped(`${options.what} failed: ${detail(error)}`, { cause: error });
      if (attempt >= attempts) throw new BackfillStopped(`${options.what} still failing after ${attempts} attempts: ${detail(error)}`, { cause: error });
      options.signal?.throwIfAborted();
      await sleep(backoffMs(attempt, baseMs), undefined, options.signal ? { signal: options.signal } : {});
    }
  }
}
