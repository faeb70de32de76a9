/**
 * The `serve` service: checks the queue and the settings, then runs several sqs-consumer pollers
 * whose messages are handled each under its own lease; SIGTERM drains in-flight work and exits
 * within the container's stop timeout, metrics sent.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import type { Logger } from 'pino';
import { createAwsClients, type AwsClients } from '../aws.js';
import { SchemaMap } from '../config/pinned-schemas.js';
import { QueuePolicyError, queueUrlOfArn, readRedrivePolicy } from '../config/redrive-policy.js';
import type { Settings } from '../config/settings.js';
import { loadFormatOptions } from '../config/format-settings.js';
import type { FormatRegistry } from '../formats/registry.js';
import { MetricsBuffer } from '../metrics/cloudwatch.js';
import type { EngineOptions } from '../pipeline/convert.js';
import { SchemaDocumentStore } from '../schema/store.js';
import { Stores } from '../storage/location.js';
import { AckBatcher } from './acks.js';
import { convertInLane } from './admission.js';
import type { BytesResult, TaskResult, WorkerTask } from './conversion.js';
import { createMessageHandler, type InFlight } from './handler.js';
import { startHealthServer, type PollerState } from './health.js';
import { Leases } from './lease.js';
import { ConversionPool } from './pool.js';

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

/** Kept free before the stop timeout: the process's own exit. */
const EXIT_MARGIN_MS = 2_000;
/** The most the final metrics send may take; what is not sent by then is dropped (and logged). */
const METRICS_CLOSE_MS = 5_000;

export async function startService(settings: Settings, registry: FormatRegistry, logger: Logger): Promise<RunningService> {
  for (const name of settings.formats) {
    if (!registry.has(name)) throw new StartupError(`invalid setting FORMATS: unknown format "${name}" (known: ${registry.names().join(', ')})`);
  }
  const clients = createAwsClients({ endpoint: settings.awsEndpointUrl, region: settings.awsRegion, concurrency: settings.concurrency });
  await checkQueueReachable(clients.sqs, settings.queueUrl);
  const { dlqUrl, maxReceiveCount } = await deadLetterSetup(clients.sqs, settings, logger);
  const schemas = new SchemaMap(settings.schemaMap, new Stores(() => clients));
  await schemas.check().catch((error: Error) => {
    throw new StartupError(`invalid setting SCHEMA_MAP: ${error.message}`);
  });
  const schemaRegistry = settings.schemaRegistry && { location: settings.schemaRegistry, evolution: settings.schemaEvolution, dataset: settings.schemaDataset };
  if (schemaRegistry) {
    await SchemaDocumentStore.forLocation(clients, schemaRegistry.location).check().catch((error: Error) => {
      throw new StartupError(`invalid setting SCHEMA_REGISTRY: ${error.message}`);
    });
  }

  const eventLoopDelay = monitorEventLoopDelay({ resolution: 10 });
  eventLoopDelay.enable();
  const metrics = new MetricsBuffer({
    client: clients.cloudwatch,
    namespace: settings.metricsNamespace,
    dimensions: { Service: settings.metricsServiceName },
    flushSeconds: settings.metricsFlushSeconds,
    enabled: settings.metricsEnabled,
    logger,
  });
  const pool = new ConversionPool<WorkerTask, TaskResult | BytesResult>({
    threads: settings.workerThreads,
    heapMb: settings.workerHeapMb,
    // Files whose sizes add up to an eighth of the heap share a thread; a larger one runs alone.
    budgetBytes: (settings.workerHeapMb * 1024 * 1024) / 8,
  });
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
  const inFlight: InFlight = { count: 0 };
  let stopping = false;
  const acks = new AckBatcher(clients.sqs, settings.queueUrl, logger);
  const leases = new Leases({
    sqs: clients.sqs,
    queueUrl: settings.queueUrl,
    dlqUrl,
    acks,
    logger,
    heartbeat: { intervalSeconds: settings.heartbeatInterval, visibilityTimeout: settings.visibilityTimeout },
  });
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
        ...(schemaRegistry ? { schemaRegistry } : {}),
      },
      leases,
      convert: (task, signal) => convertInLane(task, { clients, registry, pool, heapMb: settings.workerHeapMb }, signal),
      metrics,
      logger,
      maxReceiveCount,
      stopping: () => stopping,
    },
    inFlight,
  );

  // sqs-consumer waits for a whole batch before polling again, so one slow file would stall its
  // poller: several pollers keep CONCURRENCY objects moving, and admission bounds the CPU.
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
      messageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      messageAttributeNames: ['All'],
      pollingCompleteWaitTimeMs: settings.shutdownGraceSeconds * 1000,
      strictReturn: false,
      // Each message's lease heartbeats, acknowledges (ten deletes to a call), releases or dead-letters it.
      shouldDeleteMessages: false,
      handleMessage: async (message) => {
        await handleMessage(message);
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
    // Without an 'error' listener an EventEmitter throws; these are receive failures.
    consumer.on('error', (error) => logger.warn({ err: error }, 'sqs-consumer error'));
    consumer.on('processing_error', (error) => logger.error({ err: error }, 'message handler failed'));
    consumers.push(consumer);
  }

  const loopDelay = () => ({
    p50: Math.round(eventLoopDelay.percentile(50) / 1e5) / 10,
    p99: Math.round(eventLoopDelay.percentile(99) / 1e5) / 10,
    max: Math.round(eventLoopDelay.max / 1e5) / 10,
  });
  let ready = false;
  const health =
    settings.healthPort === 0
      ? undefined
      : await startHealthServer(settings.healthPort, settings.healthMaxPollAgeSeconds, {
          pollers: () => pollers,
          ready: () => ready && !stopping,
          details: () => ({ inFlight: inFlight.count, stopping, eventLoopDelayMs: loopDelay(), totals: metrics.snapshot() }),
        });

  for (const consumer of consumers) consumer.start();
  ready = true;
  logger.info(
    { queueUrl: settings.queueUrl, dlqUrl, maxReceiveCount, pollers: pollerCount, concurrency: settings.concurrency, threads: pool.threads, formats: settings.formats },
    'serving',
  );

  const idle = () => !consumers.some((consumer) => consumer.status.isPolling) && leases.size === 0;
  async function waitUntil(done: () => boolean, deadline: number): Promise<boolean> {
    while (!done() && Date.now() < deadline) await sleep(50);
    return done();
  }

  let stopped: Promise<void> | undefined;
  async function stop(): Promise<void> {
    stopped ??= (async () => {
      const signalled = Date.now();
      const exitBy = signalled + settings.stopTimeoutSeconds * 1000 - EXIT_MARGIN_MS;
      const workBy = exitBy - METRICS_CLOSE_MS;
      stopping = true;
      logger.info({ inFlight: inFlight.count, graceSeconds: settings.shutdownGraceSeconds, stopTimeoutSeconds: settings.stopTimeoutSeconds }, 'stopping: no new messages');
      for (const consumer of consumers) consumer.stop();
      // A poller stays "polling" until its last receive returned; messages that arrive now are released.
      if (!(await waitUntil(idle, Math.min(workBy, signalled + settings.shutdownGraceSeconds * 1000)))) {
        logger.warn({ unfinished: inFlight.count }, 'grace period over: releasing unfinished messages');
        // Cooperative: work stops at its next safe point, never between or inside a publish's commits,
        // so a publish under way finishes (or fails) by itself first.
        leases.cutAllShort();
        if (!(await waitUntil(idle, workBy))) {
          // Only a publish that outlasts the stop timeout gets here: ECS would kill it anyway. Its
          // message reappears after its visibility timeout and the next delivery completes the pair.
          logger.error({ unfinished: leases.size }, 'stop timeout near: exiting with a publish still under way');
        }
      }
      // The deletes still waiting for company go now: a message left undeleted would come back.
      await acks.close();
      const flushed = await Promise.race([metrics.close().then(() => true), sleep(Math.max(0, exitBy - Date.now())).then(() => false)]);
      if (!flushed) logger.warn('metrics not sent before the stop timeout; dropped');
      await pool.close();
      await health?.close();
      clients.destroy();
      eventLoopDelay.disable();
      logger.info({ totals: metrics.snapshot(), eventLoopDelayMs: loopDelay(), stopSeconds: (Date.now() - signalled) / 1000 }, 'stopped');
    })();
    return stopped;
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

/**
 * The queue must have a RedrivePolicy (or transient failures would retry until retention deletes
 * them); its DLQ is where the service sends dead letters unless DLQ_URL names another.
 */
async function deadLetterSetup(sqs: SQSClient, settings: Settings, logger: Logger): Promise<{ dlqUrl: string; maxReceiveCount: number }> {
  let policy;
  try {
    policy = await readRedrivePolicy(sqs, settings.queueUrl);
  } catch (error) {
    if (error instanceof QueuePolicyError) throw new StartupError(`invalid setting QUEUE_URL: ${error.message}`);
    throw error;
  }
  if (settings.dlqUrl) {
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: settings.dlqUrl, AttributeNames: ['QueueArn'] })).catch((error: Error) => {
      throw new StartupError(`invalid setting DLQ_URL: ${settings.dlqUrl} cannot be read (${error.name}: ${error.message})`);
    });
    if (Attributes?.QueueArn !== policy.deadLetterTargetArn) {
      logger.warn(
        { dlqUrl: settings.dlqUrl, redrivePolicyTarget: policy.deadLetterTargetArn },
        'DLQ_URL is not the DLQ of the queue’s RedrivePolicy: dead letters with reasons go to DLQ_URL, messages SQS moves itself go to the other',
      );
    }
    return { dlqUrl: settings.dlqUrl, maxReceiveCount: policy.maxReceiveCount };
  }
  return { dlqUrl: await queueUrlOfArn(sqs, policy.deadLetterTargetArn), maxReceiveCount: policy.maxReceiveCount };
}

export type { AwsClients };
