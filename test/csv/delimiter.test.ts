import { expect } from 'chai';
import { detectDelimiter } from '../../src/csv/delimiter.js';

describe('detectDelimiter', () => {
  it('finds each of the four delimiters', () => {
    expect(detectDelimiter('id,name,city')).to.equal(',');
    expect(detectDelimiter('id;name;city')).to.equal(';');
    expect(detectDelimiter('id\tname\tcity')).to.equal('\t');
    expect(detectDelimiter('id|name|city')).to.equal('|');
  });

  it('picks the most frequent one', () => {
    expect(detectDelimiter('a;b;c,d')).to.equal(';');
    expect(detectDelimiter('a|b|c|d;e,f')).to.equal('|');
  });

  it('ignores delimiters inside quoted cells, doubled quotes included', () => {
    expect(detectDelimiter('"a,b,c";"d,e";f')).to.equal(';');
    expect(detectDelimiter('"say ""x,y,z""",b|c|d')).to.equal('|');
  });

  it('treats a quote inside an unquoted cell as an ordinary character', () => {
    expect(detectDelimiter('height 5",a;b;c')).to.equal(';');
  });

  it('breaks ties in favour of the comma', () => {
    expect(detectDelimiter('a,b;c')).to.equal(',');
    expect(detectDelimiter('a,b\tc|d;e')).to.equal(',');
  });

  it('breaks other ties in the order ; tab |', () => {
    expect(detectDelimiter('a;b\tc')).to.equal(';');
    expect(detectDelimiter('a\tb|c')).to.equal('\t');
  });

  it('gives a comma for a one-column header', () => {
    expect(detectDelimiter('amount')).to.equal(',');
    expect(detectDelimiter('')).to.equal(',');
  });
});
