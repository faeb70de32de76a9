/**
 * The Avro format plugin: an object container file, one record of nullable unions per row, encoded
 * straight from the batch's typed arrays into blocks that are streamed to the sink.
 *
 * The container framing and the binary encoding are a few lines each (Avro 1.11 spec, "Binary
 * Encoding" and "Object Container Files"); encoding here rather than through avro-js's per-value
 * types keeps int64 exact without BigInts and costs no schema parsing per file. avro-js and
 * fastavro read the files back in the tests.
 */
import { randomBytes } from 'node:crypto';
import { crc32, deflateRawSync } from 'node:zlib';
import type { ColumnType, TableSchema, TypedBatch } from '../types.js';
import { avroFieldNames } from './avro-names.js';
import type { ByteSink, FormatOptions, FormatPlugin, FormatWriter } from './types.js';
import { checkBatch, pickCodec } from './contract.js';
import { borrowScratch, returnScratch } from './scratch.js';
import { snappyCompress } from './snappy.js';

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
type BlockCodec = (data: Uint8Array) => Uint8Array[];

/**
 * zlib level 1, not the default 6: on the bench file's 64 KiB blocks, with the most memory
 * (memLevel 9), it took a third less CPU than level 3 for output 2% larger (deflate was a quarter
 * of the engine's CPU at level 3). A small file's one block is faster with the default memory,
 * which is less to set up.
 */
const DEFLATE_LARGE = { level: 1, memLevel: 9 };
const DEFLATE_SMALL = { level: 1 };

const CODECS = new Map<string, BlockCodec>([
  ['deflate', (data) => [deflateRawSync(data, data.length >= BLOCK_BYTES / 2 ? DEFLATE_LARGE : DEFLATE_SMALL)]],
  // Copied: the block is encoded in a scratch buffer that the next block reuses.
  ['null', (data) => [data.slice()]],
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
const SCRATCH_BYTES = BLOCK_BYTES * 2;

// Union branch indexes as zig-zag varints: `null` is branch 0, the value type branch 1.
const NULL_BRANCH = 0;
const VALUE_BRANCH = 2;
/** The most a non-string value takes: a branch byte and a 10-byte varint. */
const MAX_FIXED_VALUE_BYTES = 11;

/** A growable output buffer: the block being encoded. */
class BlockBuffer {
  bytes: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  ensure(extra: number): void {
    if (this.pos + extra <= this.bytes.length) return;
    const bytes = new Uint8Array(Math.max(this.bytes.length * 2, this.pos + extra));
    bytes.set(this.bytes.subarray(0, this.pos));
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer);
  }

  /** A zig-zag varint of a 32-bit signed integer (Avro `int`, and small `long`s). */
  writeInt(value: number): void {
    let n = ((value << 1) ^ (value >> 31)) >>> 0;
    const bytes = this.bytes;
    while (n >= 0x80) {
      bytes[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    bytes[this.pos++] = n;
  }

  /** A zig-zag varint of the 64-bit integer whose words are `low` (unsigned) and `high` (signed). */
  writeLong(low: number, high: number): void {
    const sign = high >> 31;
    let lo = ((low << 1) ^ sign) >>> 0;
    let hi = (((high << 1) | (low >>> 31)) ^ sign) >>> 0;
    const bytes = this.bytes;
    while (hi !== 0 || lo >= 0x80) {
      bytes[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
      hi >>>= 7;
    }
    bytes[this.pos++] = lo;
  }

  writeBytes(source: Uint8Array, from: number, to: number): void {
    const bytes = this.bytes;
    if (to - from > 32) {
      bytes.set(source.subarray(from, to), this.pos);
      this.pos += to - from;
      return;
    }
    for (let k = from; k < to; k++) bytes[this.pos++] = source[k]!;
  }
}

class AvroFormatWriter implements FormatWriter {
  readonly #schema: TableSchema;
  readonly #sink: ByteSink;
  readonly #codec: BlockCodec;
  readonly #header: Uint8Array;
  readonly #sync: Buffer;
  /** Encodes into a borrowed scratch buffer (given back by finish); a block is copied out when sent. */
  #block = new BlockBuffer(new Uint8Array(borrowScratch(SCRATCH_BYTES)));
  #rowsInBlock = 0;
  #headerSent = false;
  #finished = false;
  /** Set when a write or the sink failed: the output is incomplete and nothing more may be added. */
  #failed = false;

  constructor(schema: TableSchema, sink: ByteSink, codecName: string, codec: BlockCodec) {
    this.#schema = schema;
    this.#sink = sink;
    this.#codec = codec;
    this.#sync = syncMarker();
    this.#header = containerHeader(schema, codecName, this.#sync);
  }

  async write(batch: TypedBatch): Promise<void> {
    this.#checkUsable();
    checkBatch(this.#schema, batch);
    await this.#guard(async () => {
      await this.#sendHeader();
      let row = 0;
      while (row < batch.rowCount) {
        row = this.#encodeRows(batch, row);
        if (row < batch.rowCount || this.#block.pos >= BLOCK_BYTES) await this.#sendBlock();
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
    const buffer = this.#block.bytes.buffer;
    if (buffer.byteLength === SCRATCH_BYTES && buffer instanceof ArrayBuffer) returnScratch(buffer);
    this.#block = new BlockBuffer(new Uint8Array(0));
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

  /** Encodes rows from `from` until the batch ends or the block is full; returns the first row not encoded. */
  #encodeRows(batch: TypedBatch, from: number): number {
    const { columns, rowCount } = batch;
    const block = this.#block;
    const fixedRowBytes = columns.length * MAX_FIXED_VALUE_BYTES;
    // 64-bit values are read as two 32-bit words: reading a BigInt64Array element allocates a BigInt.
    const words = columns.map((column) =>
      column.type === 'int64' || column.type === 'timestamp' ? new Int32Array(column.values.buffer, column.values.byteOffset, 2 * rowCount) : undefined,
    );
    const strings = columns.filter((column) => column.type === 'string');
    for (let row = from; row < rowCount; row++) {
      let rowBytes = fixedRowBytes;
      for (const column of strings) rowBytes += column.offsets[row + 1]! - column.offsets[row]!;
      // A row that would overflow the block starts the next one (a huge row gets a block of its own).
      if (this.#rowsInBlock > 0 && block.pos + rowBytes > BLOCK_BYTES) return row;
      block.ensure(rowBytes);
      for (let c = 0; c < columns.length; c++) {
        const column = columns[c]!;
        if (column.nulls !== undefined && column.nulls[row] === 1) {
          block.bytes[block.pos++] = NULL_BRANCH;
          continue;
        }
        block.bytes[block.pos++] = VALUE_BRANCH;
        switch (column.type) {
          case 'int64':
          case 'timestamp': {
            const pair = words[c]!;
            block.writeLong(pair[2 * row]! >>> 0, pair[2 * row + 1]!);
            break;
          }
          case 'double':
            block.view.setFloat64(block.pos, column.values[row]!, true);
            block.pos += 8;
            break;
          case 'boolean':
            block.bytes[block.pos++] = column.values[row]!;
            break;
          case 'date':
            block.writeInt(column.values[row]!);
            break;
          case 'string': {
            const start = column.offsets[row]!;
            const end = column.offsets[row + 1]!;
            block.writeInt(end - start);
            block.writeBytes(column.bytes, start, end);
            break;
          }
        }
      }
      this.#rowsInBlock++;
      if (block.pos >= BLOCK_BYTES) return row + 1;
    }
    return rowCount;
  }

  async #sendBlock(): Promise<void> {
    if (this.#rowsInBlock === 0) return;
    const block = this.#block;
    const stored = this.#codec(block.bytes.subarray(0, block.pos));
    let storedBytes = 0;
    for (const part of stored) storedBytes += part.length;
    const framing = new BlockBuffer(new Uint8Array(20));
    writeLongNumber(framing, this.#rowsInBlock);
    writeLongNumber(framing, storedBytes);
    const chunk = new Uint8Array(framing.pos + storedBytes + 16);
    chunk.set(framing.bytes.subarray(0, framing.pos), 0);
    let offset = framing.pos;
    for (const part of stored) {
      chunk.set(part, offset);
      offset += part.length;
    }
    chunk.set(this.#sync, offset);
    block.pos = 0;
    this.#rowsInBlock = 0;
    await this.#sink.write(chunk);
  }
}

/** Random bytes drawn 4 KiB at a time: a call to the random source per file cost more than its block. */
let randomPool = Buffer.alloc(0);
let randomAt = 0;

/** A file's 16-byte sync marker, random as the spec asks. */
function syncMarker(): Buffer {
  if (randomAt + 16 > randomPool.length) {
    randomPool = randomBytes(4096);
    randomAt = 0;
  }
  randomAt += 16;
  return randomPool.subarray(randomAt - 16, randomAt);
}

/** A non-negative safe integer as an Avro long. */
function writeLongNumber(buffer: BlockBuffer, value: number): void {
  const high = Math.floor(value / 4294967296);
  buffer.writeLong(value - high * 4294967296, high);
}

/** Headers without their sync marker, by schema and codec: files of one dataset share them. */
const headers = new Map<string, Uint8Array>();
const MAX_CACHED_HEADERS = 64;

/** The container file header: magic, the metadata map (schema, codec), then the file's sync marker. */
function containerHeader(schema: TableSchema, codecName: string, sync: Uint8Array): Uint8Array {
  const key = `${codecName}\n${schema.columns.map((column) => `${column.type}:${column.name}`).join('\n')}`;
  let head = headers.get(key);
  if (!head) {
    head = headerWithoutSync(JSON.stringify(avroSchema(schema)), codecName);
    if (headers.size >= MAX_CACHED_HEADERS) headers.clear();
    headers.set(key, head);
  }
  const header = new Uint8Array(head.length + 16);
  header.set(head, 0);
  header.set(sync, head.length);
  return header;
}

function headerWithoutSync(schemaJson: string, codecName: string): Uint8Array {
  const entries = [
    ['avro.schema', Buffer.from(schemaJson)],
    ['avro.codec', Buffer.from(codecName)],
  ] as const;
  let size = 4 + 10 + 1;
  for (const [key, value] of entries) size += 2 * 10 + key.length + value.length;
  const header = new BlockBuffer(new Uint8Array(size));
  header.writeBytes(Buffer.from('Obj\x01', 'latin1'), 0, 4);
  writeLongNumber(header, entries.length);
  for (const [key, value] of entries) {
    const name = Buffer.from(key);
    writeLongNumber(header, name.length);
    header.writeBytes(name, 0, name.length);
    writeLongNumber(header, value.length);
    header.writeBytes(value, 0, value.length);
  }
  writeLongNumber(header, 0); // end of the map
  return header.bytes.slice(0, header.pos);
}

export const avroFormat: FormatPlugin = {
  name: 'avro',
  extension: 'avro',
  contentType: 'application/avro',
  compressions: [...CODECS.keys()],
  // Named before formats declared their options; kept so deployments keep working.
  compressionOption: { setting: 'AVRO_CODEC', flag: 'avro-codec', description: 'Avro block codec' },

  createWriter(schema: TableSchema, sink: ByteSink, options: FormatOptions): FormatWriter {
    const compression = options.compression ?? 'deflate';
    const codec = pickCodec('avro', CODECS, compression);
    return new AvroFormatWriter(schema, sink, compression, codec);
  },
};
