/**
 * Deletes handled messages from the queue ten at a time. sqs-consumer deletes each message with its
 * own DeleteMessage call; at thousands of small files a minute that is a tenth of the CPU a file
 * costs. A delete waits up to `delayMs` for company (nobody waits on it: the message is done, and
 * stays hidden meanwhile); `close()` sends what is left. A delete that fails leaves the message to
 * come back, where the duplicate check meets it.
 */
import { DeleteMessageBatchCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';

/** SQS's limit per DeleteMessageBatch. */
const BATCH = 10;

interface Waiting {
  message: Message;
  done: () => void;
}

export class AckBatcher {
  #waiting: Waiting[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #sending = new Set<Promise<void>>();

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly logger: Logger,
    /** How long a delete may wait for company; far under any visibility timeout (10 s at least). */
    private readonly delayMs = 250,
  ) {}

  /** Sends every delete waiting and resolves once every send has ended. */
  async close(): Promise<void> {
    this.#flush();
    while (this.#sending.size > 0) await Promise.all(this.#sending);
  }

  /** Resolves once the message is deleted, or the attempt failed and was logged; never rejects. */
  delete(message: Message): Promise<void> {
    return new Promise((done) => {
      this.#waiting.push({ message, done });
      if (this.#waiting.length >= BATCH) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), this.delayMs);
    });
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#waiting.length > 0) {
      const sending = this.#send(this.#waiting.splice(0, BATCH));
      this.#sending.add(sending);
      void sending.then(() => this.#sending.delete(sending));
    }
  }

  async #send(batch: Waiting[]): Promise<void> {
    try {
      const response = await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: batch.map((entry, i) => ({ Id: String(i), ReceiptHandle: entry.message.ReceiptHandle! })),
        }),
      );
      for (const failed of response.Failed ?? []) {
        const messageId = batch[Number(failed.Id)]?.message.MessageId;
        this.logger.warn({ messageId, code: failed.Code, reason: failed.Message }, 'could not delete a handled message; it will come back as a duplicate');
      }
    } catch (error) {
      this.logger.warn({ err: error, messages: batch.map((entry) => entry.message.MessageId) }, 'could not delete handled messages; they will come back as duplicates');
    } finally {
      for (const entry of batch) entry.done();
    }
  }
}
