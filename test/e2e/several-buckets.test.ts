/**
 * The story of issue 16: a team feeds one queue from two input buckets that hold the same keys.
 * Every file is converted from its own bucket, under the service's concurrency on one worker thread,
 * and none is given up as gone; `convert` with inputs from several buckets does the same.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { setupPipeline, type SetupResult } from '../../src/cli/setup.js';
import { normalizeEtag, SOURCE_ETAG } from '../../src/pipeline/convert.js';
import { uniqueName } from '../support/emulator.js';
import { createTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { runPython } from '../support/python.js';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = promisify(execFile);

/** Files per bucket: both buckets hold these same keys. */
const KEYS = 150;

function body(bucket: string, i: number): string {
  const rows = Array.from({ length: 20 }, (_, r) => `${bucket},${i},${r},${(i * 31 + r) % 97}.5`);
  return `origin,file,row,value\n${rows.join('\n')}\n`;
}

describe('several input buckets feeding one queue (the same keys in each) lose no file', function () {
  this.timeout(600_000);
  let pipeline: TestPipeline;
  let second: SetupResult;
  let buckets: string[];
  let service: ServiceProcess | undefined;
  let tmp: string;
  /** `${bucket}/${key}` → the ETag S3 gave that object. */
  const etags = new Map<string, string>();

  before(async () => {
    pipeline = await createTestPipeline('buckets');
    const queue = new URL(pipeline.queueUrl).pathname.split('/').pop()!;
    second = await setupPipeline(pipeline.clients, { inputBucket: uniqueName('buckets-in2'), outputBucket: pipeline.outputBucket, queue, maxReceiveCount: 5 });
    buckets = [pipeline.inputBucket, second.inputBucket];
    tmp = await mkdtemp(path.join(os.tmpdir(), 's3cc-buckets-'));
  });

  after(async () => {
    if (service) expect(await service.stop()).to.equal(0);
    pipeline?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('setup for a second input bucket keeps the first one allowed to notify the queue', async () => {
    expect(second.queueUrl).to.equal(pipeline.queueUrl);
    const { Attributes } = await pipeline.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: pipeline.queueUrl, AttributeNames: ['Policy'] }));
    const statements = (JSON.parse(Attributes?.Policy ?? '{}') as { Statement: { Condition: { ArnLike: { 'aws:SourceArn': string | string[] } } }[] }).Statement;
    expect(statements).to.have.length(1);
    expect([statements[0]!.Condition.ArnLike['aws:SourceArn']].flat().sort()).to.deep.equal(buckets.map((b) => `arn:aws:s3:::${b}`).sort());
  });

  it(`${2 * KEYS} files with the same keys in two buckets, converted at once on one worker thread, each come from their own bucket; none is given up as gone`, async () => {
    service = await startServiceProcess({
      ...pipeline.env,
      WORKER_THREADS: '1',
      CONCURRENCY: '32',
      OUTPUT_KEY_TEMPLATE: '{prefix}{format}/{bucket}/{stem}.{ext}',
      METRICS_FLUSH_SECONDS: '1',
    });
    // Waves of uploads to both buckets at once, with pauses: each wave reaches an idle service as a
    // burst, the moment concurrent calls for both buckets start together (where issue 16 lost files).
    for (let wave = 0; wave < KEYS; wave += 15) {
      const files = buckets.flatMap((bucket) => range(Math.min(15, KEYS - wave)).map((n) => ({ bucket, i: wave + n })));
      await Promise.all(
        files.map(async ({ bucket, i }) => {
          const key = `types/file-${i}.csv`;
          const { ETag } = await pipeline.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body(bucket, i) }));
          etags.set(`${bucket}/${key}`, normalizeEtag(ETag!));
        }),
      );
      await sleep(1_500);
    }
    const expected = buckets.flatMap((bucket) => range(KEYS).flatMap((i) => [`parquet/${bucket}/types/file-${i}.parquet`, `avro/${bucket}/types/file-${i}.avro`]));
    const deadline = Date.now() + 300_000;
    let present = new Set<string>();
    while (present.size < expected.length) {
      if (Date.now() > deadline) throw new Error(`only ${present.size} of ${expected.length} outputs appeared`);
      await sleep(500);
      present = new Set(await pipeline.listKeys(pipeline.outputBucket));
    }
    expect(expected.filter((key) => !present.has(key)), 'outputs missing').to.deep.equal([]);

    // Each output says which source version it was made from: the object in its own bucket.
    const wrong: string[] = [];
    await inBatches(expected, 25, async (key) => {
      const [, bucket, ...rest] = key.split('/');
      const source = `${bucket}/${rest.join('/').replace(/\.(parquet|avro)$/, '.csv')}`;
      const head = await pipeline.clients.s3.send(new HeadObjectCommand({ Bucket: pipeline.outputBucket, Key: key }));
      if (head.Metadata?.[SOURCE_ETAG] !== etags.get(source)) wrong.push(`${key}: ${head.Metadata?.[SOURCE_ETAG]} (source ${etags.get(source)})`);
    });
    expect(wrong, 'outputs made from the other bucket').to.deep.equal([]);

    // And an independent reader agrees, row by row, for a sample of both formats.
    const sample = range(KEYS).filter((i) => i % 15 === 0);
    const files: string[] = [];
    for (const bucket of buckets) {
      for (const i of sample) {
        for (const [format, ext] of [['parquet', 'parquet'], ['avro', 'avro']] as const) {
          const file = path.join(tmp, `${bucket}-${i}.${ext}`);
          await pipeline.download(pipeline.outputBucket, `${format}/${bucket}/types/file-${i}.${ext}`, file);
          files.push(file);
        }
      }
    }
    const origins = JSON.parse(
      await runPython(
        `
import json, sys, pyarrow.parquet as pq, fastavro
out = {}
for path in sys.argv[1:]:
    if path.endswith('.parquet'):
        t = pq.read_table(path)
        out[path] = sorted(set(zip(t.column('origin').to_pylist(), t.column('file').to_pylist()))) + [t.num_rows]
    else:
        with open(path, 'rb') as f:
            rows = list(fastavro.reader(f))
        out[path] = sorted(set((r['origin'], r['file']) for r in rows)) + [len(rows)]
print(json.dumps(out))
`,
        files,
      ),
    ) as Record<string, unknown[]>;
    for (const bucket of buckets) {
      for (const i of sample) {
        for (const ext of ['parquet', 'avro']) expect(origins[path.join(tmp, `${bucket}-${i}.${ext}`)], `${bucket} ${i} ${ext}`).to.deep.equal([[bucket, i], 20]);
      }
    }

    const gone = service.logs.filter((line) => line.outcome === 'gone');
    expect(gone, 'files acknowledged as gone').to.deep.equal([]);
    const totals = (await service.health()).body.totals ?? {};
    expect(totals.FilesGone ?? 0).to.equal(0);
    expect(totals.FilesConverted ?? 0).to.be.at.least(2 * KEYS);
    expect(await pipeline.peek(pipeline.dlqUrl)).to.deep.equal([]);
  });

  it('convert with inputs from several buckets writes every output from its own input', async () => {
    const out = uniqueName('buckets-convert-out');
    await pipeline.clients.s3.send(new CreateBucketCommand({ Bucket: out }));
    // Distinct names (convert refuses two inputs that would write the same output), alternating buckets.
    const inputs = range(30).map((n) => ({ bucket: buckets[n % 2]!, key: `types/file-${n}.csv`, name: `file-${n}` }));
    const { stdout } = await run(process.execPath, [CLI, 'convert', ...inputs.map((input) => `s3://${input.bucket}/${input.key}`), '--out', `s3://${out}/converted/`, '--json'], {
      env: { ...process.env, AWS_ENDPOINT_URL: pipeline.endpoint },
      maxBuffer: 16 * 1024 * 1024,
    });
    const outcomes = JSON.parse(stdout) as { input: string; ok: boolean }[];
    expect(outcomes.filter((outcome) => !outcome.ok)).to.deep.equal([]);
    for (const input of inputs) {
      for (const ext of ['parquet', 'avro']) {
        const head = await pipeline.clients.s3.send(new HeadObjectCommand({ Bucket: out, Key: `converted/${input.name}.${ext}` }));
        expect(head.Metadata?.[SOURCE_ETAG], `${input.bucket}/${input.key} → ${ext}`).to.equal(etags.get(`${input.bucket}/${input.key}`));
      }
    }
  });
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}
