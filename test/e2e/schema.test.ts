/**
 * The story of issue 15: a team queries the outputs of a folder together, so every file of the
 * folder must come out with the same column types. The service keeps one schema per dataset in S3
 * and writes each file with it; strict refuses a file that differs, widen changes the type for
 * later files, and concurrent files adding columns lose none of them.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { setupPipeline } from '../../src/cli/setup.js';
import { uniqueName } from '../support/emulator.js';
import { createTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { runPython } from '../support/python.js';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = promisify(execFile);

/** The three files of one dataset. */
const FILE_1 = 'id,amount,note\n1,10.50,\n2,3.25,\n';
const FILE_2 = 'id,amount,note,region\n3,7.5,42,eu\n4,1.25,17,us\n';
const FILE_3 = 'amount,note,region\n5,hello,eu\n6,,apac\n';

interface Registered {
  version: number;
  columns: { name: string; type: string }[];
  history: { version: number; source: string; changes: { kind: string; column?: string; from?: string; to?: string }[] }[];
}

/** A pipeline whose `setup` also made the schema registry's bucket, and the registry's URI. */
async function pipelineWithRegistry(name: string): Promise<{ pipeline: TestPipeline; registry: string; bucket: string }> {
  const pipeline = await createTestPipeline(name);
  const bucket = uniqueName(`${name}-schemas`);
  // The ARN ends with the queue's name on every emulator; queue URLs differ in shape.
  const queue = pipeline.queueArn.split(':').pop()!;
  const again = await setupPipeline(pipeline.clients, {
    inputBucket: pipeline.inputBucket,
    outputBucket: pipeline.outputBucket,
    queue,
    maxReceiveCount: 5,
    schemaRegistry: `s3://${bucket}/schemas/`,
  });
  return { pipeline, registry: again.schemaRegistry!, bucket };
}

/** The dataset's document as any S3 reader sees it. */
async function registered(pipeline: TestPipeline, bucket: string, dataset: string): Promise<Registered> {
  const object = await pipeline.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `schemas/${dataset}/_schema.json` }));
  return JSON.parse(await object.Body!.transformToString()) as Registered;
}

async function convertedOnce(pipeline: TestPipeline, key: string, body: string): Promise<void> {
  await pipeline.put(key, body);
  const stem = key.replace(/\.csv$/, '');
  await pipeline.waitForObject(pipeline.outputBucket, `parquet/${stem}.parquet`);
  await pipeline.waitForObject(pipeline.outputBucket, `avro/${stem}.avro`);
}

/** Per Parquet file, its column types as pyarrow reads them. */
async function parquetTypes(pipeline: TestPipeline, dir: string, stems: string[]): Promise<Record<string, Record<string, string>>> {
  for (const stem of stems) await pipeline.download(pipeline.outputBucket, `parquet/${stem}.parquet`, path.join(dir, `${path.basename(stem)}.parquet`));
  const out = await runPython(
    `
import json, sys, pyarrow.parquet as pq
print(json.dumps({name: {f.name: str(f.type) for f in pq.read_schema(sys.argv[1] + '/' + name + '.parquet')} for name in sys.argv[2:]}))
`,
    [dir, ...stems.map((stem) => path.basename(stem))],
  );
  return JSON.parse(out) as Record<string, Record<string, string>>;
}

async function waitForDeadLetter(pipeline: TestPipeline, keyPart: string): Promise<Record<string, string>> {
  const deadline = Date.now() + 45_000;
  while (Date.now() < deadline) {
    const dead = (await pipeline.peek(pipeline.dlqUrl)).find((message) => message.Body?.includes(keyPart));
    if (dead) return Object.fromEntries(Object.entries(dead.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue ?? '']));
  }
  throw new Error(`no dead letter for ${keyPart} within 45 s`);
}

describe('dataset schemas: every file of a dataset is written with the same column types (end to end, real service)', function () {
  this.timeout(300_000);
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 's3cc-schema-'));
  });

  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  describe('SCHEMA_EVOLUTION=add-columns (the default), two service processes on one queue', () => {
    let pipeline: TestPipeline;
    let bucket: string;
    let registry: string;
    let services: ServiceProcess[] = [];

    before(async () => {
      ({ pipeline, registry, bucket } = await pipelineWithRegistry('schema-add'));
      // Small batches, so neither process can hold every message of a burst.
      const env = { ...pipeline.env, SCHEMA_REGISTRY: registry, CONCURRENCY: '4', BATCH_SIZE: '2', WORKER_THREADS: '1' };
      services = await Promise.all([startServiceProcess(env), startServiceProcess(env)]);
    });

    after(async () => {
      for (const exit of await Promise.all(services.map((service) => service.stop()))) expect(exit).to.equal(0);
      pipeline?.close();
    });

    it('files 2 and 3 take the types file 1 registered, so DuckDB (union_by_name) and fastavro read all three with one type per column', async () => {
      await convertedOnce(pipeline, 'sales/file1.csv', FILE_1);
      await convertedOnce(pipeline, 'sales/file2.csv', FILE_2);
      await convertedOnce(pipeline, 'sales/file3.csv', FILE_3);

      const dir = path.join(tmp, 'sales');
      await mkdir(dir);
      // Each file on its own, as pyarrow reads it: without the registry file 1's note would be a
      // string and file 2's an int64, and file 3's amount an int64 and its id absent.
      expect(await parquetTypes(pipeline, dir, ['sales/file1', 'sales/file2', 'sales/file3'])).to.deep.equal({
        file1: { id: 'int64', amount: 'double', note: 'string' },
        file2: { id: 'int64', amount: 'double', note: 'string', region: 'string' },
        file3: { id: 'int64', amount: 'double', note: 'string', region: 'string' },
      });
      for (const stem of ['file1', 'file2', 'file3']) await pipeline.download(pipeline.outputBucket, `avro/sales/${stem}.avro`, path.join(dir, `${stem}.avro`));

      const report = JSON.parse(
        await runPython(
          `
import glob, json, sys, duckdb, fastavro
d = sys.argv[1]
rel = duckdb.sql(f"select * exclude (filename) from read_parquet('{d}/*.parquet', union_by_name = true, filename = true) order by filename, amount")
avro_types, avro_rows = {}, []
for path in sorted(glob.glob(d + '/*.avro')):
    with open(path, 'rb') as f:
        reader = fastavro.reader(f)
        avro_rows += [dict(r) for r in reader]
        for field in reader.writer_schema['fields']:
            avro_types.setdefault(field['name'], set()).add(json.dumps(field['type'], sort_keys=True))
print(json.dumps({
  'duckdb_types': dict(zip(rel.columns, [str(t) for t in rel.types])),
  'duckdb_rows': [list(r) for r in rel.fetchall()],
  'avro_types': {name: sorted(types) for name, types in avro_types.items()},
  'avro_rows': avro_rows,
}, default=str))
`,
          [dir],
        ),
      ) as { duckdb_types: Record<string, string>; duckdb_rows: unknown[][]; avro_types: Record<string, string[]>; avro_rows: Record<string, unknown>[] };

      expect(report.duckdb_types).to.deep.equal({ id: 'BIGINT', amount: 'DOUBLE', note: 'VARCHAR', region: 'VARCHAR' });
      expect(report.duckdb_rows).to.deep.equal([
        [2, 3.25, null, null],
        [1, 10.5, null, null],
        [4, 1.25, '17', 'us'],
        [3, 7.5, '42', 'eu'],
        [null, 5, 'hello', 'eu'],
        [null, 6, null, 'apac'],
      ]);
      // One Avro type per column across the three files.
      expect(report.avro_types).to.deep.equal({
        id: ['["null", "long"]'],
        amount: ['["null", "double"]'],
        note: ['["null", "string"]'],
        region: ['["null", "string"]'],
      });
      expect(report.avro_rows.map((row) => row.note)).to.deep.equal([null, null, '42', '17', 'hello', null]);

      const document = await registered(pipeline, bucket, 'sales');
      expect(document.columns).to.deep.equal([
        { name: 'id', type: 'int64' },
        { name: 'amount', type: 'double' },
        { name: 'note', type: 'string' },
        { name: 'region', type: 'string' },
      ]);
      expect(document.version).to.equal(2);
      expect(document.history.map((entry) => [entry.version, entry.source, entry.changes.map((c) => c.kind)])).to.deep.equal([
        [1, `s3://${pipeline.inputBucket}/sales/file1.csv`, ['registered']],
        [2, `s3://${pipeline.inputBucket}/sales/file2.csv`, ['column-added']],
      ]);
      const changeLogs = services.flatMap((service) => service.logs.filter((line) => line.msg === 'dataset schema changed'));
      expect(changeLogs.map((line) => [line.schemaChange, line.dataset, line.column ?? null])).to.have.deep.members([
        ['registered', 'sales', null],
        ['column-added', 'sales', 'region'],
      ]);
    });

    it('convert --schema-registry writes a local file with the types the service registered', async () => {
      const local = path.join(tmp, 'local');
      await mkdir(path.join(local, 'sales'), { recursive: true });
      await writeFile(path.join(local, 'sales', 'file4.csv'), 'region,amount\nemea,8\n');
      const { stdout } = await run(process.execPath, [CLI, 'convert', 'sales/file4.csv', '--out', 'out', '--schema-registry', registry, '--json'], {
        cwd: local,
        env: { ...process.env, AWS_ENDPOINT_URL: pipeline.endpoint },
      });
      const [outcome] = JSON.parse(stdout) as { ok: boolean; summary: { columns: { name: string; type: string }[] } }[];
      expect(outcome!.ok).to.equal(true);
      expect(outcome!.summary.columns).to.deep.equal((await registered(pipeline, bucket, 'sales')).columns);
    });

    it('twenty files that each add a different column, sent at once to two service processes, leave all twenty columns registered', async () => {
      await convertedOnce(pipeline, 'wide/base.csv', 'id\n0\n');
      const added = Array.from({ length: 20 }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
      await Promise.all(added.map((column, i) => pipeline.put(`wide/f${i + 1}.csv`, `id,${column}\n${i + 1},${column}-value\n`)));
      for (let i = 1; i <= 20; i++) await pipeline.waitForObject(pipeline.outputBucket, `avro/wide/f${i}.avro`, 60_000);
      for (let i = 1; i <= 20; i++) await pipeline.waitForObject(pipeline.outputBucket, `parquet/wide/f${i}.parquet`, 60_000);

      const document = await registered(pipeline, bucket, 'wide');
      expect(document.columns[0]).to.deep.equal({ name: 'id', type: 'int64' });
      expect(document.columns.slice(1).map((column) => column.name).sort()).to.deep.equal(added);
      expect(document.version).to.equal(21);
      const perProcess = services.map((service) => service.logs.filter((line) => line.msg === 'converted' && /^wide\/f\d+\.csv$/.test(String(line.key))).length);
      expect(perProcess.reduce((a, b) => a + b, 0)).to.equal(20);
      expect(perProcess.every((count) => count > 0), `both processes converted some of the burst: ${perProcess.join(' + ')}`).to.equal(true);
    });
  });

  describe('SCHEMA_EVOLUTION=strict', () => {
    let pipeline: TestPipeline;
    let bucket: string;
    let service: ServiceProcess;

    before(async () => {
      let registry: string;
      ({ pipeline, registry, bucket } = await pipelineWithRegistry('schema-strict'));
      service = await startServiceProcess({ ...pipeline.env, SCHEMA_REGISTRY: registry, SCHEMA_EVOLUTION: 'strict', WORKER_THREADS: '1' });
    });

    after(async () => {
      if (service) expect(await service.stop()).to.equal(0);
      pipeline?.close();
    });

    it('start-up stops with a message naming SCHEMA_REGISTRY when the registry cannot be read, or a schema setting is wrong', async () => {
      const serve = (env: Record<string, string>) =>
        // A serve that started anyway is killed after 20 s, and fails the test on its exit code.
        run(process.execPath, [CLI, 'serve'], { timeout: 20_000, env: { ...process.env, ...pipeline.env, LOG_PRETTY: 'false', HEALTH_PORT: '0', ...env } }).then(
          () => ({ code: 0, output: '' }),
          (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: `${error.stdout}${error.stderr}` }),
        );
      const missing = await serve({ SCHEMA_REGISTRY: `s3://${uniqueName('no-such-schemas')}/x/` });
      expect(missing.code).to.equal(2);
      expect(missing.output).to.match(/invalid setting SCHEMA_REGISTRY: s3:\/\/no-such-schemas-.*\/x\/ cannot be read \(NoSuchBucket/);
      const badMode = await serve({ SCHEMA_REGISTRY: `s3://${bucket}/schemas/`, SCHEMA_EVOLUTION: 'loose' });
      expect(badMode.code).to.equal(2);
      expect(badMode.output).to.include('invalid setting SCHEMA_EVOLUTION="loose": must be one of add-columns, widen, strict');
    });

    it('file 2 (a new column region) is dead-lettered as SCHEMA_MISMATCH naming region, and the dataset keeps file 1\'s schema', async () => {
      await convertedOnce(pipeline, 'sales/file1.csv', FILE_1);
      await pipeline.put('sales/file2.csv', FILE_2);
      const attributes = await waitForDeadLetter(pipeline, 'file2.csv');
      expect(attributes['error-code']).to.equal('SCHEMA_MISMATCH');
      expect(attributes['error-message']).to.match(/sales\/file2\.csv: dataset "sales" .*SCHEMA_EVOLUTION=strict: column "region" is not registered/);
      expect(await pipeline.listKeys(pipeline.outputBucket, 'parquet/sales/')).to.deep.equal(['parquet/sales/file1.parquet']);
      const document = await registered(pipeline, bucket, 'sales');
      expect(document.version).to.equal(1);
      expect(document.columns.map((column) => column.name)).to.deep.equal(['id', 'amount', 'note']);
    });
  });

  describe('SCHEMA_EVOLUTION=widen', () => {
    let pipeline: TestPipeline;
    let bucket: string;
    let registry: string;
    let service: ServiceProcess;

    before(async () => {
      ({ pipeline, registry, bucket } = await pipelineWithRegistry('schema-widen'));
      service = await startServiceProcess({ ...pipeline.env, SCHEMA_REGISTRY: registry, SCHEMA_EVOLUTION: 'widen', WORKER_THREADS: '1', METRICS_FLUSH_SECONDS: '1' });
    });

    after(async () => {
      if (service) expect(await service.stop()).to.equal(0);
      pipeline?.close();
    });

    it('a file whose amount holds abc makes amount a string for later files, and schema show lists the change', async () => {
      await convertedOnce(pipeline, 'prices/file1.csv', 'id,amount\n1,2.5\n');
      await convertedOnce(pipeline, 'prices/file2.csv', 'id,amount\n2,abc\n');
      await convertedOnce(pipeline, 'prices/file3.csv', 'id,amount\n3,4.75\n');
      const dir = path.join(tmp, 'prices');
      await mkdir(dir);
      const types = await parquetTypes(pipeline, dir, ['prices/file1', 'prices/file2', 'prices/file3']);
      expect(Object.fromEntries(Object.entries(types).map(([file, columns]) => [file, columns.amount]))).to.deep.equal({
        file1: 'double', // written before the change: it keeps its type
        file2: 'string',
        file3: 'string',
      });
      expect((await registered(pipeline, bucket, 'prices')).columns).to.deep.equal([
        { name: 'id', type: 'int64' },
        { name: 'amount', type: 'string' },
      ]);

      const env = { ...process.env, AWS_ENDPOINT_URL: pipeline.endpoint };
      const text = (await run(process.execPath, [CLI, 'schema', 'show', '--schema-registry', registry], { env })).stdout;
      expect(text).to.match(/dataset "prices"\s+version 2/);
      expect(text).to.match(/amount\s+string/);
      expect(text).to.include(`v2  `);
      expect(text).to.include(`s3://${pipeline.inputBucket}/prices/file2.csv`);
      expect(text).to.include('type widened: amount double → string');
      const json = JSON.parse((await run(process.execPath, [CLI, 'schema', 'show', '--schema-registry', registry, '--dataset', 'prices', '--json'], { env })).stdout) as Registered[];
      expect(json).to.have.length(1);
      expect(json[0]!.history[1]!.changes).to.deep.equal([{ kind: 'type-widened', column: 'amount', from: 'double', to: 'string' }]);

      // Counted as a metric: the registration and the widening.
      const deadline = Date.now() + 10_000;
      let totals: Record<string, number> = {};
      while (Date.now() < deadline && (totals.SchemaChanges ?? 0) < 2) totals = (await service.health()).body.totals ?? {};
      expect(totals.SchemaChanges).to.equal(2);
    });
  });
});
