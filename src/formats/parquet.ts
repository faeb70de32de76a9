/**
 * The Parquet format plugin: each batch becomes a row group whose column chunks are encoded straight
 * from the batch's typed arrays and streamed to the sink as soon as the group is done.
 *
 * hyparquet-writer provides the RLE/bit-packed hybrid; the values are laid out here, because its
 * value-by-value path over JavaScript arrays cost more than the whole rest of the engine, and the
 * Thrift structures in parquet-thrift.ts (see README, Benchmarks).
 */
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { ByteWriter } from 'hyparquet-writer';
import { writeRleBitPackedHybrid } from 'hyparquet-writer/src/encoding.js';
import type { StringColumn, TableSchema, TypedBatch, TypedColumn } from '../types.js';
import type { ByteSink, FormatOptions, FormatPlugin, FormatWriter } from './types.js';
import { checkBatch, pickCodec } from './contract.js';
import { snappyCompress } from './snappy.js';
import { dataPageHeader, dictionaryPageHeader, fileMetaData, type ChunkMeta, type ChunkStatistics, type Codec, type RowGroupMeta } from './parquet-thrift.js';

type Compress = (bytes: Uint8Array) => Uint8Array;

/** Our codec names (what users type), default first, and the Parquet codec each one selects. */
const CODECS = new Map<string, { codec: Codec; compress: Compress }>([
  ['snappy', { codec: 'SNAPPY', compress: snappyCompress }],
  ['none', { codec: 'UNCOMPRESSED', compress: (bytes) => bytes }],
  ['gzip', { codec: 'GZIP', compress: (bytes) => gzipSync(bytes) }],
  ['zstd', { codec: 'ZSTD', compress: (bytes) => zstdCompressSync(bytes) }],
]);

/** Plain bytes per data page, as most writers do: readers can skip pages of a chunk. */
const PAGE_BYTES = 1 << 20;

const MAGIC = new Uint8Array([0x50, 0x41, 0x52, 0x31]); // PAR1

class ParquetFormatWriter implements FormatWriter {
  readonly #schema: TableSchema;
  readonly #sink: ByteSink;
  readonly #codec: Codec;
  readonly #compress: Compress;
  readonly #rowGroups: RowGroupMeta[] = [];
  #rows = 0;
  /** Bytes of the file so far: where the next page starts. */
  #offset = 0;
  #magicSent = false;
  #finished = false;
  /** Set when a write or the sink failed: the output is incomplete and nothing more may be added. */
  #failed = false;

  constructor(schema: TableSchema, sink: ByteSink, codec: { codec: Codec; compress: Compress }) {
    this.#schema = schema;
    this.#sink = sink;
    this.#codec = codec.codec;
    this.#compress = codec.compress;
  }

  async write(batch: TypedBatch): Promise<void> {
    this.#checkUsable();
    checkBatch(this.#schema, batch);
    if (batch.rowCount === 0) return;
    await this.#guard(async () => {
      const parts: Uint8Array[] = [];
      if (!this.#magicSent) this.#append(parts, MAGIC);
      this.#magicSent = true;
      const groupStart = this.#offset;
      let uncompressed = 0;
      const columns = batch.columns.map((column, c) => {
        const chunk = this.#writeChunk(parts, this.#schema.columns[c]!.name, column, batch.rowCount);
        uncompressed += chunk.uncompressed;
        return chunk;
      });
      this.#rowGroups.push({ columns, uncompressed, rows: batch.rowCount, compressed: this.#offset - groupStart });
      this.#rows += batch.rowCount;
      await this.#sink.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    });
  }

  async finish(): Promise<void> {
    this.#checkUsable();
    this.#finished = true;
    await this.#guard(async () => {
      const metadata = fileMetaData(this.#schema, this.#rowGroups, this.#rows, 's3-csv-converter');
      const head = this.#magicSent ? 0 : MAGIC.length;
      const footer = new Uint8Array(head + metadata.length + 8);
      if (head > 0) footer.set(MAGIC, 0);
      footer.set(metadata, head);
      new DataView(footer.buffer).setUint32(head + metadata.length, metadata.length, true);
      footer.set(MAGIC, head + metadata.length + 4);
      await this.#sink.write(footer);
    });
  }

  #append(parts: Uint8Array[], bytes: Uint8Array): void {
    parts.push(bytes);
    this.#offset += bytes.byteLength;
  }

  /** One column chunk: a dictionary page for a repetitive string column, then data pages (v2). */
  #writeChunk(parts: Uint8Array[], name: string, column: TypedColumn, rows: number): ChunkMeta {
    const chunkStart = this.#offset;
    let uncompressed = 0;
    let dictionaryOffset: number | undefined;
    const dictionary = column.type === 'string' ? stringDictionary(column, rows) : undefined;
    if (dictionary) {
      dictionaryOffset = this.#offset;
      const plain = plainStrings(column as StringColumn, dictionary.firstRows);
      const stored = this.#compress(plain);
      const header = dictionaryPageHeader(plain.byteLength, stored.byteLength, dictionary.firstRows.length);
      this.#append(parts, header);
      this.#append(parts, stored);
      uncompressed += header.byteLength + plain.byteLength;
    }
    const dataOffset = this.#offset;
    let pages = 0;
    for (const [start, end] of pageRanges(column, rows, dictionary !== undefined)) {
      const levels = definitionLevels(column, start, end);
      const values = dictionary ? dictionaryIndexes(column as StringColumn, dictionary, start, end) : plainValues(column, start, end);
      const stored = this.#compress(values);
      const nulls = countNulls(column, start, end);
      const header = dataPageHeader({
        uncompressed: levels.byteLength + values.byteLength,
        compressed: levels.byteLength + stored.byteLength,
        rows: end - start,
        nulls,
        dictionary: dictionary !== undefined,
        levelBytes: levels.byteLength,
        isCompressed: this.#codec !== 'UNCOMPRESSED',
      });
      this.#append(parts, header);
      this.#append(parts, levels);
      this.#append(parts, stored);
      uncompressed += header.byteLength + levels.byteLength + values.byteLength;
      pages++;
    }
    return {
      type: column.type,
      name,
      codec: this.#codec,
      dictionary: dictionary !== undefined,
      values: rows,
      uncompressed,
      compressed: this.#offset - chunkStart,
      fileOffset: chunkStart,
      dataOffset,
      dictionaryOffset,
      dataPages: pages,
      statistics: statistics(column, rows, dictionary),
    };
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

// ---- pages ---------------------------------------------------------------------------------------

/** Row ranges of about PAGE_BYTES of plain values each. */
function pageRanges(column: TypedColumn, rows: number, dictionary: boolean): [number, number][] {
  if (column.type !== 'string' || dictionary) {
    const width = dictionary ? 4 : column.type === 'boolean' ? 1 : column.type === 'date' ? 4 : 8;
    const perPage = Math.max(1, Math.floor(PAGE_BYTES / width));
    const ranges: [number, number][] = [];
    for (let start = 0; start < rows; start += perPage) ranges.push([start, Math.min(rows, start + perPage)]);
    return ranges;
  }
  const { offsets } = column;
  const ranges: [number, number][] = [];
  let start = 0;
  for (let row = 0; row < rows; row++) {
    if (row > start && offsets[row + 1]! - offsets[start]! + 4 * (row + 1 - start) > PAGE_BYTES) {
      ranges.push([start, row]);
      start = row;
    }
  }
  ranges.push([start, rows]);
  return ranges;
}

function countNulls(column: TypedColumn, start: number, end: number): number {
  const { nulls } = column;
  if (!nulls) return 0;
  let count = 0;
  for (let row = start; row < end; row++) count += nulls[row]!;
  return count;
}

/** Definition levels (1 = a value, 0 = null), RLE/bit-packed hybrid of bit width 1. */
function definitionLevels(column: TypedColumn, start: number, end: number): Uint8Array {
  const writer = new ByteWriter(16 + ((end - start) >> 3));
  const { nulls } = column;
  if (!nulls || countNulls(column, start, end) === 0) {
    // One run of ones.
    writer.appendVarInt((end - start) << 1);
    writer.appendUint8(1);
    return writer.getBytes();
  }
  const levels = new Uint8Array(end - start);
  for (let row = start; row < end; row++) levels[row - start] = 1 - nulls[row]!;
  writeRleBitPackedHybrid(writer, levels, 1);
  return writer.getBytes();
}

/** The non-null values of rows [start, end) in PLAIN encoding. */
function plainValues(column: TypedColumn, start: number, end: number): Uint8Array {
  const { nulls } = column;
  const nonNull = end - start - countNulls(column, start, end);
  switch (column.type) {
    case 'int64':
    case 'timestamp':
    case 'double':
    case 'date': {
      const values = column.values;
      const width = values.BYTES_PER_ELEMENT;
      if (nonNull === end - start) return new Uint8Array(values.buffer, values.byteOffset + start * width, nonNull * width);
      // Copied as 32-bit words: reading a BigInt64Array element would allocate a BigInt.
      const words = width / 4;
      const from = new Int32Array(values.buffer, values.byteOffset, values.length * words);
      const to = new Int32Array(nonNull * words);
      let at = 0;
      for (let row = start; row < end; row++) {
        if (nulls![row] === 1) continue;
        for (let w = 0; w < words; w++) to[at++] = from[row * words + w]!;
      }
      return new Uint8Array(to.buffer);
    }
    case 'boolean': {
      const packed = new Uint8Array((nonNull + 7) >> 3);
      let bit = 0;
      for (let row = start; row < end; row++) {
        if (nulls?.[row] === 1) continue;
        if (column.values[row] === 1) packed[bit >> 3]! |= 1 << (bit & 7);
        bit++;
      }
      return packed;
    }
    case 'string': {
      const rowsWithValues: number[] = [];
      for (let row = start; row < end; row++) if (nulls?.[row] !== 1) rowsWithValues.push(row);
      return plainStrings(column, rowsWithValues);
    }
  }
}

/** The given rows' strings as PLAIN BYTE_ARRAY: a 4-byte little-endian length, then the bytes. */
function plainStrings(column: StringColumn, rows: ArrayLike<number>): Uint8Array {
  const { bytes, offsets } = column;
  let size = 4 * rows.length;
  for (let i = 0; i < rows.length; i++) size += offsets[rows[i]! + 1]! - offsets[rows[i]!]!;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (let i = 0; i < rows.length; i++) {
    const from = offsets[rows[i]!]!;
    const to = offsets[rows[i]! + 1]!;
    view.setUint32(at, to - from, true);
    at += 4;
    if (to - from > 32) {
      out.set(bytes.subarray(from, to), at);
      at += to - from;
    } else {
      for (let k = from; k < to; k++) out[at++] = bytes[k]!;
    }
  }
  return out;
}

// ---- dictionary ------------------------------------------------------------------------------------

interface Dictionary {
  /** For each dictionary entry, the first row holding it. */
  firstRows: number[];
  /** For each row, its entry (nulls: unused). */
  entries: Int32Array;
}

/**
 * Dictionary-encodes a string column when that at least halves its plain size (hyparquet-writer's
 * rule), so repetitive columns (codes, statuses, cities) stay small; undefined otherwise.
 */
function stringDictionary(column: StringColumn, rows: number): Dictionary | undefined {
  const { bytes, offsets, nulls } = column;
  const nonNull = rows - column.nullCount;
  if (nonNull === 0) return undefined;
  // Give up as soon as the distinct values alone could not pay: more than half the values.
  const limit = Math.max(16, nonNull >> 1);
  let slots = 64;
  while (slots < 2 * Math.min(limit + 1, nonNull)) slots <<= 1;
  const table = new Int32Array(slots).fill(-1);
  const mask = slots - 1;
  const firstRows: number[] = [];
  const hashes: number[] = [];
  const entries = new Int32Array(rows);
  let distinctBytes = 0;
  let plainBytes = 0;
  for (let row = 0; row < rows; row++) {
    if (nulls?.[row] === 1) continue;
    const from = offsets[row]!;
    const to = offsets[row + 1]!;
    plainBytes += 4 + to - from;
    let hash = 0x811c9dc5;
    for (let k = from; k < to; k++) hash = Math.imul(hash ^ bytes[k]!, 0x01000193);
    let slot = hash & mask;
    let entry = -1;
    for (;;) {
      const candidate = table[slot]!;
      if (candidate === -1) break;
      if (hashes[candidate] === hash && sameBytes(bytes, offsets, firstRows[candidate]!, row)) {
        entry = candidate;
        break;
      }
      slot = (slot + 1) & mask;
    }
    if (entry === -1) {
      entry = firstRows.length;
      if (entry >= limit) return undefined;
      firstRows.push(row);
      hashes.push(hash);
      table[slot] = entry;
      distinctBytes += 4 + to - from;
    }
    entries[row] = entry;
  }
  const indexBytes = Math.ceil((nonNull * bitWidthOf(firstRows.length)) / 8);
  return 2 * (distinctBytes + indexBytes) <= plainBytes ? { firstRows, entries } : undefined;
}

function sameBytes(bytes: Uint8Array, offsets: Int32Array, a: number, b: number): boolean {
  const aFrom = offsets[a]!;
  const length = offsets[a + 1]! - aFrom;
  const bFrom = offsets[b]!;
  if (offsets[b + 1]! - bFrom !== length) return false;
  for (let k = 0; k < length; k++) if (bytes[aFrom + k] !== bytes[bFrom + k]) return false;
  return true;
}

function bitWidthOf(entries: number): number {
  return Math.max(1, Math.ceil(Math.log2(entries)));
}

/** RLE_DICTIONARY data: the bit width, then the non-null rows' entries as an RLE/bit-packed hybrid. */
function dictionaryIndexes(column: StringColumn, dictionary: Dictionary, start: number, end: number): Uint8Array {
  const { nulls } = column;
  const indexes = new Int32Array(end - start - countNulls(column, start, end));
  let at = 0;
  for (let row = start; row < end; row++) if (nulls?.[row] !== 1) indexes[at++] = dictionary.entries[row]!;
  const bitWidth = bitWidthOf(dictionary.firstRows.length);
  const writer = new ByteWriter(16 + ((indexes.length * bitWidth) >> 3));
  writer.appendUint8(bitWidth);
  writeRleBitPackedHybrid(writer, indexes, bitWidth);
  return writer.getBytes();
}

// ---- statistics ------------------------------------------------------------------------------------

/** Bounds longer than this are left out (Parquet allows it) rather than truncated. */
const MAX_STATISTIC_BYTES = 64;

/**
 * Min, max (in their plain encoding) and null count of a column chunk, as readers use them to skip
 * row groups. A string column's dictionary holds each distinct value once: its bounds are found
 * among those alone.
 */
function statistics(column: TypedColumn, rows: number, dictionary?: Dictionary): ChunkStatistics {
  const { nulls } = column;
  const nullCount = column.nullCount;
  let minRow = -1;
  let maxRow = -1;
  switch (column.type) {
    case 'int64':
    case 'timestamp': {
      const words = new Int32Array(column.values.buffer, column.values.byteOffset, 2 * rows);
      const below = (a: number, b: number) => words[2 * a + 1]! < words[2 * b + 1]! || (words[2 * a + 1] === words[2 * b + 1] && words[2 * a]! >>> 0 < words[2 * b]! >>> 0);
      for (let row = 0; row < rows; row++) {
        if (nulls?.[row] === 1) continue;
        if (minRow === -1 || below(row, minRow)) minRow = row;
        if (maxRow === -1 || below(maxRow, row)) maxRow = row;
      }
      if (minRow === -1) return { nullCount };
      const bytes = new Uint8Array(column.values.buffer, column.values.byteOffset, 8 * rows);
      return { nullCount, min: bytes.slice(8 * minRow, 8 * minRow + 8), max: bytes.slice(8 * maxRow, 8 * maxRow + 8) };
    }
    case 'double': {
      let min = Infinity;
      let max = -Infinity;
      let seen = false;
      for (let row = 0; row < rows; row++) {
        const value = column.values[row]!;
        if (nulls?.[row] === 1 || value !== value) continue; // nulls and NaN have no order
        seen = true;
        if (value < min) min = value;
        if (value > max) max = value;
      }
      if (!seen) return { nullCount };
      // The Parquet spec: a zero minimum is written -0 and a zero maximum +0.
      return { nullCount, min: new Uint8Array(Float64Array.of(min === 0 ? -0 : min).buffer), max: new Uint8Array(Float64Array.of(max === 0 ? 0 : max).buffer) };
    }
    case 'date': {
      let min = Infinity;
      let max = -Infinity;
      for (let row = 0; row < rows; row++) {
        if (nulls?.[row] === 1) continue;
        const value = column.values[row]!;
        if (value < min) min = value;
        if (value > max) max = value;
      }
      return min > max ? { nullCount } : { nullCount, min: new Uint8Array(Int32Array.of(min).buffer), max: new Uint8Array(Int32Array.of(max).buffer) };
    }
    case 'boolean': {
      let sawTrue = false;
      let sawFalse = false;
      for (let row = 0; row < rows; row++) {
        if (nulls?.[row] === 1) continue;
        if (column.values[row] === 1) sawTrue = true;
        else sawFalse = true;
      }
      if (!sawTrue && !sawFalse) return { nullCount };
      return { nullCount, min: Uint8Array.of(sawFalse ? 0 : 1), max: Uint8Array.of(sawTrue ? 1 : 0) };
    }
    case 'string': {
      const { bytes, offsets } = column;
      const candidates = dictionary?.firstRows;
      const count = candidates ? candidates.length : rows;
      for (let i = 0; i < count; i++) {
        const row = candidates ? candidates[i]! : i;
        if (nulls?.[row] === 1) continue;
        if (minRow === -1 || compareBytes(bytes, offsets, row, minRow) < 0) minRow = row;
        if (maxRow === -1 || compareBytes(bytes, offsets, row, maxRow) > 0) maxRow = row;
      }
      if (minRow === -1) return { nullCount };
      const min = bytes.slice(offsets[minRow]!, offsets[minRow + 1]!);
      const max = bytes.slice(offsets[maxRow]!, offsets[maxRow + 1]!);
      return min.length > MAX_STATISTIC_BYTES || max.length > MAX_STATISTIC_BYTES ? { nullCount } : { nullCount, min, max };
    }
  }
}

/** Unsigned lexicographic order of two rows' bytes, as Parquet orders BYTE_ARRAY bounds. */
function compareBytes(bytes: Uint8Array, offsets: Int32Array, a: number, b: number): number {
  const aFrom = offsets[a]!;
  const aLength = offsets[a + 1]! - aFrom;
  const bFrom = offsets[b]!;
  const bLength = offsets[b + 1]! - bFrom;
  const length = Math.min(aLength, bLength);
  for (let k = 0; k < length; k++) {
    const diff = bytes[aFrom + k]! - bytes[bFrom + k]!;
    if (diff !== 0) return diff;
  }
  return aLength - bLength;
}

export const parquetFormat: FormatPlugin = {
  name: 'parquet',
  extension: 'parquet',
  contentType: 'application/vnd.apache.parquet',
  compressions: [...CODECS.keys()],
  compressionOption: { description: 'Parquet page compression' },

  createWriter(schema: TableSchema, sink: ByteSink, options: FormatOptions): FormatWriter {
    const codec = pickCodec('parquet', CODECS, options.compression ?? 'snappy');
    const names = new Set(schema.columns.map((column) => column.name));
    if (names.size !== schema.columns.length) throw new Error('parquet: column names must be unique');
    return new ParquetFormatWriter(schema, sink, codec);
  },
};
