import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetMetricDataCommand, ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { runPython } from '../support/python.js';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';
import { createTestPipeline, largeCsv, s3EventBody, type TestPipeline } from '../support/pipeline.js';
import { uniqueName } from '../support/emulator.js';

const SAMPLE = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../samples/sales.csv');

/** Runs `serve` until it exits by itself (a start-up refusal), with everything it printed. */
function runServe(pipeline: TestPipeline, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'serve'], { env: { ...process.env, ...pipeline.env, LOG_PRETTY: 'false', HEALTH_PORT: '0', ...env } });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    // A service that did start would poll forever: the refusal comes within seconds or not at all.
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function smallCsv(i: number): string {
  return `id,when,amount,ok\n${i},2024-05-0${(i % 9) + 1},${i}.5,true\n${i + 1},2024-05-01,2,false\n`;
}

describe('serve: S3 notifications become Parquet and Avro (end to end, real AWS protocol)', function () {
  this.timeout(180_000);
  let pipeline: TestPipeline;
  let service: ServiceProcess;
  let tmp: string;

  before(async () => {
    pipeline = await createTestPipeline('serve');
    service = await startServiceProcess({ ...pipeline.env, CONCURRENCY: '8', METRICS_FLUSH_SECONDS: '1' });
    tmp = await mkdtemp(path.join(os.tmpdir(), 's3cc-serve-'));
  });

  after(async () => {
    if (service) expect(await service.stop()).to.equal(0);
    pipeline?.close();
  });

  async function totals(): Promise<Record<string, number>> {
    return (await service.health()).body.totals ?? {};
  }

  async function waitForTotal(name: string, atLeast: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (((await totals())[name] ?? 0) < atLeast) {
      if (Date.now() > deadline) throw new Error(`${name} stayed below ${atLeast}: ${JSON.stringify(await totals())}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  it('a dropped CSV appears as Parquet and Avro that pyarrow and fastavro read with the right types', async () => {
    await pipeline.put('incoming/2024/sales.csv', await readFile(SAMPLE));
    const parquetKey = 'parquet/incoming/2024/sales.parquet';
    const avroKey = 'avro/incoming/2024/sales.avro';
    await pipeline.waitForObject(pipeline.outputBucket, parquetKey);
    await pipeline.waitForObject(pipeline.outputBucket, avroKey);
    await pipeline.download(pipeline.outputBucket, parquetKey, path.join(tmp, 'sales.parquet'));
    await pipeline.download(pipeline.outputBucket, avroKey, path.join(tmp, 'sales.avro'));
    const report = JSON.parse(
      await runPython(
        `
import json, sys, pyarrow.parquet as pq, fastavro
t = pq.read_table(sys.argv[1])
with open(sys.argv[2], 'rb') as f:
    r = fastavro.reader(f)
    records = list(r)
    fields = {x['name']: x['type'] for x in r.writer_schema['fields']}
print(json.dumps({
  'types': {f.name: str(f.type) for f in t.schema},
  'rows': t.num_rows, 'first_id': t.column('order_id')[0].as_py(),
  'avro_rows': len(records), 'avro_first_id': records[0]['order_id'],
  'avro_shipped': fields['shipped_at'],
}, default=str))
`,
        [path.join(tmp, 'sales.parquet'), path.join(tmp, 'sales.avro')],
      ),
    ) as Record<string, unknown>;
    expect(report.types).to.deep.equal({
      order_id: 'int64',
      order_date: 'date32[day]',
      customer: 'string',
      city: 'string',
      quantity: 'int64',
      unit_price: 'double',
      discount: 'double',
      paid: 'bool',
      shipped_at: 'timestamp[us, tz=UTC]',
      note: 'string',
    });
    expect(report.rows).to.equal(240);
    expect(report.avro_rows).to.equal(240);
    expect(report.first_id).to.equal(1000001);
    expect(report.avro_first_id).to.equal(1000001);
    expect(report.avro_shipped).to.deep.equal(['null', { type: 'long', logicalType: 'timestamp-micros' }]);
  });

  it('50 files dropped at once all convert', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => pipeline.put(`burst/file-${i}.csv`, smallCsv(i))));
    const deadline = Date.now() + 60_000;
    let parquet: string[] = [];
    let avro: string[] = [];
    while (Date.now() < deadline) {
      parquet = await pipeline.listKeys(pipeline.outputBucket, 'parquet/burst/');
      avro = await pipeline.listKeys(pipeline.outputBucket, 'avro/burst/');
      if (parquet.length === 50 && avro.length === 50) break;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    expect(parquet).to.have.length(50);
    expect(avro).to.have.length(50);
    expect(parquet).to.include('parquet/burst/file-49.parquet');
  });

  it('keys with spaces, plus signs, unicode and slashes map to the same output keys', async () => {
    const key = 'odd names/a+b c/ünï çødé+1.csv';
    await pipeline.put(key, smallCsv(1));
    await pipeline.waitForObject(pipeline.outputBucket, 'parquet/odd names/a+b c/ünï çødé+1.parquet');
    await pipeline.waitForObject(pipeline.outputBucket, 'avro/odd names/a+b c/ünï çødé+1.avro');
  });

  it('a malformed CSV lands in the DLQ with its reason and leaves no outputs', async () => {
    await pipeline.put('bad/ragged.csv', 'a,b,c\n1,2,3\n4,5\n');
    let dead;
    const deadline = Date.now() + 30_000;
    while (!dead && Date.now() < deadline) {
      const messages = await pipeline.peek(pipeline.dlqUrl);
      dead = messages.find((message) => message.Body?.includes('ragged.csv'));
    }
    expect(dead, 'dead letter for bad/ragged.csv').to.exist;
    const attributes = dead!.MessageAttributes!;
    expect(attributes['error-code']?.StringValue).to.equal('RAGGED_ROW');
    expect(attributes['error-message']?.StringValue).to.match(/bad\/ragged\.csv.*line 3/);
    expect(attributes['source-message-id']?.StringValue).to.be.a('string').and.not.empty;
    expect(Number(attributes['attempts']?.StringValue)).to.be.at.least(1);
    expect(new Date(attributes['failed-at']!.StringValue!).getTime()).to.be.closeTo(Date.now(), 120_000);
    expect(JSON.parse(dead!.Body!).Records[0].s3.object.key).to.match(/ragged\.csv$/);
    expect(await pipeline.listKeys(pipeline.outputBucket, 'parquet/bad/')).to.deep.equal([]);
    expect(await pipeline.listKeys(pipeline.outputBucket, 'avro/bad/')).to.deep.equal([]);
  });

  it('a body that is not a notification is dead-lettered at once as MALFORMED_MESSAGE', async () => {
    const id = await pipeline.send('this is not json');
    let dead;
    const deadline = Date.now() + 20_000;
    while (!dead && Date.now() < deadline) {
      dead = (await pipeline.peek(pipeline.dlqUrl)).find((message) => message.MessageAttributes?.['source-message-id']?.StringValue === id);
    }
    expect(dead?.MessageAttributes?.['error-code']?.StringValue).to.equal('MALFORMED_MESSAGE');
    expect(dead?.Body).to.equal('this is not json');
  });

  it('a duplicate notification produces no second copy and is counted as skipped', async () => {
    const key = 'dup/once.csv';
    const etag = await pipeline.put(key, smallCsv(7));
    await pipeline.waitForObject(pipeline.outputBucket, 'avro/dup/once.avro');
    await pipeline.waitForObject(pipeline.outputBucket, 'parquet/dup/once.parquet');
    const before = (await totals()).DuplicatesSkipped ?? 0;
    await pipeline.send(s3EventBody(pipeline.inputBucket, key, etag));
    await waitForTotal('DuplicatesSkipped', before + 1);
    expect(await pipeline.listKeys(pipeline.outputBucket, 'parquet/dup/')).to.deep.equal(['parquet/dup/once.parquet']);
    expect(await pipeline.listKeys(pipeline.outputBucket, 'avro/dup/')).to.deep.equal(['avro/dup/once.avro']);
  });

  it('s3:TestEvent is acknowledged and never retried or dead-lettered', async () => {
    const id = await pipeline.send(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: new Date().toISOString(), Bucket: pipeline.inputBucket }));
    await service.waitForLog((line) => line.messageId === id && line.msg === 's3:TestEvent acknowledged');
    const dlq = await pipeline.peek(pipeline.dlqUrl);
    expect(dlq.map((message) => message.MessageAttributes?.['source-message-id']?.StringValue)).to.not.include(id);
  });

  it('a key that is not CSV is acknowledged and counted as skipped', async () => {
    const before = (await totals()).FilesSkipped ?? 0;
    await pipeline.send(s3EventBody(pipeline.inputBucket, 'notes/readme.txt', 'abc'));
    await waitForTotal('FilesSkipped', before + 1);
  });

  it('metrics reach CloudWatch (ListMetrics, GetMetricData)', async () => {
    const namespace = pipeline.env.METRICS_NAMESPACE!;
    const deadline = Date.now() + 30_000;
    let names: string[] = [];
    while (Date.now() < deadline) {
      const listed = await pipeline.clients.cloudwatch.send(new ListMetricsCommand({ Namespace: namespace }));
      names = (listed.Metrics ?? []).map((metric) => metric.MetricName!);
      if (names.includes('FilesConverted') && names.includes('FilesDeadLettered')) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(names).to.include.members(['FilesConverted', 'RowsConverted', 'BytesIn', 'BytesOut', 'ConversionMs', 'FilesDeadLettered']);
    const end = new Date(Date.now() + 60_000);
    const start = new Date(Date.now() - 3_600_000);
    const data = await pipeline.clients.cloudwatch.send(
      new GetMetricDataCommand({
        StartTime: start,
        EndTime: end,
        MetricDataQueries: [
          {
            Id: 'converted',
            MetricStat: {
              Metric: { Namespace: namespace, MetricName: 'FilesConverted', Dimensions: [{ Name: 'Service', Value: 's3-csv-converter' }] },
              Period: 60,
              Stat: 'Sum',
            },
          },
        ],
      }),
    );
    const sum = (data.MetricDataResults?.[0]?.Values ?? []).reduce((a, b) => a + b, 0);
    expect(sum).to.be.at.least(50);
  });
});

describe('serve: retries, shutdown and head-of-line blocking', function () {
  this.timeout(240_000);
  let pipeline: TestPipeline;

  before(async () => {
    pipeline = await createTestPipeline('serve-life');
  });

  after(() => pipeline?.close());

  it('a transient failure (output bucket missing) is retried with backoff and then succeeds', async () => {
    const outputBucket = uniqueName('late-out');
    const service = await startServiceProcess({ ...pipeline.env, OUTPUT_BUCKET: outputBucket });
    try {
      await pipeline.put('retry/later.csv', smallCsv(3));
      const retry = await service.waitForLog((line) => line.msg === 'transient failure; will retry');
      expect(retry.key).to.equal('retry/later.csv');
      await pipeline.clients.s3.send(new CreateBucketCommand({ Bucket: outputBucket }));
      await pipeline.waitForObject(outputBucket, 'parquet/retry/later.parquet', 60_000);
      await pipeline.waitForObject(outputBucket, 'avro/retry/later.avro', 60_000);
      const dlq = await pipeline.peek(pipeline.dlqUrl);
      expect(dlq.filter((message) => message.Body?.includes('later.csv'))).to.have.length(0);
    } finally {
      expect(await service.stop()).to.equal(0);
    }
  });

  it('SIGTERM during a long file exits 0, leaves no output, and another task converts the file at once', async () => {
    const service = await startServiceProcess({ ...pipeline.env, SHUTDOWN_GRACE_SECONDS: '1', VISIBILITY_TIMEOUT: '300', WORKER_THREADS: '1' });
    await pipeline.put('long/big.csv', largeCsv(40));
    const deadline = Date.now() + 30_000;
    while (((await service.health()).body.inFlight as number) < 1) {
      if (Date.now() > deadline) throw new Error('the long file never started');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await service.stop('SIGTERM')).to.equal(0);
    expect(service.logs.some((line) => line.msg === 'released unfinished message at shutdown')).to.equal(true);
    expect(await pipeline.listKeys(pipeline.outputBucket, 'parquet/long/')).to.deep.equal([]);
    // Released with visibility 0: a second task gets it now, not after the 300 s visibility timeout.
    const second = await startServiceProcess(pipeline.env);
    try {
      await pipeline.waitForObject(pipeline.outputBucket, 'parquet/long/big.parquet', 90_000);
      await pipeline.waitForObject(pipeline.outputBucket, 'avro/long/big.avro', 30_000);
    } finally {
      expect(await second.stop()).to.equal(0);
    }
  });

  it('a slow file does not block the small files behind it', async () => {
    const service = await startServiceProcess({ ...pipeline.env, CONCURRENCY: '4', BATCH_SIZE: '2' });
    try {
      // Large enough to take several seconds even at the engine's speed (about 30 MB/s through serve).
      await pipeline.put('hol/slow.csv', largeCsv(150));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await Promise.all(Array.from({ length: 12 }, (_, i) => pipeline.put(`hol/small-${i}.csv`, smallCsv(i))));
      const converted = async (key: string) =>
        (await service.waitForLog((line) => line.msg === 'converted' && line.key === key, 120_000)).time as string;
      const smallTimes = await Promise.all(Array.from({ length: 12 }, (_, i) => converted(`hol/small-${i}.csv`)));
      const slowTime = await converted('hol/slow.csv');
      for (const time of smallTimes) expect(Date.parse(time)).to.be.below(Date.parse(slowTime));
    } finally {
      expect(await service.stop()).to.equal(0);
    }
  });
});

describe('serve: start-up refuses what it cannot work with', function () {
  this.timeout(60_000);
  let pipeline: TestPipeline;

  before(async () => {
    pipeline = await createTestPipeline('serve-start');
  });

  after(() => pipeline?.close());

  it('a bad setting stops start-up with a message naming it, before any message is taken', async () => {
    const run = (env: Record<string, string>) => runServe(pipeline, env);
    const badBatch = await run({ BATCH_SIZE: '12' });
    expect(badBatch.code).to.equal(2);
    expect(badBatch.output).to.match(/BATCH_SIZE="12".*1 to 10/);
    const badQueue = await run({ QUEUE_URL: `${pipeline.endpoint}/123456789012/no-such-queue-${Date.now()}` });
    expect(badQueue.code).to.equal(2);
    expect(badQueue.output).to.match(/invalid setting QUEUE_URL/);
    const badFormat = await run({ FORMATS: 'parquet,orc' });
    expect(badFormat.code).to.equal(2);
    expect(badFormat.output).to.match(/FORMATS.*orc/);
  });

  it('a queue without a RedrivePolicy is refused at start, naming the queue and the fix, even with DLQ_URL set', async () => {
    // Without one, a message that keeps failing would be retried until retention deletes it, unseen.
    const { QueueUrl } = await pipeline.clients.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('no-redrive') }));
    const cases: Record<string, string>[] = [{ QUEUE_URL: QueueUrl! }, { QUEUE_URL: QueueUrl!, DLQ_URL: pipeline.dlqUrl }];
    for (const env of cases) {
      const refused = await runServe(pipeline, env);
      expect(refused.code, JSON.stringify(env)).to.equal(2);
      expect(refused.output).to.include(`queue ${QueueUrl} has no RedrivePolicy`);
      expect(refused.output).to.include('maxReceiveCount');
      expect(refused.output).to.not.include('"msg":"serving"');
    }
  });

  it('SCHEMA_MAP pins types for a key prefix (a schema file in S3)', async () => {
    await pipeline.clients.s3.send(
      new PutObjectCommand({ Bucket: pipeline.inputBucket, Key: 'schemas/zips.json', Body: JSON.stringify({ zip: 'string', qty: 'double' }) }),
    );
    const service = await startServiceProcess({
      ...pipeline.env,
      SCHEMA_MAP: JSON.stringify({ 'pinned/': `s3://${pipeline.inputBucket}/schemas/zips.json` }),
    });
    try {
      await pipeline.put('pinned/a.csv', 'zip,qty\n12345,1\n54321,2\n');
      await pipeline.put('free/a.csv', 'zip,qty\n12345,1\n54321,2\n');
      const pinned = await service.waitForLog((line) => line.msg === 'converted' && line.key === 'pinned/a.csv');
      const free = await service.waitForLog((line) => line.msg === 'converted' && line.key === 'free/a.csv');
      expect(pinned.columns).to.equal('zip:string, qty:double');
      expect(free.columns).to.equal('zip:int64, qty:int64');
    } finally {
      expect(await service.stop()).to.equal(0);
    }
  });
});
