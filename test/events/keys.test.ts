import { expect } from 'chai';
import { decodeS3Key, isCsvKey, stemOf } from '../../src/events/keys.js';

describe('CSV keys', () => {
  describe('isCsvKey', () => {
    const yes = ['a.csv', 'dir/sub/a.csv', 'a.CSV', 'a.Csv.Gz', 'a.csv.gz', 'a b.csv', 'archive.tar.csv', '2026/11/x.csv.GZ', '.hidden.csv'];
    const no = ['a.txt', 'a.csvx', 'a.csv.zip', 'a.gz', 'a.tsv', 'acsv', 'a.csv/', 'dir.csv/', 'dir/', '.csv', 'dir/.csv', 'dir/.csv.gz', ''];
    for (const key of yes) it(`accepts ${JSON.stringify(key)}`, () => expect(isCsvKey(key)).to.equal(true));
    for (const key of no) it(`refuses ${JSON.stringify(key)}`, () => expect(isCsvKey(key)).to.equal(false));
  });

  describe('stemOf', () => {
    const cases: Array<[string, string]> = [
      ['a.csv', 'a'],
      ['dir/a b.csv.gz', 'dir/a b'],
      ['a.CSV.GZ', 'a'],
      ['x.csv.gz.csv', 'x.csv.gz'],
      ['a.csv.csv', 'a.csv'],
      ['a.txt', 'a.txt'],
      ['a.gz', 'a.gz'],
    ];
    for (const [key, stem] of cases) it(`${key} → ${stem}`, () => expect(stemOf(key)).to.equal(stem));
  });

  describe('decodeS3Key', () => {
    it('is the inverse of form encoding', () => {
      const key = 'dir/a b+c é?&=%.csv';
      const formEncoded = encodeURIComponent(key).replace(/%20/g, '+');
      expect(decodeS3Key(formEncoded)).to.equal(key);
    });
  });
});
