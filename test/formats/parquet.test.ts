import { expect } from 'chai';
import { parquetFormat } from '../../src/formats/parquet.js';
import type { TableSchema } from '../../src/types.js';
import { EDGE_ROWS, EDGE_SCHEMA, LARGE_SCHEMA, batchOf, columnOf, expectedColumns, largeBatches } from './fixtures.js';
import { MemorySink, TempDir, writeBatches } from './memory-sink.js';
import { checkLargeParquet, readParquet } from './readers.js';
import { runPython } from '../support/python.js';

const CODECS = { snappy: 'SNAPPY', none: 'UNCOMPRESSED', gzip: 'GZIP', zstd: 'ZSTD' } as const;

const GROUP = 10_000;

describe('parquet format', () => {
  const temp = new TempDir();
  after(() => temp.cleanup());

  it('declares its name, extension, content type and codecs, snappy first', () => {
    expect(parquetFormat.name).to.equal('parquet');
    expect(parquetFormat.extension).to.equal('parquet');
    expect(parquetFormat.contentType).to.equal('application/vnd.apache.parquet');
    expect(parquetFormat.compressions).to.deep.equal(['snappy', 'none', 'gzip', 'zstd']);
  });

  for (const [compression, codec] of Object.entries(CODECS)) {
    describe(`with ${compression}`, () => {
      it('round-trips types, extremes, nulls and unicode exactly (pyarrow, DuckDB)', async () => {
        const sink = await writeBatches(parquetFormat, EDGE_SCHEMA, [batchOf(EDGE_SCHEMA, EDGE_ROWS)], { compression });
        const file = await readParquet(await temp.file(`edge.parquet`, sink.bytes()));

        expect(file.types).to.deep.equal({
          id: 'int64',
          amount: 'double',
          active: 'bool',
          'Order Date': 'date32[day]',
          created_at: 'timestamp[us, tz=UTC]',
          comment: 'string',
        });
        expect(file.duckdbTypes).to.deep.equal({
          id: 'BIGINT',
          amount: 'DOUBLE',
          active: 'BOOLEAN',
          'Order Date': 'DATE',
          created_at: 'TIMESTAMP WITH TIME ZONE',
          comment: 'VARCHAR',
        });
        expect(file.codecs).to.deep.equal([codec]);
        expect(file.rows).to.equal(EDGE_ROWS.length);
        expect(file.columns).to.deep.equal(expectedColumns(EDGE_SCHEMA.columns, EDGE_ROWS));
      });

      it('keeps row order over 250k rows in many row groups', async function () {
        this.timeout(120_000);
        const sink = await writeBatches(parquetFormat, LARGE_SCHEMA, largeBatches(250_000, 25_000), { compression });
        const file = await checkLargeParquet(await temp.file('large.parquet', sink.bytes()));

        expect(file.rows).to.equal(250_000);
        expect(file.rowGroupRows).to.deep.equal(Array(10).fill(25_000));
        expect(file.codecs).to.deep.equal([codec]);
        expect(file.firstMismatch).to.deep.equal({
          id: null, amount: null, flag: null, day: null, ts: null, name: null, city: null,
        });
      });
    });
  }

  it('writes statistics readers can trust: pyarrow reads each row group\'s min, max and nulls, DuckDB filters by them', async () => {
    const sink = await writeBatches(parquetFormat, LARGE_SCHEMA, largeBatches(30_000, 10_000), {});
    const path = await temp.file('stats.parquet', sink.bytes());
    const report = await runPython(
      `
import sys, json, duckdb, pyarrow.parquet as pq
m = pq.ParquetFile(sys.argv[1]).metadata
stats = []
for g in range(m.num_row_groups):
    for c in range(m.num_columns):
        s = m.row_group(g).column(c).statistics
        stats.append([m.row_group(g).column(c).path_in_schema, s.has_min_max, str(s.min) if s.has_min_max else None, str(s.max) if s.has_min_max else None, s.null_count])
q = lambda sql: duckdb.sql(sql.replace('F', "'" + sys.argv[1] + "'")).fetchall()[0][0]
print(json.dumps({'stats': stats[:7] + stats[-7:], 'cityEncodings': list(m.row_group(0).column(6).encodings), 'ids': q("select count(*) from F where id between 9990 and 10010"),
  'tsAfter': q("select count(*) from F where ts > make_timestamptz(1600000000000000 + 25000::BIGINT * 1000003)"),
  'city': q("select count(*) from F where city = 'São Paulo'"), 'noName': q("select count(*) from F where name is null")}))
`,
      [path],
    );
    const result = JSON.parse(report) as { stats: unknown[][]; cityEncodings: string[]; ids: number; tsAfter: number; city: number; noName: number };
    // city is dictionary-encoded: its bounds come from the dictionary's entries.
    expect(result.cityEncodings).to.include('RLE_DICTIONARY');
    expect(result.stats.slice(0, 7)).to.deep.equal([
      ['id', true, '0', '9999', 10],
      ['amount', true, '-0.0', '4999.5', 99], // a zero minimum is written -0, as the spec says
      ['flag', true, 'False', 'True', 1428],
      ['day', true, '1915-03-31', '1942-08-15', 0],
      ['ts', true, '2020-09-13 12:26:41.000003+00:00', '2020-09-13 15:13:18.029994+00:00', 910], // rows 0 and 9999 are null
      ['name', true, 'r1', 'r9999', 770],
      ['city', true, '', '東京', 0],
    ]);
    expect(result.stats.slice(7)[0]).to.deep.equal(['id', true, '20000', '29999', 10]);
    // Expected from the table's formulas (fixtures.largeBatches).
    const ids = Array.from({ length: 21 }, (_, k) => 9990 + k).filter((i) => i % 1009 !== 7).length;
    const tsAfter = Array.from({ length: 30_000 }, (_, i) => i).filter((i) => i > 25_000 && i % 11 !== 0).length;
    expect(result).to.deep.include({ ids, tsAfter, city: 6000, noName: Array.from({ length: 30_000 }, (_, i) => i).filter((i) => i % 13 === 0).length });
  });

  it('compresses for real: gzip and zstd files are smaller than uncompressed ones', async () => {
    const sizes: Record<string, number> = {};
    for (const compression of ['none', 'gzip', 'zstd']) {
      sizes[compression] = (await writeBatches(parquetFormat, LARGE_SCHEMA, largeBatches(50_000, 50_000), { compression })).byteLength;
    }
    expect(sizes.gzip).to.be.below(sizes.none! * 0.8);
    expect(sizes.zstd).to.be.below(sizes.none! * 0.8);
  });

  it('keeps the original column names, spaces and unicode included', async () => {
    const schema: TableSchema = {
      columns: [
        { name: 'Order Date', type: 'date' },
        { name: 'prix €', type: 'double' },
        { name: '1st', type: 'string' },
        { name: 'a.b', type: 'int64' },
      ],
    };
    const rows = [[19723, 9.5, 'x', 1n]];
    const sink = await writeBatches(parquetFormat, schema, [batchOf(schema, rows)], {});
    const file = await readParquet(await temp.file('names.parquet', sink.bytes()));
    expect(Object.keys(file.types)).to.deep.equal(['Order Date', 'prix €', '1st', 'a.b']);
    expect(file.codecs).to.deep.equal(['SNAPPY']);
    expect(file.columns).to.deep.equal(expectedColumns(schema.columns, rows));
  });

  it('streams: each row group reaches the sink during write, one sink write at a time', async () => {
    const sink = new MemorySink(5);
    const writer = parquetFormat.createWriter(LARGE_SCHEMA, sink, {});
    const batches = [...largeBatches(3 * GROUP, GROUP)];

    await writer.write(batches[0]!);
    expect(sink.inFlight).to.equal(0);
    const afterFirst = sink.byteLength;
    expect(afterFirst).to.be.above(10_000);
    await writer.write(batches[1]!);
    await writer.write(batches[2]!);
    const beforeFinish = sink.byteLength;
    await writer.finish();

    expect(beforeFinish).to.be.above(afterFirst * 2.5);
    // Only the footer (metadata) is written by finish.
    expect(sink.byteLength - beforeFinish).to.be.below(afterFirst / 4);
    expect(sink.maxInFlight).to.equal(1);
    const file = await checkLargeParquet(await temp.file('streamed.parquet', sink.bytes()));
    expect(file.rowGroupRows).to.deep.equal([GROUP, GROUP, GROUP]);
    expect(Object.values(file.firstMismatch).every((index) => index === null)).to.equal(true);
  });

  it('writes one row group per batch, however small', async () => {
    const sink = await writeBatches(parquetFormat, LARGE_SCHEMA, largeBatches(2_500, 1_000), {});
    const file = await checkLargeParquet(await temp.file('small-groups.parquet', sink.bytes()));
    expect(file.rowGroupRows).to.deep.equal([1_000, 1_000, 500]);
    expect(file.firstMismatch).to.deep.equal({
      id: null, amount: null, flag: null, day: null, ts: null, name: null, city: null,
    });
  });

  it('refuses more work after the sink failed or after finish', async () => {
    const failing = { write: () => Promise.reject(new Error('disk full')) };
    const broken = parquetFormat.createWriter(LARGE_SCHEMA, failing, {});
    const [batch] = [...largeBatches(GROUP, GROUP)];
    const rejection = async (promise: Promise<void>): Promise<string> => promise.then(() => 'resolved', (error: unknown) => String(error));
    expect(await rejection((async () => { await broken.write(batch!); await broken.finish(); })())).to.match(/disk full/);
    expect(await rejection(broken.finish())).to.match(/earlier write failed/);

    const done = parquetFormat.createWriter(LARGE_SCHEMA, new MemorySink(), {});
    await done.finish();
    expect(await rejection(done.write(batch!))).to.match(/already finished/);
  });

  it('writes a valid empty file when no batch arrives', async () => {
    const sink = await writeBatches(parquetFormat, EDGE_SCHEMA, [], {});
    const file = await readParquet(await temp.file('empty.parquet', sink.bytes()));
    expect(file.rows).to.equal(0);
    expect(file.rowGroups).to.equal(0);
    expect(file.types.created_at).to.equal('timestamp[us, tz=UTC]');
  });

  it('rejects an unknown codec, duplicate column names and a batch that does not fit the schema', async () => {
    expect(() => parquetFormat.createWriter(EDGE_SCHEMA, new MemorySink(), { compression: 'lz4' })).to.throw(/unsupported compression "lz4"/);
    expect(() => parquetFormat.createWriter(EDGE_SCHEMA, new MemorySink(), { compression: 'toString' })).to.throw(/unsupported/);
    const duplicate: TableSchema = { columns: [{ name: 'a', type: 'int64' }, { name: 'a', type: 'string' }] };
    expect(() => parquetFormat.createWriter(duplicate, new MemorySink(), {})).to.throw(/unique/);
    const writer = parquetFormat.createWriter(EDGE_SCHEMA, new MemorySink(), {});
    let error: unknown;
    try {
      await writer.write({ rowCount: 1, columns: [columnOf('int64', [1n])] });
    } catch (caught) {
      error = caught;
    }
    expect(String(error)).to.match(/1 columns, schema has 6/);
  });
});
