import { expect } from 'chai';
import { SchemaInference } from '../../src/csv/infer.js';
import type { ColumnType } from '../../src/types.js';

/** The type inferred for one column holding `values`. */
function typeOf(...values: string[]): ColumnType {
  const inference = new SchemaInference(1);
  inference.observe(values.map((value) => [value]));
  return inference.types()[0]!;
}

/** Asserts each value alone infers as `type`. */
function expectEach(values: string[], type: ColumnType): void {
  for (const value of values) expect(typeOf(value), JSON.stringify(value)).to.equal(type);
}

describe('SchemaInference', () => {
  describe('int64', () => {
    it('takes integers with an optional sign', () => {
      expectEach(['0', '-0', '+0', '+5', '42', '-17', '1234567890'], 'int64');
    });

    it('takes both ends of the signed 64-bit range', () => {
      expectEach(['9223372036854775807', '-9223372036854775808', '+9223372036854775807'], 'int64');
    });

    it('makes an integer outside 64 bits a string, not an inexact double', () => {
      expectEach(['9223372036854775808', '-9223372036854775809', '99999999999999999999', '123456789012345678901234'], 'string');
      expect(typeOf('1', '9223372036854775808')).to.equal('string');
    });

    it('makes values with leading zeros strings: they are codes', () => {
      expectEach(['007', '00501', '-007', '+01', '00', '00.5', '01.5', '01e3'], 'string');
      expect(typeOf('501', '00501')).to.equal('string');
    });

    it('does not trim: spaces or separators make a string', () => {
      expectEach([' 5', '5 ', '1,000', '1_000', '0x1f', '5-', '--5', '+-5', '-', '+'], 'string');
    });
  });

  describe('double', () => {
    it('takes decimal and exponent notation', () => {
      expectEach(['2.5', '-0.001', '1e5', '1E5', '.5', '5.', '-.5', '+.5', '1.5e-3', '-2E+10', '0.0', '0e0', '123.456e78'], 'double');
    });

    it('widens int64 to double when both appear', () => {
      expect(typeOf('1', '2.5', '-3')).to.equal('double');
      expect(typeOf('2.5', '7')).to.equal('double');
    });

    it('keeps NaN, Infinity and overflowing values as strings', () => {
      expectEach(['NaN', 'nan', 'Infinity', '-Infinity', 'inf', '1e400', '-1e999', '1' + '0'.repeat(400) + '.5'], 'string');
    });

    it('rejects incomplete numbers', () => {
      expectEach(['.', '-.', 'e5', '.e5', '1e', '1e+', '1.2.3', '1e5.5', '1ee5'], 'string');
    });
  });

  describe('boolean', () => {
    it('takes true and false in any letter case', () => {
      expectEach(['true', 'false', 'TRUE', 'False', 'tRuE', 'fAlSe'], 'boolean');
      expect(typeOf('true', 'FALSE', 'True')).to.equal('boolean');
    });

    it('takes nothing else', () => {
      expectEach(['yes', 'no', 'y', 'n', 't', 'f', 'on', 'off', 'truee', 'true ', ' false', 'tru'], 'string');
      expect(typeOf('1', '0')).to.equal('int64');
      expect(typeOf('true', '1')).to.equal('string');
    });
  });

  describe('date', () => {
    it('takes valid YYYY-MM-DD calendar dates', () => {
      expectEach(['2024-01-31', '1970-01-01', '0001-01-01', '9999-12-31', '2024-04-30'], 'date');
    });

    it('knows leap years', () => {
      expectEach(['2024-02-29', '2000-02-29', '1600-02-29'], 'date');
      expectEach(['2023-02-29', '1900-02-29', '2100-02-29', '2024-02-30'], 'string');
    });

    it('rejects impossible or other-format dates', () => {
      expectEach(['2024-13-01', '2024-00-10', '2024-04-31', '2024-01-00', '2024-1-5', '24-01-05', '2024/01/05', '05-01-2024', '2024-01-05x', '+2024-01-05'], 'string');
    });
  });

  describe('timestamp', () => {
    it('takes ISO 8601 date-times with T or a space, minutes or seconds, and a fraction', () => {
      expectEach(
        ['2024-03-01T12:34', '2024-03-01 12:34', '2024-03-01T12:34:56', '2024-03-01 00:00:00', '2024-03-01T12:34:56.5', '2024-03-01T12:34:56.123456'],
        'timestamp',
      );
    });

    it('takes Z and ±hh:mm or ±hhmm offsets', () => {
      expectEach(['2024-03-01T12:34:56Z', '2024-03-01T12:34Z', '2024-03-01T12:34:56+02:00', '2024-03-01T12:34:56-0530', '2024-03-01 12:34:56.1+00:00'], 'timestamp');
    });

    it('accepts more than six fraction digits only when the extra ones are zeros', () => {
      expectEach(['2024-03-01T12:34:56.1234560', '2024-03-01T12:34:56.123456000Z'], 'timestamp');
      expectEach(['2024-03-01T12:34:56.1234567', '2024-03-01T12:34:56.0000001Z'], 'string');
    });

    it('rejects impossible times, offsets and layouts', () => {
      expectEach(
        [
          '2024-03-01T24:00',
          '2024-03-01T12:60',
          '2024-03-01T12:34:60',
          '2024-03-01T12',
          '2024-03-01T',
          '2024-03-01T12:34:56.',
          '2024-03-01T12:34.5',
          '2024-03-01T12:34:56+2',
          '2024-03-01T12:34:56+02:0',
          '2024-03-01T12:34:56+24:00',
          '2024-03-01T12:34:56 Z',
          '2024-02-30T12:00',
          '2024-03-01X12:00',
        ],
        'string',
      );
    });

    it('widens dates to timestamps when both appear', () => {
      expect(typeOf('2024-03-01', '2024-03-01T10:00:00Z')).to.equal('timestamp');
      expect(typeOf('2024-03-01 10:00', '2024-03-02')).to.equal('timestamp');
    });
  });

  describe('mixing and nulls', () => {
    it('makes any other mix a string', () => {
      expect(typeOf('1', 'true')).to.equal('string');
      expect(typeOf('2024-03-01', '5')).to.equal('string');
      expect(typeOf('2.5', '2024-03-01T10:00')).to.equal('string');
      expect(typeOf('true', '2024-03-01')).to.equal('string');
      expect(typeOf('1', 'abc')).to.equal('string');
    });

    it('ignores empty cells, which are nulls', () => {
      expect(typeOf('', '5', '', '6')).to.equal('int64');
      expect(typeOf('', 'true')).to.equal('boolean');
    });

    it('makes a column with no values a string', () => {
      expect(typeOf('', '', '')).to.equal('string');
      expect(new SchemaInference(2).types()).to.deep.equal(['string', 'string']);
    });

    it('uses every row of every observed chunk', () => {
      const inference = new SchemaInference(3);
      inference.observe([
        ['1', '2024-01-01', 'true'],
        ['2', '', 'false'],
      ]);
      expect(inference.types()).to.deep.equal(['int64', 'date', 'boolean']);
      inference.observe([['3.5', '2024-01-02T03:04:05Z', '']]);
      expect(inference.types()).to.deep.equal(['double', 'timestamp', 'boolean']);
      inference.observe([['x', '', 'no']]);
      inference.observe([['4', '', 'true']]);
      expect(inference.types()).to.deep.equal(['string', 'timestamp', 'string']);
    });

    it('keeps pinned types whatever the values', () => {
      const inference = new SchemaInference(3, ['string', undefined, 'double']);
      inference.observe([
        ['1', '2', '3'],
        ['4', '5', 'abc'],
      ]);
      expect(inference.types()).to.deep.equal(['string', 'int64', 'double']);
    });
  });
});

describe('SchemaInference.emptyColumns', () => {
  it('marks the columns no row gave a value (their string type would fit any type), never a pinned one', () => {
    const inference = new SchemaInference(4, [undefined, undefined, 'int64', undefined]);
    inference.observe([
      ['', 'a', '', '1'],
      ['', '', '', '2'],
    ]);
    expect(inference.types()).to.deep.equal(['string', 'string', 'int64', 'int64']);
    expect(inference.emptyColumns()).to.deep.equal([true, false, false, false]);
  });
});
