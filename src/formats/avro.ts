/** The Avro format plugin: an object container file, one nullable-union record per row, blocks streamed to the sink. */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { crc32, deflateRawSync } from 'node:zlib';
import { snappyCompress } from 'hyparquet-writer/src/snappy.js';
import type { ColumnType, TableSchema, TypedBatch } from '../types.js';
import { avroFieldNames } from './avro-names.js';
import type { ByteSink, FormatOptions, FormatPlugin, FormatWriter } from './types.js';
import { checkBatch, pickCodec } from './contract.js';
import { borrowScratch, returnScratch } from './scratch.js';

// avro-js ships no type declarations; these are the parts of its API this module uses.
interface AvroTap {
  buf: Buffer;
  pos: number;
  isValid(): boolean;
  writeLong(value: number): void;
  writeInt(value: number): void;
  writeDouble(value: number): void;
  writeString(value: string): void;
}
interface AvroType {
  toBuffer(value: unknown): Buffer;
  fromBuffer(buffer: Buffer): unknown;
}
interface LongTypeMethods {
  fromBuffer(buffer: Buffer): bigint;
  toBuffer(value: bigint): Buffer;
  fromJSON(json: unknown): bigint;
  toJSON(value: bigint): unknown;
  isValid(value: unknown): boolean;
  compare(a: bigint, b: bigint): number;
}
interface AvroJs {
  parse(schema: unknown, options?: { registry?: Record<string, AvroType>; typeHook?: (attrs: unknown) => AvroType | undefined }): AvroType;
  types: { LongType: { using(methods: LongTypeMethods, noUnpack?: boolean): AvroType } };
}

const require = createRequire(import.meta.url);
const avro = require('avro-js') as AvroJs;
// The binary encoder avro-js's own types write through; we drive it directly to skip per-row objects.
const { Tap } = require('avro-js/lib/utils') as { Tap: new (buffer: Buffer) => AvroTap };

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * An Avro `long` holding a bigint over the whole signed 64-bit range. avro-js's own `long` refuses
 * anything past 2^53, so values outside the safe-integer range are encoded through this type.
 */
export const bigintLongType: AvroType = avro.types.LongType.using({
  fromBuffer: (buffer) => buffer.readBigInt64LE(0),
  toBuffer: (value) => {
    const buffer = Buffer.alloc(8);
    buffer.writeBigInt64LE(value, 0);
    return buffer;
  },
  fromJSON: (json) => BigInt(json as string | number),
  toJSON: (value) => (value >= SAFE_MIN && value <= SAFE_MAX ? Number(value) : value.toString()),
  isValid: (value) => typeof value === 'bigint' && value >= INT64_MIN && value <= INT64_MAX,
  compare: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
});

/** The Avro type of each column type (the field is the union of `null` and this). */
export function avroValueType(type: ColumnType): unknown {
  switch (type) {
    case 'int64':
      return 'long';
    case 'double':
      return 'double';
    case 'boolean':
      return 'boolean';
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-micros' };
    case 'string':
      return 'string';
  }
}

export interface AvroField {
  name: string;
  type: ['null', unknown];
  default: null;
  /** The column's name as written in the CSV header. */
  doc: string;
}

export interface AvroRecordSchema {
  type: 'record';
  name: string;
  fields: AvroField[];
}

/**
 * The record schema for a table. Field names come from `avroFieldNames`: a valid header keeps its
 * name, others are sanitized; `doc` always holds the original header. No `aliases` are written:
 * a renamed field's original name is by construction not a valid Avro name, and aliases must be.
 */
export function avroSchema(schema: TableSchema): AvroRecordSchema {
  const names = avroFieldNames(schema.columns.map((column) => column.name));
  return {
    type: 'record',
    name: 'Row',
    fields: schema.columns.map((column, i) => ({
      name: names[i]!,
      type: ['null', avroValueType(column.type)],
      default: null,
      doc: column.name,
    })),
  };
}

/** Compresses one block's bytes; returns the parts that, concatenated, form the stored block. */
type BlockCodec = (data: Buffer) => Uint8Array[];

/**
 * zlib level 3, not the default 6: measured on 64 KiB blocks it is 1.5x (text) to 4.5x (numeric
 * data) faster for output 1-5% larger. Synchronous on purpose: avro-js's async deflate reorders blocks.
 */
const DEFLATE_LEVEL = 3;

const CODECS = new Map<string, BlockCodec>([
  ['deflate', (data) => [deflateRawSync(data, { level: DEFLATE_LEVEL })]],
  ['null', (data) => [data]],
  // The Avro spec: raw snappy followed by the big-endian CRC32 of the uncompressed data.
  [
    'snappy',
    (data) => {
      const checksum = Buffer.allocUnsafe(4);
      checksum.writeUInt32BE(crc32(data), 0);
      return [snappyCompress(data), checksum];
    },
  ],
]);

/** Uncompressed bytes after which a block is closed and sent (Java's default sync interval is 64 000). */
export const BLOCK_BYTES = 64 * 1024;
/** Room for a full block and the row that crosses its end. */
const TAP_BYTES = BLOCK_BYTES * 2;

const HEADER_TYPE = avro.parse({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
});

// How each column's non-null values are encoded; a number per column keeps the hot loop a switch.
const KIND_LONG = 0;
const KIND_DOUBLE = 1;
const KIND_BOOLEAN = 2;
const KIND_INT = 3;
const KIND_STRING = 4;
const KINDS: Record<ColumnType, number> = {
  int64: KIND_LONG,
  timestamp: KIND_LONG,
  double: KIND_DOUBLE,
  boolean: KIND_BOOLEAN,
  date: KIND_INT,
  string: KIND_STRING,
};

// Union branch indexes as zig-zag varints: `null` is branch 0, the value type branch 1.
const NULL_BRANCH = 0;
const VALUE_BRANCH = 2;

class AvroFormatWriter implements FormatWriter {
  readonly #sink: ByteSink;
  readonly #kinds: number[];
  readonly #codec: BlockCodec;
  readonly #header: Buffer;
  readonly #sync: Buffer;
  /** A borrowed scratch buffer (given back by finish); a block is copied out of it when sent. */
  #tap: AvroTap = new Tap(Buffer.from(borrowScratch(TAP_BYTES)));
  #rowsInBlock = 0;
  #headerSent = false;
  #finished = false;
  /** Set when a write or the sink failed: the output is incomplete and nothing more may be added. */
  #failed = false;

  constructor(schema: TableSchema, sink: ByteSink, codecName: string, codec: BlockCodec) {
    this.#sink = sink;
    this.#kinds = schema.columns.map((column) => KINDS[column.type]);
    this.#codec = codec;
    const recordSchema = avroSchema(schema);
    // Parsing checks the schema the way readers will (names, defaults) before any byte is written.
    avro.parse(recordSchema, { registry: { long: bigintLongType } });
    this.#sync = randomBytes(16);
    this.#header = HEADER_TYPE.toBuffer({
      magic: Buffer.from('Obj\x01', 'latin1'),
      meta: {
        'avro.schema': Buffer.from(JSON.stringify(recordSchema)),
        'avro.codec': Buffer.from(codecName),
      },
      sync: this.#sync,
    });
  }

  async write(batch: TypedBatch): Promise<void> {
    this.#checkUsable();
    checkBatch(this.#kinds.length, batch);
    await this.#guard(async () => {
      await this.#sendHeader();
      let row = 0;
      while (row < batch.rowCount) {
        row = this.#encodeRows(batch, row);
        if (row < batch.rowCount || this.#tap.pos >= BLOCK_BYTES) await this.#sendBlock();
      }
    });
  }

  async finish(): Promise<void> {
    this.#checkUsable();
    this.#finished = true;
    await this.#guard(async () => {
      await this.#sendHeader();
      await this.#sendBlock();
    });
    const buffer = this.#tap.buf.buffer;
    if (buffer.byteLength === TAP_BYTES && buffer instanceof ArrayBuffer) returnScratch(buffer);
    this.#tap = new Tap(Buffer.alloc(0));
  }

  #checkUsable(): void {
    if (this.#failed) throw new Error('avro writer: an earlier write failed, the output is incomplete');
    if (this.#finished) throw new Error('avro writer: already finished');
  }

  async #guard(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.#failed = true;
      throw error;
    }
  }

  async #sendHeader(): Promise<void> {
    if (this.#headerSent) return;
    this.#headerSent = true;
    await this.#sink.write(this.#header);
  }

  /**
   * Encodes rows from `from` into the current block until the batch ends or the block is full.
   * Returns the first row not encoded.
   */
  #encodeRows(batch: TypedBatch, from: number): number {
    const { columns, rowCount } = batch;
    const kinds = this.#kinds;
    const tap = this.#tap;
    for (let row = from; row < rowCount; row++) {
      const rowStart = tap.pos;
      for (let c = 0; c < kinds.length; c++) {
        const value = columns[c]![row];
        if (value === null || value === undefined) {
          tap.buf[tap.pos++] = NULL_BRANCH;
          continue;
        }
        tap.buf[tap.pos++] = VALUE_BRANCH;
        switch (kinds[c]) {
          case KIND_LONG:
            writeBigint(tap, value as bigint);
            break;
          case KIND_DOUBLE:
            tap.writeDouble(value as number);
            break;
          case KIND_BOOLEAN:
            tap.buf[tap.pos++] = value ? 1 : 0;
            break;
          case KIND_INT:
            tap.writeInt(value as number);
            break;
          default:
            tap.writeString(value as string);
        }
      }
      // Tap writes past the end of its buffer are dropped, leaving pos beyond the length.
      if (!tap.isValid()) {
        const rowBytes = tap.pos - rowStart;
        tap.pos = rowStart;
        if (this.#rowsInBlock > 0) return row; // send the block, then encode this row again
        this.#tap = new Tap(Buffer.alloc(Math.max(TAP_BYTES, rowBytes * 2)));
        return this.#encodeRows(batch, row);
      }
      this.#rowsInBlock++;
      if (tap.pos >= BLOCK_BYTES) return row + 1;
    }
    return rowCount;
  }

  async #sendBlock(): Promise<void> {
    if (this.#rowsInBlock === 0) return;
    const stored = this.#codec(this.#tap.buf.subarray(0, this.#tap.pos));
    let storedBytes = 0;
    for (const part of stored) storedBytes += part.length;
    const chunk = Buffer.allocUnsafe(20 + storedBytes + 16);
    const framing = new Tap(chunk);
    framing.writeLong(this.#rowsInBlock);
    framing.writeLong(storedBytes);
    let offset = framing.pos;
    for (const part of stored) {
      chunk.set(part, offset);
      offset += part.length;
    }
    chunk.set(this.#sync, offset);
    offset += 16;
    this.#tap.pos = 0;
    this.#rowsInBlock = 0;
    await this.#sink.write(chunk.subarray(0, offset));
  }
}

/** Safe integers take avro-js's fast number path; the rest of the int64 range goes through `bigintLongType`. */
function writeBigint(tap: AvroTap, value: bigint): void {
  if (value >= SAFE_MIN && value <= SAFE_MAX) {
    tap.writeLong(Number(value));
    return;
  }
  const encoded = bigintLongType.toBuffer(value);
  if (tap.pos + encoded.length <= tap.buf.length) tap.buf.set(encoded, tap.pos);
  tap.pos += encoded.length;
}

export const avroFormat: FormatPlugin = {
  name: 'avro',
  extension: 'avro',
  contentType: 'application/avro',
  compressions: [...CODECS.keys()],

  createWriter(schema: TableSchema, sink: ByteSink, options: FormatOptions): FormatWriter {
    const compression = options.compression ?? 'deflate';
    const codec = pickCodec('avro', CODECS, compression);
    return new AvroFormatWriter(schema, sink, compression, codec);
  },
};
