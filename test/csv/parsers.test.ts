/** The tokenizer contract the reader relies on, for both parsers: partial text, faults and positions. */
import { expect } from 'chai';
import { createRowParser } from '../../src/csv/parsers.js';
import { CSV_PARSERS } from '../../src/csv/read.js';

for (const name of CSV_PARSERS) {
  describe(`${name} row parser`, () => {
    const parser = () => createRowParser(name, ',', '\n');

    it('returns the complete rows and leaves an unfinished one', () => {
      const parsed = parser().parse('1,2\n3,4', false);
      expect(parsed.rows).to.deep.equal([['1', '2']]);
      expect(parsed.consumed).to.equal(4);
      expect(parsed.fault).to.equal(undefined);
    });

    it('finishes the last row when the text is final, with or without a line break', () => {
      expect(parser().parse('1,2\n3,4', true).rows).to.deep.equal([['1', '2'], ['3', '4']]);
      expect(parser().parse('1,2\n3,4\n', true).rows).to.deep.equal([['1', '2'], ['3', '4']]);
      expect(parser().parse('1,2\r\n3,4\r\n', true).rows).to.deep.equal([['1', '2'], ['3', '4']]);
    });

    it('waits for more text after a closing quote cut off from its line break', () => {
      for (const text of ['1,"b"', '1,"b"\r', '1,"b" ', '1,"open\n2']) {
        const parsed = parser().parse(text, false);
        expect(parsed.rows, JSON.stringify(text)).to.deep.equal([]);
        expect(parsed.consumed, JSON.stringify(text)).to.equal(0);
        expect(parsed.fault, JSON.stringify(text)).to.equal(undefined);
      }
      expect(parser().parse('1,"b"\r\n', false).rows).to.deep.equal([['1', 'b']]);
    });

    it('reports an unterminated quote at the end with the offset of the opening quote', () => {
      const parsed = parser().parse('1,2\n3,"open\n4', true);
      expect(parsed.rows).to.deep.equal([['1', '2']]);
      expect(parsed.fault).to.deep.equal({ kind: 'unterminated', at: 6 });
    });

    it('reports text after a closing quote, with the rows before it', () => {
      const parsed = parser().parse('1,2\n3,"x"y\n5,6\n', false);
      expect(parsed.rows).to.deep.equal([['1', '2']]);
      expect(parsed.fault).to.deep.equal({ kind: 'malformed' });
    });

    it('keeps blank lines as rows so that line numbers can count them', () => {
      const rows = parser().parse('1\n\n2\n', false).rows;
      expect(rows.length).to.equal(3);
      expect(rows[1]!.join('')).to.equal('');
    });

    it('splits classic Mac text at lone \\r when asked to', () => {
      const parsed = createRowParser(name, ';', '\r').parse('1;2\r3;4\r', true);
      expect(parsed.rows).to.deep.equal([['1', '2'], ['3', '4']]);
      expect(parsed.oneBreakPerRow).to.equal(true);
    });
  });
}
