/**
 * The Thrift structures of a Parquet file this writer produces (page headers and the footer's
 * FileMetaData), in Thrift's compact protocol, written directly from what the writer knows. A
 * 20 KB file has a dozen pages and a footer of a few hundred fields: hyparquet-writer's generic
 * serializer (object keys, regular expressions, BigInts) took 10% of such a file's engine time.
 * Field ids and types follow parquet.thrift (apache/parquet-format).
 */
import type { ColumnType, TableSchema } from '../types.js';

// Compact protocol element types.
const TRUE = 1;
const FALSE = 2;
const I32 = 5;
const I64 = 6;
const BINARY = 8;
const LIST = 9;
const STRUCT = 12;

/** A growable buffer with the compact protocol's primitives; field ids within a struct only grow. */
class CompactWriter {
  bytes = new Uint8Array(256);
  length = 0;
  readonly #lastField: number[] = [0];
  readonly #text = new TextEncoder();

  #ensure(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const bytes = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
    bytes.set(this.bytes.subarray(0, this.length));
    this.bytes = bytes;
  }

  #byte(value: number): void {
    this.#ensure(1);
    this.bytes[this.length++] = value;
  }

  /** An unsigned varint of a non-negative safe integer. */
  #varint(value: number): void {
    this.#ensure(10);
    while (value >= 0x80) {
      this.bytes[this.length++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.bytes[this.length++] = value;
  }

  #header(field: number, type: number): void {
    const depth = this.#lastField.length - 1;
    const delta = field - this.#lastField[depth]!;
    if (delta > 0 && delta <= 15) this.#byte((delta << 4) | type);
    else {
      this.#byte(type);
      this.#varint(field * 2); // zig-zag i16
    }
    this.#lastField[depth] = field;
  }

  i32(field: number, value: number): void {
    this.#header(field, I32);
    this.#varint(((value << 1) ^ (value >> 31)) >>> 0);
  }

  /** A non-negative i64 below 2^53 (sizes, offsets, counts): its zig-zag form is twice it. */
  i64(field: number, value: number): void {
    this.#header(field, I64);
    this.#varint(value * 2);
  }

  bool(field: number, value: boolean): void {
    this.#header(field, value ? TRUE : FALSE);
  }

  binary(field: number, value: Uint8Array | string): void {
    const bytes = typeof value === 'string' ? this.#text.encode(value) : value;
    this.#header(field, BINARY);
    this.#varint(bytes.length);
    this.#ensure(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  beginStruct(field: number): void {
    this.#header(field, STRUCT);
    this.#lastField.push(0);
  }

  /** An element of a list of structs. */
  beginElement(): void {
    this.#lastField.push(0);
  }

  endStruct(): void {
    this.#byte(0);
    this.#lastField.pop();
  }

  /** A struct holding one empty struct (a union member such as LogicalType.STRING). */
  emptyStruct(field: number): void {
    this.beginStruct(field);
    this.endStruct();
  }

  list(field: number, elementType: number, size: number): void {
    this.#header(field, LIST);
    if (size < 15) this.#byte((size << 4) | elementType);
    else {
      this.#byte(0xf0 | elementType);
      this.#varint(size);
    }
  }

  listI32(field: number, values: readonly number[]): void {
    this.list(field, I32, values.length);
    for (const value of values) this.#varint(((value << 1) ^ (value >> 31)) >>> 0);
  }

  listBinary(field: number, values: readonly string[]): void {
    this.list(field, BINARY, values.length);
    for (const value of values) {
      const bytes = this.#text.encode(value);
      this.#varint(bytes.length);
      this.#ensure(bytes.length);
      this.bytes.set(bytes, this.length);
      this.length += bytes.length;
    }
  }

  /** The bytes so far, after ending the outermost struct. */
  done(): Uint8Array {
    this.endStruct();
    return this.bytes.subarray(0, this.length);
  }
}

// Enums of parquet.thrift.
const PAGE_TYPE = { DICTIONARY_PAGE: 2, DATA_PAGE_V2: 3 };
const ENCODING = { PLAIN: 0, RLE_DICTIONARY: 8 };
export const CODEC = { UNCOMPRESSED: 0, SNAPPY: 1, GZIP: 2, ZSTD: 6 } as const;
export type Codec = keyof typeof CODEC;
const PHYSICAL: Record<ColumnType, number> = { boolean: 0, date: 1, int64: 2, timestamp: 2, double: 5, string: 6 };
const OPTIONAL = 1;
const CONVERTED = { UTF8: 0, DATE: 6, TIMESTAMP_MICROS: 10 };

export function dictionaryPageHeader(uncompressed: number, compressed: number, entries: number): Uint8Array {
  const out = new CompactWriter();
  out.i32(1, PAGE_TYPE.DICTIONARY_PAGE);
  out.i32(2, uncompressed);
  out.i32(3, compressed);
  out.beginStruct(7);
  out.i32(1, entries);
  out.i32(2, ENCODING.PLAIN);
  out.endStruct();
  return out.done();
}

export interface DataPage {
  uncompressed: number;
  compressed: number;
  rows: number;
  nulls: number;
  dictionary: boolean;
  levelBytes: number;
  isCompressed: boolean;
}

export function dataPageHeader(page: DataPage): Uint8Array {
  const out = new CompactWriter();
  out.i32(1, PAGE_TYPE.DATA_PAGE_V2);
  out.i32(2, page.uncompressed);
  out.i32(3, page.compressed);
  out.beginStruct(8);
  out.i32(1, page.rows); // num_values
  out.i32(2, page.nulls);
  out.i32(3, page.rows); // num_rows
  out.i32(4, page.dictionary ? ENCODING.RLE_DICTIONARY : ENCODING.PLAIN);
  out.i32(5, page.levelBytes); // definition levels
  out.i32(6, 0); // repetition levels
  if (!page.isCompressed) out.bool(7, false); // the default is true
  out.endStruct();
  return out.done();
}

/** Min and max in their plain encoding, as the Statistics struct holds them. */
export interface ChunkStatistics {
  nullCount: number;
  min?: Uint8Array;
  max?: Uint8Array;
}

export interface ChunkMeta {
  type: ColumnType;
  name: string;
  codec: Codec;
  dictionary: boolean;
  values: number;
  uncompressed: number;
  compressed: number;
  fileOffset: number;
  dataOffset: number;
  dictionaryOffset?: number;
  dataPages: number;
  statistics: ChunkStatistics;
}

export interface RowGroupMeta {
  columns: ChunkMeta[];
  uncompressed: number;
  rows: number;
  compressed: number;
}

/** The footer's FileMetaData: schema (all columns OPTIONAL), row groups, writer name, column orders. */
export function fileMetaData(schema: TableSchema, rowGroups: readonly RowGroupMeta[], rows: number, createdBy: string): Uint8Array {
  const out = new CompactWriter();
  out.i32(1, 2); // version
  out.list(2, STRUCT, schema.columns.length + 1);
  out.beginElement();
  out.binary(4, 'root');
  out.i32(5, schema.columns.length);
  out.endStruct();
  for (const column of schema.columns) schemaElement(out, column.name, column.type);
  out.i64(3, rows);
  out.list(4, STRUCT, rowGroups.length);
  for (const group of rowGroups) {
    out.beginElement();
    out.list(1, STRUCT, group.columns.length);
    for (const chunk of group.columns) columnChunk(out, chunk);
    out.i64(2, group.uncompressed);
    out.i64(3, group.rows);
    out.i64(6, group.compressed);
    out.endStruct();
  }
  out.binary(6, createdBy);
  // Min and max are ordered by the columns' types (TypeDefinedOrder), which readers need to trust them.
  out.list(7, STRUCT, schema.columns.length);
  for (let c = 0; c < schema.columns.length; c++) {
    out.beginElement();
    out.emptyStruct(1);
    out.endStruct();
  }
  return out.done();
}

function schemaElement(out: CompactWriter, name: string, type: ColumnType): void {
  out.beginElement();
  out.i32(1, PHYSICAL[type]);
  out.i32(3, OPTIONAL);
  out.binary(4, name);
  if (type === 'string') out.i32(6, CONVERTED.UTF8);
  else if (type === 'date') out.i32(6, CONVERTED.DATE);
  else if (type === 'timestamp') out.i32(6, CONVERTED.TIMESTAMP_MICROS);
  if (type === 'string' || type === 'date' || type === 'timestamp') {
    out.beginStruct(10); // LogicalType
    if (type === 'string') out.emptyStruct(1);
    else if (type === 'date') out.emptyStruct(6);
    else {
      out.beginStruct(8); // TimestampType
      out.bool(1, true); // isAdjustedToUTC
      out.beginStruct(2); // TimeUnit
      out.emptyStruct(2); // MICROS
      out.endStruct();
      out.endStruct();
    }
    out.endStruct();
  }
  out.endStruct();
}

function columnChunk(out: CompactWriter, chunk: ChunkMeta): void {
  out.beginElement();
  out.i64(2, chunk.fileOffset);
  out.beginStruct(3); // ColumnMetaData
  out.i32(1, PHYSICAL[chunk.type]);
  out.listI32(2, chunk.dictionary ? [ENCODING.PLAIN, ENCODING.RLE_DICTIONARY] : [ENCODING.PLAIN]);
  out.listBinary(3, [chunk.name]);
  out.i32(4, CODEC[chunk.codec]);
  out.i64(5, chunk.values);
  out.i64(6, chunk.uncompressed);
  out.i64(7, chunk.compressed);
  out.i64(9, chunk.dataOffset);
  if (chunk.dictionaryOffset !== undefined) out.i64(11, chunk.dictionaryOffset);
  const { statistics } = chunk;
  out.beginStruct(12);
  out.i64(3, statistics.nullCount);
  if (statistics.max && statistics.min) {
    out.binary(5, statistics.max);
    out.binary(6, statistics.min);
    out.bool(7, true); // exact
    out.bool(8, true);
  }
  out.endStruct();
  // PageEncodingStats: what each page's encoding is, so readers can tell a fully dictionary-encoded chunk.
  out.list(13, STRUCT, chunk.dictionary ? 2 : 1);
  if (chunk.dictionary) encodingStats(out, PAGE_TYPE.DICTIONARY_PAGE, ENCODING.PLAIN, 1);
  encodingStats(out, PAGE_TYPE.DATA_PAGE_V2, chunk.dictionary ? ENCODING.RLE_DICTIONARY : ENCODING.PLAIN, chunk.dataPages);
  out.endStruct();
  out.endStruct();
}

function encodingStats(out: CompactWriter, pageType: number, encoding: number, count: number): void {
  out.beginElement();
  out.i32(1, pageType);
  out.i32(2, encoding);
  out.i32(3, count);
  out.endStruct();
}
