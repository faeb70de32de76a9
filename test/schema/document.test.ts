import { expect } from 'chai';
import { datasetOfDocumentKey } from '../../src/schema/browse.js';
import { DOCUMENT_FORMAT, documentKey, formatDocument, InvalidSchemaDocumentError, nextDocument, parseDocument } from '../../src/schema/document.js';
import { parseRegistryLocation } from '../../src/schema/location.js';

const AT = new Date('2026-12-01T10:00:00.000Z');

describe('dataset schema document', () => {
  const first = nextDocument(undefined, 'sales', [{ name: 'id', type: 'int64' }], [{ kind: 'registered', columns: [{ name: 'id', type: 'int64' }] }], 's3://in/sales/a.csv', AT);
  const second = nextDocument(
    first,
    'sales',
    [{ name: 'id', type: 'int64' }, { name: 'region', type: 'string' }],
    [{ kind: 'column-added', column: 'region', type: 'string' }],
    's3://in/sales/b.csv',
    new Date('2026-12-01T11:00:00.000Z'),
  );

  it('counts versions and keeps every change, oldest first, with when and which file', () => {
    expect(second.version).to.equal(2);
    expect(second.history.map((entry) => [entry.version, entry.source, entry.changes[0]!.kind])).to.deep.equal([
      [1, 's3://in/sales/a.csv', 'registered'],
      [2, 's3://in/sales/b.csv', 'column-added'],
    ]);
    expect(second.updatedAt).to.equal('2026-12-01T11:00:00.000Z');
  });

  it('is stored as indented JSON in a fixed key order, so a change is a few added lines in a diff', () => {
    const before = formatDocument(first).split('\n');
    const after = formatDocument(second).split('\n');
    expect(after[0]).to.equal('{');
    expect(after[1]).to.equal(`  "format": "${DOCUMENT_FORMAT}",`);
    expect(after[2]).to.equal('  "dataset": "sales",');
    // Each line of the old document is still there, in order, except the version and time lines.
    const kept = before.filter((line) => !/"(version|updatedAt)"/.test(line) && !/^\s*[\]}],?$/.test(line));
    let at = 0;
    for (const line of kept) {
      at = after.indexOf(line, at);
      expect(at, `line kept: ${line}`).to.be.at.least(0);
    }
    // Key order does not depend on how the object was built.
    const shuffled = JSON.parse(formatDocument(second)) as Record<string, unknown>;
    const reordered = Object.fromEntries(Object.entries(shuffled).reverse());
    expect(formatDocument(parseDocument(JSON.stringify(reordered), 'x'))).to.equal(formatDocument(second));
  });

  it('reads back what it writes', () => {
    expect(parseDocument(formatDocument(second), 's3://r/sales/_schema.json')).to.deep.equal(second);
  });

  it('a broken document is refused with its location and the problem', () => {
    const origin = 's3://r/sales/_schema.json';
    expect(() => parseDocument('{', origin)).to.throw(InvalidSchemaDocumentError, /s3:\/\/r\/sales\/_schema\.json is not valid JSON/);
    const badType = JSON.parse(formatDocument(first)) as { columns: { type: string }[] };
    badType.columns[0]!.type = 'integer';
    expect(() => parseDocument(JSON.stringify(badType), origin)).to.throw(/columns\.0\.type/);
    const twice = JSON.parse(formatDocument(first)) as { columns: unknown[] };
    twice.columns.push(twice.columns[0]);
    expect(() => parseDocument(JSON.stringify(twice), origin)).to.throw(/registers column "id" twice/);
  });

  it('lives at <prefix><dataset>/_schema.json, the root dataset at <prefix>_schema.json, and is found back from its key', () => {
    expect(documentKey('schemas/', 'sales/2024')).to.equal('schemas/sales/2024/_schema.json');
    expect(documentKey('schemas/', '')).to.equal('schemas/_schema.json');
    expect(documentKey('', 'sales')).to.equal('sales/_schema.json');
    for (const dataset of ['sales/2024', '', 'sales']) expect(datasetOfDocumentKey(documentKey('schemas/', dataset), 'schemas/')).to.equal(dataset);
    expect(datasetOfDocumentKey('schemas/sales/notes.json', 'schemas/')).to.equal(undefined);
  });

  it('the registry location is s3://bucket/prefix/, the prefix made to end with a slash', () => {
    expect(parseRegistryLocation('s3://schemas-bucket')).to.deep.equal({ bucket: 'schemas-bucket', prefix: '' });
    expect(parseRegistryLocation('s3://schemas-bucket/')).to.deep.equal({ bucket: 'schemas-bucket', prefix: '' });
    expect(parseRegistryLocation('s3://schemas-bucket/team/schemas')).to.deep.equal({ bucket: 'schemas-bucket', prefix: 'team/schemas/' });
    expect(() => parseRegistryLocation('schemas-bucket/x/')).to.throw(/s3:\/\/bucket\/prefix\//);
    expect(() => parseRegistryLocation('s3://Bad_Bucket/x/')).to.throw(/bucket name "Bad_Bucket"/);
    expect(() => parseRegistryLocation('s3://ok-bucket//x/')).to.throw(/must not start with "\/"/);
  });
});
