import { expect } from 'chai';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { PermanentError } from '../../src/errors.js';
import { FormatRegistry } from '../../src/formats/registry.js';
import { registerBuiltinFormats } from '../../src/formats/builtin.js';
import { loadFormats } from '../../src/formats/plugins.js';
import { convertObject, DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/pipeline/convert.js';
import { LocalStore } from '../../src/storage/local.js';
import type { ByteSink } from '../../src/formats/types.js';
import type { ObjectStore, PendingObject } from '../../src/storage/types.js';
import { runPython } from '../support/python.js';

const registry = registerBuiltinFormats(new FormatRegistry());

async function convertFile(dir: string, name: string, content: string | Buffer, options: Partial<EngineOptions> = {}, formats: FormatRegistry = registry) {
  await writeFile(path.join(dir, name), content);
  const out = new LocalStore(path.join(dir, 'out'));
  const stem = name.replace(/\.csv(\.gz)?$/, '');
  return convertObject({
    source: { store: new LocalStore(dir), key: name },
    outputs: [
      { format: 'parquet', store: out, key: `${stem}.parquet` },
      { format: 'avro', store: out, key: `${stem}.avro` },
    ],
    options: { ...DEFAULT_ENGINE_OPTIONS, ...options },
    registry: formats,
  });
}

describe('convertObject: one CSV to every format', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-convert-'));
  });

  it('writes both formats from one parse and reports rows, types and sizes', async () => {
    const summary = await convertFile(dir, 'orders.csv', 'id;day;price\n1;2024-01-02;2.5\n2;;3\n');
    expect(summary.rows).to.equal(2);
    expect(summary.delimiter).to.equal(';');
    expect(summary.columns).to.deep.equal([
      { name: 'id', type: 'int64' },
      { name: 'day', type: 'date' },
      { name: 'price', type: 'double' },
    ]);
    expect(summary.outputs.map((output) => output.format)).to.deep.equal(['parquet', 'avro']);
    for (const output of summary.outputs) expect(output.bytes).to.be.greaterThan(0);
    expect((await readdir(path.join(dir, 'out'))).sort()).to.deep.equal(['orders.avro', 'orders.parquet']);
  });

  it('a failed input leaves no output and no temporary file behind', async () => {
    const error = await convertFile(dir, 'bad.csv', 'a,b\n1,2\n3\n').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(PermanentError);
    expect((error as PermanentError).code).to.equal('RAGGED_ROW');
    const left = await readdir(path.join(dir, 'out')).catch(() => []);
    expect(left).to.deep.equal([]);
  });

  /** Reads `n` and `label` back with pyarrow and fastavro: row groups, label type, and whether n is 0… and label is prefix + n in both. */
  async function readBack(stem: string, count: number, labelPrefix: string): Promise<string> {
    return (
      await runPython(
        `
import sys, pyarrow.parquet as pq, fastavro
count = int(sys.argv[3])
f = pq.ParquetFile(sys.argv[1])
t = f.read()
labels = [sys.argv[4] + str(i) for i in range(count)]
with open(sys.argv[2], 'rb') as a:
    records = list(fastavro.reader(a))
print(f.metadata.num_row_groups, str(t.schema.field('label').type), t.column('n').to_pylist() == list(range(count)), t.column('label').to_pylist() == labels,
      [r['n'] for r in records] == list(range(count)), [r['label'] for r in records] == labels)
`,
        [path.join(dir, `out/${stem}.parquet`), path.join(dir, `out/${stem}.avro`), String(count), labelPrefix],
      )
    ).trim();
  }

  it('streams batches to the formats during the first pass, in row order across row groups', async () => {
    const lines = ['n,label'];
    for (let i = 0; i < 30_000; i++) lines.push(`${i},row ${i}`);
    const summary = await convertFile(dir, 'many.csv.gz', gzipSync(lines.join('\n') + '\n'), { rowGroupSize: 1000, memorySpoolBytes: 10_000 });
    expect(summary).to.deep.include({ rows: 30_000, spilled: false, readTwice: false, formatThread: false });
    expect(await readBack('many', 30_000, 'row ')).to.equal('30 string True True True True');
  });

  it('reads the file a second time when a column turns to text after typed values were written', async () => {
    const lines = ['n,label'];
    for (let i = 0; i < 5000; i++) lines.push(`${i},${i}`);
    lines.push('5000,n/a');
    for (let i = 5001; i < 6000; i++) lines.push(`${i},${i}`);
    const summary = await convertFile(dir, 'late.csv', lines.join('\n') + '\n', { rowGroupSize: 1000 });
    expect(summary).to.deep.include({ rows: 6000, readTwice: true });
    expect(summary.columns).to.deep.equal([{ name: 'n', type: 'int64' }, { name: 'label', type: 'string' }]);
    expect(await readBack('late', 6000, '')).to.equal('6 string True False True False');
    const exact = await runPython(
      `
import sys, pyarrow.parquet as pq
labels = pq.read_table(sys.argv[1]).column('label').to_pylist()
print(labels[4999], labels[5000], labels[5001], len(labels))
`,
      [path.join(dir, 'out/late.parquet')],
    );
    expect(exact.trim()).to.equal('4999 n/a 5001 6000');
  });

  it('with a schema resolver, holds the typed batches until the schema is known, spilling beyond the memory budget', async () => {
    const lines = ['n,label'];
    for (let i = 0; i < 30_000; i++) lines.push(`${i},row ${i}`);
    await writeFile(path.join(dir, 'resolved.csv'), lines.join('\n') + '\n');
    const out = new LocalStore(path.join(dir, 'out'));
    const seen: string[] = [];
    const summary = await convertObject({
      source: { store: new LocalStore(dir), key: 'resolved.csv' },
      outputs: [
        { format: 'parquet', store: out, key: 'resolved.parquet' },
        { format: 'avro', store: out, key: 'resolved.avro' },
      ],
      options: { ...DEFAULT_ENGINE_OPTIONS, rowGroupSize: 1000, memorySpoolBytes: 10_000 },
      registry,
      // The registered schema widens n to double and adds a column the file lacks.
      resolveSchema: async ({ schema }) => {
        seen.push(schema.columns.map((column) => `${column.name}:${column.type}`).join(','));
        return {
          schema: { columns: [{ name: 'n', type: 'double' }, { name: 'label', type: 'string' }, { name: 'extra', type: 'int64' }] },
          sourceColumns: [0, 1, -1],
        };
      },
    });
    expect(seen).to.deep.equal(['n:int64,label:string']);
    expect(summary).to.deep.include({ rows: 30_000, spilled: true, readTwice: false });
    const check = await runPython(
      `
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(str(t.schema.field('n').type), t.column('n').to_pylist() == [float(i) for i in range(30000)], t.column('extra').null_count)
`,
      [path.join(dir, 'out/resolved.parquet')],
    );
    expect(check.trim()).to.equal('double True 30000');
  });

  it('encodes the formats on a thread of their own for a large file, with the same outputs', async () => {
    const lines = ['n,label'];
    for (let i = 0; i < 30_000; i++) lines.push(`${i},row ${i}`);
    const summary = await convertFile(dir, 'threaded.csv', lines.join('\n') + '\n', { rowGroupSize: 1000, formatThreadMinBytes: 0 }, await loadFormats());
    expect(summary).to.deep.include({ rows: 30_000, formatThread: true });
    expect(await readBack('threaded', 30_000, 'row ')).to.equal('30 string True True True True');
  });

  it('a failure on the format thread fails the file and leaves no output', async () => {
    const error = await convertFile(dir, 'bad-codec.csv', 'n\n1\n2\n', { formatThreadMinBytes: 0, formatOptions: { avro: { compression: 'zstd' } } }, await loadFormats()).catch((e: unknown) => e);
    expect((error as Error).message).to.match(/unsupported compression "zstd"/);
    expect(await readdir(path.join(dir, 'out')).catch(() => [])).to.deep.equal([]);
  });

  it('pinned types override inference, and a value that does not fit names its line', async () => {
    const pinnedTypes = new Map([['code', 'string' as const]]);
    const pinned = await convertFile(dir, 'codes.csv', 'code,qty\n12,1\n34,2\n', { pinnedTypes });
    expect(pinned.columns).to.deep.equal([
      { name: 'code', type: 'string' },
      { name: 'qty', type: 'int64' },
    ]);
    const violation = await convertFile(dir, 'qty.csv', 'qty\n1\n2\nabc\n', { pinnedTypes: new Map([['qty', 'int64' as const]]) }).catch((e: unknown) => e);
    expect((violation as PermanentError).code).to.equal('SCHEMA_VIOLATION');
    expect((violation as Error).message).to.match(/line 4/);
  });

  it('refuses a source above maxObjectBytes before reading it', async () => {
    const error = await convertFile(dir, 'big.csv', 'a\n' + '1\n'.repeat(1000), { maxObjectBytes: 100 }).catch((e: unknown) => e);
    expect((error as PermanentError).code).to.equal('OBJECT_TOO_LARGE');
  });

  it('when one output fails to publish, the outputs already published are removed', async () => {
    await writeFile(path.join(dir, 'pair.csv'), 'a\n1\n');
    const good = new LocalStore(path.join(dir, 'out'));
    const failing: ObjectStore = {
      root: 'failing://',
      get: () => Promise.reject(new Error('unused')),
      head: () => Promise.resolve(undefined),
      delete: () => Promise.resolve(),
      async put(): Promise<PendingObject> {
        const sink: ByteSink & PendingObject = {
          write: async () => undefined,
          commit: () => Promise.reject(new Error('upload refused')),
          abort: async () => undefined,
        };
        return sink;
      },
    };
    const error = await convertObject({
      source: { store: new LocalStore(dir), key: 'pair.csv' },
      outputs: [
        { format: 'parquet', store: good, key: 'pair.parquet' },
        { format: 'avro', store: failing, key: 'pair.avro' },
      ],
      options: DEFAULT_ENGINE_OPTIONS,
      registry,
    }).catch((e: unknown) => e);
    expect((error as Error).message).to.equal('upload refused');
    expect(await readdir(path.join(dir, 'out'))).to.deep.equal([]);
  });
});
