/**
 * Sends notifications to the queue ten to a SendMessageBatch, at most `rate` a second, a few
 * batches in flight. Throttled or failed calls are retried with backoff; entries SQS reports as
 * failed are sent again and, if they keep failing, reported one by one: none is dropped silently.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { backoffMs, queueStop, withRetries } from './errors.js';

/** SendMessageBatch takes at most ten entries. */
const BATCH_LIMIT = 10;

export interface Outgoing {
  /** The source key, for the report. */
  key: string;
  body: string;
}

export interface EnqueueFailure {
  key: string;
  /** SQS's code and message for the last attempt. */
  error: string;
}

export interface EnqueueOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Messages a second at most; unset: as fast as the calls return. */
  rate?: number | undefined;
  /** SendMessageBatch calls in flight at once (default 4). */
  concurrency?: number;
  /** Sends of an entry that SQS reports as failed, in all (default 4). */
  entryAttempts?: number;
  /** First pause before a retry (default 500 ms), doubling. */
  retryBaseMs?: number;
  onSent(count: number): void;
  onFailed(failure: EnqueueFailure): void;
}

export class Enqueuer {
  readonly #options: EnqueueOptions;
  readonly #perBatch: number;
  readonly #pacer: Pacer;
  #buffer: Outgoing[] = [];
  readonly #running = new Set<Promise<void>>();
  #stopped: Error | undefined;

  constructor(options: EnqueueOptions) {
    this.#options = options;
    // At a low rate, small batches spread the messages over the second instead of bursting.
    this.#perBatch = options.rate === undefined ? BATCH_LIMIT : Math.min(BATCH_LIMIT, Math.max(1, Math.floor(options.rate)));
    this.#pacer = new Pacer(options.rate);
  }

  /** Queues one notification; waits while enough batches are in flight. Throws once sending stopped the run. */
  async add(item: Outgoing): Promise<void> {
    this.#throwIfStopped();
    this.#buffer.push(item);
    if (this.#buffer.length >= this.#perBatch) await this.#dispatch();
  }

  /** Sends what is left and waits for every batch; throws what stopped the sending, if anything did. */
  async finish(): Promise<void> {
    if (this.#buffer.length > 0 && !this.#stopped) await this.#dispatch();
    await this.settle();
    this.#throwIfStopped();
  }

  /** Waits for the batches in flight, sending nothing more. */
  async settle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  #throwIfStopped(): void {
    if (this.#stopped) throw this.#stopped;
  }

  async #dispatch(): Promise<void> {
    const batch = this.#buffer;
    this.#buffer = [];
    while (this.#running.size >= (this.#options.concurrency ?? 4)) await Promise.race(this.#running);
    this.#throwIfStopped();
    const task: Promise<void> = this.#send(batch)
      .catch((error: unknown) => {
        this.#stopped ??= error as Error;
      })
      .finally(() => this.#running.delete(task));
    this.#running.add(task);
  }

  async #send(batch: Outgoing[]): Promise<void> {
    const { sqs, queueUrl } = this.#options;
    const attempts = this.#options.entryAttempts ?? 4;
    const baseMs = this.#options.retryBaseMs ?? 500;
    let pending = batch.map((item, i) => ({ id: String(i), item }));
    const lastError = new Map<string, string>();
    for (let attempt = 1; attempt <= attempts && pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(backoffMs(attempt - 1, baseMs));
      await this.#pacer.take(pending.length);
      // A queue that is missing, refused or down stops the whole run (BackfillStopped) with one line:
      // nothing after it can be sent either, and the next run finds what this one did not send.
      const response = await withRetries(
        () => sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending.map(({ id, item }) => ({ Id: id, MessageBody: item.body })) })),
        { what: `sending to queue ${queueUrl}`, stop: (error) => queueStop(error, queueUrl), baseMs },
      );
      const sent = new Set((response.Successful ?? []).map((entry) => entry.Id));
      for (const failed of response.Failed ?? []) {
        lastError.set(failed.Id ?? '', `${failed.Code ?? 'Failed'}${failed.Message ? `: ${failed.Message}` : ''}${failed.SenderFault ? ' (sender fault)' : ''}`);
      }
      this.#options.onSent(pending.filter(({ id }) => sent.has(id)).length);
      // An entry in neither list was not confirmed: sending it again may duplicate it, which serve tolerates.
      pending = pending.filter(({ id }) => !sent.has(id));
    }
    for (const { id, item } of pending) {
      this.#options.onFailed({ key: item.key, error: lastError.get(id) ?? 'SQS reported it neither sent nor failed' });
    }
  }
}

/** Spreads sends evenly to at most `perSecond` messages a second. */
class Pacer {
  #next = 0;
  constructor(private readonly perSecond: number | undefined) {}

  async take(count: number): Promise<void> {
    if (this.perSecond === undefined) return;
    const now = Date.now();
    const start = Math.max(now, this.#next);
    this.#next = start + (count * 1000) / this.perSecond;
    if (start > now) await sleep(start - now);
  }
}
