/**
 * Storms: a fault-injecting proxy between the service and the emulator fails a fifth of the S3 and
 * SQS calls (503 SlowDown / ServiceUnavailable, connections reset before the call, responses lost
 * after it) and throttles every CloudWatch call. All 200 files must still end converted, whole and
 * readable, nothing in the DLQ, and the retries that reached our handler must be counted.
 */
import { expect } from 'chai';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { sharedEmulator } from '../support/emulator.js';
import { startFaultProxy, type FaultProxy, type ProxyStats } from '../support/fault-proxy.js';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';
import {
  asDeadLetter,
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
  sleep,
  serviceEnv,
  waitFor,
  type Pipeline,
} from './harness.js';

const FILES = 200;
const FAULT_RATE = 0.2;

function storeCsv(index: number): { body: string; rows: number } {
  const rows = 20 + (index % 37) * 5;
  const lines = ['id,store,amount,day'];
  for (let r = 0; r < rows; r++) lines.push(`${r},store-${index},${(r * 1.25).toFixed(2)},2024-01-${String((r % 28) + 1).padStart(2, '0')}`);
  return { body: `${lines.join('\n')}\n`, rows };
}

describe('reliability: S3 and SQS storms, CloudWatch throttled', function () {
  this.timeout(480_000);
  let endpoint: string;
  let clients: AwsClients;
  let proxy: FaultProxy;
  let pipeline: Pipeline;
  let service: ServiceProcess;
  const files = new Map<string, { etag: string; rows: number }>();
  let totals: Record<string, number>;
  let stats: ProxyStats;
  let seconds: number;

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && proxy) console.log(`      replay these faults with FAULT_PROXY_SEED=${proxy.seed}`);
  });

  before(async () => {
    endpoint = (await sharedEmulator()).endpoint;
    clients = createAwsClients({ endpoint });
    proxy = await startFaultProxy(endpoint, { journal: Boolean(process.env.FAULT_JOURNAL) });
    pipeline = await createPipeline(clients, 'storm', { maxReceiveCount: 5 });
    // The 200 notifications are queued first (straight to the emulator, no faults): moto's SQS can
    // drop a message sent while another is being deleted, which would look like a lost file.
    await inParallel(
      Array.from({ length: FILES }, (_, i) => i),
      16,
      async (i) => {
        const key = `storm/day-${String(i).padStart(3, '0')}.csv`;
        const { body, rows } = storeCsv(i);
        files.set(key, { etag: await putObject(clients, pipeline.inputBucket, key, body), rows });
      },
    );
    service = await startServiceProcess(
      serviceEnv(pipeline, proxy.endpoint, {
        CONCURRENCY: '16',
        VISIBILITY_TIMEOUT: '15',
        HEARTBEAT_INTERVAL: '4',
        METRICS_ENABLED: 'true',
        METRICS_FLUSH_SECONDS: '2',
        METRICS_NAMESPACE: `Storm/${pipeline.queueUrl.split('/').pop()}`,
      }),
    );
    // The storm starts once the service is up (its start-up checks pass first); only the
    // service's own calls cross the proxy.
    proxy.configure({
      rates: { s3: FAULT_RATE, sqs: FAULT_RATE, cloudwatch: 1 },
      kinds: { s3: ['throttle', 'reset', 'lost-response'], sqs: ['throttle', 'reset', 'lost-response'], cloudwatch: ['throttle'] },
    });
    const started = Date.now();
    // Done when every file was received and the queue stays empty: converted, or (a failure) gone
    // to the DLQ; the assertions below tell which.
    await waitFor(
      'every message handled and the queue empty',
      async () => {
        if (((await service.health()).body.totals?.MessagesReceived ?? 0) < FILES) return false;
        const depth = await queueDepth(clients, pipeline.queueUrl);
        if (depth.visible + depth.inFlight + depth.delayed > 0) return false;
        await sleep(2_000);
        const again = await queueDepth(clients, pipeline.queueUrl);
        return again.visible + again.inFlight + again.delayed === 0;
      },
      360_000,
      1_000,
    );
    seconds = (Date.now() - started) / 1000;
    // Let one more metrics flush be attempted (and throttled) before reading the totals.
    await sleep(2_500);
    totals = (await service.health()).body.totals ?? {};
    stats = proxy.stats();
  });

  after(async () => {
    if (service) console.log(`      service logs: ${await saveLogs(service.logs, `storm-${proxy?.seed}`)}`);
    if (process.env.FAULT_JOURNAL) console.log(`      proxy journal: ${await saveLogs(proxy.journal() as never, `storm-${proxy.seed}-journal`)}`);
    await service?.stop('SIGKILL');
    await proxy?.close();
    clients?.destroy();
  });

  it(`converts every one of ${FILES} files, whole and readable, with ${FAULT_RATE * 100}% of S3 and SQS calls failing`, async () => {
    const outputs = await listKeys(clients, pipeline.outputBucket);
    const wanted = [...files.keys()].flatMap((key) => Object.values(outputKeysFor(key)));
    const letters = (await drainQueue(clients, pipeline.dlqUrl, 1_000)).map(asDeadLetter);
    const lost = letters.map((l) => `${l.keys?.join(' ')}: ${l.code ?? 'no reason (moved by the redrive policy)'} after ${l.attributes.attempts ?? '?'} receives`);
    expect(lost, 'files dead-lettered').to.deep.equal([]);
    expect(wanted.filter((key) => !outputs.has(key)), 'missing outputs').to.deep.equal([]);
    expect(outputs.size, 'unexpected extra objects').to.equal(wanted.length);
    const checks = await readOutputs(endpoint, pipeline.outputBucket, wanted);
    const sourceOf = new Map([...files.entries()].flatMap(([key, file]) => Object.values(outputKeysFor(key)).map((k) => [k, file] as const)));
    const wrong = checks.filter((check) => check.error || check.rows !== sourceOf.get(check.key)!.rows || check.sourceEtag !== sourceOf.get(check.key)!.etag);
    expect(wrong.slice(0, 5), `${wrong.length} outputs wrong`).to.deep.equal([]);
    expect(service.child.exitCode, 'service still running').to.equal(null);
  });

  it('injected faults of every kind on S3 and SQS, at about the configured share', () => {
    const share = (service: 's3' | 'sqs') => {
      const faults = Object.values(stats.faults[service]).reduce((a, b) => a + b, 0);
      return { calls: stats.requests[service], faults, share: faults / stats.requests[service] };
    };
    const s3 = share('s3');
    const sqs = share('sqs');
    console.log(
      `      ${seconds.toFixed(0)} s; S3: ${s3.calls} calls, ${s3.faults} faults ${JSON.stringify(stats.faults.s3)}; ` +
        `SQS: ${sqs.calls} calls, ${sqs.faults} faults ${JSON.stringify(stats.faults.sqs)}; ` +
        `CloudWatch: ${stats.requests.cloudwatch} calls, ${stats.faults.cloudwatch.throttle} throttled (seed ${proxy.seed})`,
    );
    console.log(`      faults by operation: ${JSON.stringify(stats.byOperation)}; emulator errors (not injected): ${stats.upstreamErrors}`);
    for (const [name, s] of [['S3', s3], ['SQS', sqs]] as const) {
      expect(s.share, `${name} fault share`).to.be.within(FAULT_RATE * 0.6, FAULT_RATE * 1.4);
    }
    for (const kind of ['throttle', 'reset', 'lost-response'] as const) {
      expect(stats.faults.s3[kind], `S3 ${kind}`).to.be.greaterThan(0);
      expect(stats.faults.sqs[kind], `SQS ${kind}`).to.be.greaterThan(0);
    }
  });

  it('counts in TransientRetries every retry that reached the handler', () => {
    const retried = logsWith(service.logs, 'transient failure; will retry');
    const codes = new Map<string, number>();
    for (const line of retried) codes.set(String(line.code), (codes.get(String(line.code)) ?? 0) + 1);
    const faults = Object.values(stats.faults.s3).reduce((a, b) => a + b, 0) + Object.values(stats.faults.sqs).reduce((a, b) => a + b, 0);
    console.log(
      `      service totals: ${JSON.stringify(totals)}\n` +
        `      retries at our level: ${totals.TransientRetries ?? 0} (${JSON.stringify(Object.fromEntries(codes))}); ` +
        `${faults} faults injected on S3+SQS, the rest absorbed by SDK retries, which no metric counts`,
    );
    expect(totals.TransientRetries ?? 0).to.equal(retried.length);
    expect(totals.TransientRetries ?? 0, 'some failures outlast the SDK retries at 20%').to.be.greaterThan(0);
    // Redelivered messages whose outputs were already published are recognised, not converted again.
    expect((totals.FilesConverted ?? 0) + (totals.DuplicatesSkipped ?? 0)).to.be.at.least(FILES);
  });

  it('never fails a file because CloudWatch is throttled: every flush failed, every file converted', () => {
    expect(stats.faults.cloudwatch.throttle).to.be.greaterThan(0);
    expect(stats.requests.cloudwatch).to.equal(stats.faults.cloudwatch.throttle);
    expect(totals.MetricsFlushFailures ?? 0).to.be.greaterThan(0);
    expect(totals.FilesFailed ?? 0).to.equal(totals.TransientRetries ?? 0);
  });
});
