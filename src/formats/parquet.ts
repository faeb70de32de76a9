/** The Parquet format plugin: each batch becomes a row group streamed to the sink as soon as it is encoded. */
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { SchemaElement } from 'hyparquet-writer';
import type { ColumnType, TableSchema, TypedBatch } from '../types.js';
import type { ByteSink, FormatOptions, FormatPlugin, FormatWriter } from './types.js';
import { checkBatch, pickCodec } from './contract.js';
import { borrowScratch, returnScratch } from './scratch.js';

type ParquetCodec = 'SNAPPY' | 'UNCOMPRESSED' | 'GZIP' | 'ZSTD';

/** Our codec names (what users type), default first, and the Parquet codec each one selects. */
const CODECS = new Map<string, ParquetCodec>([
  ['snappy', 'SNAPPY'],
  ['none', 'UNCOMPRESSED'],
  ['gzip', 'GZIP'],
  ['zstd', 'ZSTD'],
]);

// hyparquet-writer compresses SNAPPY itself; every other codec we offer needs a compressor here
// (0.17 refuses a codec without one; older versions wrote such pages uncompressed: corrupt files).
const COMPRESSORS = {
  GZIP: (bytes: Uint8Array): Uint8Array => gzipSync(bytes),
  ZSTD: (bytes: Uint8Array): Uint8Array => zstdCompressSync(bytes),
};

/** The physical and logical Parquet type of each column type; every column is OPTIONAL. */
export function parquetSchemaElement(name: string, type: ColumnType): SchemaElement {
  const repetition_type = 'OPTIONAL';
  switch (type) {
    case 'int64':
      return { name, repetition_type, type: 'INT64' };
    case 'double':
      return { name, repetition_type, type: 'DOUBLE' };
    case 'boolean':
      return { name, repetition_type, type: 'BOOLEAN' };
    case 'date':
      return { name, repetition_type, type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } };
    case 'timestamp':
      return {
        name,
        repetition_type,
        type: 'INT64',
        converted_type: 'TIMESTAMP_MICROS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
      };
    case 'string':
      return { name, repetition_type, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
  }
}

/** Working space for one row group; a larger group grows its own buffer, which is not reused. */
const SCRATCH_BYTES = 1 << 20;

/**
 * A hyparquet-writer `Writer` that hands each finished row group's bytes to the sink. It writes into
 * a borrowed scratch buffer and hands the sink a copy the size of the group, so a small file costs
 * a few kilobytes of new memory rather than a megabyte.
 */
class SinkWriter extends ByteWriter {
  readonly #sink: ByteSink;

  constructor(sink: ByteSink) {
    super(0);
    this.buffer = borrowScratch(SCRATCH_BYTES);
    this.view = new DataView(this.buffer);
    this.#sink = sink;
  }

  /** Called by ParquetWriter after each row group; the next group waits for the returned promise. */
  async flush(): Promise<void> {
    if (this.index === 0) return;
    const chunk = new Uint8Array(this.buffer.slice(0, this.index));
    this.index = 0;
    await this.#sink.write(chunk);
  }

  override async finish(): Promise<void> {
    await this.flush();
    if (this.buffer.byteLength === SCRATCH_BYTES) returnScratch(this.buffer);
    this.buffer = new ArrayBuffer(0);
    this.view = new DataView(this.buffer);
  }
}

/** Writes one row group per batch: the engine already cuts batches at the configured row-group size. */
class ParquetFormatWriter implements FormatWriter {
  readonly #schema: TableSchema;
  readonly #parquet: ParquetWriter;
  #finished = false;
  /** Set when a write or the sink failed: the output is incomplete and nothing more may be added. */
  #failed = false;

  constructor(schema: TableSchema, sink: ByteSink, codec: ParquetCodec) {
    this.#schema = schema;
    this.#parquet = new ParquetWriter({
      writer: new SinkWriter(sink),
      schema: [
        { name: 'root', num_children: schema.columns.length },
        ...schema.columns.map((column) => parquetSchemaElement(column.name, column.type)),
      ],
      codec,
      compressors: COMPRESSORS,
      createdBy: 's3-csv-converter (hyparquet-writer)',
    });
  }

  async write(batch: TypedBatch): Promise<void> {
    this.#checkUsable();
    checkBatch(this.#schema.columns.length, batch);
    if (batch.rowCount === 0) return;
    await this.#guard(async () => {
      await this.#parquet.write({
        columnData: this.#schema.columns.map((column, i) => ({ name: column.name, data: batch.columns[i]! })),
        rowGroupSize: batch.rowCount,
      });
    });
  }

  async finish(): Promise<void> {
    this.#checkUsable();
    this.#finished = true;
    await this.#guard(async () => {
      await this.#parquet.finish();
    });
  }

  #checkUsable(): void {
    if (this.#failed) throw new Error('parquet writer: an earlier write failed, the output is incomplete');
    if (this.#finished) throw new Error('parquet writer: already finished');
  }

  async #guard(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.#failed = true;
      throw error;
    }
  }
}

export const parquetFormat: FormatPlugin = {
  name: 'parquet',
  extension: 'parquet',
  contentType: 'application/vnd.apache.parquet',
  compressions: [...CODECS.keys()],

  createWriter(schema: TableSchema, sink: ByteSink, options: FormatOptions): FormatWriter {
    const compression = options.compression ?? 'snappy';
    const codec = pickCodec('parquet', CODECS, compression);
    const names = new Set(schema.columns.map((column) => column.name));
    if (names.size !== schema.columns.length) throw new Error('parquet: column names must be unique');
    return new ParquetFormatWriter(schema, sink, codec);
  },
};
