/**
 * The notification backfill sends for an object: the S3 event record `serve` already reads from
 * S3 itself (`events/parse.ts`), marked as coming from backfill in `s3.configurationId`.
 */
import { normalizeEtag } from '../pipeline/convert.js';
import type { ListedObject } from './listing.js';

/**
 * Where S3 names the notification rule that sent an event; `setup`'s rules are named
 * `s3-csv-converter…` too, so a log or a dead letter shows which path a message took.
 */
export const BACKFILL_CONFIGURATION_ID = 's3-csv-converter-backfill';

/**
 * A key as S3 writes it into an event: form-encoded, a space as `+`, `/` left as it is.
 * `decodeS3Key` reads it back exactly.
 */
export function encodeS3Key(key: string): string {
  return encodeURIComponent(key)
    .replace(/%20/g, '+')
    .replace(/%2F/g, '/')
    // encodeURIComponent leaves these as they are; S3 (and form encoding) escape them.
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * An `ObjectCreated:Put` record for `object` in `bucket`. The object may have been made by a
 * copy or a multipart upload; `serve` treats every ObjectCreated event alike. `eventTime` is when
 * backfill announced it (the service measures its latency from there), not when it was written.
 */
export function notificationBody(bucket: string, object: ListedObject, region: string, now = new Date()): string {
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: region,
        eventTime: now.toISOString(),
        eventName: 'ObjectCreated:Put',
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: BACKFILL_CONFIGURATION_ID,
          bucket: { name: bucket, arn: `arn:${partitionOf(region)}:s3:::${bucket}` },
          object: { key: encodeS3Key(object.key), size: object.size, eTag: normalizeEtag(object.etag) },
        },
      },
    ],
  });
}

function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}
