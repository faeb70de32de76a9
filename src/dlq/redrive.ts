/**
 * `dlq redrive`: puts dead letters back on a queue. Each message is sent to the destination first
 * and deleted from the DLQ only after the send succeeded, so a crash in between leaves a duplicate,
 * never a loss. Messages it skips or cannot move are made visible again: the DLQ keeps them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SendMessageBatchCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { QueueBrowser, type BrowseOptions } from './browse.js';
import { attributesToRedrive, matchesFilter, readDeadLetter, type DeadLetter, type LetterFilter } from './letters.js';
import { queueArnOf } from './queues.js';

export interface RedriveOptions {
  dlqUrl: string;
  destinationUrl: string;
  filter?: LetterFilter;
  /** Messages to move at most (those the filter passes). */
  max?: number;
  /** Messages per second at most. */
  rate?: number;
  /** Read and filter, but send and delete nothing. */
  dryRun?: boolean;
  /** Stops after the messages in hand; the rest stay in the DLQ. */
  signal?: AbortSignal;
  onProgress?: (counts: RedriveCounts) => void;
  /** Tuning for tests; see BrowseOptions. */
  browse?: Pick<BrowseOptions, 'holdSeconds' | 'waitSeconds' | 'emptyReceives'>;
}

export interface RedriveCounts {
  moved: number;
  /** Did not pass the filter; left in the DLQ. */
  skipped: number;
  failed: number;
  /** Dry run only: would have moved. */
  wouldMove: number;
  /** Moved by this run, failed again and dead-lettered again meanwhile: left in the DLQ, not chased. */
  returned: number;
}

export interface RedriveEntry {
  letter: DeadLetter;
  outcome: 'moved' | 'would move' | 'failed';
  /** The MessageId the destination gave it. */
  movedAs?: string;
  /** Why it failed, and where it is now. */
  error?: string;
}

export interface RedriveResult extends RedriveCounts {
  dlqUrl: string;
  destinationUrl: string;
  dryRun: boolean;
  /** Every message that passed the filter and was handled, in order. */
  entries: RedriveEntry[];
  /** Stopped by the signal before the DLQ ran out. */
  interrupted: boolean;
  /** What stopped the run early (e.g. the DLQ could not be read); messages not handled stay in the DLQ. */
  error?: string;
  /** Skipped or failed messages still hidden because releasing them failed; they reappear within the hold time. */
  stillHidden: number;
}

/** SendMessageBatch refuses more than ten entries or this many bytes in all. */
const SEND_BATCH_COUNT = 10;
const SEND_BATCH_BYTES = 256 * 1024;

export function checkRedriveOptions(options: RedriveOptions): void {
  const problems: string[] = [];
  if (!options.dlqUrl) problems.push('the DLQ URL is required');
  if (!options.destinationUrl) problems.push('the destination queue URL is required');
  const { max, rate } = options;
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) problems.push(`max must be a whole number ≥ 1, not ${max}`);
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) problems.push(`rate must be a number of messages per second > 0, not ${rate}`);
  if (problems.length > 0) throw new RangeError(`redrive: ${problems.join('; ')}`);
}

export async function redriveDlq(sqs: SQSClient, options: RedriveOptions): Promise<RedriveResult> {
  checkRedriveOptions(options);
  const { dlqUrl, destinationUrl, filter = {}, signal } = options;
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const dryRun = options.dryRun ?? false;
  // Also proves both queues exist before anything is received.
  const [dlqArn, destinationArn] = await Promise.all([queueArnOf(sqs, dlqUrl), queueArnOf(sqs, destinationUrl)]);
  if (dlqArn === destinationArn) throw new RangeError(`redrive: the destination ${destinationUrl} is the DLQ itself`);

  const browser = new QueueBrowser(sqs, dlqUrl, { ...options.browse, ...(signal ? { signal } : {}) });
  const pacer = new Pacer(options.rate);
  const perSend = options.rate === undefined ? SEND_BATCH_COUNT : Math.min(SEND_BATCH_COUNT, Math.max(1, Math.floor(options.rate)));
  const result: RedriveResult = {
    dlqUrl,
    destinationUrl,
    dryRun,
    moved: 0,
    skipped: 0,
    failed: 0,
    wouldMove: 0,
    returned: 0,
    entries: [],
    interrupted: false,
    stillHidden: 0,
  };
  const report = () =>
    options.onProgress?.({ moved: result.moved, skipped: result.skipped, failed: result.failed, wouldMove: result.wouldMove, returned: result.returned });
  let taken = 0;
  /**
   * MessageIds the destination gave what we moved. If the service fails one again while we run,
   * its new dead letter names it in `source-message-id` (SQS's own move keeps the MessageId):
   * without this check the run would chase it round and round.
   */
  const movedAs = new Set<string>();

  try {
    visit: for await (const batch of browser.batches()) {
      const chosen: { message: Message; letter: DeadLetter }[] = [];
      for (const message of batch) {
        // Anything read past max is simply released with the skipped ones.
        if (taken >= max) break;
        const letter = readDeadLetter(message);
        if (movedAs.has(letter.messageId) || (letter.sourceMessageId !== undefined && movedAs.has(letter.sourceMessageId))) {
          result.returned += 1;
          continue;
        }
        if (!matchesFilter(letter, filter)) {
          result.skipped += 1;
          continue;
        }
        taken += 1;
        chosen.push({ message, letter });
      }
      if (dryRun) {
        for (const { letter } of chosen) result.entries.push({ letter, outcome: 'would move' });
        result.wouldMove += chosen.length;
      } else {
        for (const group of sendGroups(chosen, perSend)) {
          if (!(await pacer.take(group.length, signal))) break visit;
          const entries = await moveGroup(sqs, browser, destinationUrl, group);
          for (const entry of entries) {
            result.entries.push(entry);
            if (entry.movedAs) movedAs.add(entry.movedAs);
            if (entry.outcome === 'moved') result.moved += 1;
            else result.failed += 1;
          }
          report();
        }
      }
      report();
      if (taken >= max) break;
    }
  } catch (error) {
    // Keep the counts: the operator must know what already moved.
    result.error = (error as Error).message;
  } finally {
    result.stillHidden = (await browser.release()).failed;
  }
  result.interrupted = signal?.aborted ?? false;
  return result;
}

/** Send, then delete what was sent: the order that can duplicate but never lose. */
async function moveGroup(
  sqs: SQSClient,
  browser: QueueBrowser,
  destinationUrl: string,
  group: { message: Message; letter: DeadLetter }[],
): Promise<RedriveEntry[]> {
  const sendErrors = new Map<string, string>();
  const sentAs = new Map<string, string>();
  try {
    const { Successful = [], Failed = [] } = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: destinationUrl,
        Entries: group.map(({ message }, index) => {
          const attributes = attributesToRedrive(message);
          return { Id: String(index), MessageBody: message.Body ?? '', ...(attributes ? { MessageAttributes: attributes } : {}) };
        }),
      }),
    );
    for (const sent of Successful) sentAs.set(group[Number(sent.Id)]!.letter.messageId, sent.MessageId ?? '');
    for (const failed of Failed) sendErrors.set(group[Number(failed.Id)]!.letter.messageId, `${failed.Code}: ${failed.Message ?? ''}`);
  } catch (error) {
    for (const { letter } of group) sendErrors.set(letter.messageId, (error as Error).message);
  }
  const sent = group.filter(({ letter }) => !sendErrors.has(letter.messageId));
  const deleteErrors = sent.length === 0 ? new Map<string, string>() : await browser.delete(sent.map(({ message }) => message));
  return group.map(({ letter }): RedriveEntry => {
    const sendError = sendErrors.get(letter.messageId);
    if (sendError !== undefined) return { letter, outcome: 'failed', error: `not sent, still in the DLQ: ${sendError}` };
    const movedAs = sentAs.get(letter.messageId) ?? '';
    const deleteError = deleteErrors.get(letter.messageId);
    if (deleteError !== undefined) {
      return { letter, outcome: 'failed', movedAs, error: `sent, but not deleted from the DLQ, so it is in both queues: ${deleteError}` };
    }
    return { letter, outcome: 'moved', movedAs };
  });
}

/** Groups that SendMessageBatch accepts; a message too large to share a batch goes alone. */
function sendGroups<T extends { message: Message }>(items: T[], perSend: number): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item.message);
    if (current.length > 0 && (current.length >= perSend || bytes + size > SEND_BATCH_BYTES)) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Body plus attribute names, types and values, as SQS counts a message's size. */
function sizeOf(message: Message): number {
  let bytes = Buffer.byteLength(message.Body ?? '');
  for (const [name, value] of Object.entries(attributesToRedrive(message) ?? {})) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? '');
    bytes += value.StringValue === undefined ? (value.BinaryValue?.byteLength ?? 0) : Buffer.byteLength(value.StringValue);
  }
  return bytes;
}

/** Spreads sends evenly to at most `perSecond` messages a second. */
class Pacer {
  #next = 0;
  constructor(private readonly perSecond: number | undefined) {}

  /** Waits until `count` more messages may go; false when the signal fired meanwhile. */
  async take(count: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    if (this.perSecond === undefined) return true;
    const now = Date.now();
    const start = Math.max(now, this.#next);
    this.#next = start + (count * 1000) / this.perSecond;
    if (start > now) {
      try {
        await sleep(start - now, undefined, signal ? { signal } : {});
      } catch {
        return false;
      }
    }
    return true;
  }
}
