import { expect } from 'chai';
import { registerBuiltinFormats } from '../../src/formats/builtin.js';
import { FormatRegistry } from '../../src/formats/registry.js';
import type { TableSchema } from '../../src/types.js';
import ndjsonFormat from '../support/ndjson-format.js';
import { EDGE_ROWS, EDGE_SCHEMA, batchOf, expectedColumns, normalize } from './fixtures.js';
import { MemorySink, TempDir, writeBatches } from './memory-sink.js';
import { readAvro, readParquet } from './readers.js';

describe('format registry with the built-in formats', () => {
  const temp = new TempDir();
  after(() => temp.cleanup());

  const registry = registerBuiltinFormats(new FormatRegistry()).register(ndjsonFormat);

  it('holds parquet and avro from registerBuiltinFormats, plus a format registered beside them', () => {
    expect(registry.names()).to.deep.equal(['parquet', 'avro', 'ndjson']);
    expect(registry.get('parquet').extension).to.equal('parquet');
    expect(registry.get('avro').extension).to.equal('avro');
    expect(() => registry.get('csv')).to.throw(/unknown format "csv" \(known: parquet, avro, ndjson\)/);
    expect(() => registerBuiltinFormats(registry)).to.throw(/already registered/);
  });

  it('writes the same batches through every registered format with the same interface', async () => {
    const rowCounts: Record<string, number> = {};
    for (const name of registry.names()) {
      const plugin = registry.get(name);
      const sink = await writeBatches(plugin, EDGE_SCHEMA, [batchOf(EDGE_SCHEMA, EDGE_ROWS.slice(0, 4)), batchOf(EDGE_SCHEMA, EDGE_ROWS.slice(4))], {
        compression: plugin.compressions[0],
      });
      const path = await temp.file(`all.${plugin.extension}`, sink.bytes());
      if (name === 'parquet') rowCounts[name] = (await readParquet(path)).rows;
      else if (name === 'avro') rowCounts[name] = (await readAvro(path)).rows;
      else rowCounts[name] = sink.bytes().toString('utf8').trimEnd().split('\n').length;
    }
    expect(rowCounts).to.deep.equal({ parquet: EDGE_ROWS.length, avro: EDGE_ROWS.length, ndjson: EDGE_ROWS.length });
  });

  it('the extra format writes real values', async () => {
    const schema: TableSchema = { columns: [EDGE_SCHEMA.columns[0]!, EDGE_SCHEMA.columns[5]!] };
    const rows = EDGE_ROWS.map((row) => [row[0]!, row[5]!]);
    const sink = await writeBatches(registry.get('ndjson'), schema, [batchOf(schema, rows)], {}, new MemorySink());
    const records = sink.bytes().toString('utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, string | null>);
    const expected = expectedColumns(schema.columns, rows);
    expect(records.map((record) => record.id)).to.deep.equal(expected.id);
    expect(records.map((record) => record.comment)).to.deep.equal(expected.comment);
    expect(records[0]!.id).to.equal(normalize('int64', -(2n ** 63n)));
  });
});
