/**
 * Metrics, Powertools-style: recorded in memory, aggregated per metric, sent to CloudWatch every
 * `flushSeconds` and on `close()`. Sending metrics never throws to, or waits on, the business code.
 */
import { PutMetricDataCommand, type CloudWatchClient, type Dimension, type MetricDatum, type StandardUnit } from '@aws-sdk/client-cloudwatch';
import type { Logger } from 'pino';
import { chunkDatums, MetricAggregate } from './datums.js';
import { MetricName } from './names.js';

export { MetricName } from './names.js';

/**
 * Datums kept from failed flushes for the next one: two full requests' worth, oldest dropped first.
 * Enough to ride out a throttling spell or a short network outage without growing without bound.
 */
export const MAX_RETAINED_DATUMS = 2000;

export interface MetricsBufferOptions {
  client: Pick<CloudWatchClient, 'send'>;
  namespace: string;
  /** Added to every datum; keep them low-cardinality (e.g. `{ Service: 's3-csv-converter' }`). */
  dimensions: Record<string, string>;
  flushSeconds: number;
  logger: Pick<Logger, 'warn' | 'debug'>;
  /** When false nothing is sent; local totals (`snapshot()`) are still kept. */
  enabled: boolean;
  /** Bounds one PutMetricData call, so `close()` cannot hang on an unreachable endpoint. */
  sendTimeoutMs?: number;
}

interface Gauge {
  value: number;
  unit: StandardUnit;
  /** Whether the current flush window has a sample of it yet. */
  sampled: boolean;
}

export class MetricsBuffer {
  readonly #options: MetricsBufferOptions;
  readonly #dimensions: Dimension[];
  readonly #aggregates = new Map<string, MetricAggregate>();
  readonly #gauges = new Map<string, Gauge>();
  readonly #totals = new Map<string, number>();
  readonly #warnedNonFinite = new Set<string>();
  #retained: MetricDatum[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #pendingFlushes = 0;
  #closed = false;

  constructor(options: MetricsBufferOptions) {
    this.#options = options;
    this.#dimensions = Object.entries(options.dimensions).map(([Name, Value]) => ({ Name, Value }));
    if (options.enabled) {
      // A tick while a flush is still running (a slow endpoint) is skipped rather than queued.
      this.#timer = setInterval(() => this.#pendingFlushes === 0 && void this.flush(), options.flushSeconds * 1000);
      // The timer alone must not keep the process alive; close() sends what is left.
      this.#timer.unref();
    }
  }

  /** Adds to a counter; CloudWatch's Sum is the total. */
  count(name: string, value = 1): void {
    if (!this.#accept(name, value)) return;
    this.#add(name, value, 'Count');
  }

  /** Records one observation (a duration, a size…); CloudWatch keeps its distribution. */
  observe(name: string, value: number, unit: StandardUnit): void {
    if (!this.#accept(name, value)) return;
    this.#add(name, value, unit);
  }

  /**
   * Sets a current level (e.g. InFlight). Every change is a sample, and a gauge that did not change
   * during a flush window is sampled once at the flush, so it has a datapoint every period.
   */
  gauge(name: string, value: number, unit: StandardUnit = 'Count'): void {
    if (!this.#accept(name, value)) return;
    this.#gauges.set(name, { value, unit, sampled: true });
    if (this.#options.enabled) this.#aggregate(name, unit).add(value);
  }

  /** Local totals since start: the sum of each counter and observation, the current value of each gauge. */
  snapshot(): Record<string, number> {
    const snapshot = Object.fromEntries(this.#totals);
    for (const [name, gauge] of this.#gauges) snapshot[name] = gauge.value;
    return snapshot;
  }

  /** Sends everything recorded so far. Never rejects; failures are logged at warn. */
  flush(): Promise<void> {
    this.#pendingFlushes += 1;
    this.#flushing = this.#flushing.then(() => this.#flushNow()).finally(() => (this.#pendingFlushes -= 1));
    return this.#flushing;
  }

  /** Stops the timer and sends what is left. Never rejects. */
  async close(): Promise<void> {
    if (this.#closed) return this.#flushing;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.flush();
  }

  #accept(name: string, value: number): boolean {
    if (Number.isFinite(value)) return true;
    // CloudWatch refuses NaN and infinities; a caller bug must not fail a whole request.
    if (!this.#warnedNonFinite.has(name)) {
      this.#warnedNonFinite.add(name);
      this.#options.logger.warn({ metric: name, value: String(value) }, 'metric value is not a finite number; dropped');
    }
    return false;
  }

  #add(name: string, value: number, unit: StandardUnit): void {
    this.#totals.set(name, (this.#totals.get(name) ?? 0) + value);
    if (this.#options.enabled) this.#aggregate(name, unit).add(value);
  }

  #aggregate(name: string, unit: StandardUnit): MetricAggregate {
    const key = `${name}\u0000${unit}`;
    let aggregate = this.#aggregates.get(key);
    if (!aggregate) {
      aggregate = new MetricAggregate(name, unit);
      this.#aggregates.set(key, aggregate);
    }
    return aggregate;
  }

  /** Takes the buffered observations as datums and empties the buffer. */
  #drain(): MetricDatum[] {
    for (const [name, gauge] of this.#gauges) {
      if (!gauge.sampled) this.#aggregate(name, gauge.unit).add(gauge.value);
      gauge.sampled = false;
    }
    const timestamp = new Date();
    const datums = [...this.#aggregates.values()].flatMap((aggregate) => aggregate.toDatums(this.#dimensions, timestamp));
    this.#aggregates.clear();
    return datums;
  }

  async #flushNow(): Promise<void> {
    if (!this.#options.enabled) return;
    try {
      const datums = [...this.#retained, ...this.#drain()];
      this.#retained = [];
      const chunks = chunkDatums(datums);
      for (const [index, chunk] of chunks.entries()) {
        try {
          await this.#send(chunk);
        } catch (error) {
          this.#failed(error, chunk, chunks.slice(index + 1));
          if (isRetryable(error)) break;
        }
      }
    } catch (error) {
      // Only a bug in this class gets here; it must still not reach the caller.
      this.#options.logger.warn({ err: error }, 'metrics flush failed unexpectedly');
    }
  }

  async #send(datums: MetricDatum[]): Promise<void> {
    const command = new PutMetricDataCommand({ Namespace: this.#options.namespace, MetricData: datums });
    await this.#options.client.send(command, { abortSignal: AbortSignal.timeout(this.#options.sendTimeoutMs ?? 10_000) });
  }

  /**
   * A request failed. Throttling, 5xx and network errors keep its datums and the unsent rest for the
   * next flush (capped); any other error means CloudWatch refused the data, so it is dropped.
   */
  #failed(error: unknown, chunk: MetricDatum[], unsent: MetricDatum[][]): void {
    this.#totals.set(MetricName.MetricsFlushFailures, (this.#totals.get(MetricName.MetricsFlushFailures) ?? 0) + 1);
    const retry = isRetryable(error);
    const kept = retry ? [chunk, ...unsent].flat() : [];
    this.#retained.push(...kept);
    const dropped = (retry ? 0 : chunk.length) + Math.max(0, this.#retained.length - MAX_RETAINED_DATUMS);
    if (this.#retained.length > MAX_RETAINED_DATUMS) this.#retained = this.#retained.slice(-MAX_RETAINED_DATUMS);
    this.#options.logger.warn(
      { err: error, datums: chunk.length, retained: this.#retained.length, dropped },
      retry ? 'metrics flush failed; keeping the data for the next flush' : 'metrics flush refused; data dropped',
    );
  }
}

/** Throttling, server errors and failures without a response (network, timeout) are worth retrying. */
function isRetryable(error: unknown): boolean {
  const { name, $metadata } = (error ?? {}) as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = $metadata?.httpStatusCode;
  if (status === undefined || status >= 500 || status === 429) return true;
  return /throttl|toomanyrequests|limitexceeded/i.test(name ?? '');
}
