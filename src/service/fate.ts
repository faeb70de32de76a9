/**
 * The fate of a message, decided once from what happened to each object it names: acknowledge it,
 * retry it later with a backoff, dead-letter it with a reason, or release it to another consumer
 * now. A pure function: the lease (lease.ts) carries the decision out.
 */
import type { Failure } from '../errors.js';

/** What happened to one object of a message, as far as its fate is concerned. */
export type ObjectResult =
  | { kind: 'converted' }
  /** A repeat of a notification whose outputs are already published. */
  | { kind: 'duplicate' }
  /** A newer version replaced the one announced; its own notification converts it. */
  | { kind: 'superseded' }
  /** The object no longer exists (a 404 confirmed by a HEAD). */
  | { kind: 'gone' }
  /** Not ours to convert (a test event, a removal, a key that is not CSV). */
  | { kind: 'skipped' }
  /** `failure.kind` is permanent or transient. */
  | { kind: 'failed'; failure: Failure; object: ObjectName };

export interface ObjectName {
  bucket: string;
  key: string;
}

export interface FateInput {
  results: readonly ObjectResult[];
  /** This delivery's ApproximateReceiveCount (1 on the first). */
  attempt: number;
  /** The queue's maxReceiveCount: SQS moves the message itself after that many receives. */
  maxReceiveCount: number;
  /** Shutdown ran out of grace and cut some of this message's objects short. */
  cutShort: boolean;
  backoff: { baseSeconds: number; maxSeconds: number };
  /** A number in [0, 1) for the backoff's jitter (Math.random in the service). */
  random: number;
}

export type Fate =
  | { kind: 'ack' }
  /** `object`: the one that failed, when a single object did. */
  | { kind: 'retry'; delaySeconds: number; failure: Failure; object?: ObjectName }
  | { kind: 'dead-letter'; failure: Failure }
  /** Visible again at once, for another consumer: work cut short by shutdown is not a failure. */
  | { kind: 'release' };

export function decideFate(input: FateInput): Fate {
  // Only a message with an object cut short goes back: one whose objects all finished as the grace
  // period ended is acknowledged (released, it would only come back as a duplicate).
  if (input.cutShort) return { kind: 'release' };
  const failed = input.results.filter((result): result is Extract<ObjectResult, { kind: 'failed' }> => result.kind === 'failed');
  // Transient first: retrying converts that object, and a permanent failure beside it fails again.
  const transient = failed.find((result) => result.failure.kind === 'transient');
  if (transient) {
    if (input.attempt >= input.maxReceiveCount) {
      // SQS would move it on the next receive without a reason; dead-letter it now with one.
      return {
        kind: 'dead-letter',
        failure: {
          kind: 'permanent',
          code: 'RETRIES_EXHAUSTED',
          message: `${nameOf(transient.object)}: still failing after ${input.attempt} attempts: ${transient.failure.code}: ${transient.failure.message}`,
        },
      };
    }
    return {
      kind: 'retry',
      delaySeconds: backoffSeconds(input.attempt, input.backoff.baseSeconds, input.backoff.maxSeconds, input.random),
      failure: transient.failure,
      object: transient.object,
    };
  }
  const permanent = failed.find((result) => result.failure.kind === 'permanent');
  if (permanent) return { kind: 'dead-letter', failure: { ...permanent.failure, message: `${nameOf(permanent.object)}: ${permanent.failure.message}` } };
  return { kind: 'ack' };
}

/** Exponential backoff from the receive count, with ±20% jitter so retries of a burst spread out. */
export function backoffSeconds(receiveCount: number, base: number, max: number, random = Math.random()): number {
  const exponential = Math.min(max, base * 2 ** Math.max(0, receiveCount - 1));
  return Math.min(max, Math.round(exponential * (0.8 + random * 0.4)));
}

function nameOf(object: ObjectName): string {
  return `s3://${object.bucket}/${object.key}`;
}
