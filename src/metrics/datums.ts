/**
 * The pure half of metrics: observations aggregated per metric name and unit, turned into
 * CloudWatch datums and cut into PutMetricData requests that respect the service limits.
 */
import type { Dimension, MetricDatum, StandardUnit } from '@aws-sdk/client-cloudwatch';

/** CloudWatch takes at most 150 distinct values (with their counts) in one datum. */
export const MAX_VALUES_PER_DATUM = 150;
/** PutMetricData takes at most 1000 datums per request. */
export const MAX_DATUMS_PER_REQUEST = 1000;
/**
 * PutMetricData takes at most 1 MB per request. The client sends JSON (awsJson1_0); we budget the
 * datums' JSON size below the limit to leave room for the namespace, envelope and estimate error.
 */
export const MAX_REQUEST_BYTES = 800_000;
/**
 * Distinct values kept per metric between flushes (ten full datums). Past it, values are folded
 * into one StatisticValues datum: sum, min, max and count stay exact, percentiles lose those values,
 * and memory stays bounded however busy the task.
 */
export const MAX_DISTINCT_VALUES = 10 * MAX_VALUES_PER_DATUM;

/** Every observation of one metric (name and unit) since the last flush. */
export class MetricAggregate {
  /** Distinct value → how many times it was observed. */
  readonly values = new Map<number, number>();
  overflow: { sum: number; min: number; max: number; count: number } | undefined;

  constructor(
    readonly name: string,
    readonly unit: StandardUnit,
  ) {}

  add(value: number): void {
    const seen = this.values.get(value);
    if (seen !== undefined) this.values.set(value, seen + 1);
    else if (this.values.size < MAX_DISTINCT_VALUES) this.values.set(value, 1);
    else if (this.overflow) {
      this.overflow.sum += value;
      this.overflow.min = Math.min(this.overflow.min, value);
      this.overflow.max = Math.max(this.overflow.max, value);
      this.overflow.count += 1;
    } else this.overflow = { sum: value, min: value, max: value, count: 1 };
  }

  /** The datums for this metric: Values/Counts in runs of 150, then the overflow as StatisticValues. */
  toDatums(dimensions: Dimension[], timestamp: Date): MetricDatum[] {
    const common = { MetricName: this.name, Unit: this.unit, Dimensions: dimensions, Timestamp: timestamp, StorageResolution: 60 };
    const entries = [...this.values];
    const datums: MetricDatum[] = [];
    for (let start = 0; start < entries.length; start += MAX_VALUES_PER_DATUM) {
      const run = entries.slice(start, start + MAX_VALUES_PER_DATUM);
      datums.push({ ...common, Values: run.map(([value]) => value), Counts: run.map(([, count]) => count) });
    }
    if (this.overflow) {
      const { sum, min, max, count } = this.overflow;
      datums.push({ ...common, StatisticValues: { SampleCount: count, Sum: sum, Minimum: min, Maximum: max } });
    }
    return datums;
  }
}

/** A datum's size on the wire, near enough: its JSON. */
export function datumBytes(datum: MetricDatum): number {
  return Buffer.byteLength(JSON.stringify(datum));
}

/** Cuts datums, in order, into requests of at most `maxDatums` datums and `maxBytes` estimated bytes. */
export function chunkDatums(
  datums: readonly MetricDatum[],
  { maxDatums = MAX_DATUMS_PER_REQUEST, maxBytes = MAX_REQUEST_BYTES }: { maxDatums?: number; maxBytes?: number } = {},
): MetricDatum[][] {
  const chunks: MetricDatum[][] = [];
  let current: MetricDatum[] = [];
  let bytes = 0;
  for (const datum of datums) {
    const size = datumBytes(datum) + 1;
    if (current.length > 0 && (current.length >= maxDatums || bytes + size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(datum);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
