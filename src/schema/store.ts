/**
 * The schema documents in S3 (SCHEMA_REGISTRY): read one with its ETag, and replace it only if it
 * is still that version (`If-Match`), or create it only if there is none (`If-None-Match: *`).
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { AwsClients } from '../aws.js';
import { PreconditionFailedError } from '../errors.js';
import { documentKey, formatDocument, InvalidSchemaDocumentError, parseDocument, type SchemaDocument } from './document.js';
import type { RegistryLocation } from './location.js';

/** A document as read, with the version a conditional write must name. */
export interface StoredDocument {
  document: SchemaDocument;
  etag: string;
}

export class SchemaDocumentStore {
  constructor(
    private readonly client: S3Client,
    readonly location: RegistryLocation,
  ) {}

  /** Over the process's clients: the registry bucket's own client (see `AwsClients.s3ForBucket`). */
  static forLocation(clients: Pick<AwsClients, 's3ForBucket'>, location: RegistryLocation): SchemaDocumentStore {
    return new SchemaDocumentStore(clients.s3ForBucket(location.bucket), location);
  }

  /** `s3://bucket/key` of a dataset's document, for messages. */
  uri(dataset: string): string {
    return `s3://${this.location.bucket}/${documentKey(this.location.prefix, dataset)}`;
  }

  /** The dataset's document, or undefined when none is registered. Throws on a broken document. */
  async read(dataset: string): Promise<StoredDocument | undefined> {
    let response;
    try {
      response = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: documentKey(this.location.prefix, dataset) }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const text = await response.Body!.transformToString('utf8');
    return { document: parseDocument(text, this.uri(dataset)), etag: response.ETag! };
  }

  /** Reads one document to prove the registry is reachable (bucket there, access granted); throws an Error saying why not. */
  async check(): Promise<void> {
    try {
      await this.read('');
    } catch (error) {
      if (error instanceof InvalidSchemaDocumentError) return;
      const { name, message } = error as Error;
      throw new Error(`s3://${this.location.bucket}/${this.location.prefix} cannot be read (${name}: ${message})`, { cause: error });
    }
  }

  /**
   * Stores `document` if the dataset's document is still `expected` (its ETag), or, with
   * `expected` undefined, if there is none yet. Resolves with the new ETag; throws
   * PreconditionFailedError when another writer got there first (412, or 409 when it raced us).
   */
  async write(document: SchemaDocument, expected: string | undefined): Promise<string> {
    const key = documentKey(this.location.prefix, document.dataset);
    try {
      const response = await this.client.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: key,
          Body: formatDocument(document),
          ContentType: 'application/json',
          ...(expected === undefined ? { IfNoneMatch: '*' } : { IfMatch: expected }),
        }),
      );
      return response.ETag!;
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || status === 409) {
        throw new PreconditionFailedError(`${this.uri(document.dataset)} changed while this file was being registered`, { cause: error });
      }
      throw error;
    }
  }
}

/** No document for this dataset; a missing bucket is not that, it is a configuration fault. */
function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name !== 'NoSuchBucket' && (e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404);
}
