/**
 * Drain: SIGTERM while 20 files are in flight. Within the grace period every file is either
 * finished or released for another consumer at once (visible again now, not after the visibility
 * timeout), the process exits 0, and nothing is left hidden in the queue. A second consumer then
 * finishes what the first released.
 */
import { expect } from 'chai';
import { ReceiveMessageCommand, ChangeMessageVisibilityBatchCommand, type Message } from '@aws-sdk/client-sqs';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { parseNotification } from '../../src/events/parse.js';
import { sharedEmulator } from '../support/emulator.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';
import {
  createPipeline,
  drainQueue,
  inParallel,
  listKeys,
  logsWith,
  outputKeysFor,
  putObject,
  queueDepth,
  readOutputs,
  saveLogs,
  serviceEnv,
  waitFor,
  type Pipeline,
} from './harness.js';

const FILES = 20;
const GRACE_SECONDS = 3;
/** Long, so that a message that waits out its visibility timeout is plain to see. */
const VISIBILITY_TIMEOUT = 120;
/** The container's stop timeout in these tests (STOP_TIMEOUT_SECONDS). */
const STOP_TIMEOUT = 25;

/** Half the files are small and finish in the grace period; the other half take far longer. */
function csvFor(index: number): { body: string; rows: number } {
  // Large enough (about 12 MB) that the large files outlast the grace period even with a fast engine.
  const rows = index % 2 === 0 ? 2_000 : 300_000;
  const lines = ['id,sku,qty,price,note'];
  for (let r = 0; r < rows; r++) lines.push(`${r},sku-${(r * 31) % 5000},${r % 17},${(r % 997) / 10},line ${index}-${r}`);
  return { body: `${lines.join('\n')}\n`, rows };
}

describe('reliability: SIGTERM with 20 files in flight', function () {
  this.timeout(300_000);
  let endpoint: string;
  let clients: AwsClients;
  let pipeline: Pipeline;
  const services: ServiceProcess[] = [];

  before(async () => {
    endpoint = (await sharedEmulator()).endpoint;
    clients = createAwsClients({ endpoint });
  });

  after(async () => {
    for (const [i, service] of services.entries()) {
      console.log(`      consumer ${i + 1} logs: ${await saveLogs(service.logs, `drain-consumer-${i + 1}-${Date.now()}`)}`);
      await service.stop('SIGKILL');
    }
    clients?.destroy();
  });

  it('a publish slower than the grace period: the worker is never destroyed mid-publish, both formats land, exit 0 inside the stop timeout', async () => {
    const proxy = await startFaultProxy(endpoint);
    try {
      const pipe = await createPipeline(clients, 'drain-publish', { visibilityTimeout: VISIBILITY_TIMEOUT });
      await drainQueue(clients, pipe.queueUrl, 500);
      // 80,000 rows: converted on the worker thread, not inline.
      const key = 'publish/slow.csv';
      const { parquet, avro } = outputKeysFor(key);
      // The Avro commit (after the Parquet one) reaches S3 only after 14 s: longer than the grace
      // period plus the 10 s a shutdown used to wait before destroying the worker threads.
      proxy.holdRequest((r) => r.service === 's3' && r.method === 'PUT' && r.path === `/${pipe.outputBucket}/${avro}`, 14_000);
      const service = await startServiceProcess(
        serviceEnv(pipe, proxy.endpoint, { VISIBILITY_TIMEOUT: String(VISIBILITY_TIMEOUT), SHUTDOWN_GRACE_SECONDS: '1', STOP_TIMEOUT_SECONDS: String(STOP_TIMEOUT) }),
      );
      services.push(service);
      await putObject(clients, pipe.inputBucket, key, csvFor(1).body);
      await waitFor('the Avro upload to be under way', async () => proxy.stats().heldRequests > 0, 60_000, 50);
      await waitFor('the Parquet output to be published', async () => (await listKeys(clients, pipe.outputBucket)).has(parquet), 10_000, 50);
      const signalled = Date.now();
      const exitCode = await service.stop('SIGTERM');
      const stopSeconds = (Date.now() - signalled) / 1000;
      const outputs = await listKeys(clients, pipe.outputBucket);
      const depth = await queueDepth(clients, pipe.queueUrl);
      console.log(
        `      publish held 14 s, grace 1 s, stop timeout ${STOP_TIMEOUT} s: exit ${exitCode} in ${stopSeconds.toFixed(1)} s; ` +
          `outputs ${JSON.stringify([...outputs.keys()])}; queue ${JSON.stringify(depth)}`,
      );
      expect(exitCode).to.equal(0);
      expect(stopSeconds, 'inside the stop timeout').to.be.below(STOP_TIMEOUT);
      // The publish finished: both formats, the message acknowledged (nothing left to redo).
      expect([...outputs.keys()].sort()).to.deep.equal([avro, parquet]);
      expect(logsWith(service.logs, 'converted').map((line) => line.key)).to.deep.equal([key]);
      expect(depth.visible + depth.inFlight, 'messages left').to.equal(0);
    } finally {
      await proxy.close();
    }
  });

  it('never lets a heartbeat hide a message again after it was released', async () => {
    // Every ChangeMessageVisibility is applied by the emulator at once but answered only after
    // 1.5 s, so a release takes 1.5 s, and a heartbeat (every second) fires while it is awaited.
    const proxy = await startFaultProxy(endpoint);
    try {
      const pipe = await createPipeline(clients, 'drain-beat', { visibilityTimeout: VISIBILITY_TIMEOUT });
      await drainQueue(clients, pipe.queueUrl, 500);
      const keys = [1, 3, 5, 7].map((i) => `beat/slow-${i}.csv`);
      for (const [n, key] of keys.entries()) await putObject(clients, pipe.inputBucket, key, csvFor(2 * n + 1).body);
      proxy.holdResponse((r) => r.service === 'sqs' && r.operation === 'ChangeMessageVisibility', 1_500, 1_000);
      const service = await startServiceProcess(
        serviceEnv(pipe, proxy.endpoint, {
          CONCURRENCY: '4',
          VISIBILITY_TIMEOUT: String(VISIBILITY_TIMEOUT),
          HEARTBEAT_INTERVAL: '1',
          SHUTDOWN_GRACE_SECONDS: '1',
        }),
      );
      services.push(service);
      await waitFor('4 files in flight', async () => (await service.health()).body.inFlight === keys.length, 30_000, 50);
      const exitCode = await service.stop('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 2_000)); // every held answer delivered
      const depth = await queueDepth(clients, pipe.queueUrl);
      const finished = [...(await listKeys(clients, pipe.outputBucket)).keys()].length / 2;
      console.log(`      releases slowed to 1.5 s, heartbeat 1 s: exit ${exitCode}, ${finished} finished, queue ${JSON.stringify(depth)}`);
      expect(exitCode).to.equal(0);
      expect(depth.inFlight, 'released messages hidden again by a heartbeat').to.equal(0);
      expect(depth.visible + finished).to.equal(keys.length);
    } finally {
      await proxy.close();
    }
  });

  it('finishes or releases every file within the grace period, exits 0, and leaves nothing hidden', async () => {
    pipeline = await createPipeline(clients, 'drain', { visibilityTimeout: VISIBILITY_TIMEOUT });
    await drainQueue(clients, pipeline.queueUrl, 500); // the s3:TestEvent
    const files = new Map<string, { etag: string; rows: number }>();
    await inParallel(
      Array.from({ length: FILES }, (_, i) => i),
      8,
      async (i) => {
        const key = `drain/batch-${String(i).padStart(2, '0')}.csv`;
        const { body, rows } = csvFor(i);
        files.set(key, { etag: await putObject(clients, pipeline.inputBucket, key, body), rows });
      },
    );
    await waitFor('all 20 notifications queued', async () => (await queueDepth(clients, pipeline.queueUrl)).visible >= FILES, 20_000);

    const env = serviceEnv(pipeline, endpoint, {
      CONCURRENCY: String(FILES),
      BATCH_SIZE: '10',
      VISIBILITY_TIMEOUT: String(VISIBILITY_TIMEOUT),
      HEARTBEAT_INTERVAL: '5',
      SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
    });
    const first = await startServiceProcess(env);
    services.push(first);
    // Every notification received, and the large files (half of them) still converting: the small
    // ones may be done already (with a fast engine they often finish before the last receive).
    let inFlightAtSignal = 0;
    await waitFor(
      'all 20 files received, the 10 large ones in flight',
      async () => {
        const { body } = await first.health();
        inFlightAtSignal = Number(body.inFlight);
        return (body.totals?.MessagesReceived ?? 0) >= FILES && inFlightAtSignal >= FILES / 2;
      },
      30_000,
      50,
    );

    const signalled = Date.now();
    const exitCode = await first.stop('SIGTERM');
    const stopSeconds = (Date.now() - signalled) / 1000;

    // Straight after the exit: nothing may still be hidden, and every unfinished file is receivable now.
    const depth = await queueDepth(clients, pipeline.queueUrl);
    const outputs = await listKeys(clients, pipeline.outputBucket);
    const finished = [...files.keys()].filter((key) => Object.values(outputKeysFor(key)).every((k) => outputs.has(k)));
    // Everything released must be receivable at once: take what arrives within 3 s.
    const receiveStarted = Date.now();
    const released: Message[] = [];
    while (Date.now() - receiveStarted < 3_000) {
      const { Messages = [] } = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: pipeline.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }),
      );
      released.push(...Messages);
      if (Messages.length === 0 && released.length >= FILES - finished.length) break;
    }
    const receiveSeconds = (Date.now() - receiveStarted) / 1000;
    const releasedKeys = released.flatMap((message) => {
      const parsed = parseNotification(message.Body ?? '');
      return parsed.kind === 'objects' ? parsed.objects.map((o) => o.key) : [];
    });
    const half = (keys: string[]) => keys.map((key) => files.get(key)!.rows);
    const releasedThoughFinished = releasedKeys.filter((key) => finished.includes(key));
    console.log(
      `      SIGTERM with ${inFlightAtSignal} in flight → exit ${exitCode} in ${stopSeconds.toFixed(1)} s (grace ${GRACE_SECONDS} s); ` +
        `${finished.length} finished (rows ${JSON.stringify([...new Set(half(finished))])}), ${releasedKeys.length} released ` +
        `(${releasedThoughFinished.length} of them already finished) and all received again within ${receiveSeconds.toFixed(1)} s of the exit; ` +
        `queue at the exit: ${JSON.stringify(depth)}`,
    );

    expect(exitCode).to.equal(0);
    expect(stopSeconds, 'stopped within the grace period and the release that follows it').to.be.below(GRACE_SECONDS + 10);
    expect(depth.inFlight, 'messages still hidden after the exit (would wait out the visibility timeout)').to.equal(0);
    expect(new Set([...finished, ...releasedKeys]), 'every file finished or released').to.deep.equal(new Set(files.keys()));
    expect(releasedKeys.length, 'files cut short by the grace period (else this test proves no release)').to.be.above(0);
    // Only messages with a file cut short are released; one that finished as the grace period ran
    // out is acknowledged. Every message the service released is receivable now.
    expect(releasedThoughFinished, 'finished files released (they would come back as duplicates)').to.deep.equal([]);
    expect(releasedKeys.length, 'each file released once').to.equal(new Set(releasedKeys).size);
    expect(depth.visible, 'released messages visible at the exit').to.equal(releasedKeys.length);
    expect(logsWith(first.logs, 'released unfinished message at shutdown').length).to.equal(releasedKeys.length);
    // Partial work of a released file is invisible.
    for (const key of files.keys()) {
      if (!finished.includes(key)) expect(Object.values(outputKeysFor(key)).filter((k) => outputs.has(k)), key).to.deep.equal([]);
    }

    // Another consumer takes over what was released and finishes it.
    await clients.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: pipeline.queueUrl,
        Entries: released.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: 0 })),
      }),
    );
    const second = await startServiceProcess(env);
    services.push(second);
    await waitFor(
      'every file converted',
      async () => (await listKeys(clients, pipeline.outputBucket)).size === FILES * 2 && (await queueDepth(clients, pipeline.queueUrl)).inFlight === 0,
      180_000,
      1_000,
    );
    const keys = [...files.keys()].flatMap((key) => Object.values(outputKeysFor(key)));
    const checks = await readOutputs(endpoint, pipeline.outputBucket, keys);
    const rowsOf = new Map([...files.entries()].flatMap(([key, f]) => Object.values(outputKeysFor(key)).map((k) => [k, f.rows] as const)));
    expect(checks.filter((check) => check.error || check.rows !== rowsOf.get(check.key))).to.deep.equal([]);
    expect(await second.stop('SIGTERM')).to.equal(0);
    expect(await drainQueue(clients, pipeline.dlqUrl, 500), 'dead letters').to.deep.equal([]);
  });
});
