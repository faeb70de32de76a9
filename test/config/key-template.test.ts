import { expect } from 'chai';
import { outputKeyPrefixFor, outputKeysFor, renderKeyTemplate, type OutputLayout } from '../../src/config/key-template.js';
import { stemOf } from '../../src/events/keys.js';

const FORMATS = [
  { name: 'parquet', extension: 'parquet' },
  { name: 'avro', extension: 'avro' },
];
const layout = (template: string, prefix = ''): OutputLayout => ({ template, prefix, formats: FORMATS });

describe('output keys of a source', () => {
  it('with the default template: <prefix><format>/<key without .csv>.<ext>, one per format in order', () => {
    expect(outputKeysFor(layout('{prefix}{format}/{stem}.{ext}'), { bucket: 'in', key: 'incoming/2024/sales.csv' })).to.deep.equal([
      'parquet/incoming/2024/sales.parquet',
      'avro/incoming/2024/sales.avro',
    ]);
    expect(outputKeysFor(layout('{prefix}{format}/{stem}.{ext}', 'converted/'), { bucket: 'in', key: 'a b.CSV.GZ' })).to.deep.equal([
      'converted/parquet/a b.parquet',
      'converted/avro/a b.avro',
    ]);
  });

  it('fills every placeholder the way a template is rendered', () => {
    const source = { bucket: 'landing', key: 'x/y.csv' };
    const template = '{bucket}/{prefix}{stem}/{format}.{ext}';
    expect(outputKeysFor(layout(template, 'p/'), source)).to.deep.equal(
      FORMATS.map((f) => renderKeyTemplate(template, { bucket: 'landing', prefix: 'p/', stem: stemOf(source.key), format: f.name, ext: f.extension })),
    );
  });

  const templates = ['{prefix}{format}/{stem}.{ext}', '{prefix}{stem}.{ext}', '{bucket}/{format}/{stem}/data.{ext}', '{stem}/{format}', 'out/{ext}/{stem}-{stem}.{format}'];
  for (const template of templates) {
    it(`the listing prefix of ${template} starts every output key of that format`, () => {
      for (const format of FORMATS) {
        const prefix = outputKeyPrefixFor(layout(template, 'pre/'), format, 'landing');
        expect(prefix).not.to.include('{');
        for (const key of ['a.csv', 'dir/b c.csv.gz', 'z/z/z.CSV']) {
          const [parquet, avro] = outputKeysFor(layout(template, 'pre/'), { bucket: 'landing', key });
          expect(format.name === 'parquet' ? parquet : avro).to.satisfy((output: string) => output.startsWith(prefix));
        }
      }
    });
  }

  it('the listing prefix is everything before {stem}, rendered', () => {
    expect(outputKeyPrefixFor(layout('{prefix}{format}/{stem}.{ext}', 'c/'), FORMATS[0]!, 'in')).to.equal('c/parquet/');
    expect(outputKeyPrefixFor(layout('{bucket}/{ext}/{stem}', ''), FORMATS[1]!, 'in')).to.equal('in/avro/');
    expect(outputKeyPrefixFor(layout('{stem}.{ext}', 'c/'), FORMATS[1]!, 'in')).to.equal('');
  });
});
