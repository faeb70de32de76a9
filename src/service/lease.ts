/**
 * One received message's lease: while we hold it, a heartbeat keeps the message hidden from other
 * consumers; it ends exactly once, by acknowledging (a batched delete), releasing (visible again
 * after a delay), or dead-lettering (sent to the DLQ with its reason, then deleted), and every
 * ending stops the heartbeat first, so a late heartbeat can never hide a released message again.
 * Leases are keyed by receipt handle: SQS can hand the same message out twice at once (after a
 * heartbeat failed), and each receipt is a lease of its own.
 */
import { ChangeMessageVisibilityCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Failure } from '../errors.js';
import { deadLetter } from '../events/dead-letters.js';
import type { AckBatcher } from './acks.js';
import type { Fate } from './fate.js';

export interface LeaseDeps {
  sqs: SQSClient;
  queueUrl: string;
  dlqUrl: string;
  acks: AckBatcher;
  logger: Logger;
  /** Visibility extensions while the message is worked on; none when undefined. */
  heartbeat?: { intervalSeconds: number; visibilityTimeout: number };
}

/**
 * How a lease ended: `deleted` and `dead-lettered` mean the delete is queued (acks.ts sends it within
 * a moment); `kept` means it stays hidden until its visibility timeout (the DLQ send failed).
 */
export type LeaseEnd = 'deleted' | 'released' | 'dead-lettered' | 'kept';

export class MessageLease {
  /** Aborted when shutdown runs out of grace: the work stops at its next safe point. */
  readonly cutShort = new AbortController();
  readonly receivedAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #lastBeat: Promise<unknown> = Promise.resolve();
  #ending: Promise<LeaseEnd> | undefined;

  constructor(
    readonly message: Message,
    private readonly deps: LeaseDeps,
    private readonly onEnd: (lease: MessageLease) => void,
  ) {
    const beat = deps.heartbeat;
    if (beat) {
      this.#timer = setInterval(() => {
        this.#lastBeat = deps.sqs
          .send(new ChangeMessageVisibilityCommand({ QueueUrl: deps.queueUrl, ReceiptHandle: this.receiptHandle, VisibilityTimeout: beat.visibilityTimeout }))
          .catch((error: unknown) => deps.logger.warn({ err: error, messageId: message.MessageId }, 'heartbeat failed'));
      }, beat.intervalSeconds * 1000);
      this.#timer.unref();
    }
  }

  get receiptHandle(): string {
    return this.message.ReceiptHandle!;
  }

  get ended(): boolean {
    return this.#ending !== undefined;
  }

  /** Carries out `fate`; a second ending is refused (returns the first one's result). */
  end(fate: Fate): Promise<LeaseEnd> {
    if (this.#ending) {
      this.deps.logger.error({ messageId: this.message.MessageId, fate: fate.kind }, 'a message lease was ended twice; the second ending is ignored');
      return this.#ending;
    }
    this.#ending = this.#end(fate).finally(() => this.onEnd(this));
    return this.#ending;
  }

  async #end(fate: Fate): Promise<LeaseEnd> {
    await this.#stopHeartbeat();
    switch (fate.kind) {
      case 'ack':
        // Batched with others (acks.ts); the message stays hidden until the delete is sent.
        void this.deps.acks.delete(this.message);
        return 'deleted';
      case 'release':
        await this.#changeVisibility(0);
        return 'released';
      case 'retry':
        await this.#changeVisibility(fate.delaySeconds);
        return 'released';
      case 'dead-letter':
        return this.#deadLetter(fate.failure);
    }
  }

  async #stopHeartbeat(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    // A heartbeat already on its way would otherwise land after the release and hide the message again.
    await this.#lastBeat;
  }

  async #changeVisibility(seconds: number): Promise<void> {
    try {
      await this.deps.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.deps.queueUrl, ReceiptHandle: this.receiptHandle, VisibilityTimeout: seconds }));
    } catch (error) {
      // The message reappears after its current visibility timeout anyway.
      this.deps.logger.warn({ err: error, messageId: this.message.MessageId, seconds }, 'could not change message visibility');
    }
  }

  async #deadLetter(failure: Failure): Promise<LeaseEnd> {
    try {
      await deadLetter(this.deps.sqs, this.deps.dlqUrl, this.message, failure);
    } catch (error) {
      // Not dead-lettered, so not deleted: it comes back, and the redrive policy is the backstop.
      this.deps.logger.error({ err: error, messageId: this.message.MessageId, code: failure.code }, 'could not send to the DLQ; leaving the message');
      return 'kept';
    }
    // Deleted only once the dead letter is sent: a crash in between duplicates it, never loses it.
    void this.deps.acks.delete(this.message);
    return 'dead-lettered';
  }
}

/** The leases this process holds, by receipt handle. */
export class Leases {
  readonly #open = new Map<string, MessageLease>();

  constructor(private readonly deps: LeaseDeps) {}

  take(message: Message): MessageLease {
    const lease = new MessageLease(message, this.deps, (ended) => {
      if (this.#open.get(ended.receiptHandle) === ended) this.#open.delete(ended.receiptHandle);
    });
    this.#open.set(lease.receiptHandle, lease);
    return lease;
  }

  get size(): number {
    return this.#open.size;
  }

  /** Shutdown ran out of grace: every message still worked on stops at its next safe point. */
  cutAllShort(): void {
    for (const lease of this.#open.values()) lease.cutShort.abort();
  }
}
