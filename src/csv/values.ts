/** Turns a chunk of CSV text rows into a column-major TypedBatch in the representations of src/types.ts. */
import { PermanentError } from '../errors.js';
import type { ColumnType, ColumnValues, TypedBatch } from '../types.js';
import type { CsvChunk } from './read.js';
import { parseBoolean, parseDate, parseDouble, parseInt64, parseTimestamp } from './scalars.js';

/** Converts one cell; undefined means the text is not a value of the type. */
type Converter = (text: string) => bigint | number | boolean | undefined;

const CONVERTERS: Record<Exclude<ColumnType, 'string'>, Converter> = {
  int64: parseInt64,
  double: parseDouble,
  boolean: parseBoolean,
  date: parseDate,
  timestamp: parseTimestamp,
};

/**
 * An empty cell is null in every type. A cell that does not fit its column's type can only come
 * from a pinned type (inferred types hold every value), and is a SCHEMA_VIOLATION naming its line.
 */
export function toTypedBatch(chunk: CsvChunk, types: readonly ColumnType[], columnNames: readonly string[]): TypedBatch {
  const { rows } = chunk;
  const rowCount = rows.length;
  const columns: ColumnValues[] = new Array(types.length);
  for (let c = 0; c < types.length; c++) {
    const type = types[c]!;
    if (type === 'string') {
      const out: (string | null)[] = new Array(rowCount);
      for (let r = 0; r < rowCount; r++) {
        const text = rows[r]![c]!;
        out[r] = text.length === 0 ? null : text;
      }
      columns[c] = out;
      continue;
    }
    const convert = CONVERTERS[type];
    const out: (bigint | number | boolean | null)[] = new Array(rowCount);
    for (let r = 0; r < rowCount; r++) {
      const text = rows[r]![c]!;
      if (text.length === 0) {
        out[r] = null;
        continue;
      }
      const value = convert(text);
      if (value === undefined) throw violation(chunk, r, columnNames[c] ?? `column_${c + 1}`, text, type);
      out[r] = value;
    }
    columns[c] = out as ColumnValues;
  }
  return { rowCount, columns };
}

function violation(chunk: CsvChunk, row: number, column: string, text: string, type: ColumnType): PermanentError {
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return new PermanentError(
    'SCHEMA_VIOLATION',
    `line ${chunk.lines[row]}, column "${column}": ${JSON.stringify(shown)} is not a valid ${type}`,
  );
}
