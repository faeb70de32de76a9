/**
 * Reads a batch value by value, as plain JavaScript values, for formats that think in values (and
 * for tests); the built-in writers read the typed arrays directly.
 */
import type { TypedColumn } from '../types.js';

/** A cell: int64 and timestamp (microseconds) as bigint, date as days, null for null. */
export type CellValue = bigint | number | boolean | string | null;

const utf8 = new TextDecoder();

export function valueAt(column: TypedColumn, row: number): CellValue {
  if (column.nulls?.[row] === 1) return null;
  switch (column.type) {
    case 'boolean':
      return column.values[row] === 1;
    case 'string':
      return utf8.decode(column.bytes.subarray(column.offsets[row]!, column.offsets[row + 1]!));
    default:
      return column.values[row]!;
  }
}
