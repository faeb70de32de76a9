/**
 * Whether a source object's outputs are current, missing or stale, decided from what the listings
 * show, and from the outputs' `source-etag` where the listing cannot tell.
 *
 * The rule (the README states it): an output missing from the listing makes the source
 * `missing`; an output whose LastModified is older than the source's makes it `stale` (it was
 * made before this version was written); every output newer than the source makes it `current`.
 * Listings give LastModified to the second, so an output written in the same second as its source
 * is undecided: its `source-etag` (a HEAD) is compared with the source's ETag.
 */
import { normalizeEtag } from '../pipeline/convert.js';

export type Verdict = 'current' | 'missing' | 'stale';

/** What is known about one output of a source. */
export type OutputSeen =
  | { state: 'absent' }
  | { state: 'listed'; lastModified: Date }
  /** Not answerable from the listing (its key sorts out of the listing's order): HEAD it. */
  | { state: 'unlisted' }
  /** From a HEAD: its LastModified and, when the service wrote it, the source ETag it was made from. */
  | { state: 'headed'; lastModified: Date; sourceEtag: string | undefined };

/** What a source's outputs say; `check` names the outputs to HEAD before a verdict is possible. */
export type Judgement = { verdict: Verdict } | { check: number[] };

/** Seconds since the epoch: the precision every listing has (S3's show .000 milliseconds). */
function second(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function judgeOne(source: { etag: string; lastModified: Date }, output: OutputSeen): Verdict | 'check' {
  switch (output.state) {
    case 'absent':
      return 'missing';
    case 'unlisted':
      return 'check';
    case 'listed': {
      const delta = second(output.lastModified) - second(source.lastModified);
      return delta > 0 ? 'current' : delta < 0 ? 'stale' : 'check';
    }
    case 'headed':
      if (output.sourceEtag !== undefined) return normalizeEtag(output.sourceEtag) === normalizeEtag(source.etag) ? 'current' : 'stale';
      // Written by something that does not record its source: only a later write proves it current,
      // and converting again is always safe.
      return second(output.lastModified) > second(source.lastModified) ? 'current' : 'stale';
  }
}

/**
 * The verdict for a source from its outputs (one per format). Missing wins over stale, stale over
 * undecided: an output that needs a HEAD is only looked at when nothing else decides.
 */
export function judge(source: { etag: string; lastModified: Date }, outputs: readonly OutputSeen[]): Judgement {
  const each = outputs.map((output) => judgeOne(source, output));
  if (each.includes('missing')) return { verdict: 'missing' };
  if (each.includes('stale')) return { verdict: 'stale' };
  const check = each.flatMap((verdict, i) => (verdict === 'check' ? [i] : []));
  return check.length > 0 ? { check } : { verdict: 'current' };
}
