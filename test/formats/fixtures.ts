/** Test data for the format plugins: hand-picked edge cases, and a large deterministic table. */
import { ColumnBuffer } from '../../src/csv/columns.js';
import type { Column, ColumnType, TableSchema, TypedBatch, TypedColumn } from '../../src/types.js';

type Value = bigint | number | boolean | string | null;

/** One typed column from plain values: int64 and timestamp as bigint, date as days. */
export function columnOf(type: ColumnType, values: readonly Value[]): TypedColumn {
  const buffer = new ColumnBuffer(type);
  for (const value of values) {
    if (value === null) buffer.pushNull();
    else if (type === 'int64' || type === 'timestamp') buffer.pushBigInt(value as bigint);
    else if (type === 'double') buffer.pushDouble(value as number);
    else if (type === 'boolean') buffer.pushBoolean(value as boolean);
    else if (type === 'date') buffer.pushDate(value as number);
    else buffer.pushString(value as string);
  }
  return buffer.seal()!;
}

/** Builds a column-major batch of `schema` from rows. */
export function batchOf(schema: TableSchema, rows: Value[][]): TypedBatch {
  const columns = schema.columns.map((column, c) => columnOf(column.type, rows.map((row) => row[c]!)));
  return { rowCount: rows.length, columns };
}

export const EDGE_SCHEMA: TableSchema = {
  columns: [
    { name: 'id', type: 'int64' },
    { name: 'amount', type: 'double' },
    { name: 'active', type: 'boolean' },
    { name: 'Order Date', type: 'date' },
    { name: 'created_at', type: 'timestamp' },
    { name: 'comment', type: 'string' },
  ],
};

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Extremes, nulls in every type, dates before 1970, unicode, empty string vs null. */
export const EDGE_ROWS: Value[][] = [
  [INT64_MIN, -1.5, true, -25567 /* 1900-01-01 */, -62135596800000000n /* 0001-01-01 */, 'héllo wörld'],
  [INT64_MAX, 1.7976931348623157e308, false, 2932896 /* 9999-12-31 */, 253402300799999999n, '東京 🦀'],
  [0n, 0, null, 0, 0n, ''],
  [null, null, null, null, null, null],
  [-1n, -0, true, -1, -1n, 'a,b"c\nd\te'],
  [2n ** 53n + 1n, 0.1, false, 19723, 1700000000123456n, 'x'.repeat(10_000)],
  [-(2n ** 53n) - 1n, Number.NaN, true, -719162 /* 0001-01-01 */, 1n, null],
  [123n, Number.POSITIVE_INFINITY, null, 1, null, 'null'],
  [null, Number.NEGATIVE_INFINITY, false, null, -1700000000123456n, ' '],
];

/**
 * The canonical text of a value, as the Python readers print it: integers (int64, date days,
 * timestamp micros) as decimal strings, doubles as the hex of their little-endian IEEE bytes.
 */
export function normalize(type: ColumnType, value: Value): string | boolean | null {
  if (value === null) return null;
  switch (type) {
    case 'double': {
      const bytes = Buffer.alloc(8);
      bytes.writeDoubleLE(value as number, 0);
      return bytes.toString('hex');
    }
    case 'boolean':
      return value as boolean;
    case 'string':
      return value as string;
    default:
      return String(value);
  }
}

/** Expected reader output for a schema and rows: column name -> normalized values. */
export function expectedColumns(columns: Column[], rows: Value[][]): Record<string, (string | boolean | null)[]> {
  return Object.fromEntries(columns.map((column, c) => [column.name, rows.map((row) => normalize(column.type, row[c]!))]));
}

export const LARGE_SCHEMA: TableSchema = {
  columns: [
    { name: 'id', type: 'int64' },
    { name: 'amount', type: 'double' },
    { name: 'flag', type: 'boolean' },
    { name: 'day', type: 'date' },
    { name: 'ts', type: 'timestamp' },
    { name: 'name', type: 'string' },
    { name: 'city', type: 'string' },
  ],
};

const CITIES = ['Paris', '東京', 'São Paulo', '', 'Lagos'];

/**
 * Row i of the large table. `LARGE_TABLE_PYTHON` computes the same values, so a reader can check
 * every cell, and therefore row order, without shipping the table back.
 */
export function largeBatches(totalRows: number, batchRows: number): Iterable<TypedBatch> {
  return {
    *[Symbol.iterator]() {
      for (let start = 0; start < totalRows; start += batchRows) {
        const n = Math.min(batchRows, totalRows - start);
        const id: (bigint | null)[] = [];
        const amount: (number | null)[] = [];
        const flag: (boolean | null)[] = [];
        const day: (number | null)[] = [];
        const ts: (bigint | null)[] = [];
        const name: (string | null)[] = [];
        const city: (string | null)[] = [];
        for (let i = start; i < start + n; i++) {
          id.push(i % 1009 === 7 ? null : BigInt(i));
          amount.push(i % 101 === 3 ? null : i * 0.5);
          flag.push(i % 7 === 6 ? null : i % 3 === 0);
          day.push((i % 40000) - 20000);
          ts.push(i % 11 === 0 ? null : 1_600_000_000_000_000n + BigInt(i) * 1_000_003n);
          name.push(i % 13 === 0 ? null : `r${i}`);
          city.push(CITIES[i % CITIES.length]!);
        }
        const values = [id, amount, flag, day, ts, name, city];
        yield { rowCount: n, columns: LARGE_SCHEMA.columns.map((column, c) => columnOf(column.type, values[c]!)) };
      }
    },
  };
}

/** Python: `expected_large(n)` returns the normalized columns of `largeBatches(n, …)`. */
export const LARGE_TABLE_PYTHON = `
def expected_large(n):
    cities = ['Paris', '東京', 'São Paulo', '', 'Lagos']
    r = range(n)
    return {
        'id': [None if i % 1009 == 7 else str(i) for i in r],
        'amount': [None if i % 101 == 3 else dbl(i * 0.5) for i in r],
        'flag': [None if i % 7 == 6 else i % 3 == 0 for i in r],
        'day': [str(i % 40000 - 20000) for i in r],
        'ts': [None if i % 11 == 0 else str(1600000000000000 + i * 1000003) for i in r],
        'name': [None if i % 13 == 0 else f'r{i}' for i in r],
        'city': [cities[i % 5] for i in r],
    }
`;
