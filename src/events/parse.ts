/**
 * Turns the body of a queue message into the objects it announces: S3 event notifications sent
 * straight to SQS, the same wrapped in an SNS envelope, and EventBridge "Object Created" events.
 */
import { PermanentError } from '../errors.js';
import { decodeS3Key } from './keys.js';

/** One object an event is about, with its key decoded to the exact name to GET. */
export interface ObjectEvent {
  bucket: string;
  key: string;
  /** S3 record style, e.g. `ObjectCreated:Put`, `ObjectRemoved:Delete`; see `isObjectCreated`. */
  eventName: string;
  size?: number;
  eTag?: string;
  versionId?: string;
  /** Orders events for one key (hex, compare after left-padding); absent from moto's records. */
  sequencer?: string;
  eventTime?: Date;
}

export type Notification =
  | { kind: 'objects'; objects: ObjectEvent[] }
  /** Sent by S3 when a notification is configured: acknowledge and drop, or it loops forever. */
  | { kind: 'test-event'; bucket?: string };

/** Records of other event types are kept so the caller can count and skip them. */
export function isObjectCreated(event: ObjectEvent): boolean {
  return /^ObjectCreated(:|$)/.test(event.eventName);
}

type Json = Record<string, unknown>;

/** @throws PermanentError('MALFORMED_MESSAGE') with a reason a human can act on. */
export function parseNotification(body: string): Notification {
  return parseValue(parseJson(body, 'message body'), { insideSns: false });
}

function parseValue(value: Json, where: { insideSns: boolean }): Notification {
  if (value.Type === 'Notification') {
    if (where.insideSns) malformed('SNS notification nested inside another SNS notification');
    if (typeof value.Message !== 'string') malformed('SNS notification has no Message string');
    return parseValue(parseJson(value.Message, 'SNS notification Message'), { insideSns: true });
  }
  if (value.Event === 's3:TestEvent') {
    return { kind: 'test-event', ...(typeof value.Bucket === 'string' ? { bucket: value.Bucket } : {}) };
  }
  if ('Records' in value) return { kind: 'objects', objects: parseS3Records(value.Records) };
  if (typeof value['detail-type'] === 'string' && 'detail' in value) {
    return { kind: 'objects', objects: [parseEventBridge(value)] };
  }
  const fields = Object.keys(value).slice(0, 10).join(', ') || 'none';
  const type = typeof value.Type === 'string' ? ` (SNS Type "${value.Type}")` : '';
  return malformed(
    `not an S3 event notification${type}: expected Records, an s3:TestEvent, an SNS Notification ` +
      `or an EventBridge Object Created event; top-level fields: ${fields}`,
  );
}

function parseS3Records(records: unknown): ObjectEvent[] {
  if (!Array.isArray(records)) malformed('Records is not an array');
  if (records.length === 0) malformed('Records is empty');
  return records.map((record: unknown, i) => {
    const at = `Records[${i}]`;
    const r = asObject(record, at);
    const s3 = asObject(r.s3, `${at}.s3`);
    const object = asObject(s3.object, `${at}.s3.object`);
    return {
      bucket: requireString(asObject(s3.bucket, `${at}.s3.bucket`).name, `${at}.s3.bucket.name`),
      key: decodeS3Key(requireString(object.key, `${at}.s3.object.key`)),
      eventName: requireString(r.eventName, `${at}.eventName`),
      ...metadata({
        size: object.size,
        eTag: object.eTag,
        versionId: object.versionId,
        sequencer: object.sequencer,
        eventTime: r.eventTime,
      }),
    };
  });
}

/**
 * EventBridge carries the key as stored, NOT url-encoded (unlike S3's own notifications), so it
 * must not be decoded: `a+b.csv` there really is a plus sign.
 */
function parseEventBridge(event: Json): ObjectEvent {
  const detailType = event['detail-type'] as string;
  const detail = asObject(event.detail, 'detail');
  const object = asObject(detail.object, 'detail.object');
  const reason = typeof detail.reason === 'string' ? detail.reason : undefined;
  return {
    bucket: requireString(asObject(detail.bucket, 'detail.bucket').name, 'detail.bucket.name'),
    key: requireString(object.key, 'detail.object.key'),
    // Spoken in S3 record terms so one predicate, isObjectCreated, serves every shape.
    eventName: detailType === 'Object Created' ? `ObjectCreated:${reason ?? '*'}` : detailType,
    ...metadata({
      size: object.size,
      eTag: object.etag ?? object.eTag,
      versionId: object['version-id'],
      sequencer: object.sequencer,
      eventTime: event.time,
    }),
  };
}

/** Optional fields are informational: a strange value is dropped rather than failing the object. */
function metadata(raw: { size: unknown; eTag: unknown; versionId: unknown; sequencer: unknown; eventTime: unknown }) {
  const out: Pick<ObjectEvent, 'size' | 'eTag' | 'versionId' | 'sequencer' | 'eventTime'> = {};
  if (typeof raw.size === 'number' && Number.isSafeInteger(raw.size) && raw.size >= 0) out.size = raw.size;
  if (typeof raw.eTag === 'string' && raw.eTag !== '') out.eTag = raw.eTag;
  if (typeof raw.versionId === 'string' && raw.versionId !== '') out.versionId = raw.versionId;
  if (typeof raw.sequencer === 'string' && raw.sequencer !== '') out.sequencer = raw.sequencer;
  const time = toDate(raw.eventTime);
  if (time) out.eventTime = time;
  return out;
}

function toDate(value: unknown): Date | undefined {
  // moto's EventBridge events give epoch seconds where AWS gives an ISO string.
  const date = typeof value === 'string' ? new Date(value) : typeof value === 'number' ? new Date(value * 1000) : undefined;
  return date && !Number.isNaN(date.getTime()) ? date : undefined;
}

function parseJson(text: string, what: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    malformed(`${what} is not JSON (starts with ${JSON.stringify(text.slice(0, 60))})`, cause);
  }
  return asObject(value, what);
}

function asObject(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    malformed(`${where} is ${value === undefined ? 'missing' : 'not a JSON object'}`);
  }
  return value as Json;
}

function requireString(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') {
    malformed(`${where} is ${value === undefined ? 'missing' : 'not a non-empty string'}`);
  }
  return value;
}

function malformed(reason: string, cause?: unknown): never {
  throw new PermanentError('MALFORMED_MESSAGE', reason, cause === undefined ? undefined : { cause });
}
