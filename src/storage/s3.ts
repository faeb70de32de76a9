/**
 * An S3 bucket as an object store: small outputs go up in one PUT, large ones stream as multipart;
 * a commit can be conditional (S3's If-None-Match / If-Match), so versions are decided by S3 itself.
 */
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { AwsClients } from '../aws.js';
import { ObjectGoneError, PreconditionFailedError, SourceChangedError, TransientError } from '../errors.js';
import type { CommitCondition, GetOptions, ObjectHead, ObjectStore, PendingObject, PutOptions, SourceObject, StoreDescriptor } from './types.js';

/** Outputs below this size are sent with one PutObject; larger ones in parts of this size (S3 wants ≥ 5 MiB). */
const PART_SIZE = 8 * 1024 * 1024;

/** Told when cleaning up after a failure fails (the caller logs it; nothing is thrown). */
export type CleanupFailureHandler = (what: string, error: unknown) => void;

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
    private readonly onCleanupFailure: CleanupFailureHandler = () => {},
  ) {
    this.root = `s3://${bucket}`;
  }

  /**
   * The store for `bucket` over the process's clients: the bucket's own caching client for the hot
   * path. `onCleanupFailure` hears of an abandoned multipart upload that could not be aborted.
   */
  static forBucket(clients: Pick<AwsClients, 's3' | 's3ForBucket'>, bucket: string, onCleanupFailure?: CleanupFailureHandler): S3Store {
    return new S3Store(clients.s3ForBucket(bucket), bucket, clients.s3, onCleanupFailure);
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
    return new S3PendingObject(
      this.client,
      { Bucket: this.bucket, Key: key, ContentType: options.contentType, Metadata: options.metadata },
      this.onCleanupFailure,
    );
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

/** Parts uploaded at once per output while it is still being written. */
const PARTS_IN_FLIGHT = 2;

/**
 * Nothing is visible in S3 until commit: a single PUT, or a multipart upload whose parts go up while
 * the output is written and which completes last. The multipart calls are made here rather than by
 * lib-storage's Upload so that the completing call can carry a condition (If-None-Match / If-Match)
 * and, when the condition fails, be sent again with another one without uploading the parts again
 * (Upload aborts the whole upload when CompleteMultipartUpload fails).
 */
class S3PendingObject implements PendingObject {
  /** Chunks of the part being filled (or of the whole object while it fits one PUT). */
  #chunks: Uint8Array[] = [];
  #chunkBytes = 0;
  #bytes = 0;
  /** The whole body of a single PUT, kept after a failed condition so commit can be retried. */
  #single: Buffer | undefined;
  #multipart: Multipart | undefined;
  #failure: unknown;
  #done = false;

  constructor(
    private readonly client: S3Client,
    private readonly params: PutParams,
    private readonly onCleanupFailure: CleanupFailureHandler,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#bytes += chunk.byteLength;
    this.#chunks.push(chunk);
    this.#chunkBytes += chunk.byteLength;
    if (this.#chunkBytes < PART_SIZE) return;
    const multipart = this.#startMultipart();
    this.#uploadPart(multipart);
    // Backpressure: at most PARTS_IN_FLIGHT parts in memory on their way up, plus the one filling.
    while (multipart.inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(multipart.inFlight);
    if (this.#failure) throw this.#failure;
  }

  #startMultipart(): Multipart {
    if (this.#multipart) return this.#multipart;
    const uploadId = this.client
      .send(new CreateMultipartUploadCommand({ ...this.params, ChecksumAlgorithm: 'CRC32' }))
      .then((created) => created.UploadId!);
    uploadId.catch((error: unknown) => (this.#failure ??= error));
    this.#multipart = { uploadId, parts: [], inFlight: new Set() };
    return this.#multipart;
  }

  #uploadPart(multipart: Multipart): void {
    const body = Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#chunkBytes = 0;
    const PartNumber = multipart.parts.length + 1;
    const ChecksumCRC32 = crc32Base64(body);
    const part = multipart.uploadId.then(async (UploadId) => {
      const answer = await this.client.send(
        new UploadPartCommand({ Bucket: this.params.Bucket, Key: this.params.Key, UploadId, PartNumber, Body: body, ContentLength: body.byteLength, ChecksumCRC32 }),
      );
      return { PartNumber, ETag: answer.ETag, ChecksumCRC32 };
    });
    const settled = part.then(
      () => undefined,
      (error: unknown) => {
        this.#failure ??= error;
      },
    );
    multipart.inFlight.add(settled);
    void settled.then(() => multipart.inFlight.delete(settled));
    multipart.parts.push(part);
  }

  async commit(condition?: CommitCondition): Promise<number> {
    if (this.#done) throw new Error(`s3://${this.params.Bucket}/${this.params.Key} was already committed or aborted`);
    if (this.#failure) throw this.#failure;
    const conditions = condition === undefined ? {} : 'ifNoneMatch' in condition ? { IfNoneMatch: '*' } : { IfMatch: quoted(condition.ifMatch) };
    try {
      if (this.#multipart) {
        // The last part may be smaller than 5 MiB; a commit retried after a failed condition has none left.
        if (this.#chunkBytes > 0) this.#uploadPart(this.#multipart);
        const [UploadId, Parts] = await Promise.all([this.#multipart.uploadId, Promise.all(this.#multipart.parts)]);
        await this.client.send(
          new CompleteMultipartUploadCommand({ Bucket: this.params.Bucket, Key: this.params.Key, UploadId, MultipartUpload: { Parts }, ...conditions }),
        );
      } else {
        this.#single ??= Buffer.concat(this.#chunks);
        this.#chunks = [];
        this.#chunkBytes = 0;
        await this.client.send(
          new PutObjectCommand({ ...this.params, Body: this.#single, ContentLength: this.#single.byteLength, ChecksumCRC32: crc32Base64(this.#single), ...conditions }),
        );
      }
    } catch (error) {
      const status = statusOf(error);
      // 412: the condition does not hold; 409: another write to the key raced this one. Either way
      // nothing was published and the caller looks again; everything stays ready for another commit.
      if (condition !== undefined && (status === 412 || status === 409)) {
        throw new PreconditionFailedError(
          `s3://${this.params.Bucket}/${this.params.Key}: ${'ifNoneMatch' in condition ? 'already exists' : `no longer has ETag ${condition.ifMatch}`} (${status})`,
          { cause: error },
        );
      }
      throw error;
    }
    this.#done = true;
    this.#single = undefined;
    return this.#bytes;
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#chunks = [];
    this.#single = undefined;
    const multipart = this.#multipart;
    if (!multipart) return;
    let UploadId: string;
    try {
      UploadId = await multipart.uploadId;
    } catch {
      return; // no upload was created
    }
    await Promise.all(multipart.inFlight);
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.params.Bucket, Key: this.params.Key, UploadId }));
    } catch (error) {
      // Invisible but billed until the bucket's AbortIncompleteMultipartUpload rule removes it.
      this.onCleanupFailure(`abort the multipart upload ${UploadId} of s3://${this.params.Bucket}/${this.params.Key}`, error);
    }
  }
}

interface Multipart {
  uploadId: Promise<string>;
  parts: Promise<CompletedPart>[];
  /** Settles (never rejects) when a part's upload ends; failures land in #failure. */
  inFlight: Set<Promise<void>>;
}

interface CompletedPart {
  PartNumber: number;
  ETag?: string;
  ChecksumCRC32: string;
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
