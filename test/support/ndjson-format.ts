/**
 * A whole extra output format as a plugin module, the way a team would add one: one JSON object per
 * row (int64 and timestamps as strings, to stay exact), registered through FORMAT_PLUGINS only.
 * The tests load it into `convert`, `serve` and their worker threads.
 */
import { gzipSync } from 'node:zlib';
import type { ByteSink, FormatOptions, FormatPlugin, FormatWriter } from '../../src/formats/types.js';
import { valueAt } from '../../src/formats/values.js';
import type { TableSchema, TypedBatch } from '../../src/types.js';

const ndjsonFormat: FormatPlugin = {
  name: 'ndjson',
  extension: 'ndjson',
  contentType: 'application/x-ndjson',
  compressions: ['none', 'gzip'],
  createWriter(schema: TableSchema, sink: ByteSink, options: FormatOptions): FormatWriter {
    const gzip = options.compression === 'gzip';
    const lines: string[] = [];
    return {
      async write(batch: TypedBatch) {
        for (let row = 0; row < batch.rowCount; row++) {
          const record: Record<string, unknown> = {};
          schema.columns.forEach((column, c) => {
            const value = valueAt(batch.columns[c]!, row);
            record[column.name] = typeof value === 'bigint' ? value.toString() : value;
          });
          lines.push(JSON.stringify(record));
        }
        if (!gzip) await sink.write(Buffer.from(lines.splice(0).map((line) => `${line}\n`).join('')));
      },
      async finish() {
        if (gzip) await sink.write(gzipSync(lines.map((line) => `${line}\n`).join('')));
      },
    };
  },
};

export default ndjsonFormat;
