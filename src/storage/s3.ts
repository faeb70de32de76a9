/** An S3 bucket as an object store: small outputs go up in one PUT, large ones stream as multipart. */
import { PassThrough, type Readable } from 'node:stream';
import { once } from 'node:events';
import { crc32 } from 'node:zlib';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { AwsClients } from '../aws.js';
import { ObjectGoneError, SourceChangedError, TransientError } from '../errors.js';
import type { GetOptions, ObjectHead, ObjectStore, PendingObject, PutOptions, SourceObject, StoreDescriptor } from './types.js';

/** Outputs up to this size are sent with one PutObject; S3 multipart parts must be ≥ 5 MiB anyway. */
const SINGLE_PUT_LIMIT = 8 * 1024 * 1024;

export class S3Store implements ObjectStore {
  readonly root: string;

  /**
   * @param client serves this bucket (see `AwsClients.s3ForBucket`)
   * @param confirmClient a client that resolves every call afresh, to double-check a 404 before a
   *   file is given up as deleted; defaults to `client`
   */
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    private readonly confirmClient: S3Client = client,
  ) {
    this.root = `s3://${bucket}`;
  }

  /** The store for `bucket` over the process's clients: the bucket's own caching client for the hot path. */
  static forBucket(clients: Pick<AwsClients, 's3' | 's3ForBucket'>, bucket: string): S3Store {
    return new S3Store(clients.s3ForBucket(bucket), bucket, clients.s3);
  }

  async get(key: string, options: GetOptions = {}): Promise<SourceObject> {
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(options.ifMatch ? { IfMatch: quoted(options.ifMatch) } : {}) }),
      );
      return { body: response.Body as Readable, size: response.ContentLength, etag: response.ETag };
    } catch (error) {
      if (isNotFound(error)) await this.#confirmGone(key, error);
      if (options.ifMatch && statusOf(error) === 412) {
        throw new SourceChangedError(`s3://${this.bucket}/${key} no longer holds ETag ${options.ifMatch}: a newer version replaced it`, { cause: error });
      }
      throw error;
    }
  }

  /**
   * A 404 on an object a notification has just announced is not taken on trust: a HEAD of that exact
   * bucket and key on another client must agree before the file is acknowledged as gone. If the
   * object is there after all, the read is retried later instead of the file being lost.
   */
  async #confirmGone(key: string, notFound: unknown): Promise<never> {
    const name = `s3://${this.bucket}/${key}`;
    let head;
    try {
      head = await this.confirmClient.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isNotFound(error)) throw new ObjectGoneError(`${name} does not exist (GET and HEAD of that bucket and key both answered 404)`, { cause: notFound });
      throw new TransientError('GONE_UNCONFIRMED', `GET ${name} answered 404 and the HEAD to confirm it failed: ${(error as Error).message}`, { cause: error });
    }
    throw new TransientError('GONE_UNCONFIRMED', `GET ${name} answered 404 but a HEAD finds it (ETag ${head.ETag ?? '?'}); retrying instead of giving it up`, { cause: notFound });
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: response.ContentLength ?? 0, etag: response.ETag, metadata: response.Metadata ?? {} };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async put(key: string, options: PutOptions): Promise<PendingObject> {
    return new S3PendingObject(this.client, {
      Bucket: this.bucket,
      Key: key,
      ContentType: options.contentType,
      Metadata: options.metadata,
    });
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** The client's own region and endpoint, so a store reopened elsewhere talks to the same S3. */
  async describe(): Promise<StoreDescriptor> {
    const region = await this.client.config.region();
    const custom = this.client.config.endpoint ? await this.client.config.endpoint() : undefined;
    const endpoint = custom && `${custom.protocol}//${custom.hostname}${custom.port ? `:${custom.port}` : ''}${custom.path}`;
    return { kind: 's3', bucket: this.bucket, region, ...(endpoint ? { endpoint } : {}) };
  }
}

interface PutParams {
  Bucket: string;
  Key: string;
  ContentType: string;
  Metadata?: Record<string, string>;
}

/** Nothing is visible in S3 until commit: a single PUT, or a multipart upload that completes last. */
class S3PendingObject implements PendingObject {
  #buffered: Uint8Array[] = [];
  #bytes = 0;
  #stream: PassThrough | undefined;
  #upload: Upload | undefined;
  #uploadDone: Promise<unknown> | undefined;

  constructor(
    private readonly client: S3Client,
    private readonly params: PutParams,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.#bytes += chunk.byteLength;
    if (!this.#stream) {
      this.#buffered.push(chunk);
      if (this.#bytes <= SINGLE_PUT_LIMIT) return;
      this.#startMultipart();
      return;
    }
    if (!this.#stream.write(chunk)) await once(this.#stream, 'drain');
  }

  #startMultipart(): void {
    const stream = new PassThrough({ highWaterMark: 8 * 1024 * 1024 });
    this.#stream = stream;
    this.#upload = new Upload({
      client: this.client,
      // Each part carries a CRC32 that S3 verifies, and the completed object a checksum of checksums.
      params: { ...this.params, Body: stream, ChecksumAlgorithm: 'CRC32' },
      partSize: SINGLE_PUT_LIMIT,
      queueSize: 2,
      leavePartsOnError: false,
    });
    // Kept as a promise now so a failing upload surfaces at commit instead of as an unhandled rejection.
    this.#uploadDone = this.#upload.done();
    this.#uploadDone.catch(() => undefined);
    for (const chunk of this.#buffered) stream.write(chunk);
    this.#buffered = [];
  }

  async commit(): Promise<number> {
    if (this.#stream) {
      this.#stream.end();
      await this.#uploadDone;
    } else {
      const body = Buffer.concat(this.#buffered);
      this.#buffered = [];
      await this.client.send(new PutObjectCommand({ ...this.params, Body: body, ContentLength: body.byteLength, ChecksumCRC32: crc32Base64(body) }));
    }
    return this.#bytes;
  }

  async abort(): Promise<void> {
    this.#buffered = [];
    if (this.#upload) {
      await this.#upload.abort().catch(() => undefined);
      this.#stream?.destroy();
    }
  }
}

/** The x-amz-checksum-crc32 form: the big-endian CRC32 in base64. */
function crc32Base64(body: Uint8Array): string {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(crc32(body));
  return bytes.toString('base64');
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(error) === 404;
}

/** S3 compares If-Match against the quoted ETag; events carry it bare. */
function quoted(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}
