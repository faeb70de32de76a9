/** The vocabulary every stage shares: column types, schemas and typed, columnar row batches. */

/** The logical types schema inference can choose, narrowest first. */
export const COLUMN_TYPES = ['int64', 'double', 'boolean', 'date', 'timestamp', 'string'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export interface Column {
  /** The header cell as written in the CSV, after empty and duplicate names are resolved. */
  name: string;
  type: ColumnType;
}

export interface TableSchema {
  columns: Column[];
}

/**
 * Which rows of a column are null: `nulls[row] === 1`. Absent when the column has no null. A null
 * row's slot in the values holds 0 (or an empty string), so every slot can be read.
 */
export type NullMask = Uint8Array | undefined;

interface ColumnBase {
  nulls: NullMask;
  nullCount: number;
}

/** Exact over the whole signed 64-bit range. */
export interface Int64Column extends ColumnBase {
  type: 'int64';
  values: BigInt64Array;
}
export interface DoubleColumn extends ColumnBase {
  type: 'double';
  values: Float64Array;
}
/** 1 for true, 0 for false. */
export interface BooleanColumn extends ColumnBase {
  type: 'boolean';
  values: Uint8Array;
}
/** Days since 1970-01-01. */
export interface DateColumn extends ColumnBase {
  type: 'date';
  values: Int32Array;
}
/** Microseconds since 1970-01-01T00:00:00Z. */
export interface TimestampColumn extends ColumnBase {
  type: 'timestamp';
  values: BigInt64Array;
}
/** UTF-8 text: row r is `bytes[offsets[r] .. offsets[r + 1])`; `offsets` has rowCount + 1 entries. */
export interface StringColumn extends ColumnBase {
  type: 'string';
  bytes: Uint8Array;
  offsets: Int32Array;
}

/**
 * One column of a batch, in typed arrays: built once from the CSV and read by every format, and
 * made of plain ArrayBuffers, so a batch can be spooled to disk or handed to another thread as is.
 */
export type TypedColumn = Int64Column | DoubleColumn | BooleanColumn | DateColumn | TimestampColumn | StringColumn;

/** A run of rows, column-major: columns[i] holds the values of schema.columns[i]. */
export interface TypedBatch {
  rowCount: number;
  columns: TypedColumn[];
}
