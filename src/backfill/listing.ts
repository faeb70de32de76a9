/**
 * Listing buckets page by page: the input objects in key order, and the outputs beside them as an
 * ordered cursor that answers "is this output there, and when was it written" from the listing,
 * one request per thousand keys, with at most one page of each in memory.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { listingStop, withRetries } from './errors.js';

/** An object as a listing shows it. */
export interface ListedObject {
  key: string;
  /** Quoted, as S3 lists it. */
  etag: string;
  lastModified: Date;
  size: number;
}

/**
 * S3 lists keys in UTF-8 byte order, which is code-point order. JavaScript compares UTF-16 code
 * units, where a surrogate pair (a code point above U+FFFF) sorts below U+E000–U+FFFF: moving the
 * surrogates above that range gives S3's order without encoding anything.
 */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

function rank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** The key without its last code point: a string just below `key` in S3's order, to start a listing at `key`. */
function justBelow(key: string): string {
  return key.replace(/[\s\S]$/u, '');
}

/**
 * One ListObjectsV2 request, retried on throttling and 5xx beyond the SDK's own attempts.
 *
 * Never run two of these at once on one client for different buckets: with `cacheMiddleware` (see
 * aws.ts) concurrent calls of one command share one resolved endpoint, and the endpoint carries
 * the bucket, so a page could come from the other bucket. Backfill lists one page at a time.
 */
async function listPage(
  s3: S3Client,
  request: { bucket: string; prefix: string; continuationToken?: string; startAfter?: string; pageSize?: number | undefined },
  signal?: AbortSignal,
): Promise<{ objects: ListedObject[]; nextToken: string | undefined }> {
  const page = await withRetries(
    () =>
      s3.send(
        new ListObjectsV2Command({
          Bucket: request.bucket,
          Prefix: request.prefix === '' ? undefined : request.prefix,
          ContinuationToken: request.continuationToken,
          StartAfter: request.startAfter,
          MaxKeys: request.pageSize,
        }),
      ),
    { what: `listing s3://${request.bucket}/${request.prefix}`, stop: (error) => listingStop(error, request.bucket), signal },
  );
  const objects = (page.Contents ?? []).map((object) => ({
    key: object.Key!,
    etag: object.ETag ?? '',
    lastModified: object.LastModified ?? new Date(0),
    size: object.Size ?? 0,
  }));
  return { objects, nextToken: page.IsTruncated ? page.NextContinuationToken : undefined };
}

/** Every object under `prefix`, a page (up to 1 000 keys, or `pageSize`) at a time, in key order. */
export async function* listObjectPages(
  s3: S3Client,
  bucket: string,
  prefix: string,
  options: { signal?: AbortSignal | undefined; pageSize?: number | undefined } = {},
): AsyncGenerator<ListedObject[]> {
  let continuationToken: string | undefined;
  do {
    const page = await listPage(s3, { bucket, prefix, continuationToken, pageSize: options.pageSize }, options.signal);
    yield page.objects;
    continuationToken = page.nextToken;
  } while (continuationToken !== undefined);
}

/** What an `OrderedListing` can say about a key. */
export type ListingAnswer =
  | { found: true; object: ListedObject }
  | { found: false }
  /** The key sorts before one already sought: the listing has moved past it and cannot say. */
  | 'out of order';

/**
 * Answers "is this key listed?" for keys asked in non-decreasing order, reading the listing of
 * `prefix` forward only. When the page in hand runs out it lists again from just below the key
 * asked, so a gap between two keys costs one request, not the pages in between. A key asked
 * after a greater one gets `out of order`; the caller must look it up some other way.
 */
export class OrderedListing {
  #page: ListedObject[] = [];
  #index = 0;
  /** The last listing came back complete: nothing after its start is missing from `#page`. */
  #complete = false;
  #started = false;
  #lastSought: string | undefined;
  /** ListObjectsV2 requests made, for the report. */
  requests = 0;

  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    readonly prefix: string,
    private readonly options: { signal?: AbortSignal | undefined; pageSize?: number | undefined } = {},
  ) {}

  async find(key: string): Promise<ListingAnswer> {
    if (!key.startsWith(this.prefix)) return 'out of order';
    if (this.#lastSought !== undefined && compareKeys(key, this.#lastSought) < 0) return 'out of order';
    this.#lastSought = key;
    for (;;) {
      while (this.#index < this.#page.length && compareKeys(this.#page[this.#index]!.key, key) < 0) this.#index++;
      // Not advanced past an equal key: two sources with one stem (a.csv, a.csv.gz) ask for it twice.
      if (this.#index < this.#page.length) {
        const object = this.#page[this.#index]!;
        return object.key === key ? { found: true, object } : { found: false };
      }
      if (this.#started && this.#complete) return { found: false };
      await this.#fetchFrom(key);
    }
  }

  async #fetchFrom(key: string): Promise<void> {
    const below = justBelow(key);
    const last = this.#page.at(-1)?.key;
    const startAfter = last !== undefined && compareKeys(last, below) > 0 ? last : below;
    this.requests += 1;
    const page = await listPage(this.s3, { bucket: this.bucket, prefix: this.prefix, startAfter, pageSize: this.options.pageSize }, this.options.signal);
    this.#started = true;
    this.#page = page.objects;
    this.#index = 0;
    // An empty page ends it too: asking again from the same place could only loop.
    this.#complete = page.nextToken === undefined || page.objects.length === 0;
  }
}
