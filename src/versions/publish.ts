/**
 * The publish protocol: makes a conversion's outputs visible only where S3's own atomic checks
 * (conditional writes) agree that this source version may have them, so an older version never
 * replaces a newer one's outputs, even when two tasks convert both at once.
 *
 * Common path, no extra calls: each output is created with `If-None-Match: *`. When that fails (the
 * key exists, or another write raced it), the output is looked at (HEAD) and then:
 * - it already holds this version: nothing to do;
 * - it holds a newer version of this source (by sequencer): we are stale, write nothing;
 * - it holds an older version (by sequencer), or another version and the source's HEAD says we
 *   are current: replace it with `If-Match: <the ETag just seen>`, and look again if that fails;
 * - it was made from another source that still exists (`x.csv` beside `x.csv.gz`): refuse, with a
 *   reason naming both (PermanentError OUTPUT_CONFLICT).
 * The outputs are committed one after another in a fixed order, so two sources racing for the same
 * keys meet at the first one and only one of them goes on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError, PreconditionFailedError, SourceChangedError, TransientError } from '../errors.js';
import type { StagedOutput } from '../pipeline/convert.js';
import type { ObjectHead, ObjectStore } from '../storage/types.js';
import { judgeOutput, nameOf, normalizeEtag, recordedSource, sameEtag, type RecordedSource, type SourceVersion } from './metadata.js';

/** What publishing did to one output. */
export type PublishedHow = 'created' | 'replaced' | 'already';

export interface PublishRecord {
  key: string;
  how: PublishedHow;
  /** Commit attempts (1 on the common path). */
  attempts: number;
}

export interface VersionedPublishOptions {
  /** The version the notification announced (the GET read exactly this one, with If-Match). */
  version: SourceVersion;
  /** A store for any bucket: the source's, or another source's (to see whether it still exists). */
  storeFor(bucket: string): ObjectStore;
  /** Conditional commits per output before the message is retried instead (default 5). */
  maxAttempts?: number;
}

/** A `Publisher` (it reads only the ETag the GET returned), and what it did to each output. */
export type VersionedPublisher = ((staged: StagedOutput[], read: { etag?: string }) => Promise<number[]>) & { readonly records: PublishRecord[] };

const DEFAULT_MAX_ATTEMPTS = 5;

export function versionedPublisher(options: VersionedPublishOptions): VersionedPublisher {
  const records: PublishRecord[] = [];
  const publish = async (staged: StagedOutput[], read: { etag?: string }): Promise<number[]> => {
    // The GET's own ETag is the version converted; the notification's must agree (If-Match).
    const ours: SourceVersion = { ...options.version, etag: normalizeEtag(read.etag ?? options.version.etag) };
    const sizes: number[] = [];
    for (const output of staged) {
      const record = await publishOne(output, ours, options);
      records.push({ key: output.target.key, how: record.how, attempts: record.attempts });
      sizes.push(record.bytes);
    }
    return sizes;
  };
  return Object.assign(publish, { records });
}

async function publishOne(
  output: StagedOutput,
  ours: SourceVersion,
  options: VersionedPublishOptions,
): Promise<{ how: PublishedHow; bytes: number; attempts: number }> {
  const { store, key } = output.target;
  const where = `${store.root}/${key}`;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  let condition: { ifNoneMatch: '*' } | { ifMatch: string } = { ifNoneMatch: '*' };
  for (let attempt = 1; ; attempt++) {
    try {
      const bytes = await output.pending.commit(condition);
      return { how: 'ifNoneMatch' in condition ? 'created' : 'replaced', bytes, attempts: attempt };
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      if (attempt >= maxAttempts) {
        throw new TransientError('OUTPUT_CONTENDED', `${where}: still changing under us after ${attempt} conditional writes; retrying the message later`, { cause: error });
      }
    }
    // Writes racing for one key: spread the next look out.
    if (attempt > 1) await sleep(Math.round((20 + Math.random() * 80) * attempt));
    const head = await store.head(key);
    if (!head) {
      condition = { ifNoneMatch: '*' }; // removed meanwhile: create it again
      continue;
    }
    const recorded = recordedSource(head.metadata);
    let verdict = judgeOutput(recorded, ours);
    if (verdict === 'this-version') {
      await output.pending.abort();
      return { how: 'already', bytes: head.size, attempts: attempt };
    }
    if (verdict === 'newer') throw stale(ours, where, `it holds a newer version (sequencer ${recorded.sequencer})`);
    if (verdict === 'other-source') {
      await refuseIfOtherSourceExists(recorded as Required<Pick<RecordedSource, 'bucket' | 'key'>>, ours, where, options);
      verdict = 'other-version'; // that source is gone: its outputs are fair game, if we are current
    }
    if (verdict === 'other-version') {
      // Looked at after the output: a version newer than ours that exists now could have written the
      // output only after this HEAD, and then the If-Match below fails and we look again.
      const current = await options.storeFor(ours.bucket).head(ours.key);
      if (!current) throw stale(ours, where, 'the source has been deleted since');
      if (!sameEtag(current.etag, ours.etag)) throw stale(ours, where, `the source now has ETag ${normalizeEtag(current.etag ?? '?')}`);
    }
    condition = { ifMatch: requireEtag(head, where) };
  }
}

async function refuseIfOtherSourceExists(
  other: { bucket: string; key: string },
  ours: SourceVersion,
  where: string,
  options: VersionedPublishOptions,
): Promise<void> {
  const exists = await options.storeFor(other.bucket).head(other.key);
  if (!exists) return;
  throw new PermanentError(
    'OUTPUT_CONFLICT',
    `${nameOf(ours)} and ${nameOf(other)} both map to ${where}, whose outputs ${nameOf(other)} made and still owns; ` +
      `nothing of ${nameOf(ours)} was replaced. Delete or rename one of the two sources (two buckets with the same keys ` +
      'need {bucket} in OUTPUT_KEY_TEMPLATE), then redrive this message.',
  );
}

function stale(ours: SourceVersion, where: string, why: string): SourceChangedError {
  return new SourceChangedError(`${nameOf(ours)} (ETag ${ours.etag}) is no longer current: ${where}: ${why}; the outputs are left to the newer version's own conversion`);
}

function requireEtag(head: ObjectHead, where: string): string {
  if (!head.etag) throw new TransientError('NO_ETAG', `${where}: HEAD returned no ETag, so it cannot be replaced conditionally`);
  return head.etag;
}
