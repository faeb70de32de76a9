/**
 * Opens a CSV byte stream as a table: its resolved header, then its rows in chunks, streamed with
 * back-pressure, every row checked against the header and tied to its physical line in the file.
 *
 * Lines are physical: the header is line 1 (unless blank lines precede it), and a row that has
 * line breaks inside quoted fields takes as many lines as an editor shows. Blank lines (empty, or
 * only whitespace) are skipped wherever they are, as pandas does; so in a one-column file an empty
 * or whitespace-only value is a blank line, not a null.
 */
import type { Readable } from 'node:stream';
import { getHeapStatistics } from 'node:v8';
import { PermanentError } from '../errors.js';
import { decodeText, InvalidBytesError, type TextEncodingName } from './decode.js';
import { detectDelimiter, endOfRecord } from './delimiter.js';
import { resolveColumnNames } from './header.js';
import { createRowParser, type LineBreak, type RowParser } from './parsers.js';

export const CSV_PARSERS = ['papaparse', 'fast-csv'] as const;
export type CsvParserName = (typeof CSV_PARSERS)[number];
/** The fastest parser that passes every reading test (README, Benchmarks: papaparse vs fast-csv vs udsv). */
export const DEFAULT_CSV_PARSER: CsvParserName = 'papaparse';

export interface CsvReadOptions {
  /** One character; detected from the header line when absent. */
  delimiter?: string;
  encoding: TextEncodingName;
  parser: CsvParserName;
  /** Rows per chunk; default 10 000. */
  chunkRows?: number;
  /** Largest decompressed size of gzip input, in bytes. */
  maxBytes?: number;
}

export interface CsvChunk {
  /** Each row has exactly `columns.length` fields. */
  rows: string[][];
  /** 1-based data row number of rows[0] (blank lines are not rows). */
  firstRow: number;
  /** lines[i]: the physical line (1-based) where rows[i] starts, for error messages. */
  lines: number[];
}

export interface CsvTable {
  /** Resolved names: unique, non-empty. */
  columns: string[];
  /** The header cells as written. */
  rawHeader: string[];
  delimiter: string;
  /** Iterate once; rows are read from the source only as chunks are pulled. */
  chunks: AsyncIterable<CsvChunk>;
}

const DEFAULT_CHUNK_ROWS = 10_000;
/** Text handed to a parser at once: large enough that per-call costs vanish. */
const PARSE_CHARS = 1 << 16;
/**
 * Longest row we hold: a bound on memory, and the usual sign of an open quote swallowing the file
 * (V8 strings cannot pass about 512 M characters anyway).
 */
export const MAX_ROW_CHARS = 1 << 25;

/**
 * Heap bytes a row's characters may need while it is read and converted (the text held, its
 * doubling as more is read, the flattened copy, the field's value): a row longer than the heap
 * divided by this is refused before it is read whole. Node stops a worker thread that reaches its
 * heap limit, but only at best: an allocation that meets the limit in some paths (an ArrayBuffer
 * under external-memory pressure, measured with a 30 MB field in a 64 MiB worker heap) aborts the
 * whole process with every file in it (nodejs/node#47224). Measured: that field needed about 80 MB
 * of heap, 2.7 bytes a character.
 */
const HEAP_BYTES_PER_ROW_CHAR = 8;

/**
 * The longest row this thread reads: MAX_ROW_CHARS, or less where the heap is small (a worker thread
 * with a small WORKER_HEAP_MB). With the defaults (384 MiB) it is MAX_ROW_CHARS.
 */
export function rowCharLimit(heapLimitBytes = getHeapStatistics().heap_size_limit): number {
  return Math.min(MAX_ROW_CHARS, Math.floor(heapLimitBytes / HEAP_BYTES_PER_ROW_CHAR));
}

/** This thread's row limit, fixed when the module loads (a thread's heap limit does not change). */
const ROW_LIMIT = rowCharLimit();

/**
 * Reads up to the header row and returns the table; the data rows stream through `chunks`.
 * Throws PermanentError EMPTY_FILE, RAGGED_ROW, INVALID_CSV, INVALID_ENCODING or INVALID_GZIP
 * (the last four possibly while iterating `chunks`).
 */
export async function openCsv(bytes: Readable, options: CsvReadOptions): Promise<CsvTable> {
  if (options.delimiter !== undefined && !isUsableDelimiter(options.delimiter)) {
    throw new RangeError(`delimiter must be one character other than a quote or a line break, got ${JSON.stringify(options.delimiter)}`);
  }
  const chunkRows = options.chunkRows ?? DEFAULT_CHUNK_ROWS;
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new RangeError(`chunkRows must be a positive integer, got ${chunkRows}`);

  const text = new TextCursor(decodeText(bytes, options.encoding, options.maxBytes));
  try {
    const headerLine = await text.findHeaderLine();
    const delimiter = options.delimiter ?? detectDelimiter(headerLine.text);
    text.lineBreak = headerLine.lineBreak;
    const rows = new RowStream(text, createRowParser(options.parser, delimiter, headerLine.lineBreak));
    const rawHeader = await rows.nextNonBlank();
    if (rawHeader === undefined) throw emptyFile();
    const columns = resolveColumnNames(rawHeader);
    return { columns, rawHeader, delimiter, chunks: chunksOf(rows, columns.length, chunkRows) };
  } catch (error) {
    await text.close();
    throw error;
  }
}

function isUsableDelimiter(delimiter: string): boolean {
  return delimiter.length === 1 && delimiter !== '"' && delimiter !== '\r' && delimiter !== '\n' && delimiter !== '\ufeff';
}

function emptyFile(): PermanentError {
  return new PermanentError('EMPTY_FILE', 'the file is empty: a header row is required');
}

async function* chunksOf(rows: RowStream, width: number, chunkRows: number): AsyncGenerator<CsvChunk> {
  let firstRow = 1;
  let chunk: CsvChunk = { rows: [], firstRow, lines: [] };
  try {
    for (let batch = await rows.nextBatch(); batch !== undefined; batch = await rows.nextBatch()) {
      const { rows: parsed, lines, firstLine } = batch;
      for (let r = batch.start; r < parsed.length; r++) {
        const row = parsed[r]!;
        if (isBlank(row)) continue;
        const line = lines === undefined ? firstLine + r : lines[r]!;
        if (row.length !== width) {
          throw new PermanentError('RAGGED_ROW', `line ${line}: row has ${row.length} field${row.length === 1 ? '' : 's'}, the header has ${width}`);
        }
        chunk.rows.push(row);
        chunk.lines.push(line);
        if (chunk.rows.length === chunkRows) {
          yield chunk;
          firstRow += chunkRows;
          chunk = { rows: [], firstRow, lines: [] };
        }
      }
    }
    if (chunk.rows.length > 0) yield chunk;
  } finally {
    await rows.close();
  }
}

/** A blank line: fast-csv gives `[]`, papaparse `['']` or the whitespace itself. */
function isBlank(row: readonly string[]): boolean {
  return row.length === 0 || (row.length === 1 && (row[0]!.length === 0 || row[0]!.trim() === ''));
}

/** Rows parsed from one piece of text, with the physical line each starts on. */
interface RowBatch {
  rows: string[][];
  /** Index of the first row not yet handed out. */
  start: number;
  /** Line of rows[0]; row r is on firstLine + r unless `lines` is given. */
  firstLine: number;
  lines?: number[];
}

/** Decoded text not yet parsed, and the physical line it starts on. */
class TextCursor {
  pending = '';
  /** Physical line on which `pending` starts. */
  line = 1;
  /** The decoder is exhausted: `pending` is the end of the file. */
  ended = false;
  /** Bad bytes follow `pending`: parse it, then throw this. */
  fault: PermanentError | undefined;
  /** Set from the header line's break; \n until then. */
  lineBreak: LineBreak = '\n';
  readonly #pieces: AsyncGenerator<string>;

  constructor(pieces: AsyncGenerator<string>) {
    this.#pieces = pieces;
  }

  /** Reads until `pending` holds at least `chars` characters, the end, or bad bytes. */
  async fill(chars: number): Promise<void> {
    if (this.ended || this.fault) return;
    const parts = [this.pending];
    let length = this.pending.length;
    try {
      while (length < chars) {
        const next = await this.#pieces.next();
        if (next.done) {
          this.ended = true;
          break;
        }
        parts.push(next.value);
        length += next.value.length;
      }
    } catch (error) {
      if (!(error instanceof InvalidBytesError)) throw error;
      parts.push(error.textBefore);
      const before = parts.join('');
      const line = this.line + countBreaks(before, 0, before.length, this.lineBreak);
      this.fault = new PermanentError('INVALID_ENCODING', `line ${line}: the bytes are not valid UTF-8 (is the file latin1?)`);
    }
    this.pending = parts.length === 1 ? parts[0]! : parts.join('');
  }

  /** `pending` is all the text there will be before the end or the fault. */
  get complete(): boolean {
    return this.ended || this.fault !== undefined;
  }

  /** Drops the first `chars` characters, which held whole lines. */
  advance(chars: number, lines: number): void {
    this.pending = this.pending.slice(chars);
    this.line += lines;
  }

  /**
   * Finds the first non-blank line, to detect the delimiter and the line break from it. A quoted
   * field may hold line breaks, so the line runs to the first break outside quotes.
   */
  async findHeaderLine(): Promise<{ text: string; lineBreak: LineBreak }> {
    for (let want = PARSE_CHARS; ; want = this.pending.length * 2) {
      await this.fill(want);
      const text = this.pending;
      const start = text.search(/\S/);
      if (start === -1) {
        if (this.complete) throw this.fault ?? emptyFile();
        continue;
      }
      const lineStart = Math.max(text.lastIndexOf('\n', start), text.lastIndexOf('\r', start)) + 1;
      const end = endOfRecord(text, lineStart);
      if (end === -1 || (end === text.length - 1 && text[end] === '\r')) {
        // No break yet, or a \r that may be the first half of \r\n.
        if (this.complete) return { text: text.slice(lineStart, end === -1 ? text.length : end), lineBreak: '\n' };
        if (text.length > ROW_LIMIT) throw tooLong(this.line + countBreaks(text, 0, lineStart, '\n'));
        continue;
      }
      const lineBreak = text[end] === '\r' && text[end + 1] !== '\n' ? '\r' : '\n';
      return { text: text.slice(lineStart, end), lineBreak };
    }
  }

  async close(): Promise<void> {
    await this.#pieces.return(undefined);
  }
}

/** Pulls text through a parser and hands out rows with their lines, one parsed piece at a time. */
class RowStream {
  /** Rows already parsed and not yet handed out (the rest of the header's batch). */
  #held: RowBatch | undefined;
  #done = false;
  /** Raised once the rows before it are handed out. */
  #error: PermanentError | undefined;
  /** Characters wanted before the next parse; grows while a row is longer than the text held. */
  #want = PARSE_CHARS;

  constructor(
    private readonly text: TextCursor,
    private readonly parser: RowParser,
  ) {}

  /** The next non-blank row (the header), or undefined at the end. */
  async nextNonBlank(): Promise<string[] | undefined> {
    for (let batch = await this.nextBatch(); batch !== undefined; batch = await this.nextBatch()) {
      while (batch.start < batch.rows.length) {
        const row = batch.rows[batch.start++]!;
        if (!isBlank(row)) {
          this.#held = batch;
          return row;
        }
      }
    }
    return undefined;
  }

  async nextBatch(): Promise<RowBatch | undefined> {
    const held = this.#held;
    if (held) {
      this.#held = undefined;
      return held;
    }
    while (!this.#done) {
      const batch = await this.#parseMore();
      if (batch) return batch;
    }
    if (this.#error) throw this.#error;
    return undefined;
  }

  async #parseMore(): Promise<RowBatch | undefined> {
    const { text, parser } = this;
    await text.fill(this.#want);
    // A store may hand over much more text at once (a local file is read a MiB at a time): parse
    // it a window at a time, so that the rows parsed die young rather than outlive a scavenge.
    const windowed = text.pending.length >= 2 * this.#want;
    const pending = windowed ? text.pending.slice(0, this.#want) : text.pending;
    // Text cut short by bad bytes is not the end of a row: parse only the rows it completes.
    const final = !windowed && text.ended && !text.fault;
    const firstLine = text.line;
    const parsed = parser.parse(pending, final);
    const { rows } = parsed;

    if (parsed.fault) {
      const faultLine =
        parsed.fault.kind === 'unterminated'
          ? firstLine + countBreaks(pending, 0, parsed.fault.at, text.lineBreak)
          : firstLine + spanOfRows(rows, text.lineBreak);
      this.#done = true;
      this.#error = quotingError(parsed.fault.kind, faultLine);
      return rows.length > 0 ? { rows, start: 0, firstLine, lines: lineNumbers(rows, firstLine, text.lineBreak) } : undefined;
    }

    let lines: number[] | undefined;
    let spanned = countBreaks(pending, 0, parsed.consumed, text.lineBreak);
    // Every row ends with a line break except perhaps the file's last; if the breaks are exactly
    // those, no row has one inside quotes and the lines are consecutive.
    const unterminatedLast = final && rows.length > 0 && pending.charAt(parsed.consumed - 1) !== text.lineBreak;
    if (!parsed.oneBreakPerRow || spanned !== rows.length - (unterminatedLast ? 1 : 0)) {
      lines = lineNumbers(rows, firstLine, text.lineBreak);
      spanned = spanOfRows(rows, text.lineBreak);
    }
    text.advance(parsed.consumed, spanned);

    if (final) {
      this.#done = true;
      // fast-csv leaves trailing whitespace unparsed; anything else left would be a lost row.
      if (text.pending.trim() !== '') this.#error = quotingError('unparsed', text.line);
    } else if (text.fault && !windowed) {
      this.#done = true;
      this.#error = text.fault;
    } else if (rows.length === 0) {
      // One row is longer than the text held: read more before parsing again (doubling keeps
      // the re-parsing linear).
      if (pending.length >= ROW_LIMIT) throw tooLong(firstLine);
      this.#want = Math.min(Math.max(PARSE_CHARS, pending.length * 2), ROW_LIMIT);
      return undefined;
    }
    this.#want = PARSE_CHARS;
    return rows.length > 0 ? { rows, start: 0, firstLine, lines } : undefined;
  }

  async close(): Promise<void> {
    await this.text.close();
  }
}

const QUOTING_PROBLEMS = {
  unterminated: 'a quoted field is never closed (missing closing quote)',
  malformed: 'a closing quote is followed by text instead of a delimiter or line break (write "" for a quote inside a quoted field)',
  unparsed: 'this row could not be parsed',
};

function quotingError(kind: keyof typeof QUOTING_PROBLEMS, line: number): PermanentError {
  return new PermanentError('INVALID_CSV', `line ${line}: ${QUOTING_PROBLEMS[kind]}`);
}

function tooLong(line: number, limit = ROW_LIMIT, heapLimitBytes = getHeapStatistics().heap_size_limit): PermanentError {
  if (limit < MAX_ROW_CHARS) {
    const heapMiB = Math.round(heapLimitBytes / 2 ** 20);
    return new PermanentError(
      'OUT_OF_MEMORY',
      `line ${line}: a row runs past ${limit} characters, more than a thread with a heap of ${heapMiB} MiB can convert ` +
        `(rows up to ${MAX_ROW_CHARS} characters need WORKER_HEAP_MB=${Math.ceil((MAX_ROW_CHARS * HEAP_BYTES_PER_ROW_CHAR) / 2 ** 20)} or more); ` +
        'raise WORKER_HEAP_MB (and the task memory with it) or split the file, then redrive this message; or a quote opened there is never closed',
    );
  }
  return new PermanentError(
    'INVALID_CSV',
    `line ${line}: a row runs past ${MAX_ROW_CHARS} characters, the most one row may hold; either a quote opened there is never closed (close it), or a field is that large (split it or store it as its own object)`,
  );
}

/** How many line breaks `text` has in [from, to). */
export function countBreaks(text: string, from: number, to: number, lineBreak: LineBreak): number {
  let count = 0;
  for (let i = text.indexOf(lineBreak, from); i !== -1 && i < to; i = text.indexOf(lineBreak, i + 1)) count++;
  return count;
}

/** Lines a row takes: its own, plus one per line break inside its (quoted) fields. */
function spanOf(row: readonly string[], lineBreak: LineBreak): number {
  let span = 1;
  for (const field of row) if (field.indexOf(lineBreak) !== -1) span += countBreaks(field, 0, field.length, lineBreak);
  return span;
}

function spanOfRows(rows: readonly (readonly string[])[], lineBreak: LineBreak): number {
  let span = 0;
  for (const row of rows) span += spanOf(row, lineBreak);
  return span;
}

function lineNumbers(rows: readonly (readonly string[])[], firstLine: number, lineBreak: LineBreak): number[] {
  const lines = new Array<number>(rows.length);
  let line = firstLine;
  for (let r = 0; r < rows.length; r++) {
    lines[r] = line;
    line += spanOf(rows[r]!, lineBreak);
  }
  return lines;
}
