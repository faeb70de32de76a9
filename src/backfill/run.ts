/**
 * One backfill run: list the input prefix page by page, decide for each CSV object whether its
 * outputs are current, missing or stale, and enqueue a notification for those that are not
 * current (or, in a dry run, say which it would). Memory holds a page of each listing, not the bucket.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { outputKeyPrefixFor, outputKeysFor, type OutputLayout } from '../config/key-template.js';
import { isCsvKey } from '../events/keys.js';
import { SOURCE_ETAG } from '../pipeline/convert.js';
import { Enqueuer, type EnqueueFailure } from './enqueue.js';
import { BackfillStopped, headStop, withRetries } from './errors.js';
import { listObjectPages, OrderedListing, type ListedObject } from './listing.js';
import { notificationBody } from './message.js';
import { judge, type OutputSeen, type Verdict } from './plan.js';

export interface BackfillOptions {
  s3: S3Client;
  /** Needed unless `dryRun`. */
  sqs?: SQSClient;
  bucket: string;
  prefix: string;
  outputBucket: string;
  layout: OutputLayout;
  /** Needed unless `dryRun`. */
  queueUrl?: string | undefined;
  /** AWS_REGION, written into each notification. */
  region: string;
  /** Only objects last modified at or after this. */
  modifiedSince?: Date | undefined;
  dryRun: boolean;
  /** Messages a second at most. */
  rate?: number | undefined;
  /** Stops after the page in hand; what was decided is still sent. */
  signal?: AbortSignal | undefined;
  onProgress?: (counts: BackfillCounts) => void;
  /** Dry run: each object that would be enqueued, as it is decided. */
  onWouldEnqueue?: (object: ListedObject, verdict: Verdict) => void;
  /** Each notification that could not be sent, as soon as that is final. */
  onFailure?: (failure: EnqueueFailure) => void;
  /** Keys per listing page (S3's default and most: 1 000); tests use small pages to cross page boundaries. */
  pageSize?: number;
}

export interface BackfillCounts {
  /** Every object listed under the prefix. */
  listed: number;
  /** CSV objects considered (modified at or after `--modified-since` when given): current + missing + stale. */
  csv: number;
  current: number;
  missing: number;
  stale: number;
  enqueued: number;
  /** Notifications that could not be sent after retries; each is in `failures`. */
  failed: number;
  /** CSV objects skipped because they were last modified before `--modified-since`. */
  older: number;
  /** Outputs looked at with a HEAD because the listing could not decide. */
  checked: number;
}

export interface BackfillReport extends BackfillCounts {
  bucket: string;
  prefix: string;
  queueUrl: string | undefined;
  dryRun: boolean;
  failures: EnqueueFailure[];
  /** Stopped by the signal: objects after the last page handled were not looked at. */
  interrupted: boolean;
  /** What stopped the run early (one line naming the bucket or queue). */
  error?: string;
}

/** HEADs of undecided outputs in flight at once. */
const HEAD_CONCURRENCY = 16;

export async function runBackfill(options: BackfillOptions): Promise<BackfillReport> {
  const { s3, bucket, layout, signal } = options;
  if (!options.dryRun && (!options.sqs || !options.queueUrl)) throw new RangeError('backfill: a queue is needed unless dryRun');
  const report: BackfillReport = {
    bucket,
    prefix: options.prefix,
    queueUrl: options.queueUrl,
    dryRun: options.dryRun,
    listed: 0,
    csv: 0,
    current: 0,
    missing: 0,
    stale: 0,
    enqueued: 0,
    failed: 0,
    older: 0,
    checked: 0,
    failures: [],
    interrupted: false,
  };
  const progress = () => options.onProgress?.(countsOf(report));
  const enqueuer = options.dryRun
    ? undefined
    : new Enqueuer({
        sqs: options.sqs!,
        queueUrl: options.queueUrl!,
        rate: options.rate,
        onSent: (count) => {
          report.enqueued += count;
          progress();
        },
        onFailed: (failure) => {
          report.failed += 1;
          report.failures.push(failure);
          options.onFailure?.(failure);
          progress();
        },
      });
  // One ordered cursor per format over the outputs; they move forward with the input listing.
  const listing = { signal, pageSize: options.pageSize };
  const outputs = layout.formats.map((format) => new OrderedListing(s3, options.outputBucket, outputKeyPrefixFor(layout, format, bucket), listing));

  try {
    for await (const page of listObjectPages(s3, bucket, options.prefix, listing)) {
      report.listed += page.length;
      const decided = await decidePage(page, outputs, options, report);
      for (const { object, verdict } of decided) {
        report[verdict] += 1;
        if (verdict === 'current') continue;
        if (enqueuer) await enqueuer.add({ key: object.key, body: notificationBody(bucket, object, options.region) });
        else options.onWouldEnqueue?.(object, verdict);
      }
      progress();
      if (signal?.aborted) {
        report.interrupted = true;
        break;
      }
    }
    await enqueuer?.finish();
  } catch (error) {
    if (error instanceof BackfillStopped) report.error = error.message;
    // Interrupted while waiting to retry a call: what was decided so far is in the counts.
    else if (signal?.aborted) report.interrupted = true;
    else throw error;
    await enqueuer?.settle();
  }
  progress();
  return report;
}

/** The verdict for every CSV object of one input page, in listing order. */
async function decidePage(
  page: ListedObject[],
  outputs: OrderedListing[],
  options: BackfillOptions,
  report: BackfillCounts,
): Promise<{ object: ListedObject; verdict: Verdict }[]> {
  const decided: { object: ListedObject; verdict: Verdict | undefined; seen: OutputSeen[]; keys: string[]; check: number[] }[] = [];
  for (const object of page) {
    if (!isCsvKey(object.key)) continue;
    if (options.modifiedSince && object.lastModified < options.modifiedSince) {
      report.older += 1;
      continue;
    }
    report.csv += 1;
    const keys = outputKeysFor(options.layout, { bucket: options.bucket, key: object.key });
    const seen: OutputSeen[] = [];
    for (const [i, key] of keys.entries()) {
      const answer = await outputs[i]!.find(key);
      seen.push(answer === 'out of order' ? { state: 'unlisted' } : answer.found ? { state: 'listed', lastModified: answer.object.lastModified } : { state: 'absent' });
    }
    const judgement = judge(object, seen);
    decided.push({ object, seen, keys, ...('verdict' in judgement ? { verdict: judgement.verdict, check: [] } : { verdict: undefined, check: judgement.check }) });
  }

  // The listing could not decide these: look at the outputs themselves, a few at a time.
  const heads = decided.flatMap((entry) => entry.check.map((i) => ({ entry, i })));
  await eachAtMost(HEAD_CONCURRENCY, heads, async ({ entry, i }) => {
    entry.seen[i] = await headOutput(options.s3, options.outputBucket, entry.keys[i]!, options.signal);
    report.checked += 1;
  });
  return decided.map((entry) => {
    if (entry.verdict) return { object: entry.object, verdict: entry.verdict };
    const judgement = judge(entry.object, entry.seen);
    // A HEAD always decides; 'stale' is the safe answer should that ever change.
    return { object: entry.object, verdict: 'verdict' in judgement ? judgement.verdict : 'stale' };
  });
}

async function headOutput(s3: S3Client, bucket: string, key: string, signal: AbortSignal | undefined): Promise<OutputSeen> {
  return withRetries(
    async (): Promise<OutputSeen> => {
      try {
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { state: 'headed', lastModified: head.LastModified ?? new Date(0), sourceEtag: head.Metadata?.[SOURCE_ETAG] };
      } catch (error) {
        const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return { state: 'absent' };
        throw error;
      }
    },
    { what: `reading s3://${bucket}/${key}`, stop: (error) => headStop(error, bucket, key), signal },
  );
}

/** Runs `work` on every item, at most `limit` at once. */
async function eachAtMost<T>(limit: number, items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function countsOf(report: BackfillReport): BackfillCounts {
  const { listed, csv, current, missing, stale, enqueued, failed, older, checked } = report;
  return { listed, csv, current, missing, stale, enqueued, failed, older, checked };
}
