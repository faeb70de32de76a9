/** Typed batches from parsed rows: inference while building, fixed types, limits, and the widening to final types. */
import { expect } from 'chai';
import { BatchBuilder, writtenBatch, type BuiltBatch, type ColumnPlan } from '../../src/csv/batches.js';
import { SchemaInference } from '../../src/csv/infer.js';
import type { CsvChunk } from '../../src/csv/read.js';
import { PermanentError } from '../../src/errors.js';
import { fits } from '../../src/schema/evolution.js';
import { valueAt, type CellValue } from '../../src/formats/values.js';
import { COLUMN_TYPES, type ColumnType, type TypedColumn } from '../../src/types.js';

const LOOSE = { rows: 1_000_000, bytes: 1 << 30 };

/** One column of values, on consecutive lines from 2. */
function chunkOf(values: string[], firstLine = 2): CsvChunk {
  return { rows: values.map((value) => [value]), firstRow: 1, lines: values.map((_, i) => i + firstLine) };
}

function valuesOf(column: TypedColumn | undefined, rows: number): CellValue[] {
  return Array.from({ length: rows }, (_, r) => (column ? valueAt(column, r) : null));
}

/** Converts one column of text to a fixed type, as a second read does. */
function convert(type: ColumnType, values: string[]): CellValue[] {
  const builder = new BatchBuilder(['c'], [{ source: 0, type }], LOOSE);
  const batches = [...builder.add(chunkOf(values)), builder.finish()!];
  return batches.flatMap((batch) => valuesOf(batch.columns[0], batch.rowCount));
}

/** Infers one column over `chunks` of values; returns the type and the batch written in it. */
function infer(...chunks: string[][]): { type: ColumnType; values: CellValue[]; lost: boolean } {
  const builder = BatchBuilder.inferring(['c'], [], LOOSE);
  const built: BuiltBatch[] = [];
  let line = 2;
  for (const values of chunks) {
    built.push(...builder.add(chunkOf(values, line)));
    line += values.length;
  }
  const last = builder.finish();
  if (last) built.push(last);
  const type = builder.types()[0]!;
  if (builder.textLost || !builder.canWrite([type], [0])) return { type, values: [], lost: true };
  const values = built.flatMap((batch) => {
    const written = writtenBatch(batch, [type], [0]);
    return valuesOf(written.columns[0], written.rowCount);
  });
  return { type, values, lost: false };
}

function micros(iso: string): bigint {
  return BigInt(Date.parse(iso)) * 1000n;
}

describe('BatchBuilder', () => {
  describe('inferring while it builds', () => {
    it('stores each column in the type inferred, with nulls for empty cells', () => {
      const builder = BatchBuilder.inferring(['n', 's', 'b'], [], LOOSE);
      builder.add({ rows: [['1', 'a', 'true'], ['', '', '']], firstRow: 1, lines: [2, 3] });
      const batch = builder.finish()!;
      expect(builder.types()).to.deep.equal(['int64', 'string', 'boolean']);
      expect(batch.rowCount).to.equal(2);
      expect(batch.columns.map((column) => valuesOf(column, 2))).to.deep.equal([
        [1n, null],
        ['a', null],
        [true, null],
      ]);
    });

    it('widens int64 to double and date to timestamp within and across chunks, exactly', () => {
      expect(infer(['1', '9007199254740993'], ['2.5'])).to.deep.equal({ type: 'double', values: [1, 9007199254740992, 2.5], lost: false });
      expect(infer(['1', '2.5', '-3'])).to.deep.equal({ type: 'double', values: [1, 2.5, -3], lost: false });
      expect(infer(['2024-03-01'], ['2024-03-01T12:00:00Z', '1969-12-31'])).to.deep.equal({
        type: 'timestamp',
        values: [micros('2024-03-01T00:00:00Z'), micros('2024-03-01T12:00:00Z'), -86_400_000_000n],
        lost: false,
      });
    });

    it('keeps a column of only nulls a string of nulls', () => {
      expect(infer(['', ''], [''])).to.deep.equal({ type: 'string', values: [null, null, null], lost: false });
    });

    it('turns a column to text within a chunk without losing the values before', () => {
      expect(infer(['', '1', '2', 'x', '3'])).to.deep.equal({ type: 'string', values: [null, '1', '2', 'x', '3'], lost: false });
      expect(infer(['', ''], ['+5', 'n/a'])).to.deep.equal({ type: 'string', values: [null, null, '+5', 'n/a'], lost: false });
    });

    it('says the text is lost when a column turns to text after typed values of an earlier chunk', () => {
      expect(infer(['1', '2'], ['x'])).to.deep.equal({ type: 'string', values: [], lost: true });
      expect(infer(['true'], [''], ['maybe'])).to.deep.equal({ type: 'string', values: [], lost: true });
    });

    it('goes on inferring every column after the text is lost', () => {
      const builder = BatchBuilder.inferring(['a', 'b'], [], LOOSE);
      builder.add({ rows: [['1', '2024-01-01']], firstRow: 1, lines: [2] });
      expect(builder.add({ rows: [['x', '2024-01-01T10:00']], firstRow: 2, lines: [3] })).to.deep.equal([]);
      builder.add({ rows: [['y', '2.5']], firstRow: 3, lines: [4] });
      expect(builder.textLost).to.equal(true);
      expect(builder.finish()).to.equal(undefined);
      expect(builder.types()).to.deep.equal(['string', 'string']);
    });

    it('agrees with SchemaInference on every kind of value', () => {
      const samples = ['0', '-0', '+7', '9223372036854775807', '9223372036854775808', '007', '1.5', '.5', '1e400', 'NaN', 'true', 'FALSE', 'yes', '2024-02-29', '2023-02-29', '2024-02-29T10:00', '2024-02-29T10:00:00+0100', 'x', ' 1', ''];
      for (const a of samples) {
        for (const b of samples) {
          const inference = new SchemaInference(1);
          inference.observe([[a], [b]]);
          expect(infer([a, b]).type, `${JSON.stringify(a)}, ${JSON.stringify(b)}`).to.equal(inference.types()[0]);
        }
      }
    });
  });

  describe('batch limits', () => {
    it('cuts batches at the row limit exactly, across chunks', () => {
      const builder = BatchBuilder.inferring(['n'], [], { rows: 3, bytes: 1 << 30 });
      const sealed = [...builder.add(chunkOf(['1', '2'])), ...builder.add(chunkOf(['3', '4', '5', '6', '7']))];
      expect(sealed.map((batch) => batch.rowCount)).to.deep.equal([3, 3]);
      expect(builder.finish()!.rowCount).to.equal(1);
      expect(sealed.flatMap((batch) => valuesOf(batch.columns[0], batch.rowCount))).to.deep.equal([1n, 2n, 3n, 4n, 5n, 6n]);
    });

    it('cuts batches by bytes, so wide rows make shorter batches', () => {
      const wide = Array.from({ length: 150 }, (_, c) => `c${c}`);
      const row = wide.map((_, c) => `value ${c} of a wide row`);
      const builder = BatchBuilder.inferring(wide, [], { rows: 50_000, bytes: 1 << 20 });
      const sealed: BuiltBatch[] = [];
      for (let i = 0; i < 20; i++) sealed.push(...builder.add({ rows: Array.from({ length: 100 }, () => row), firstRow: 1, lines: Array(100).fill(2) }));
      expect(sealed.length).to.be.at.least(3);
      for (const batch of sealed) {
        let bytes = 0;
        for (const column of batch.columns) bytes += column!.type === 'string' ? column!.bytes.byteLength + column!.offsets.byteLength : 0;
        // Sealed at the end of the chunk that crossed the limit: at most a chunk more.
        expect(bytes).to.be.within(1 << 20, (1 << 20) + 100 * 150 * 40);
      }
    });
  });

  describe('fixed types (pinned, or a second read into the written schema)', () => {
    it('converts int64 exactly over the whole range', () => {
      expect(convert('int64', ['0', '-0', '+5', '-17', '9007199254740993', '9223372036854775807', '-9223372036854775808'])).to.deep.equal([
        0n, 0n, 5n, -17n, 9007199254740993n, 9223372036854775807n, -9223372036854775808n,
      ]);
    });

    it('converts doubles, including integers in a double column', () => {
      expect(convert('double', ['2.5', '.5', '5.', '-0.001', '1e5', '1.5E-3', '3', '-2'])).to.deep.equal([2.5, 0.5, 5, -0.001, 100000, 0.0015, 3, -2]);
    });

    it('converts booleans in any letter case', () => {
      expect(convert('boolean', ['true', 'FALSE', 'True', 'fAlSe'])).to.deep.equal([true, false, true, false]);
    });

    it('converts dates to days since 1970-01-01', () => {
      expect(convert('date', ['1970-01-01', '1969-12-31', '2024-02-29', '0001-01-01', '9999-12-31'])).to.deep.equal([
        0, -1, Date.UTC(2024, 1, 29) / 86_400_000, -719_162, 2_932_896,
      ]);
    });

    it('converts timestamps to microseconds in UTC, offsets applied, dates at midnight', () => {
      expect(
        convert('timestamp', [
          '1970-01-01T00:00:00Z',
          '2024-03-01 12:34:56',
          '2024-03-01T12:34',
          '2024-03-01T12:34:56.123456Z',
          '2024-03-01T12:34:56.1234560',
          '2024-03-01T12:00:00+02:00',
          '2024-03-01T12:00:00-0530',
          '2024-03-01',
        ]),
      ).to.deep.equal([
        0n,
        micros('2024-03-01T12:34:56Z'),
        micros('2024-03-01T12:34:00Z'),
        micros('2024-03-01T12:34:56Z') + 123_456n,
        micros('2024-03-01T12:34:56Z') + 123_456n,
        micros('2024-03-01T10:00:00Z'),
        micros('2024-03-01T17:30:00Z'),
        micros('2024-03-01T00:00:00Z'),
      ]);
    });

    it('stays exact beyond 2^53 microseconds and before the epoch', () => {
      expect(convert('timestamp', ['9999-12-31T23:59:59.999999Z', '1969-12-31T23:59:59.999999Z', '0001-01-01T00:00:00Z'])).to.deep.equal([
        253_402_300_799_999_999n,
        -1n,
        -62_135_596_800_000_000n,
      ]);
    });

    it('passes strings through as UTF-8, empty cells as null', () => {
      expect(convert('string', ['x', ' 5 ', '007', '', 'Zoë 🙂 日本'])).to.deep.equal(['x', ' 5 ', '007', null, 'Zoë 🙂 日本']);
    });

    it('reads the planned source column, or writes nulls for a column the file lacks', () => {
      const plan: ColumnPlan[] = [{ source: 1, type: 'int64' }, { source: -1, type: 'string' }, { source: 0, type: 'string' }];
      const builder = new BatchBuilder(['a', 'b'], plan, LOOSE);
      builder.add({ rows: [['x', '1'], ['y', '2']], firstRow: 1, lines: [2, 3] });
      const batch = builder.finish()!;
      expect(batch.columns.map((column) => valuesOf(column, 2))).to.deep.equal([[1n, 2n], [null, null], ['x', 'y']]);
    });

    it('reports a value that does not fit, with its line, its column and the code asked for', () => {
      const builder = new BatchBuilder(['id', 'amount'], [{ source: 0, type: 'int64' }, { source: 1, type: 'int64' }], LOOSE, 'SCHEMA_MISMATCH');
      let caught: unknown;
      try {
        builder.add({ rows: [['1', '10'], ['2', 'abc']], firstRow: 5, lines: [6, 9] });
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(PermanentError);
      expect((caught as PermanentError).code).to.equal('SCHEMA_MISMATCH');
      expect((caught as PermanentError).message).to.equal('line 9, column "amount": "abc" is not the registered type int64');
    });

    it('accepts a value under a type exactly when the type lattice lets its inferred type fit it', () => {
      // The lattice itself is spelled out in test/schema/evolution.test.ts.
      const samples = [
        '0', '-0', '+7', '42', '9223372036854775807', '-9223372036854775808', '9223372036854775808', '007', '1.5', '.5', '5.',
        '1e5', '1e400', 'NaN', 'true', 'FALSE', 'yes', '2024-02-29', '2023-02-29', '2024-02-29T10:00', '2024-02-29 10:00:00.1234567',
        '2024-02-29T10:00:00.123456789', '2024-02-29T10:00:00.123456000', '2024-02-29T10:00:00+01:00', '2024-02-29T10:00:00+0100', 'x', ' 1',
      ];
      for (const value of samples) {
        const inferred = infer([value]).type;
        for (const type of COLUMN_TYPES) {
          let accepted = true;
          try {
            convert(type, [value]);
          } catch (error) {
            if (!(error instanceof PermanentError)) throw error;
            accepted = false;
          }
          expect(accepted, `${JSON.stringify(value)} (inferred ${inferred}) as ${type}`).to.equal(fits(inferred, type));
        }
      }
    });
  });

  describe('canWrite', () => {
    it('allows the exact widenings and all-null columns, and refuses what needs the text', () => {
      const builder = BatchBuilder.inferring(['i', 'd', 'n'], [], { rows: 1, bytes: 1 << 30 });
      builder.add({ rows: [['1', '2024-01-01', '']], firstRow: 1, lines: [2] });
      expect(builder.canWrite(['double', 'timestamp', 'int64'], [0, 1, 2])).to.equal(true);
      expect(builder.canWrite(['int64', 'date', 'string'], [0, 1, -1])).to.equal(true);
      expect(builder.canWrite(['string'], [0])).to.equal(false);
      expect(builder.canWrite(['int64'], [1])).to.equal(false);
    });
  });
});
