/** Checks every plugin makes at its boundary: the codec named exists, and a batch fits the schema. */
import type { TableSchema, TypedBatch } from '../types.js';

/** Looks up the codec a user named; an unknown name is refused rather than written mislabelled. */
export function pickCodec<T>(format: string, codecs: ReadonlyMap<string, T>, name: string): T {
  const codec = codecs.get(name);
  if (codec === undefined) {
    throw new Error(`${format}: unsupported compression "${name}" (use one of ${[...codecs.keys()].join(', ')})`);
  }
  return codec;
}

/** Catches a batch that does not match the schema before it can produce a corrupt file. */
export function checkBatch(schema: TableSchema, batch: TypedBatch): void {
  if (batch.columns.length !== schema.columns.length) {
    throw new Error(`batch has ${batch.columns.length} columns, schema has ${schema.columns.length}`);
  }
  const rows = batch.rowCount;
  for (const [c, column] of batch.columns.entries()) {
    const expected = schema.columns[c]!.type;
    if (column.type !== expected) throw new Error(`batch column ${c} is ${column.type}, schema says ${expected}`);
    const length = column.type === 'string' ? column.offsets.length - 1 : column.values.length;
    if (length !== rows || (column.nulls !== undefined && column.nulls.length !== rows)) {
      throw new Error(`batch column ${c} has ${length} values, rowCount is ${rows}`);
    }
  }
}
