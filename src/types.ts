/** The vocabulary every stage shares: column types, schemas and typed row batches. */

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
 * One column of a batch, in the representation its type implies. Every column is nullable.
 * - int64: bigint (exact over the whole signed 64-bit range)
 * - double: number
 * - boolean: boolean
 * - date: number of days since 1970-01-01
 * - timestamp: bigint microseconds since 1970-01-01T00:00:00Z
 * - string: string
 */
export type ColumnValues =
  | (bigint | null)[]
  | (number | null)[]
  | (boolean | null)[]
  | (string | null)[];

/** A run of rows, column-major: columns[i] holds the values of schema.columns[i]. */
export interface TypedBatch {
  rowCount: number;
  columns: ColumnValues[];
}
