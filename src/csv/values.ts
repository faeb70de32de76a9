/** Turns a chunk of CSV text rows into a column-major TypedBatch in the representations of src/types.ts. */
import { PermanentError, type PermanentCode } from '../errors.js';
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
 * from a type fixed outside the file (pinned, or a dataset's registered type; inferred types hold
 * every value), and raises `violationCode` naming its line.
 *
 * @param sourceColumns for each output column, the chunk column it reads, or -1 for all nulls
 *   (default: column c reads column c)
 */
export function toTypedBatch(
  chunk: CsvChunk,
  types: readonly ColumnType[],
  columnNames: readonly string[],
  sourceColumns?: readonly number[],
  violationCode: PermanentCode = 'SCHEMA_VIOLATION',
): TypedBatch {
  const { rows } = chunk;
  const rowCount = rows.length;
  const columns: ColumnValues[] = new Array(types.length);
  for (let c = 0; c < types.length; c++) {
    const type = types[c]!;
    const from = sourceColumns ? sourceColumns[c]! : c;
    if (from < 0) {
      columns[c] = new Array<null>(rowCount).fill(null);
      continue;
    }
    if (type === 'string') {
      const out: (string | null)[] = new Array(rowCount);
      for (let r = 0; r < rowCount; r++) {
        const text = rows[r]![from]!;
        out[r] = text.length === 0 ? null : text;
      }
      columns[c] = out;
      continue;
    }
    const convert = CONVERTERS[type];
    const out: (bigint | number | boolean | null)[] = new Array(rowCount);
    for (let r = 0; r < rowCount; r++) {
      const text = rows[r]![from]!;
      if (text.length === 0) {
        out[r] = null;
        continue;
      }
      const value = convert(text);
      if (value === undefined) throw violation(violationCode, chunk, r, columnNames[c] ?? `column_${c + 1}`, text, type);
      out[r] = value;
    }
    columns[c] = out as ColumnValues;
  }
  return { rowCount, columns };
}

function violation(code: PermanentCode, chunk: CsvChunk, row: number, column: string, text: string, type: ColumnType): PermanentError {
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  const kind = code === 'SCHEMA_MISMATCH' ? `the registered type ${type}` : `a valid ${type}`;
  return new PermanentError(code, `line ${chunk.lines[row]}, column "${column}": ${JSON.stringify(shown)} is not ${kind}`);
}
