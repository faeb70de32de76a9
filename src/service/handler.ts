/**
 * Handles one SQS message: parse it, convert every CSV object it names on the pool, then decide the
 * message's fate once: acknowledge, dead-letter with a reason, or leave it for a retry with backoff.
 */
import { ChangeMessageVisibilityCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { renderKeyTemplate } from '../config/key-template.js';
import { classifyFailure, PermanentError, TransientError, type Failure } from '../errors.js';
import { isCsvKey, stemOf } from '../events/keys.js';
import { isObjectCreated, parseNotification, type ObjectEvent } from '../events/parse.js';
import { MetricName, type MetricsBuffer } from '../metrics/cloudwatch.js';
import type { EngineOptions } from '../pipeline/convert.js';
import { deadLetter } from './dead-letter.js';
import type { ConversionPool } from './pool.js';
import { RecentConversions, type ObjectVersion } from './recent.js';
import type { ConvertTask, TaskResult } from './worker.js';

export type DuplicateCheck = 'always' | 'redeliveries';

export interface HandlerConfig {
  outputBucket: string;
  outputPrefix: string;
  outputKeyTemplate: string;
  /** Format name → file extension, in output order. */
  formats: { name: string; extension: string }[];
  engine: EngineOptions;
  /** Types pinned for a key, from SCHEMA_MAP; undefined when none applies. */
  pinnedTypesFor(key: string): Promise<EngineOptions['pinnedTypes']>;
  /**
   * When to look at the outputs (two HEADs) before converting: on `redeliveries` only, where an
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
  sqs: SQSClient;
  queueUrl: string;
  dlqUrl: string;
  pool: ConversionPool;
  metrics: MetricsBuffer;
  logger: Logger;
  /** The queue's maxReceiveCount: the last attempt dead-letters a transient failure itself, with its reason. */
  maxReceiveCount?: number;
  /** Visibility extensions while a message is handled; stopped before it is released or acknowledged. */
  heartbeat?: { intervalSeconds: number; visibilityTimeout: number };
}

/** In-flight work the service can see (for InFlight, health and shutdown). */
export interface InFlight {
  count: number;
  /** Aborting releases the message for another consumer. */
  readonly controllers: Set<AbortController>;
  /** Set once shutdown begins: new messages are released untouched. */
  stopping: boolean;
}

type ObjectOutcome = { event: ObjectEvent; result: TaskResult } | { event: ObjectEvent; skipped: string };

/** Exponential backoff from the receive count, with jitter so retries of a burst spread out. */
export function backoffSeconds(receiveCount: number, base: number, max: number): number {
  const exponential = Math.min(max, base * 2 ** Math.max(0, receiveCount - 1));
  return Math.min(max, Math.round(exponential * (0.8 + Math.random() * 0.4)));
}

export function createMessageHandler(deps: HandlerDeps, inFlight: InFlight): (message: Message) => Promise<Message | undefined> {
  const { config, metrics } = deps;

  const beats = new Map<string, { stop(): Promise<void> }>();
  const recent = new RecentConversions();

  function startHeartbeat(message: Message): { stop(): Promise<void> } {
    const options = deps.heartbeat;
    if (!options) return { stop: async () => {} };
    let last: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      last = deps.sqs
        .send(new ChangeMessageVisibilityCommand({ QueueUrl: deps.queueUrl, ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: options.visibilityTimeout }))
        .catch((error: unknown) => deps.logger.warn({ err: error, messageId: message.MessageId }, 'heartbeat failed'));
    }, options.intervalSeconds * 1000);
    return {
      async stop() {
        clearInterval(timer);
        await last;
      },
    };
  }

  async function release(message: Message, seconds: number): Promise<void> {
    // A heartbeat landing after the release would hide the message again for a whole timeout.
    await beats.get(message.MessageId ?? '')?.stop();
    try {
      await deps.sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: deps.queueUrl, ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: seconds }),
      );
    } catch (error) {
      // The message will reappear after its current visibility timeout anyway.
      deps.logger.warn({ err: error, messageId: message.MessageId }, 'could not change message visibility');
    }
  }

  async function convertOne(event: ObjectEvent, attempt: number, signal: AbortSignal, log: Logger): Promise<ObjectOutcome> {
    if (!isObjectCreated(event)) {
      return { event, skipped: `event ${event.eventName}` };
    }
    if (!isCsvKey(event.key)) return { event, skipped: 'not a CSV key' };
    const stem = stemOf(event.key);
    const pinnedTypes = await config.pinnedTypesFor(event.key).catch((error: unknown) => {
      // A schema file we cannot read is our configuration's fault, not the object's: retry later.
      if (error instanceof PermanentError) throw error;
      throw new TransientError('SCHEMA_UNAVAILABLE', `pinned schema for ${event.key} could not be read: ${(error as Error).message}`);
    });
    const outputKeys = config.formats.map((format) =>
      renderKeyTemplate(config.outputKeyTemplate, { prefix: config.outputPrefix, format: format.name, stem, ext: format.extension, bucket: event.bucket }),
    );
    const tooLong = outputKeys.find((key) => Buffer.byteLength(key) > 1024);
    if (tooLong !== undefined) {
      throw new PermanentError('UNSUPPORTED_INPUT', `the output key would be ${Buffer.byteLength(tooLong)} bytes; S3 keys are at most 1024 bytes (shorten the source key or OUTPUT_KEY_TEMPLATE)`);
    }
    const task: ConvertTask = {
      source: { bucket: event.bucket, key: event.key, etag: event.eTag },
      outputs: config.formats.map((format) => ({
        format: format.name,
        bucket: config.outputBucket,
        key: renderKeyTemplate(config.outputKeyTemplate, {
          prefix: config.outputPrefix,
          format: format.name,
          stem,
          ext: format.extension,
          bucket: event.bucket,
        }),
      })),
      options: pinnedTypes ? { ...config.engine, pinnedTypes } : config.engine,
      skipDuplicates: config.duplicateCheck === 'always' || attempt > 1,
      aws: config.aws,
      ...(config.schemaRegistry ? { schemaRegistry: config.schemaRegistry } : {}),
    };
    const version: ObjectVersion | undefined = event.eTag ? { bucket: event.bucket, key: event.key, etag: event.eTag } : undefined;
    if (version) {
      // No await between the last look and track(): two repeats cannot both decide to convert.
      for (let pending = recent.pending(version); pending; pending = recent.pending(version)) {
        if (await pending) return { event, result: { outcome: 'duplicate' } };
      }
      if (recent.wasConverted(version)) return { event, result: { outcome: 'duplicate' } };
    }
    const running = deps.pool.run(task, signal);
    if (version) recent.track(version, running);
    const result = await running;
    log.debug({ key: event.key, outcome: result.outcome }, 'object done');
    return { event, result };
  }

  function record(outcome: ObjectOutcome, log: Logger): void {
    if ('skipped' in outcome) {
      metrics.count(MetricName.FilesSkipped);
      log.info({ key: outcome.event.key, reason: outcome.skipped }, 'skipped');
      return;
    }
    const { result, event } = outcome;
    const fileLog = log.child({ bucket: event.bucket, key: event.key });
    if (result.outcome === 'converted') {
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
      fileLog.info({ outcome: 'converted', rows: result.rows, columns: result.columns.map((c) => `${c.name}:${c.type}`).join(', '), ms: Math.round(result.conversionMs), bytesIn: result.bytesIn, bytesOut: result.bytesOut }, 'converted');
    } else if (result.outcome === 'duplicate') {
      metrics.count(MetricName.DuplicatesSkipped);
      fileLog.info({ outcome: 'duplicate' }, 'outputs already current; skipped');
    } else if (result.failure.kind === 'gone') {
      metrics.count(MetricName.FilesGone);
      // Rare by design (a 404 is confirmed by a second request first): a person should see each one.
      fileLog.warn({ outcome: 'gone', reason: result.failure.message }, 'object no longer exists; acknowledged');
    } else {
      metrics.count(MetricName.FilesFailed);
      const level = result.failure.kind === 'permanent' ? 'warn' : 'error';
      fileLog[level]({ outcome: result.failure.kind, code: result.failure.code, reason: result.failure.message }, 'conversion failed');
    }
  }

  return async function handleMessage(message: Message): Promise<Message | undefined> {
    if (inFlight.stopping) {
      await release(message, 0);
      return undefined;
    }
    const beat = startHeartbeat(message);
    beats.set(message.MessageId ?? '', beat);
    try {
      return await handleOne(message);
    } finally {
      beats.delete(message.MessageId ?? '');
      await beat.stop();
    }
  };

  async function handleOne(message: Message): Promise<Message | undefined> {
    const log = deps.logger.child({ messageId: message.MessageId });
    if (inFlight.stopping) {
      await release(message, 0);
      return undefined;
    }
    metrics.count(MetricName.MessagesReceived);
    let notification;
    try {
      notification = parseNotification(message.Body ?? '');
    } catch (error) {
      return rejectMessage(message, classifyFailure(error), log);
    }
    if (notification.kind === 'test-event') {
      log.info({ bucket: notification.bucket }, 's3:TestEvent acknowledged');
      return message;
    }

    const attempt = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    const controller = new AbortController();
    inFlight.controllers.add(controller);
    inFlight.count += notification.objects.length;
    metrics.gauge(MetricName.InFlight, inFlight.count);
    let outcomes: ObjectOutcome[];
    try {
      outcomes = await Promise.all(
        notification.objects.map((event) =>
          convertOne(event, attempt, controller.signal, log).catch((error: unknown) => ({
            event,
            result: { outcome: 'failed' as const, failure: classifyFailure(error) },
          })),
        ),
      );
    } finally {
      inFlight.controllers.delete(controller);
      inFlight.count -= notification.objects.length;
      metrics.gauge(MetricName.InFlight, inFlight.count);
    }
    // Shutdown ran out of grace. A message whose files all finished is acknowledged as usual; one
    // with a file cut short goes to another consumer now, not after a visibility timeout.
    const cutShort = outcomes.some((outcome) => 'result' in outcome && outcome.result.outcome === 'failed');
    if (controller.signal.aborted && cutShort) {
      log.info('released unfinished message at shutdown');
      await release(message, 0);
      return undefined;
    }
    for (const outcome of outcomes) record(outcome, log);

    const failures = outcomes.flatMap((outcome) =>
      'result' in outcome && outcome.result.outcome === 'failed' ? [{ event: outcome.event, failure: outcome.result.failure }] : [],
    );
    const transient = failures.find((failure) => failure.failure.kind === 'transient');
    if (transient) {
      if (deps.maxReceiveCount !== undefined && attempt >= deps.maxReceiveCount) {
        return rejectMessage(
          message,
          { kind: 'permanent', code: 'RETRIES_EXHAUSTED', message: `s3://${transient.event.bucket}/${transient.event.key}: still failing after ${attempt} attempts: ${transient.failure.code}: ${transient.failure.message}` },
          log,
        );
      }
      const delay = backoffSeconds(attempt, config.backoffBaseSeconds, config.backoffMaxSeconds);
      metrics.count(MetricName.TransientRetries);
      log.warn({ key: transient.event.key, code: transient.failure.code, attempts: attempt, retryInSeconds: delay }, 'transient failure; will retry');
      await release(message, delay);
      return undefined;
    }
    const permanent = failures.find((failure) => failure.failure.kind === 'permanent');
    if (permanent) {
      const failure = { ...permanent.failure, message: `s3://${permanent.event.bucket}/${permanent.event.key}: ${permanent.failure.message}` };
      return rejectMessage(message, failure, log);
    }
    return message;
  }

  async function rejectMessage(message: Message, failure: Failure, log: Logger): Promise<Message | undefined> {
    try {
      await deadLetter(deps.sqs, deps.dlqUrl, message, failure);
    } catch (error) {
      // Not dead-lettered, so not deleted: it comes back, and the redrive policy is the backstop.
      log.error({ err: error, code: failure.code }, 'could not send to the DLQ; leaving the message');
      return undefined;
    }
    metrics.count(MetricName.FilesDeadLettered);
    log.warn({ outcome: 'dead-lettered', code: failure.code, reason: failure.message }, 'dead-lettered');
    return message;
  }
}
