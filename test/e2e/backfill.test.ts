import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { BackfillCounts } from '../../src/backfill/run.js';
import { parseNotification } from '../../src/events/parse.js';
import { uniqueName } from '../support/emulator.js';
import { createTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { runPython } from '../support/python.js';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';
import { startBatchProxy, type BatchProxy } from '../support/sqs-batch-proxy.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** What `backfill --json` prints. */
type Counts = BackfillCounts & { failures: { key: string; error: string }[] };

/** Where the service writes a source's outputs with the default OUTPUT_KEY_TEMPLATE. */
function outputsOf(key: string): { parquet: string; avro: string } {
  const stem = key.replace(/\.csv(\.gz)?$/i, '');
  return { parquet: `parquet/${stem}.parquet`, avro: `avro/${stem}.avro` };
}

function csvRows(rows: number, seed: number): string {
  const lines = ['id,name,amount'];
  for (let i = 0; i < rows; i++) lines.push(`${seed * 10 + i},name ${seed},${seed}.${i}5`);
  return `${lines.join('\n')}\n`;
}

/** Runs `n` async jobs, `limit` at a time. */
async function inBatches<T>(items: readonly T[], limit: number, job: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map(job));
}

describe('backfill: objects already in the bucket, and those whose notifications were missed, get converted (end to end)', function () {
  this.timeout(300_000);
  let pipeline: TestPipeline;
  let proxy: BatchProxy;
  let service: ServiceProcess | undefined;
  /** Source key → its ETag, for every CSV put. */
  const sources = new Map<string, string>();
  const missing: string[] = [];
  const current: string[] = [];
  const stale: string[] = [];
  /** Outputs of current sources written in the same second as their source. */
  let sameSecond = 0;

  /** `s3-csv-converter backfill …` as a child process, talking to the emulator through the proxy. */
  function backfill(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, 'backfill', ...args],
        { env: { ...process.env, ...pipeline.env, AWS_ENDPOINT_URL: proxy.endpoint, ...env }, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  async function backfillJson(args: string[], env: Record<string, string> = {}): Promise<Counts & { code: number; stderr: string }> {
    const result = await backfill([...args, '--json'], env);
    let counts: Counts;
    try {
      counts = JSON.parse(result.stdout) as Counts;
    } catch {
      throw new Error(`backfill printed no JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    }
    return { ...counts, code: result.code, stderr: result.stderr };
  }

  const calls = (operation: string) => proxy.calls[operation] ?? 0;

  before(async () => {
    // A pipeline whose notification is gone: everything put below reaches nobody.
    pipeline = await createTestPipeline('backfill', { notifications: false });
    proxy = await startBatchProxy(pipeline.endpoint);
    const { outputBucket } = pipeline;

    // 200 CSVs with no outputs, with keys that need encoding (spaces, +, accents) and some gzipped.
    for (let i = 0; i < 200; i++) {
      const n = String(i).padStart(3, '0');
      missing.push([`incoming/new/file ${n}.csv`, `incoming/new/plus+${n}.csv`, `incoming/new/é-${n}.csv`, `incoming/new/zipped-${n}.csv.gz`][i % 4]!);
    }
    for (let i = 0; i < 20; i++) current.push(`incoming/done/done-${String(i).padStart(2, '0')}.csv`);
    for (let i = 0; i < 10; i++) stale.push(`incoming/changed/changed-${String(i).padStart(2, '0')}.csv`);

    await inBatches(missing, 16, async (key) => {
      const text = csvRows(2, missing.indexOf(key));
      sources.set(key, await pipeline.put(key, key.endsWith('.gz') ? gzipSync(text) : text));
    });
    const putOutputs = (key: string, etag: string) =>
      Promise.all(Object.values(outputsOf(key)).map((outputKey) => pipeline.putObject(outputBucket, outputKey, 'made by an earlier run', { 'source-etag': etag.replace(/"/g, '') })));
    // Stale: the outputs were made from a first version, with one row.
    const firstVersions = new Map<string, string>();
    await inBatches([...current.slice(10), ...stale], 16, async (key) => {
      const etag = await pipeline.put(key, csvRows(1, 500));
      (current.includes(key) ? sources : firstVersions).set(key, etag);
    });
    await inBatches(stale, 10, (key) => putOutputs(key, firstVersions.get(key)!));
    // Half the current ones get their outputs at once, most likely in the same second as the source:
    // the listing cannot order those, and a HEAD of the output decides.
    // (Calls in flight at once go to one bucket: the SDK's cached middleware shares one endpoint,
    // bucket included, between concurrent calls of a command.)
    while (Date.now() % 1000 > 200) await new Promise((resolve) => setTimeout(resolve, 20));
    await inBatches(current.slice(0, 10), 10, async (key) => sources.set(key, await pipeline.put(key, csvRows(1, 500))));
    await inBatches(current.slice(0, 10), 10, (key) => putOutputs(key, sources.get(key)!));
    // Listings show seconds: from the next second on, the listing alone tells older from newer.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await inBatches(current.slice(10), 10, (key) => putOutputs(key, sources.get(key)!));
    // Then the changed CSVs get a second version, with three rows; its notification never came.
    await inBatches(stale, 10, async (key) => sources.set(key, await pipeline.put(key, csvRows(3, 700 + stale.indexOf(key)))));
    expect(sources.size).to.equal(230);

    // The outputs written in the same second as their source: exactly those need a HEAD.
    const written = new Map<string, number>();
    const second = (date: Date) => Math.floor(date.getTime() / 1000);
    await inBatches(current, 10, async (key) => written.set(key, second((await pipeline.head(pipeline.inputBucket, key))!.lastModified)));
    await inBatches(current, 10, async (key) => {
      for (const outputKey of Object.values(outputsOf(key))) {
        if (second((await pipeline.head(outputBucket, outputKey))!.lastModified) === written.get(key)) sameSecond += 1;
      }
    });
  });

  after(async () => {
    if (service) expect(await service.stop()).to.equal(0);
    await proxy?.close();
    pipeline?.close();
  });

  it('a dry run reports 200 missing, 20 current and 10 stale, and sends nothing', async () => {
    const depthBefore = await pipeline.depth(pipeline.queueUrl);
    const sendsBefore = calls('SendMessageBatch');
    const listsBefore = calls('ListObjectsV2');
    const headsBefore = calls('HeadObject');

    const report = await backfillJson(['--bucket', pipeline.inputBucket, '--dry-run']);
    expect(report.code, report.stderr).to.equal(0);
    expect(report).to.deep.include({ listed: 230, csv: 230, current: 20, missing: 200, stale: 10, enqueued: 0, failed: 0 });

    expect(calls('SendMessageBatch') - sendsBefore, 'SendMessageBatch calls').to.equal(0);
    expect(await pipeline.depth(pipeline.queueUrl)).to.deep.equal(depthBefore);
    // The listings decide: one page of inputs and one of outputs per format (230 keys each), and a
    // HEAD only for an output written in the same second as its source.
    expect(calls('ListObjectsV2') - listsBefore, 'ListObjectsV2 calls').to.equal(3);
    expect(report.checked, 'outputs checked by HEAD').to.equal(sameSecond);
    expect(calls('HeadObject') - headsBefore, 'HEADs').to.equal(sameSecond);
  });

  it('a dry run in text lists each object it would enqueue, and why', async () => {
    const { code, stdout } = await backfill(['--bucket', pipeline.inputBucket, '--dry-run']);
    expect(code).to.equal(0);
    const lines = stdout.split('\n').filter((line) => line.startsWith('would enqueue'));
    expect(lines).to.have.length(210);
    expect(lines.filter((line) => /^would enqueue\s+stale\s/.test(line)).map((line) => line.split(' s3://')[1]).sort()).to.deep.equal(
      stale.map((key) => `${pipeline.inputBucket}/${key}`).sort(),
    );
    expect(stdout).to.include(`s3://${pipeline.inputBucket}/incoming/new/file 000.csv`);
    expect(stdout).to.match(/dry run: would enqueue 210 .*nothing was sent/);
  });

  it('--modified-since after the last write considers none of them', async () => {
    const report = await backfillJson(['--bucket', pipeline.inputBucket, '--dry-run', '--modified-since', '2999-01-01']);
    expect(report).to.deep.include({ listed: 230, csv: 0, older: 230, current: 0, missing: 0, stale: 0 });
  });

  it('backfill enqueues the 210 missing and stale ones, ten to a SendMessageBatch, as S3 events serve reads', async () => {
    const batchesBefore = proxy.delivered.length;
    const report = await backfillJson(['--bucket', pipeline.inputBucket]);
    expect(report.code, report.stderr).to.equal(0);
    expect(report).to.deep.include({ current: 20, missing: 200, stale: 10, enqueued: 210, failed: 0 });

    const batches = proxy.delivered.slice(batchesBefore);
    expect(batches.map((batch) => batch.entries.length)).to.deep.equal(Array(21).fill(10));
    const announced = batches.flatMap((batch) =>
      batch.entries.flatMap((entry) => {
        const notification = parseNotification(entry.MessageBody);
        return notification.kind === 'objects' ? notification.objects : [];
      }),
    );
    expect(announced.map((event) => event.key).sort()).to.deep.equal([...missing, ...stale].sort());
    for (const event of announced) {
      expect(event).to.deep.include({ bucket: pipeline.inputBucket, eventName: 'ObjectCreated:Put', eTag: sources.get(event.key)!.replace(/"/g, '') });
    }
  });

  it('the service converts every one of them, the changed ones from their second version', async () => {
    service = await startServiceProcess({ ...pipeline.env, CONCURRENCY: '16', WORKER_THREADS: '1' });
    const deadline = Date.now() + 120_000;
    for (;;) {
      const totals = (await service.health()).body.totals ?? {};
      if ((totals.FilesConverted ?? 0) >= 210) break;
      if (Date.now() > deadline) throw new Error(`not all converted in time: ${JSON.stringify(totals)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // Every source's outputs now carry its own ETag; current outputs were left alone.
    const wrong: string[] = [];
    await inBatches([...sources.keys()], 32, async (key) => {
      for (const outputKey of Object.values(outputsOf(key))) {
        const head = await pipeline.head(pipeline.outputBucket, outputKey);
        if (head?.metadata['source-etag'] !== sources.get(key)!.replace(/"/g, '')) wrong.push(`${outputKey}: ${JSON.stringify(head?.metadata)}`);
      }
    });
    expect(wrong).to.deep.equal([]);

    // Read back by independent readers: two rows from each new CSV, three from each changed one.
    const dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-backfill-'));
    const converted = [...missing, ...stale];
    await inBatches(converted, 32, async (key) => {
      const index = converted.indexOf(key);
      const { parquet, avro } = outputsOf(key);
      await pipeline.download(pipeline.outputBucket, parquet, path.join(dir, `${index}.parquet`));
      await pipeline.download(pipeline.outputBucket, avro, path.join(dir, `${index}.avro`));
    });
    const rows = JSON.parse(
      await runPython(
        `
import json, sys, pyarrow.parquet as pq, fastavro
d, n = sys.argv[1], int(sys.argv[2])
out = []
for i in range(n):
    with open(f'{d}/{i}.avro', 'rb') as f:
        out.append([pq.read_table(f'{d}/{i}.parquet').num_rows, len(list(fastavro.reader(f)))])
print(json.dumps(out))
`,
        [dir, String(converted.length)],
      ),
    ) as [number, number][];
    expect(rows).to.deep.equal(converted.map((key) => (stale.includes(key) ? [3, 3] : [2, 2])));
  });

  it('a second backfill, once the service has drained the queue, enqueues nothing', async () => {
    const sendsBefore = calls('SendMessageBatch');
    const report = await backfillJson(['--bucket', pipeline.inputBucket]);
    expect(report.code, report.stderr).to.equal(0);
    expect(report).to.deep.include({ listed: 230, csv: 230, current: 230, missing: 0, stale: 0, enqueued: 0, failed: 0 });
    expect(calls('SendMessageBatch') - sendsBefore).to.equal(0);
  });

  it('a missing bucket stops it with one line naming the bucket, and a non-zero exit', async () => {
    const bucket = uniqueName('no-such-bucket');
    const { code, stdout, stderr } = await backfill(['--bucket', bucket]);
    expect(code).not.to.equal(0);
    expect(stdout).to.equal('');
    const lines = stderr.split('\n').filter(Boolean);
    expect(lines, stderr).to.have.length(1);
    expect(lines[0]).to.include(bucket).and.to.match(/does not exist/);
  });

  describe('when the queue does not take everything', () => {
    const late = ['late/a.csv', 'late/b b.csv', 'late/c.csv'];

    before(async () => {
      for (const key of late) sources.set(key, await pipeline.put(key, csvRows(2, 900)));
    });

    it('a missing queue stops it with one line naming the queue, and a non-zero exit', async () => {
      const queue = pipeline.queueUrl.replace(/[^/]+$/, uniqueName('no-such-queue'));
      const { code, stdout, stderr } = await backfill(['--bucket', pipeline.inputBucket, '--prefix', 'late/', '--queue', queue]);
      expect(code).not.to.equal(0);
      expect(stdout).to.equal('');
      const lines = stderr.split('\n').filter(Boolean);
      expect(lines, stderr).to.have.length(1);
      expect(lines[0]).to.include(queue).and.to.match(/does not exist/);
    });

    it('an entry SendMessageBatch keeps failing is retried, counted, listed, and the exit code says so', async () => {
      proxy.failEntries((body) => (parseNotification(body) as { objects: { key: string }[] }).objects[0]!.key === 'late/b b.csv');
      const report = await backfillJson(['--bucket', pipeline.inputBucket, '--prefix', 'late/']);
      expect(report.code).to.equal(1);
      expect(report).to.deep.include({ listed: 3, missing: 3, enqueued: 2, failed: 1 });
      expect(report.failures).to.deep.equal([{ key: 'late/b b.csv', error: 'InternalError: injected by the test proxy' }]);
      const refused = [...proxy.refused.entries()].filter(([body]) => body.includes('late/b+b.csv') || body.includes('late/b%20b.csv'));
      expect(refused.map(([, times]) => times), 'sends of the failing entry').to.deep.equal([4]);
      expect(report.stderr).to.include(`✗ not enqueued: s3://${pipeline.inputBucket}/late/b b.csv: InternalError`);
    });
  });
});
