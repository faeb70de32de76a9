/** One interface over a directory and an S3 bucket, so `convert` and `serve` run the same engine. */
import type { Readable } from 'node:stream';
import type { ByteSink } from '../formats/types.js';

export interface SourceObject {
  body: Readable;
  /** Bytes as stored (compressed size for .gz), when the store knows it up front. */
  size?: number;
  etag?: string;
}

export interface ObjectHead {
  size: number;
  etag?: string;
  metadata: Record<string, string>;
}

export interface GetOptions {
  /**
   * Read only this version (an ETag, quoted or bare): when the key now holds another one, `get`
   * throws SourceChangedError instead of returning it.
   */
  ifMatch?: string;
}

/**
 * What must still hold for a commit to happen, checked by the store atomically with the write
 * (S3 conditional writes): `ifNoneMatch: '*'` creates only; `ifMatch` replaces only that version.
 * A failed condition throws PreconditionFailedError and publishes nothing.
 */
export type CommitCondition = { ifNoneMatch: '*' } | { ifMatch: string };

export interface PutOptions {
  contentType: string;
  metadata?: Record<string, string>;
}

/** An object being written: invisible to readers until `commit`, gone after `abort`. */
export interface PendingObject extends ByteSink {
  /** Publishes the object whole; resolves with its size in bytes. */
  commit(condition?: CommitCondition): Promise<number>;
  /** Discards everything written; safe to call after a failed write or twice. */
  abort(): Promise<void>;
}

/** Enough to open the same store again on another thread (see `openStore`). */
export type StoreDescriptor =
  | { kind: 'local'; root: string }
  | { kind: 's3'; bucket: string; region: string; endpoint?: string };

/** A bucket or a directory; keys are `/`-separated paths relative to it. */
export interface ObjectStore {
  /** `s3://bucket` or the absolute directory path, for messages. */
  readonly root: string;
  /** Throws ObjectGoneError when the key does not exist, SourceChangedError when `ifMatch` no longer holds. */
  get(key: string, options?: GetOptions): Promise<SourceObject>;
  head(key: string): Promise<ObjectHead | undefined>;
  put(key: string, options: PutOptions): Promise<PendingObject>;
  delete(key: string): Promise<void>;
  /** How to reopen this store elsewhere; a store without it is only used on the thread that made it. */
  describe?(): Promise<StoreDescriptor>;
}
