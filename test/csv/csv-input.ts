/** Test helpers: feed text or bytes to openCsv the way a stream would, and collect what comes out. */
import { Readable } from 'node:stream';
import { openCsv, type CsvChunk, type CsvParserName, type CsvReadOptions } from '../../src/csv/read.js';
import { PermanentError } from '../../src/errors.js';

/** A byte stream delivering `input` in pieces of the given sizes (cycled), like a network body. */
export function streamOf(input: string | Buffer, pieceSizes: number[] = [1 << 16]): Readable {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const pieces: Buffer[] = [];
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const size = pieceSizes[k % pieceSizes.length]!;
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return Readable.from(pieces, { objectMode: false });
}

export interface ReadResult {
  columns: string[];
  rawHeader: string[];
  delimiter: string;
  rows: string[][];
  lines: number[];
  chunks: CsvChunk[];
}

export async function readAll(
  input: string | Buffer,
  parser: CsvParserName,
  options: Partial<CsvReadOptions> & { pieces?: number[] } = {},
): Promise<ReadResult> {
  const { pieces, ...rest } = options;
  const table = await openCsv(streamOf(input, pieces), { encoding: 'utf-8', parser, ...rest });
  const chunks: CsvChunk[] = [];
  for await (const chunk of table.chunks) chunks.push(chunk);
  return {
    columns: table.columns,
    rawHeader: table.rawHeader,
    delimiter: table.delimiter,
    rows: chunks.flatMap((chunk) => chunk.rows),
    lines: chunks.flatMap((chunk) => chunk.lines),
    chunks,
  };
}

/** The PermanentError `promise` rejects with; fails the test if it resolves or throws something else. */
export async function permanentFailure(promise: Promise<unknown>): Promise<PermanentError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PermanentError) return error;
    throw error;
  }
  throw new Error('expected a PermanentError, but it succeeded');
}
