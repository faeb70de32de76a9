import { expect } from 'chai';
import { datasetOf, describeDatasetRule, parseDatasetRule } from '../../src/schema/dataset.js';

describe('dataset rule (SCHEMA_DATASET)', () => {
  it('folder (the default): the key\'s folder; a key at the root is in the root dataset ""', () => {
    const rule = parseDatasetRule('folder');
    expect(datasetOf(rule, 'sales/2024/05/a.csv')).to.equal('sales/2024/05');
    expect(datasetOf(rule, 'sales/a.csv.gz')).to.equal('sales');
    expect(datasetOf(rule, 'a.csv')).to.equal('');
  });

  it('depth:N: the first N folders, or the whole folder when the key has fewer', () => {
    expect(datasetOf(parseDatasetRule('depth:1'), 'sales/2024/05/a.csv')).to.equal('sales');
    expect(datasetOf(parseDatasetRule('DEPTH:2'), 'sales/2024/05/a.csv')).to.equal('sales/2024');
    expect(datasetOf(parseDatasetRule('depth:3'), 'sales/a.csv')).to.equal('sales');
    expect(datasetOf(parseDatasetRule('depth:1'), 'a.csv')).to.equal('');
  });

  it('regex: the first capture group, or the whole match; a key it does not match belongs to no dataset', () => {
    const byTable = parseDatasetRule('regex:^exports/([a-z]+)_\\d{8}\\.csv$');
    expect(datasetOf(byTable, 'exports/orders_20240501.csv')).to.equal('orders');
    expect(datasetOf(byTable, 'exports/other.csv')).to.equal(undefined);
    expect(datasetOf(parseDatasetRule('regex:^[^/]+/[^/]+/'), 'sales/eu/2024/a.csv')).to.equal('sales/eu');
    // The pattern is kept as written, spaces included.
    expect(parseDatasetRule('regex:^a b/')).to.deep.equal({ kind: 'regex', source: '^a b/' });
  });

  it('refuses anything else with a message saying what is allowed', () => {
    expect(() => parseDatasetRule('prefix')).to.throw(/must be `folder`, `depth:N`.*`regex:PATTERN`/);
    expect(() => parseDatasetRule('depth:0')).to.throw(/whole number from 1 to 100/);
    expect(() => parseDatasetRule('depth:x')).to.throw(/whole number/);
    expect(() => parseDatasetRule('regex:')).to.throw(/needs a pattern/);
    expect(() => parseDatasetRule('regex:([a-z]')).to.throw(/not a valid regular expression/);
  });

  it('describes a rule as it is written', () => {
    for (const text of ['folder', 'depth:2', 'regex:^([^/]+)/']) expect(describeDatasetRule(parseDatasetRule(text))).to.equal(text);
  });
});
