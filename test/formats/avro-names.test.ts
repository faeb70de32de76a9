import { expect } from 'chai';
import { avroFieldNames, isValidAvroName, sanitizeAvroName } from '../../src/formats/avro-names.js';

describe('Avro field names', () => {
  it('keeps names that are already valid', () => {
    expect(avroFieldNames(['id', '_x', 'Order_Date', 'a1'])).to.deep.equal(['id', '_x', 'Order_Date', 'a1']);
  });

  const cases: [string, string][] = [
    ['Order Date', 'Order_Date'],
    ['1st', '_1st'],
    ['2024 total', '_2024_total'],
    ['price ($)', 'price_'],
    ['a - b', 'a_b'],
    ['café', 'cafe'],
    ['Größe', 'Gro_e'],
    ['東京', '_'],
    ['', '_'],
    ['a.b', 'a_b'],
  ];
  for (const [original, expected] of cases) {
    it(`turns ${JSON.stringify(original)} into ${expected}`, () => {
      expect(sanitizeAvroName(original)).to.equal(expected);
      expect(isValidAvroName(sanitizeAvroName(original))).to.equal(true);
    });
  }

  it('suffixes collisions with _2, _3, … in column order', () => {
    expect(avroFieldNames(['a b', 'a-b', 'a.b'])).to.deep.equal(['a_b', 'a_b_2', 'a_b_3']);
  });

  it('never renames a valid name: the sanitized name yields, even when it comes first', () => {
    expect(avroFieldNames(['a b', 'a_b'])).to.deep.equal(['a_b_2', 'a_b']);
    expect(avroFieldNames(['x y', 'x_y_2', 'x_y'])).to.deep.equal(['x_y_3', 'x_y_2', 'x_y']);
  });

  it('gives a duplicate valid name a suffix', () => {
    expect(avroFieldNames(['a', 'a'])).to.deep.equal(['a', 'a_2']);
  });

  it('rejects invalid names', () => {
    for (const name of ['', '1a', 'a b', 'é', 'a-b']) expect(isValidAvroName(name), name).to.equal(false);
  });
});
