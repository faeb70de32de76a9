import { expect } from 'chai';
import { SchemaInference } from '../../src/csv/infer.js';
import type { CsvChunk } from '../../src/csv/read.js';
import { toTypedBatch } from '../../src/csv/values.js';
import { PermanentError } from '../../src/errors.js';
import { COLUMN_TYPES, type ColumnType } from '../../src/types.js';

/** One column of values, on consecutive lines from 2. */
function chunkOf(values: string[]): CsvChunk {
  return { rows: values.map((value) => [value]), firstRow: 1, lines: values.map((_, i) => i + 2) };
}

function convert(type: ColumnType, values: string[]): unknown[] {
  return toTypedBatch(chunkOf(values), [type], ['c']).columns[0]!;
}

function micros(iso: string): bigint {
  return BigInt(Date.parse(iso)) * 1000n;
}

describe('toTypedBatch', () => {
  it('builds a column-major batch with nulls for empty cells', () => {
    const chunk: CsvChunk = {
      rows: [
        ['1', 'a', 'true'],
        ['', '', ''],
      ],
      firstRow: 1,
      lines: [2, 3],
    };
    expect(toTypedBatch(chunk, ['int64', 'string', 'boolean'], ['n', 's', 'b'])).to.deep.equal({
      rowCount: 2,
      columns: [
        [1n, null],
        ['a', null],
        [true, null],
      ],
    });
  });

  it('converts int64 exactly as bigint over the whole range', () => {
    expect(convert('int64', ['0', '-0', '+5', '-17', '9007199254740993', '9223372036854775807', '-9223372036854775808'])).to.deep.equal([
      0n,
      0n,
      5n,
      -17n,
      9007199254740993n,
      9223372036854775807n,
      -9223372036854775808n,
    ]);
  });

  it('converts doubles, including integers in a double column', () => {
    expect(convert('double', ['2.5', '.5', '5.', '-0.001', '1e5', '1.5E-3', '3', '-2'])).to.deep.equal([2.5, 0.5, 5, -0.001, 100000, 0.0015, 3, -2]);
  });

  it('converts booleans in any letter case', () => {
    expect(convert('boolean', ['true', 'FALSE', 'True', 'fAlSe'])).to.deep.equal([true, false, true, false]);
  });

  it('converts dates to days since 1970-01-01', () => {
    expect(convert('date', ['1970-01-01', '1969-12-31', '2024-02-29', '2000-03-01', '0001-01-01', '9999-12-31'])).to.deep.equal([
      0,
      -1,
      Date.UTC(2024, 1, 29) / 86_400_000,
      Date.UTC(2000, 2, 1) / 86_400_000,
      -719_162,
      2_932_896,
    ]);
  });

  it('converts timestamps to microseconds since the epoch, in UTC', () => {
    expect(
      convert('timestamp', [
        '1970-01-01T00:00:00Z',
        '2024-03-01T12:34:56Z',
        '2024-03-01 12:34:56',
        '2024-03-01T12:34',
        '2024-03-01T12:34:56.123456Z',
        '2024-03-01T12:34:56.5',
        '2024-03-01T12:34:56.1234560',
      ]),
    ).to.deep.equal([
      0n,
      micros('2024-03-01T12:34:56Z'),
      micros('2024-03-01T12:34:56Z'),
      micros('2024-03-01T12:34:00Z'),
      micros('2024-03-01T12:34:56Z') + 123_456n,
      micros('2024-03-01T12:34:56Z') + 500_000n,
      micros('2024-03-01T12:34:56Z') + 123_456n,
    ]);
  });

  it('converts offsets to UTC', () => {
    expect(convert('timestamp', ['2024-03-01T12:00:00+02:00', '2024-03-01T12:00:00-0530', '2024-01-01T01:00+01:00', '2024-03-01T23:30:00-01:00'])).to.deep.equal([
      micros('2024-03-01T10:00:00Z'),
      micros('2024-03-01T17:30:00Z'),
      micros('2024-01-01T00:00:00Z'),
      micros('2024-03-02T00:30:00Z'),
    ]);
  });

  it('stores a date in a timestamp column as its midnight UTC', () => {
    expect(convert('timestamp', ['2024-03-01', '1969-12-31'])).to.deep.equal([micros('2024-03-01T00:00:00Z'), -86_400_000_000n]);
  });

  it('stays exact beyond 2^53 microseconds and before the epoch', () => {
    expect(convert('timestamp', ['9999-12-31T23:59:59.999999Z', '1969-12-31T23:59:59.999999Z', '0001-01-01T00:00:00Z'])).to.deep.equal([
      253_402_300_799_999_999n,
      -1n,
      -62_135_596_800_000_000n,
    ]);
  });

  it('passes strings through', () => {
    expect(convert('string', ['x', ' 5 ', '007', ''])).to.deep.equal(['x', ' 5 ', '007', null]);
  });

  it('reports a value that does not fit a pinned type, with its line and column', () => {
    const chunk: CsvChunk = {
      rows: [
        ['1', '10'],
        ['2', 'abc'],
      ],
      firstRow: 5,
      lines: [6, 9],
    };
    let caught: unknown;
    try {
      toTypedBatch(chunk, ['int64', 'int64'], ['id', 'amount']);
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(PermanentError);
    expect((caught as PermanentError).code).to.equal('SCHEMA_VIOLATION');
    expect((caught as PermanentError).message).to.equal('line 9, column "amount": "abc" is not a valid int64');
  });

  it('refuses out-of-range integers, leading zeros and words for int64 and double', () => {
    for (const type of ['int64', 'double'] as const) {
      for (const value of ['9223372036854775808', '007', 'NaN', '1e400', ' 1']) {
        expect(() => convert(type, [value]), `${type} ${value}`).to.throw(PermanentError, 'is not a valid');
      }
    }
  });

  it('accepts a value under a type exactly when inference allows that type', () => {
    // Inferred type → the types that can hold it (the lattice: int64 ⊂ double, date ⊂ timestamp).
    const holders: Record<ColumnType, ColumnType[]> = {
      int64: ['int64', 'double', 'string'],
      double: ['double', 'string'],
      boolean: ['boolean', 'string'],
      date: ['date', 'timestamp', 'string'],
      timestamp: ['timestamp', 'string'],
      string: ['string'],
    };
    const samples = [
      '0', '-0', '+7', '42', '9223372036854775807', '-9223372036854775808', '9223372036854775808', '007', '1.5', '.5', '5.',
      '1e5', '1e400', 'NaN', 'true', 'FALSE', 'yes', '2024-02-29', '2023-02-29', '2024-02-29T10:00', '2024-02-29 10:00:00.1234567',
      '2024-02-29T10:00:00.123456789', '2024-02-29T10:00:00.123456000', '2024-02-29T10:00:00+01:00', '2024-02-29T10:00:00+0100', 'x', ' 1',
    ];
    for (const value of samples) {
      const inference = new SchemaInference(1);
      inference.observe([[value]]);
      const inferred = inference.types()[0]!;
      for (const type of COLUMN_TYPES) {
        const accepted = (() => {
          try {
            convert(type, [value]);
            return true;
          } catch {
            return false;
          }
        })();
        expect(accepted, `${JSON.stringify(value)} (inferred ${inferred}) as ${type}`).to.equal(holders[inferred].includes(type));
      }
    }
  });
});
