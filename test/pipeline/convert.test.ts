import { expect } from 'chai';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { PermanentError } from '../../src/errors.js';
import { FormatRegistry } from '../../src/formats/registry.js';
import { registerBuiltinFormats } from '../../src/formats/builtin.js';
import { convertObject, DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/pipeline/convert.js';
import { LocalStore } from '../../src/storage/local.js';
import type { ByteSink } from '../../src/formats/types.js';
import type { ObjectStore, PendingObject } from '../../src/storage/types.js';
import { runPython } from '../support/python.js';

const registry = registerBuiltinFormats(new FormatRegistry());

async function convertFile(dir: string, name: string, content: string | Buffer, options: Partial<EngineOptions> = {}) {
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
    registry,
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

  it('large inputs spill to a temporary file between passes and keep row order across row groups', async () => {
    const lines = ['n,label'];
    for (let i = 0; i < 30_000; i++) lines.push(`${i},row ${i}`);
    const summary = await convertFile(dir, 'many.csv.gz', gzipSync(lines.join('\n') + '\n'), {
      rowGroupSize: 1000,
      memorySpoolBytes: 10_000,
    });
    expect(summary.spilled).to.equal(true);
    expect(summary.rows).to.equal(30_000);
    const check = await runPython(
      `
import sys, pyarrow.parquet as pq, fastavro
f = pq.ParquetFile(sys.argv[1])
n = f.read().column('n').to_pylist()
with open(sys.argv[2], 'rb') as a:
    m = [r['n'] for r in fastavro.reader(a)]
print(f.metadata.num_row_groups, n == list(range(30000)), m == list(range(30000)))
`,
      [path.join(dir, 'out/many.parquet'), path.join(dir, 'out/many.avro')],
    );
    expect(check.trim()).to.equal('30 True True');
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
