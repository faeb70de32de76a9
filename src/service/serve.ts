/**
 * The `serve` service: several sqs-consumer pollers feed a worker-thread pool, each message is
 * decided once (ack, dead-letter, retry), and SIGTERM drains in-flight work within a grace period.
 */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import type { Logger } from 'pino';
import { createAwsClients, type AwsClients } from '../aws.js';
import type { Settings } from '../config/settings.js';
import { loadFormatOptions } from '../config/format-settings.js';
import { deadLetterQueueOf, QueueLookupError } from '../dlq/queues.js';
import type { FormatRegistry } from '../formats/registry.js';
import { MetricsBuffer } from '../metrics/cloudwatch.js';
import type { EngineOptions } from '../pipeline/convert.js';
import { Stores } from '../storage/location.js';
import { AckBatcher } from './acks.js';
import { createMessageHandler, type InFlight } from './handler.js';
import { startHealthServer, type PollerState } from './health.js';
import { createConversionPool } from './pool.js';
import { SchemaMap } from './schemas.js';

export interface RunningService {
  /** Resolves when the service has drained and released everything; idempotent. */
  stop(): Promise<void>;
  readonly healthPort: number | undefined;
  readonly dlqUrl: string;
  readonly metrics: MetricsBuffer;
}

/** Start-up problems that are the operator's to fix; the message names the setting. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export async function startService(settings: Settings, registry: FormatRegistry, logger: Logger): Promise<RunningService> {
  for (const name of settings.formats) {
    if (!registry.has(name)) throw new StartupError(`invalid setting FORMATS: unknown format "${name}" (known: ${registry.names().join(', ')})`);
  }
  const clients = createAwsClients({ endpoint: settings.awsEndpointUrl, region: settings.awsRegion, concurrency: settings.concurrency });
  await checkQueueReachable(clients.sqs, settings.queueUrl);
  const dlqUrl = settings.dlqUrl ?? (await dlqFromRedrivePolicy(clients.sqs, settings.queueUrl));
  const redrive = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: settings.queueUrl, AttributeNames: ['RedrivePolicy'] }))).Attributes?.RedrivePolicy;
  const maxReceiveCount = redrive ? Number((JSON.parse(redrive) as { maxReceiveCount?: number | string }).maxReceiveCount) || undefined : undefined;
  const schemas = new SchemaMap(settings.schemaMap, new Stores(() => clients));
  await schemas.check().catch((error: Error) => {
    throw new StartupError(`invalid setting SCHEMA_MAP: ${error.message}`);
  });

  const metrics = new MetricsBuffer({
    client: clients.cloudwatch,
    namespace: settings.metricsNamespace,
    dimensions: { Service: settings.metricsServiceName },
    flushSeconds: settings.metricsFlushSeconds,
    enabled: settings.metricsEnabled,
    logger,
  });
  const pool = createConversionPool({ threads: settings.workerThreads, concurrency: settings.concurrency, heapMb: settings.workerHeapMb });
  const engine: EngineOptions = {
    parser: settings.csvParser,
    delimiter: settings.csvDelimiter,
    encoding: settings.csvEncoding,
    rowGroupSize: settings.rowGroupSize,
    formatOptions: loadFormatOptions(registry),
    rowGroupBytes: settings.rowGroupBytes,
    maxObjectBytes: settings.maxObjectBytes,
    tmpDir: settings.tmpDir,
  };
  const inFlight: InFlight = { count: 0, controllers: new Set(), stopping: false };
  const acks = new AckBatcher(clients.sqs, settings.queueUrl, logger);
  const handleMessage = createMessageHandler(
    {
      config: {
        outputBucket: settings.outputBucket,
        outputPrefix: settings.outputPrefix,
        outputKeyTemplate: settings.outputKeyTemplate,
        formats: settings.formats.map((name) => ({ name, extension: registry.get(name).extension })),
        engine,
        pinnedTypesFor: (key) => schemas.typesFor(key),
        duplicateCheck: settings.duplicateCheck,
        backoffBaseSeconds: settings.backoffBaseSeconds,
        backoffMaxSeconds: settings.backoffMaxSeconds,
        aws: { endpoint: settings.awsEndpointUrl, region: settings.awsRegion, concurrency: settings.concurrency },
      },
      sqs: clients.sqs,
      queueUrl: settings.queueUrl,
      dlqUrl,
      pool,
      metrics,
      logger,
      maxReceiveCount,
      heartbeat: { intervalSeconds: settings.heartbeatInterval, visibilityTimeout: settings.visibilityTimeout },
    },
    inFlight,
  );

  // sqs-consumer waits for a whole batch before polling again, so one slow file would stall its
  // poller: several pollers keep CONCURRENCY objects moving, and the pool's queue bounds the CPU.
  const pollerCount = Math.ceil(settings.concurrency / settings.batchSize) + 1;
  const pollers: PollerState[] = [];
  const consumers: Consumer[] = [];
  for (let i = 0; i < pollerCount; i++) {
    const state: PollerState = { lastReceiveAt: Date.now(), busy: false };
    pollers.push(state);
    const consumer = Consumer.create({
      queueUrl: settings.queueUrl,
      sqs: clients.sqs,
      // Queue URLs from emulators may name a host we cannot reach; the client's endpoint is right.
      useQueueUrlAsEndpoint: false,
      batchSize: settings.batchSize,
      waitTimeSeconds: settings.waitTimeSeconds,
      visibilityTimeout: settings.visibilityTimeout,
      // The handler runs its own heartbeat, so it can stop it before releasing a message.
      messageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      messageAttributeNames: ['All'],
      pollingCompleteWaitTimeMs: settings.shutdownGraceSeconds * 1000,
      strictReturn: false,
      // Acknowledged messages are deleted ten to a call by `acks`, not one by one by sqs-consumer.
      shouldDeleteMessages: false,
      handleMessage: async (message) => {
        const handled = await handleMessage(message);
        if (handled) await acks.delete(handled);
        return undefined;
      },
    });
    consumer.on('message_received', () => {
      state.busy = true;
      state.lastReceiveAt = Date.now();
    });
    consumer.on('response_processed', () => {
      state.busy = false;
      state.lastReceiveAt = Date.now();
    });
    consumer.on('empty', () => {
      state.lastReceiveAt = Date.now();
    });
    // Without an 'error' listener an EventEmitter throws; these are receive, heartbeat and delete failures.
    consumer.on('error', (error) => logger.warn({ err: error }, 'sqs-consumer error'));
    consumer.on('processing_error', (error) => logger.error({ err: error }, 'message handler failed'));
    consumers.push(consumer);
  }

  let ready = false;
  const health =
    settings.healthPort === 0
      ? undefined
      : await startHealthServer(settings.healthPort, settings.healthMaxPollAgeSeconds, {
          pollers: () => pollers,
          ready: () => ready && !inFlight.stopping,
          details: () => ({ inFlight: inFlight.count, stopping: inFlight.stopping, totals: metrics.snapshot() }),
        });

  for (const consumer of consumers) consumer.start();
  ready = true;
  logger.info(
    { queueUrl: settings.queueUrl, dlqUrl, pollers: pollerCount, concurrency: settings.concurrency, threads: pool.threads, formats: settings.formats },
    'serving',
  );

  let stopping: Promise<void> | undefined;
  async function stop(): Promise<void> {
    stopping ??= (async () => {
      inFlight.stopping = true;
      logger.info({ inFlight: inFlight.count, graceSeconds: settings.shutdownGraceSeconds }, 'stopping: no new messages');
      for (const consumer of consumers) consumer.stop();
      // A poller stays "polling" until its last receive returned and every message from it was
      // handled and deleted; messages that arrive now are released at once by the handler.
      const deadline = Date.now() + settings.shutdownGraceSeconds * 1000;
      await waitUntilIdle(consumers, deadline);
      if (inFlight.controllers.size > 0) {
        logger.warn({ unfinished: inFlight.count }, 'grace period over: releasing unfinished messages');
        for (const controller of inFlight.controllers) controller.abort();
        await waitUntilIdle(consumers, Date.now() + 10_000);
      }
      await metrics.close();
      await pool.close();
      await health?.close();
      clients.destroy();
      logger.info({ totals: metrics.snapshot() }, 'stopped');
    })();
    return stopping;
  }

  return { stop, healthPort: health?.port, dlqUrl, metrics };
}

/** The readiness check: a queue we cannot read is a setting to fix, not something to retry quietly. */
async function checkQueueReachable(sqs: SQSClient, queueUrl: string): Promise<void> {
  try {
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  } catch (error) {
    throw new StartupError(`invalid setting QUEUE_URL: ${queueUrl} cannot be read (${(error as Error).name}: ${(error as Error).message})`);
  }
}

/** DLQ_URL is optional: the queue's RedrivePolicy names the DLQ. */
async function dlqFromRedrivePolicy(sqs: SQSClient, queueUrl: string): Promise<string> {
  try {
    return await deadLetterQueueOf(sqs, queueUrl);
  } catch (error) {
    if (error instanceof QueueLookupError) throw new StartupError(`invalid setting DLQ_URL: not set, and ${error.message}`);
    throw error;
  }
}

async function waitUntilIdle(consumers: Consumer[], deadline: number): Promise<void> {
  while (consumers.some((consumer) => consumer.status.isPolling) && Date.now() < deadline) await sleep(50);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export type { AwsClients };
