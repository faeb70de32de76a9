/**
 * The two kinds of failure the service distinguishes. Every failure is classified once, at the
 * edge where it is raised or first caught, and that decides what happens to the message:
 * a permanent one is dead-lettered now with its reason, a transient one is retried later.
 */

/** Stable codes for permanent failures; they travel as the DLQ's `error-code` attribute. */
export type PermanentCode =
  | 'MALFORMED_MESSAGE'
  | 'EMPTY_FILE'
  | 'RAGGED_ROW'
  | 'INVALID_CSV'
  | 'INVALID_ENCODING'
  | 'INVALID_GZIP'
  | 'SCHEMA_VIOLATION'
  | 'SCHEMA_MISMATCH'
  | 'OBJECT_TOO_LARGE'
  | 'INVALID_SCHEMA_FILE'
  | 'UNSUPPORTED_INPUT'
  /** Another source that still exists made the outputs this one maps to (`x.csv` beside `x.csv.gz`). */
  | 'OUTPUT_CONFLICT'
  /** Converting it ran a worker thread out of memory while it had the thread to itself. */
  | 'OUT_OF_MEMORY';

/** The input itself is wrong: retrying cannot help. `message` must tell a human what to fix. */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
  constructor(
    readonly code: PermanentCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The world is briefly wrong (throttling, 5xx, network, timeouts): try again later. */
export class TransientError extends Error {
  override readonly name = 'TransientError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The source object no longer exists; acknowledged and counted, not an error. */
export class ObjectGoneError extends Error {
  override readonly name = 'ObjectGoneError';
}

/**
 * The source no longer holds the version a notification announced (a GET with If-Match answered
 * 412): a newer version replaced it, and that version's own notification converts it.
 */
export class SourceChangedError extends Error {
  override readonly name = 'SourceChangedError';
}

/**
 * A conditional write found the output changed since it was looked at (S3 412 PreconditionFailed,
 * or 409 ConditionalRequestConflict when another write raced it): look again before deciding.
 */
export class PreconditionFailedError extends Error {
  override readonly name = 'PreconditionFailedError';
}

/** What the service does with a failed object, decided once from the error. */
export type FailureKind = 'permanent' | 'transient' | 'gone';

export interface Failure {
  kind: FailureKind;
  code: string;
  message: string;
}

/** AWS error names that mean "the object is not there (any more)". */
const GONE_NAMES = new Set(['NoSuchKey', 'NotFound']);

/** Node and SDK error codes that mean the network, not the request, failed. */
const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'TimeoutError', 'RequestTimeout', 'RequestTimeoutException',
]);

/**
 * Classifies any error into a Failure. Only errors we raised ourselves as PermanentError are
 * permanent: an unknown error (even a bug) is retried, and the queue's redrive policy
 * dead-letters it after maxReceiveCount attempts, so nothing is dropped on a guess.
 */
export function classifyFailure(error: unknown): Failure {
  if (error instanceof PermanentError) return { kind: 'permanent', code: error.code, message: error.message };
  if (error instanceof ObjectGoneError) return { kind: 'gone', code: 'OBJECT_GONE', message: error.message };
  if (error instanceof SourceChangedError) return { kind: 'gone', code: 'SOURCE_CHANGED', message: error.message };
  if (error instanceof PreconditionFailedError) return { kind: 'transient', code: 'OUTPUT_CHANGED', message: error.message };
  if (error instanceof TransientError) return { kind: 'transient', code: error.code, message: error.message };
  const e = (error ?? {}) as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: { throttling?: boolean };
  };
  const message = e.message ?? String(error);
  if (e.name && GONE_NAMES.has(e.name)) return { kind: 'gone', code: 'OBJECT_GONE', message };
  const status = e.$metadata?.httpStatusCode;
  if (e.$retryable?.throttling || e.name === 'SlowDown' || e.name === 'ThrottlingException' || status === 429 || status === 503) {
    return { kind: 'transient', code: 'THROTTLED', message };
  }
  if (status !== undefined && status >= 500) return { kind: 'transient', code: 'SERVER_ERROR', message };
  if ((e.code && NETWORK_CODES.has(e.code)) || (e.name && NETWORK_CODES.has(e.name))) {
    return { kind: 'transient', code: 'NETWORK', message };
  }
  if (e.name === 'AbortError') return { kind: 'transient', code: 'ABORTED', message };
  return { kind: 'transient', code: e.name && e.name !== 'Error' ? e.name : 'UNEXPECTED', message };
}
