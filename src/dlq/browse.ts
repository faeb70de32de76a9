/**
 * Visits every message of a queue once without consuming it. A message received stays hidden for
 * the rest of the visit (its visibility renewed before it lapses), so each receive brings new
 * ones, and it is made visible again when the visit ends, unless the caller deleted it.
 *
 * Why not receive with VisibilityTimeout 0: the same messages then come back on every receive
 * (moto always returns the head of the queue; AWS samples), so a visit could never get past them.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';

export interface BrowseOptions {
  /** Seconds a received message stays hidden between renewals; a crash makes it visible after this. Default 60. */
  holdSeconds?: number;
  /** Long-poll seconds for each receive; AWS then asks every server, not a sample. Default 1. */
  waitSeconds?: number;
  /** Consecutive receives that bring nothing new before the visit ends. Default 2. */
  emptyReceives?: number;
  /** Stop after this many messages. */
  limit?: number;
  /** Stops the visit after the current receive. */
  signal?: AbortSignal;
}

export interface Released {
  released: number;
  /** Could not be made visible again: they reappear by themselves within holdSeconds. */
  failed: number;
}

interface Held {
  receiptHandle: string;
  hiddenUntil: number;
}

/** SQS batch calls take up to ten entries. */
const BATCH = 10;

export class QueueBrowser {
  readonly #sqs: SQSClient;
  readonly #queueUrl: string;
  readonly #holdSeconds: number;
  readonly #waitSeconds: number;
  readonly #emptyReceives: number;
  readonly #limit: number;
  readonly #signal: AbortSignal | undefined;
  /** Messages received and neither deleted nor released, by MessageId, with their newest handle. */
  readonly #held = new Map<string, Held>();
  readonly #seen = new Set<string>();
  #renewTimer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;

  constructor(sqs: SQSClient, queueUrl: string, options: BrowseOptions = {}) {
    this.#sqs = sqs;
    this.#queueUrl = queueUrl;
    this.#holdSeconds = options.holdSeconds ?? 60;
    this.#waitSeconds = options.waitSeconds ?? 1;
    this.#emptyReceives = options.emptyReceives ?? 2;
    this.#limit = options.limit ?? Number.POSITIVE_INFINITY;
    this.#signal = options.signal;
    if (!Number.isInteger(this.#holdSeconds) || this.#holdSeconds < 1) throw new RangeError('holdSeconds must be a whole number ≥ 1');
  }

  /** Messages not seen before, one receive's worth at a time, until the queue has nothing new. */
  async *batches(): AsyncGenerator<Message[]> {
    this.#startRenewing();
    let empty = 0;
    let yielded = 0;
    while (empty < this.#emptyReceives && yielded < this.#limit && !this.#signal?.aborted) {
      const receivedAt = Date.now();
      const { Messages = [] } = await this.#sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.#queueUrl,
          MaxNumberOfMessages: Math.min(BATCH, this.#limit - yielded),
          WaitTimeSeconds: this.#waitSeconds,
          VisibilityTimeout: this.#holdSeconds,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const fresh: Message[] = [];
      for (const message of Messages) {
        if (!message.MessageId || !message.ReceiptHandle) continue;
        // A message seen before is back because its hold lapsed: hide it again under its new handle.
        this.#held.set(message.MessageId, { receiptHandle: message.ReceiptHandle, hiddenUntil: receivedAt + this.#holdSeconds * 1000 });
        if (this.#seen.has(message.MessageId)) continue;
        this.#seen.add(message.MessageId);
        fresh.push(message);
      }
      if (fresh.length === 0) {
        empty += 1;
        continue;
      }
      empty = 0;
      yielded += fresh.length;
      yield fresh;
    }
  }

  /** Deletes visited messages; returns the reason for each one that was not deleted, by MessageId. */
  async delete(messages: Message[]): Promise<Map<string, string>> {
    const failures = new Map<string, string>();
    for (let i = 0; i < messages.length; i += BATCH) {
      const chunk = messages.slice(i, i + BATCH);
      const entries = chunk.map((message, index) => ({ Id: String(index), ReceiptHandle: this.#handleOf(message) }));
      try {
        const { Failed = [] } = await this.#sqs.send(new DeleteMessageBatchCommand({ QueueUrl: this.#queueUrl, Entries: entries }));
        for (const failed of Failed) failures.set(chunk[Number(failed.Id)]!.MessageId!, `${failed.Code}: ${failed.Message ?? ''}`);
      } catch (error) {
        for (const message of chunk) failures.set(message.MessageId!, (error as Error).message);
      }
      for (const message of chunk) if (!failures.has(message.MessageId!)) this.#held.delete(message.MessageId!);
    }
    return failures;
  }

  /** Makes every message still held visible again; call once, when the visit is over. */
  async release(): Promise<Released> {
    clearInterval(this.#renewTimer);
    await this.#renewing;
    const held = [...this.#held.values()];
    this.#held.clear();
    const failed = await this.#changeVisibility(held, 0);
    return { released: held.length - failed.length, failed: failed.length };
  }

  #handleOf(message: Message): string {
    return this.#held.get(message.MessageId!)?.receiptHandle ?? message.ReceiptHandle!;
  }

  #startRenewing(): void {
    if (this.#renewTimer) return;
    const everyMs = (this.#holdSeconds * 1000) / 3;
    this.#renewTimer = setInterval(() => {
      this.#renewing ??= this.#renewDue(everyMs).finally(() => {
        this.#renewing = undefined;
      });
    }, everyMs);
    this.#renewTimer.unref();
  }

  /** Renews the holds that would lapse before the next tick but one. */
  async #renewDue(everyMs: number): Promise<void> {
    const startedAt = Date.now();
    const due = [...this.#held.values()].filter((held) => held.hiddenUntil < startedAt + 2 * everyMs);
    const failed = new Set(await this.#changeVisibility(due, this.#holdSeconds));
    for (const held of due) {
      // Renewal failures are harmless: a lapsed message comes back and is hidden again on receipt.
      if (!failed.has(held)) held.hiddenUntil = startedAt + this.#holdSeconds * 1000;
    }
  }

  /** Returns the entries whose visibility could not be changed. */
  async #changeVisibility(held: Held[], seconds: number): Promise<Held[]> {
    const failed: Held[] = [];
    for (let i = 0; i < held.length; i += BATCH) {
      const chunk = held.slice(i, i + BATCH);
      try {
        const { Failed = [] } = await this.#sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.#queueUrl,
            Entries: chunk.map((entry, index) => ({ Id: String(index), ReceiptHandle: entry.receiptHandle, VisibilityTimeout: seconds })),
          }),
        );
        for (const entry of Failed) failed.push(chunk[Number(entry.Id)]!);
      } catch {
        failed.push(...chunk);
      }
    }
    return failed;
  }
}
