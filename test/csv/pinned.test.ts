import { expect } from 'chai';
import { parsePinnedSchema } from '../../src/csv/pinned.js';
import { PermanentError } from '../../src/errors.js';

function failure(text: string): PermanentError {
  try {
    parsePinnedSchema(text, 'schemas/orders.json');
  } catch (error) {
    if (error instanceof PermanentError) return error;
    throw error;
  }
  throw new Error('expected parsePinnedSchema to throw');
}

describe('parsePinnedSchema', () => {
  it('reads an object of column name to type', () => {
    const pinned = parsePinnedSchema('{"id": "int64", "amount": "double", "zip code": "string"}', 'schema.json');
    expect([...pinned]).to.deep.equal([
      ['id', 'int64'],
      ['amount', 'double'],
      ['zip code', 'string'],
    ]);
  });

  it('reads the same object wrapped in "columns"', () => {
    const pinned = parsePinnedSchema('{"columns": {"day": "date", "at": "timestamp", "ok": "boolean"}}', 'schema.json');
    expect([...pinned]).to.deep.equal([
      ['day', 'date'],
      ['at', 'timestamp'],
      ['ok', 'boolean'],
    ]);
  });

  it('reads a column that is itself named "columns"', () => {
    expect([...parsePinnedSchema('{"columns": "int64", "b": "string"}', 's.json')]).to.deep.equal([
      ['columns', 'int64'],
      ['b', 'string'],
    ]);
  });

  it('matches type names in any letter case', () => {
    expect(parsePinnedSchema('{"a": "INT64", "b": "Timestamp"}', 's.json').get('a')).to.equal('int64');
  });

  it('accepts an empty object', () => {
    expect(parsePinnedSchema('{}', 's.json').size).to.equal(0);
  });

  it('rejects text that is not JSON, naming the source', () => {
    const error = failure('{"a": "int64",}');
    expect(error.code).to.equal('INVALID_SCHEMA_FILE');
    expect(error.message).to.match(/^schema file schemas\/orders\.json is not valid JSON/);
  });

  it('rejects JSON that is not an object', () => {
    for (const text of ['[]', '"int64"', '42', 'null']) {
      const error = failure(text);
      expect(error.code, text).to.equal('INVALID_SCHEMA_FILE');
      expect(error.message).to.contain('must be a JSON object of column name to type');
    }
  });

  it('rejects an unknown type, naming the entry and listing the allowed types', () => {
    const error = failure('{"id": "int64", "amount": "decimal"}');
    expect(error.code).to.equal('INVALID_SCHEMA_FILE');
    expect(error.message).to.equal(
      'schema file schemas/orders.json gives column "amount" the type "decimal"; allowed types: int64, double, boolean, date, timestamp, string',
    );
  });

  it('rejects a type that is not a string', () => {
    expect(failure('{"n": 5}').message).to.contain('gives column "n" the type 5');
    expect(failure('{"columns": {"n": {"type": "int64"}}}').message).to.contain('gives column "n" the type {"type":"int64"}');
  });

  it('rejects an empty column name', () => {
    expect(failure('{"": "int64"}').message).to.contain('has an empty column name');
  });
});
