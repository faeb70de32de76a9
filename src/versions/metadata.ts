/**
 * Which version of which source an output was made from: the identity of a source version, how
 * ETags and S3 sequencers compare, and the user metadata every output carries so that the next
 * writer (and `backfill`) can tell whose outputs these are.
 */

/** Output metadata: the source's ETag (bare). `backfill` and the duplicate check read it. */
export const SOURCE_ETAG = 'source-etag';
/** Output metadata: the source's bucket. */
export const SOURCE_BUCKET = 'source-bucket';
/** Output metadata: the source's key, percent-encoded (S3 metadata is ASCII). */
export const SOURCE_KEY = 'source-key';
/** Output metadata: the S3 event's sequencer of the source version, when the notification had one. */
export const SOURCE_SEQUENCER = 'source-sequencer';

/** One version of one source object, as a notification announces it. */
export interface SourceVersion {
  bucket: string;
  key: string;
  /** Bare or quoted; compare with `sameEtag`. */
  etag: string;
  /** S3's per-key event order (hex); absent on moto and on hand-made notifications. */
  sequencer?: string;
}

/** What an output's metadata says about the source it was made from (fields it lacks stay undefined). */
export interface RecordedSource {
  bucket?: string;
  key?: string;
  etag?: string;
  sequencer?: string;
}

/** ETags arrive quoted from GET/HEAD and bare in S3 events; compare them bare. */
export function normalizeEtag(etag: string): string {
  return etag.replace(/^"|"$/g, '');
}

export function sameEtag(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && normalizeEtag(a) === normalizeEtag(b);
}

/**
 * Orders two sequencers of the same key: negative when `a` came first. S3 documents them as hex
 * strings to compare after left-padding the shorter with zeros; they mean nothing across keys.
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const left = a.toUpperCase().padStart(width, '0');
  const right = b.toUpperCase().padStart(width, '0');
  return left < right ? -1 : left > right ? 1 : 0;
}

/**
 * S3 keeps at most 2 KB of user metadata (names and values). Keys are up to 1 024 bytes and
 * percent-encoding can triple that, so a source name that does not fit is left out (with the
 * sequencer, which means nothing without it): such an output records only the ETag, and the rules
 * fall back to the source's HEAD.
 */
const METADATA_BUDGET = 1_800;

/** The metadata each output of `source` carries. */
export function outputMetadata(source: SourceVersion): Record<string, string> {
  const etagOnly: Record<string, string> = { [SOURCE_ETAG]: normalizeEtag(source.etag) };
  const named: Record<string, string> = { ...etagOnly, [SOURCE_BUCKET]: source.bucket, [SOURCE_KEY]: encodeKey(source.key) };
  if (source.sequencer) named[SOURCE_SEQUENCER] = source.sequencer;
  return metadataBytes(named) <= METADATA_BUDGET ? named : etagOnly;
}

/** Reads what `outputMetadata` wrote (S3 returns metadata names in lower case). */
export function recordedSource(metadata: Record<string, string>): RecordedSource {
  const key = metadata[SOURCE_KEY];
  return {
    bucket: metadata[SOURCE_BUCKET],
    key: key === undefined ? undefined : decodeKey(key),
    etag: metadata[SOURCE_ETAG],
    sequencer: metadata[SOURCE_SEQUENCER],
  };
}

/** How an output relates to the version we are publishing. */
export type OutputVerdict =
  /** It already holds exactly this version. */
  | 'this-version'
  /** It holds an older version of this very source (by sequencer). */
  | 'older'
  /** It holds a newer version of this very source (by sequencer). */
  | 'newer'
  /** It holds another version of this source, and the sequencers cannot say which is newer. */
  | 'other-version'
  /** It was made from another source object (e.g. `x.csv` beside `x.csv.gz`). */
  | 'other-source';

export function judgeOutput(recorded: RecordedSource, ours: SourceVersion): OutputVerdict {
  // Sequencers order versions of one key only, so they are compared only when the output names its
  // source; outputs that do not (written before names were recorded) are judged by ETag alone.
  const named = recorded.bucket !== undefined && recorded.key !== undefined;
  if (named && (recorded.bucket !== ours.bucket || recorded.key !== ours.key)) return 'other-source';
  if (named && recorded.sequencer && ours.sequencer) {
    const order = compareSequencers(recorded.sequencer, ours.sequencer);
    if (order < 0) return 'older';
    if (order > 0) return 'newer';
  }
  return sameEtag(recorded.etag, ours.etag) ? 'this-version' : 'other-version';
}

/** True when an output's metadata says it was made from exactly `source`. */
export function holdsVersion(metadata: Record<string, string>, source: SourceVersion): boolean {
  return judgeOutput(recordedSource(metadata), source) === 'this-version';
}

/** `s3://bucket/key`, for messages. */
export function nameOf(source: { bucket: string; key: string }): string {
  return `s3://${source.bucket}/${source.key}`;
}

function encodeKey(key: string): string {
  // encodeURI keeps `/` and the other reserved characters readable; `%` itself is encoded.
  return encodeURI(key);
}

function decodeKey(encoded: string): string | undefined {
  try {
    return decodeURI(encoded);
  } catch {
    return undefined;
  }
}

function metadataBytes(metadata: Record<string, string>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(metadata)) bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
  return bytes;
}
