import { expect } from 'chai';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { inflateRawSync } from 'node:zlib';
import { avroFieldNames } from '../../src/formats/avro-names.js';
import { BLOCK_BYTES, avroFormat, avroSchema } from '../../src/formats/avro.js';
import type { Column, TableSchema } from '../../src/types.js';
import { EDGE_ROWS, EDGE_SCHEMA, LARGE_SCHEMA, batchOf, columnOf, normalize, largeBatches } from './fixtures.js';
import { MemorySink, TempDir, writeBatches } from './memory-sink.js';
import { checkLargeAvro, readAvro, type Cell } from './readers.js';

interface AvroType {
  toBuffer(value: unknown): Buffer;
}
interface LongTypeMethods {
  fromBuffer(buffer: Buffer): bigint;
  toBuffer(value: bigint): Buffer;
  fromJSON(json: unknown): bigint;
  toJSON(value: bigint): unknown;
  isValid(value: unknown): boolean;
  compare(a: bigint, b: bigint): number;
}
const avro = createRequire(import.meta.url)('avro-js') as {
  streams: { BlockDecoder: new (options: unknown) => NodeJS.ReadWriteStream };
  types: { LongType: { using(methods: LongTypeMethods, noUnpack?: boolean): AvroType } };
};

/** avro-js's `long` reads only up to 2^53; this one reads every 64-bit value as an exact bigint. */
const bigintLongType = avro.types.LongType.using({
  fromBuffer: (buffer) => buffer.readBigInt64LE(0),
  toBuffer: (value) => {
    const buffer = Buffer.alloc(8);
    buffer.writeBigInt64LE(value, 0);
    return buffer;
  },
  fromJSON: (json) => BigInt(json as string | number),
  toJSON: (value) => value.toString(),
  isValid: (value) => typeof value === 'bigint',
  compare: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
});

/** Expected columns keyed by Avro field name. */
function expectedByField(columns: Column[], rows: (bigint | number | boolean | string | null)[][]): Record<string, Cell[]> {
  const names = avroFieldNames(columns.map((column) => column.name));
  return Object.fromEntries(columns.map((column, c) => [names[c], rows.map((row) => normalize(column.type, row[c]!))]));
}

describe('avro format', () => {
  const temp = new TempDir();
  after(() => temp.cleanup());

  it('declares its name, extension, content type and codecs, deflate first', () => {
    expect(avroFormat.name).to.equal('avro');
    expect(avroFormat.extension).to.equal('avro');
    expect(avroFormat.contentType).to.equal('application/avro');
    expect(avroFormat.compressions).to.deep.equal(['deflate', 'null', 'snappy']);
  });

  for (const codec of ['deflate', 'null', 'snappy']) {
    describe(`with ${codec}`, () => {
      it('round-trips types, int64 extremes, nulls and unicode exactly (fastavro)', async () => {
        const sink = await writeBatches(avroFormat, EDGE_SCHEMA, [batchOf(EDGE_SCHEMA, EDGE_ROWS)], { compression: codec });
        const file = await readAvro(await temp.file('edge.avro', sink.bytes()));

        expect(file.codec).to.equal(codec);
        expect(file.types).to.deep.equal({
          id: '"long"',
          amount: '"double"',
          active: '"boolean"',
          Order_Date: '{"type": "int", "logicalType": "date"}',
          created_at: '{"type": "long", "logicalType": "timestamp-micros"}',
          comment: '"string"',
        });
        expect(file.rows).to.equal(EDGE_ROWS.length);
        expect(file.columns).to.deep.equal(expectedByField(EDGE_SCHEMA.columns, EDGE_ROWS));
      });

      it('keeps row order over 250k rows in many blocks', async function () {
        this.timeout(120_000);
        const sink = await writeBatches(avroFormat, LARGE_SCHEMA, largeBatches(250_000, 20_000), { compression: codec });
        const file = await checkLargeAvro(await temp.file('large.avro', sink.bytes()));

        expect(file.codec).to.equal(codec);
        expect(file.rows).to.equal(250_000);
        expect(file.blocks).to.be.above(100);
        expect(file.firstMismatch).to.deep.equal({
          id: null, amount: null, flag: null, day: null, ts: null, name: null, city: null,
        });
      });
    });
  }

  it('is also read back by avro-js, with every long as an exact bigint', async () => {
    for (const compression of ['deflate', 'null']) {
      const sink = await writeBatches(avroFormat, EDGE_SCHEMA, [batchOf(EDGE_SCHEMA, EDGE_ROWS)], { compression });
      const decoder = new avro.streams.BlockDecoder({
        codecs: { null: (b: Buffer, cb: (e: null, b: Buffer) => void) => cb(null, b), deflate: (b: Buffer, cb: (e: null, b: Buffer) => void) => cb(null, inflateRawSync(b)) },
        parseOpts: { typeHook: (attrs: { type?: string }) => (attrs.type === 'long' ? bigintLongType : undefined), registry: { long: bigintLongType } },
      });
      const records: Record<string, unknown>[] = [];
      for await (const record of Readable.from([sink.bytes()]).pipe(decoder) as AsyncIterable<Record<string, unknown>>) records.push(record);
      expect(records.map((r) => r.id), compression).to.deep.equal(EDGE_ROWS.map((row) => (row[0] === null ? null : { long: row[0] })));
      expect(records.map((r) => r.created_at), compression).to.deep.equal(EDGE_ROWS.map((row) => (row[4] === null ? null : { long: row[4] })));
      expect(records.map((r) => r.comment), compression).to.deep.equal(EDGE_ROWS.map((row) => (row[5] === null ? null : { string: row[5] })));
    }
  });

  it('compresses for real: deflate and snappy files are smaller than null ones', async () => {
    const sizes: Record<string, number> = {};
    for (const compression of ['null', 'deflate', 'snappy']) {
      sizes[compression] = (await writeBatches(avroFormat, LARGE_SCHEMA, largeBatches(50_000, 50_000), { compression })).byteLength;
    }
    expect(sizes.deflate).to.be.below(sizes.null! * 0.6);
    expect(sizes.snappy).to.be.below(sizes.null! * 0.8);
  });

  it('checks the snappy CRC: a reader rejects a block whose checksum is wrong', async () => {
    const sink = await writeBatches(avroFormat, LARGE_SCHEMA, largeBatches(100, 100), { compression: 'snappy' });
    // chunks: [header, block]; a block ends with CRC32 (4 bytes) then the 16-byte sync marker.
    expect(sink.chunks).to.have.length(2);
    const block = Buffer.from(sink.chunks[1]!);
    block[block.length - 17]! ^= 0xff;
    const path = await temp.file('bad-crc.avro', Buffer.concat([sink.chunks[0]!, block]));
    let error: unknown;
    try {
      await readAvro(path);
    } catch (caught) {
      error = caught;
    }
    expect(String(error)).to.match(/CRC mismatch/);
  });

  it('names fields validly and keeps each original header in doc, with no aliases', async () => {
    const schema: TableSchema = {
      columns: [
        { name: 'Order Date', type: 'date' },
        { name: '1st', type: 'string' },
        { name: 'a b', type: 'int64' },
        { name: 'a_b', type: 'int64' },
        { name: 'prix €', type: 'double' },
      ],
    };
    const rows = [[19723, 'x', 1n, 2n, 9.5]];
    const sink = await writeBatches(avroFormat, schema, [batchOf(schema, rows)], {});
    const file = await readAvro(await temp.file('names.avro', sink.bytes()));

    expect(file.schema.fields.map((field) => [field.name, field.doc])).to.deep.equal([
      ['Order_Date', 'Order Date'],
      ['_1st', '1st'],
      ['a_b_2', 'a b'],
      ['a_b', 'a_b'],
      ['prix_', 'prix €'],
    ]);
    expect(file.schema.fields.every((field) => field.aliases === undefined && field.default === null)).to.equal(true);
    expect(file.columns).to.deep.equal({ Order_Date: ['19723'], _1st: ['x'], a_b_2: ['1'], a_b: ['2'], prix_: [normalize('double', 9.5)] });
    expect(avroSchema(schema).fields.map((field) => field.name)).to.deep.equal(file.schema.fields.map((field) => field.name));
  });

  it('streams: blocks reach the sink during write, one at a time, each about BLOCK_BYTES', async () => {
    const sink = new MemorySink(1);
    const writer = avroFormat.createWriter(LARGE_SCHEMA, sink, { compression: 'null' });
    const [first, second] = [...largeBatches(40_000, 20_000)];

    await writer.write(first!);
    expect(sink.inFlight).to.equal(0);
    const chunksAfterFirst = sink.chunks.length;
    expect(chunksAfterFirst).to.be.above(5);
    await writer.write(second!);
    await writer.finish();

    expect(sink.maxInFlight).to.equal(1);
    const blocks = sink.chunks.slice(1);
    expect(Math.max(...blocks.map((chunk) => chunk.length))).to.be.below(BLOCK_BYTES + 1024);
    const file = await checkLargeAvro(await temp.file('streamed.avro', sink.bytes()));
    expect(file.blocks).to.equal(blocks.length);
    expect(Object.values(file.firstMismatch).every((index) => index === null)).to.equal(true);
  });

  it('writes a row larger than a block in a block of its own', async () => {
    const schema: TableSchema = { columns: [{ name: 's', type: 'string' }] };
    const rows = [['small'], ['y'.repeat(BLOCK_BYTES * 3)], ['after']];
    const sink = await writeBatches(avroFormat, schema, [batchOf(schema, rows)], { compression: 'null' });
    const file = await readAvro(await temp.file('big-row.avro', sink.bytes()));
    expect(file.blocks).to.equal(3);
    expect(file.columns.s).to.deep.equal(['small', 'y'.repeat(BLOCK_BYTES * 3), 'after']);
  });

  it('refuses more work after the sink failed or after finish', async () => {
    const failing = { write: () => Promise.reject(new Error('disk full')) };
    const broken = avroFormat.createWriter(LARGE_SCHEMA, failing, {});
    const [batch] = [...largeBatches(100, 100)];
    const rejection = async (promise: Promise<void>): Promise<string> => promise.then(() => 'resolved', (error: unknown) => String(error));
    expect(await rejection((async () => { await broken.write(batch!); await broken.finish(); })())).to.match(/disk full/);
    expect(await rejection(broken.finish())).to.match(/earlier write failed/);

    const done = avroFormat.createWriter(LARGE_SCHEMA, new MemorySink(), {});
    await done.finish();
    expect(await rejection(done.write(batch!))).to.match(/already finished/);
  });

  it('writes a valid empty file when no batch arrives', async () => {
    const sink = await writeBatches(avroFormat, EDGE_SCHEMA, [], {});
    const file = await readAvro(await temp.file('empty.avro', sink.bytes()));
    expect(file.rows).to.equal(0);
    expect(file.codec).to.equal('deflate');
    expect(file.schema.fields).to.have.length(EDGE_SCHEMA.columns.length);
  });

  it('rejects an unknown codec and a batch that does not fit the schema', async () => {
    expect(() => avroFormat.createWriter(EDGE_SCHEMA, new MemorySink(), { compression: 'zstd' })).to.throw(/unsupported compression "zstd"/);
    const writer = avroFormat.createWriter(EDGE_SCHEMA, new MemorySink(), {});
    let error: unknown;
    try {
      await writer.write({ rowCount: 2, columns: EDGE_SCHEMA.columns.map((column) => columnOf(column.type, [null])) });
    } catch (caught) {
      error = caught;
    }
    expect(String(error)).to.match(/1 values, rowCount is 2/);
  });
});
