/** `dlq inspect`: reads every dead letter, says why each failed, and leaves the DLQ as it was. */
import type { SQSClient } from '@aws-sdk/client-sqs';
import { QueueBrowser, type BrowseOptions } from './browse.js';
import { readDeadLetter, subjectOf, type DeadLetter } from './letters.js';
import { queueDepthOf, type QueueDepth } from './queues.js';

export interface InspectOptions {
  dlqUrl: string;
  /** Messages to read at most. Default 1000. */
  max?: number;
  signal?: AbortSignal;
  /** Tuning for tests; see BrowseOptions. */
  browse?: Pick<BrowseOptions, 'holdSeconds' | 'waitSeconds' | 'emptyReceives'>;
}

export interface CodeSummary {
  code: string;
  count: number;
  oldest?: Date;
  newest?: Date;
  /** The first message's subject, to show what kind of input fails this way. */
  example: string;
}

export interface InspectReport {
  dlqUrl: string;
  /** SQS's approximate counts before the visit; in-flight messages cannot be read. */
  depth: QueueDepth;
  letters: DeadLetter[];
  /** Most frequent code first. */
  byCode: CodeSummary[];
  /** False when --max or an interruption ended the visit before the queue ran out. */
  complete: boolean;
  /** Messages still hidden because releasing them failed; they reappear within the hold time. */
  stillHidden: number;
}

export const DEFAULT_INSPECT_MAX = 1000;

export async function inspectDlq(sqs: SQSClient, options: InspectOptions): Promise<InspectReport> {
  const max = options.max ?? DEFAULT_INSPECT_MAX;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be a whole number ≥ 1, not ${max}`);
  const depth = await queueDepthOf(sqs, options.dlqUrl);
  const browser = new QueueBrowser(sqs, options.dlqUrl, { ...options.browse, limit: max, ...(options.signal ? { signal: options.signal } : {}) });
  const letters: DeadLetter[] = [];
  let stillHidden = 0;
  try {
    for await (const batch of browser.batches()) letters.push(...batch.map(readDeadLetter));
  } finally {
    stillHidden = (await browser.release()).failed;
  }
  return {
    dlqUrl: options.dlqUrl,
    depth,
    letters,
    byCode: summarize(letters),
    complete: letters.length < max && !options.signal?.aborted,
    stillHidden,
  };
}

export function summarize(letters: DeadLetter[]): CodeSummary[] {
  const byCode = new Map<string, CodeSummary>();
  for (const letter of letters) {
    const summary = byCode.get(letter.code) ?? { code: letter.code, count: 0, example: subjectOf(letter) };
    summary.count += 1;
    const when = letter.failedAt ?? letter.sentAt;
    if (when && (!summary.oldest || when < summary.oldest)) summary.oldest = when;
    if (when && (!summary.newest || when > summary.newest)) summary.newest = when;
    byCode.set(letter.code, summary);
  }
  return [...byCode.values()].sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
}
