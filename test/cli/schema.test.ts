import { expect } from 'chai';
import { describeDataset } from '../../src/cli/schema.js';
import { nextDocument } from '../../src/schema/document.js';

describe('schema show: the text form', () => {
  it('lists the columns in registered order, then every change with its version, time and source file', () => {
    const v1 = nextDocument(
      undefined,
      'prices',
      [{ name: 'id', type: 'int64' }, { name: 'amount', type: 'double' }],
      [{ kind: 'registered', columns: [{ name: 'id', type: 'int64' }, { name: 'amount', type: 'double' }] }],
      's3://in/prices/a.csv',
      new Date('2026-12-01T10:00:00.000Z'),
    );
    const v2 = nextDocument(
      v1,
      'prices',
      [{ name: 'id', type: 'int64' }, { name: 'amount', type: 'string' }, { name: 'code', type: 'string' }],
      [
        { kind: 'type-widened', column: 'amount', from: 'double', to: 'string' },
        { kind: 'column-added', column: 'code', type: 'string' },
      ],
      's3://in/prices/b.csv',
      new Date('2026-12-01T11:00:00.000Z'),
    );
    expect(describeDataset({ dataset: 'prices', uri: 's3://reg/prices/_schema.json', document: v2 })).to.equal(
      [
        'dataset "prices"  version 2, updated 2026-12-01T11:00:00.000Z  (s3://reg/prices/_schema.json)',
        '  columns:',
        '    id      int64',
        '    amount  string',
        '    code    string',
        '  history:',
        '    v1  2026-12-01T10:00:00.000Z  s3://in/prices/a.csv',
        '        registered: id int64, amount double',
        '    v2  2026-12-01T11:00:00.000Z  s3://in/prices/b.csv',
        '        type widened: amount double → string',
        '        column added: code string',
      ].join('\n'),
    );
  });

  it('says why a document cannot be read', () => {
    expect(describeDataset({ dataset: 'x', uri: 's3://reg/x/_schema.json', problem: 's3://reg/x/_schema.json is not valid JSON' })).to.equal(
      'dataset "x": cannot be read: s3://reg/x/_schema.json is not valid JSON',
    );
  });
});
