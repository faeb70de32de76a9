/**
 * Handles one SQS message: takes its lease, converts every CSV object it names in the lane its size
 * calls for, decides its fate once from the outcomes (fate.ts) and has the lease carry it out.
 */
import type { Message } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { renderKeyTemplate } from '../config/key-template.js';
import { classifyFailure, PermanentError, TransientError, type Failure } from '../errors.js';
import { isCsvKey, stemOf } from '../events/keys.js';
import { isObjectCreated, parseNotification, type ObjectEvent } from '../events/parse.js';
import { MetricName, type MetricsBuffer } from '../metrics/cloudwatch.js';
import type { EngineOptions } from '../pipeline/convert.js';
import { RecentNotifications, type NotificationIdentity } from '../versions/repeats.js';
import type { ConvertTask, TaskResult } from './conversion.js';
import { backoffSeconds, decideFate, type Fate, type ObjectResult } from './fate.js';
import type { LeaseEnd, Leases, MessageLease } from './lease.js';

export type DuplicateCheck = 'always' | 'redeliveries';

export interface HandlerConfig {
  outputBucket: string;
  outputPrefix: string;
  outputKeyTemplate: string;
  /** Format name → file extension, in output (and commit) order. */
  formats: { name: string; extension: string }[];
  engine: EngineOptions;
  /** Types pinned for a key, from SCHEMA_MAP; undefined when none applies. */
  pinnedTypesFor(key: string): Promise<EngineOptions['pinnedTypes']>;
  /**
   * When to look at the outputs (a HEAD each) before converting: on `redeliveries` only, where an
   * earlier attempt may have published before it failed, or `always`. Repeats that reach this
   * process are caught in memory either way.
   */
  duplicateCheck: DuplicateCheck;
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
  aws: ConvertTask['aws'];
  /** SCHEMA_REGISTRY and its rules, passed to every task. */
  schemaRegistry?: ConvertTask['schemaRegistry'];
}

export interface HandlerDeps {
  config: HandlerConfig;
  leases: Leases;
  /** Converts one object in the lane its size calls for; never rejects. */
  convert(task: ConvertTask, signal: AbortSignal): Promise<TaskResult>;
  metrics: MetricsBuffer;
  logger: Logger;
  /** The queue's maxReceiveCount: the last attempt dead-letters a transient failure itself, with its reason. */
  maxReceiveCount: number;
  /** True once shutdown began: messages that arrive now are released untouched. */
  stopping(): boolean;
}

/** Objects being converted now, for the InFlight gauge and the health endpoint. */
export interface InFlight {
  count: number;
}

type Converted = { event: ObjectEvent; result: TaskResult } | { event: ObjectEvent; skipped: string };

export function createMessageHandler(deps: HandlerDeps, inFlight: InFlight): (message: Message) => Promise<LeaseEnd> {
  const { config, metrics } = deps;
  const recent = new RecentNotifications();

  return async function handleMessage(message: Message): Promise<LeaseEnd> {
    const lease = deps.leases.take(message);
    try {
      return await handleLeased(lease);
    } catch (error) {
      // A bug, not the file's fault: the lease must still end (its heartbeat stopped), and the
      // message comes back after a backoff like any transient failure.
      deps.logger.error({ err: error, messageId: message.MessageId }, 'message handler failed');
      if (lease.ended) throw error;
      const attempt = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
      return lease.end({
        kind: 'retry',
        delaySeconds: backoffSeconds(attempt, config.backoffBaseSeconds, config.backoffMaxSeconds),
        failure: classifyFailure(error),
      });
    }
  };

  async function handleLeased(lease: MessageLease): Promise<LeaseEnd> {
    const { message } = lease;
    if (deps.stopping()) return lease.end({ kind: 'release' });
    const log = deps.logger.child({ messageId: message.MessageId });
    metrics.count(MetricName.MessagesReceived);
    let notification;
    try {
      notification = parseNotification(message.Body ?? '');
    } catch (error) {
      const fate: Fate = { kind: 'dead-letter', failure: classifyFailure(error) };
      return finish(lease.end(fate), fate, log);
    }
    if (notification.kind === 'test-event') {
      log.info({ bucket: notification.bucket }, 's3:TestEvent acknowledged');
      return lease.end({ kind: 'ack' });
    }

    const attempt = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    const signal = lease.cutShort.signal;
    inFlight.count += notification.objects.length;
    metrics.gauge(MetricName.InFlight, inFlight.count);
    let converted: Converted[];
    try {
      converted = await Promise.all(
        notification.objects.map((event) =>
          convertOne(event, attempt, signal).catch((error: unknown) => ({ event, result: { outcome: 'failed' as const, failure: classifyFailure(error) } })),
        ),
      );
    } finally {
      inFlight.count -= notification.objects.length;
      metrics.gauge(MetricName.InFlight, inFlight.count);
    }
    // Work cut short by shutdown is not a failure of the file: its message goes to another consumer.
    const cutShort = signal.aborted && converted.some((entry) => 'result' in entry && entry.result.outcome === 'failed');
    const results = converted.map((entry) => (cutShort ? resultOf(entry) : record(entry, log)));
    const fate = decideFate({
      results,
      attempt,
      maxReceiveCount: deps.maxReceiveCount,
      cutShort,
      backoff: { baseSeconds: config.backoffBaseSeconds, maxSeconds: config.backoffMaxSeconds },
      random: Math.random(),
    });
    return finish(lease.end(fate), fate, log, attempt);
  }

  async function finish(ending: Promise<LeaseEnd>, fate: Fate, log: Logger, attempt = 1): Promise<LeaseEnd> {
    const end = await ending;
    if (fate.kind === 'release') log.info('released unfinished message at shutdown');
    else if (fate.kind === 'retry') {
      metrics.count(MetricName.TransientRetries);
      log.warn({ bucket: fate.object?.bucket, key: fate.object?.key, code: fate.failure.code, attempts: attempt, retryInSeconds: fate.delaySeconds }, 'transient failure; will retry');
    } else if (fate.kind === 'dead-letter' && end === 'dead-lettered') {
      metrics.count(MetricName.FilesDeadLettered);
      log.warn({ outcome: 'dead-lettered', code: fate.failure.code, reason: fate.failure.message }, 'dead-lettered');
    }
    return end;
  }

  async function convertOne(event: ObjectEvent, attempt: number, signal: AbortSignal): Promise<Converted> {
    if (!isObjectCreated(event)) return { event, skipped: `event ${event.eventName}` };
    if (!isCsvKey(event.key)) return { event, skipped: 'not a CSV key' };
    const pinnedTypes = await config.pinnedTypesFor(event.key).catch((error: unknown) => {
      // A schema file we cannot read is our configuration's fault, not the object's: retry later.
      if (error instanceof PermanentError) throw error;
      throw new TransientError('SCHEMA_UNAVAILABLE', `pinned schema for ${event.key} could not be read: ${(error as Error).message}`);
    });
    const stem = stemOf(event.key);
    const outputs = config.formats.map((format) => ({
      format: format.name,
      bucket: config.outputBucket,
      key: renderKeyTemplate(config.outputKeyTemplate, { prefix: config.outputPrefix, format: format.name, stem, ext: format.extension, bucket: event.bucket }),
    }));
    const tooLong = outputs.find((output) => Buffer.byteLength(output.key) > 1024);
    if (tooLong !== undefined) {
      throw new PermanentError('UNSUPPORTED_INPUT', `the output key would be ${Buffer.byteLength(tooLong.key)} bytes; S3 keys are at most 1024 bytes (shorten the source key or OUTPUT_KEY_TEMPLATE)`);
    }
    const task: ConvertTask = {
      source: { bucket: event.bucket, key: event.key, etag: event.eTag, sequencer: event.sequencer, size: event.size },
      outputs,
      options: pinnedTypes ? { ...config.engine, pinnedTypes } : config.engine,
      checkOutputsFirst: config.duplicateCheck === 'always' || attempt > 1,
      aws: config.aws,
      ...(config.schemaRegistry ? { schemaRegistry: config.schemaRegistry } : {}),
    };
    const identity: NotificationIdentity | undefined = event.eTag
      ? { bucket: event.bucket, key: event.key, etag: event.eTag, sequencer: event.sequencer, eventTime: event.eventTime }
      : undefined;
    if (identity) {
      // No await between the last look and track(): two repeats cannot both decide to convert.
      for (let pending = recent.pending(identity); pending; pending = recent.pending(identity)) {
        if ((await pending) === 'converted') return { event, result: { outcome: 'duplicate' } };
      }
      if (recent.wasConverted(identity)) return { event, result: { outcome: 'duplicate' } };
    }
    const running = deps.convert(task, signal);
    if (identity) recent.track(identity, running.then((result) => (result.outcome === 'failed' ? 'not-converted' : 'converted')));
    return { event, result: await running };
  }

  /** What one object's outcome means for its message. */
  function resultOf(entry: Converted): ObjectResult {
    if ('skipped' in entry) return { kind: 'skipped' };
    const { result, event } = entry;
    if (result.outcome !== 'failed') return { kind: result.outcome };
    if (result.failure.kind === 'gone') return { kind: 'gone' };
    return { kind: 'failed', failure: result.failure, object: { bucket: event.bucket, key: event.key } };
  }

  /** Logs and counts one object's outcome, and says what it means for the message. */
  function record(entry: Converted, log: Logger): ObjectResult {
    if ('skipped' in entry) {
      metrics.count(MetricName.FilesSkipped);
      log.info({ key: entry.event.key, reason: entry.skipped }, 'skipped');
      return { kind: 'skipped' };
    }
    const { result, event } = entry;
    const fileLog = log.child({ bucket: event.bucket, key: event.key });
    for (const problem of result.cleanupFailures ?? []) fileLog.warn({ problem }, 'cleanup after a failure failed');
    switch (result.outcome) {
      case 'converted': {
        metrics.count(MetricName.FilesConverted);
        metrics.count(MetricName.RowsConverted, result.rows);
        metrics.observe(MetricName.BytesIn, result.bytesIn, 'Bytes');
        metrics.observe(MetricName.BytesOut, result.bytesOut, 'Bytes');
        metrics.observe(MetricName.ConversionMs, result.conversionMs, 'Milliseconds');
        if (event.eventTime) metrics.observe(MetricName.EndToEndLatencyMs, Date.now() - event.eventTime.getTime(), 'Milliseconds');
        for (const change of result.schemaChanges ?? []) {
          metrics.count(MetricName.SchemaChanges);
          fileLog.info({ schemaChange: change.kind, dataset: change.dataset, column: change.column, from: change.from, to: change.to }, 'dataset schema changed');
        }
        // The common path creates every output; anything else (an older version replaced…) is worth a word.
        const unusual = result.published.filter((output) => output.how !== 'created');
        fileLog.info(
          {
            outcome: 'converted',
            rows: result.rows,
            columns: result.columns.map((c) => `${c.name}:${c.type}`).join(', '),
            ms: Math.round(result.conversionMs),
            bytesIn: result.bytesIn,
            bytesOut: result.bytesOut,
            ...(unusual.length > 0 ? { published: result.published } : {}),
          },
          'converted',
        );
        return { kind: 'converted' };
      }
      case 'duplicate':
        metrics.count(MetricName.DuplicatesSkipped);
        fileLog.info({ outcome: 'duplicate' }, 'outputs already current; skipped');
        return { kind: 'duplicate' };
      case 'superseded':
        metrics.count(MetricName.FilesSuperseded);
        fileLog.info({ outcome: 'superseded', reason: result.reason }, 'a newer version replaced this one; left to its own notification');
        return { kind: 'superseded' };
      case 'failed':
        return recordFailure(result.failure, event, fileLog);
    }
  }

  function recordFailure(failure: Failure, event: ObjectEvent, fileLog: Logger): ObjectResult {
    if (failure.kind === 'gone') {
      metrics.count(MetricName.FilesGone);
      // Rare by design (a 404 is confirmed by a second request first): a person should see each one.
      fileLog.warn({ outcome: 'gone', reason: failure.message }, 'object no longer exists; acknowledged');
      return { kind: 'gone' };
    }
    metrics.count(MetricName.FilesFailed);
    const level = failure.kind === 'permanent' ? 'warn' : 'error';
    fileLog[level]({ outcome: failure.kind, code: failure.code, reason: failure.message }, 'conversion failed');
    return { kind: 'failed', failure, object: { bucket: event.bucket, key: event.key } };
  }
}
