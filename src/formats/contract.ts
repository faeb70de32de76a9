/** Checks every plugin makes at its boundary: the codec named exists, and a batch fits the schema. */
import type { TypedBatch } from '../types.js';

/** Looks up the codec a user named; an unknown name is refused rather than written mislabelled. */
export function pickCodec<T>(format: string, codecs: ReadonlyMap<string, T>, name: string): T {
  const codec = codecs.get(name);
  if (codec === undefined) {
    throw new Error(`${format}: unsupported compression "${name}" (use one of ${[...codecs.keys()].join(', ')})`);
  }
  return codec;
}

/** Catches a batch that does not match the schema before it can produce a corrupt file. */
export function checkBatch(columnCount: number, batch: TypedBatch): void {
  if (batch.columns.length !== columnCount) {
    throw new Error(`batch has ${batch.columns.length} columns, schema has ${columnCount}`);
  }
  for (const values of batch.columns) {
    if (values.length !== batch.rowCount) {
      throw new Error(`batch column has ${values.length} values, rowCount is ${batch.rowCount}`);
    }
  }
}
