/**
 * Reads a dead letter: why it failed (our attributes, or their absence when SQS moved it by the
 * redrive policy), which objects its body names, and what it must carry when it is sent back.
 */
import type { Message, MessageAttributeValue } from '@aws-sdk/client-sqs';
import { parseNotification } from '../events/parse.js';
import { DEAD_LETTER_ATTRIBUTES } from '../events/dead-letters.js';

/**
 * The code shown for a message without our `error-code`: SQS moved it after `maxReceiveCount`
 * receives, so it failed transiently (or its consumer died) every time and nobody recorded why.
 */
export const MAX_RECEIVES = 'MAX_RECEIVES';

const MAX_RECEIVES_REASON =
  "moved by the source queue's redrive policy after maxReceiveCount receives without success " +
  '(transient failures, timeouts or a crashed consumer); no reason was recorded: search the service logs for this message id';

/** What the body announces, as far as the service could tell. */
export type LetterBody =
  | { kind: 'objects'; objects: { bucket: string; key: string }[] }
  | { kind: 'test-event' }
  /** Not a notification the service understands; it can still be moved. */
  | { kind: 'poison'; reason: string };

export interface DeadLetter {
  messageId: string;
  /** Our `error-code`, or MAX_RECEIVES. */
  code: string;
  reason: string;
  failedAt?: Date;
  attempts?: number;
  /** The id the message had in the source queue (ours only; SQS keeps the id when it moves one). */
  sourceMessageId?: string;
  /** When the message entered a queue: the DLQ for ours, the source queue for MAX_RECEIVES. */
  sentAt?: Date;
  body: LetterBody;
}

export function readDeadLetter(message: Message): DeadLetter {
  const attributes = message.MessageAttributes ?? {};
  const text = (name: string) => attributes[name]?.StringValue;
  const code = text('error-code');
  const failedAt = toDate(text('failed-at'));
  const attempts = toCount(text('attempts'));
  const sourceMessageId = text('source-message-id');
  const sentAt = toDate(Number(message.Attributes?.SentTimestamp));
  return {
    messageId: message.MessageId ?? '',
    code: code ?? MAX_RECEIVES,
    reason: code === undefined ? MAX_RECEIVES_REASON : (text('error-message') ?? ''),
    ...(failedAt ? { failedAt } : {}),
    ...(attempts === undefined ? {} : { attempts }),
    ...(sourceMessageId === undefined ? {} : { sourceMessageId }),
    ...(sentAt ? { sentAt } : {}),
    body: readBody(message.Body ?? ''),
  };
}

function readBody(body: string): LetterBody {
  try {
    const notification = parseNotification(body);
    if (notification.kind === 'test-event') return { kind: 'test-event' };
    return { kind: 'objects', objects: notification.objects.map(({ bucket, key }) => ({ bucket, key })) };
  } catch (error) {
    return { kind: 'poison', reason: (error as Error).message };
  }
}

/** One line naming what the message is about, for people. */
export function subjectOf(letter: DeadLetter): string {
  const { body } = letter;
  if (body.kind === 'test-event') return 's3:TestEvent';
  if (body.kind === 'poison') return `unreadable body: ${body.reason}`;
  const [first, ...rest] = body.objects;
  const uri = first ? `s3://${first.bucket}/${first.key}` : '(no objects)';
  return rest.length === 0 ? uri : `${uri} (+${rest.length} more)`;
}

/** Failure time for ours; for MAX_RECEIVES the original send, the only time SQS keeps. */
export function ageOf(letter: DeadLetter, now: Date): number | undefined {
  const since = letter.failedAt ?? letter.sentAt;
  return since === undefined ? undefined : Math.max(0, now.getTime() - since.getTime());
}

export interface LetterFilter {
  /** Matches `code` exactly (MAX_RECEIVES included); any of them. */
  errorCodes?: string[];
  /** A key prefix, or `s3://bucket/prefix` to name the bucket too; unreadable bodies never match. */
  keyPrefix?: string;
}

export function matchesFilter(letter: DeadLetter, filter: LetterFilter): boolean {
  if (filter.errorCodes && filter.errorCodes.length > 0 && !filter.errorCodes.includes(letter.code)) return false;
  if (filter.keyPrefix !== undefined) {
    if (letter.body.kind !== 'objects') return false;
    const { bucket, prefix } = splitPrefix(filter.keyPrefix);
    return letter.body.objects.some((object) => (bucket === undefined || object.bucket === bucket) && object.key.startsWith(prefix));
  }
  return true;
}

function splitPrefix(value: string): { bucket?: string; prefix: string } {
  if (!value.startsWith('s3://')) return { prefix: value };
  const rest = value.slice('s3://'.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? { bucket: rest, prefix: '' } : { bucket: rest.slice(0, slash), prefix: rest.slice(slash + 1) };
}

const OURS = new Set<string>(DEAD_LETTER_ATTRIBUTES);

/** The original's own message attributes: everything but what `deadLetter` added. */
export function attributesToRedrive(message: Message): Record<string, MessageAttributeValue> | undefined {
  const kept: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    if (OURS.has(name)) continue;
    // Only the fields SendMessage accepts; a received value can carry empty list fields.
    kept[name] = {
      DataType: value.DataType,
      ...(value.StringValue === undefined ? {} : { StringValue: value.StringValue }),
      ...(value.BinaryValue === undefined ? {} : { BinaryValue: value.BinaryValue }),
    };
  }
  return Object.keys(kept).length === 0 ? undefined : kept;
}

function toDate(value: string | number | undefined): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function toCount(value: string | undefined): number | undefined {
  const count = Number(value);
  return value === undefined || !Number.isFinite(count) ? undefined : count;
}
