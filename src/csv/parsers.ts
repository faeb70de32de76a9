/**
 * The two CSV tokenizers behind one small interface (papaparse, the default, and fast-csv): text
 * in, complete rows out, with the place of any quoting fault, so the reader can keep line numbers
 * exact whichever one runs. udsv, faster still, is not offered: it reports no fault and no
 * position, and reads bad input as something else (checked with 0.7.3: `1,2,3` under a 2-column
 * header gives `["1","2,3"]`, a short row takes the next line into its last field, `"x"y` gives
 * `y`, an unclosed quote gives an empty field and ends the file).
 *
 * They agree on RFC 4180 input and on everything test/csv checks. Known differences, all outside
 * RFC 4180: spaces before an opening quote (fast-csv drops them and unquotes the field, papaparse
 * keeps the field as written); a lone \r inside an unquoted field of an LF or CRLF file (fast-csv
 * ends the row there); a quoted last field whose text ends in \r (papaparse loses that \r).
 */
import { createRequire } from 'node:module';
import Papa from 'papaparse';
import { ParserOptions } from 'fast-csv';

export interface ParsedText {
  /** Complete rows, in order, blank lines included (as `[]` or `['']`). */
  rows: string[][];
  /** How many characters of the text those rows took; the rest begins an unfinished row. */
  consumed: number;
  /**
   * True when every row ended at exactly one line-break character, so a row spans more than one
   * line only if it has a line break inside a quoted field.
   */
  oneBreakPerRow: boolean;
  /** A quoting fault in the row after `rows`; nothing past it was parsed. */
  fault?: QuotingFault;
}

export type QuotingFault =
  /** A quoted field that never closes; `at` is the offset of its opening quote. */
  | { kind: 'unterminated'; at: number }
  /** A closing quote followed by something other than a delimiter or a line break. */
  | { kind: 'malformed' };

export interface RowParser {
  /**
   * Parses the complete rows at the start of `text`, which begins at a row boundary. With
   * `final` the text is the end of the input and its last row needs no line break.
   */
  parse(text: string, final: boolean): ParsedText;
}

/** Line breaks the reader asks for: `\n` (also `\r\n`) or a classic-Mac lone `\r`. */
export type LineBreak = '\n' | '\r';

export function createRowParser(name: 'fast-csv' | 'papaparse', delimiter: string, lineBreak: LineBreak): RowParser {
  return name === 'fast-csv' ? new FastCsvRows(delimiter, lineBreak) : new PapaparseRows(delimiter, lineBreak);
}

// ---- fast-csv ------------------------------------------------------------------------------------

/**
 * fast-csv's own row and scanner classes (public members of @fast-csv/parse 5, though not exported
 * from its index). Its public API is a stream (`parse`, `parseString`: CsvParserStream), which
 * throws away the rows it parsed before a fault in the same chunk and reports a fault with no
 * offset, so the fault's line would be unknowable; it also hands rows out asynchronously, 100 at
 * a time. Driving its RowParser gives the same parse with exact positions. fast-csv is pinned, and
 * this module refuses to load against a version without these classes.
 */
interface FastCsvScanner {
  readonly line: string;
  readonly cursor: number;
  readonly nextNonSpaceToken: unknown;
}
interface FastCsvInternals {
  Scanner: new (args: { line: string; parserOptions: ParserOptions; hasMoreData: boolean }) => FastCsvScanner;
  RowParser: new (options: ParserOptions) => { parse(scanner: FastCsvScanner): string[] | null };
}

const fastCsvInternals = loadFastCsvInternals();

function loadFastCsvInternals(): FastCsvInternals {
  // Resolved from fast-csv itself, so we get the very copy fast-csv uses.
  const fromFastCsv = createRequire(createRequire(import.meta.url).resolve('fast-csv'));
  const internals = fromFastCsv('@fast-csv/parse/build/src/parser/index.js') as Partial<FastCsvInternals>;
  if (typeof internals.Scanner !== 'function' || typeof internals.RowParser !== 'function') {
    throw new Error('this fast-csv version no longer has the parser classes src/csv/parsers.ts drives');
  }
  return internals as FastCsvInternals;
}

class FastCsvRows implements RowParser {
  readonly #options: ParserOptions;
  readonly #rowParser: InstanceType<FastCsvInternals['RowParser']>;
  readonly #breakChar: string;

  constructor(delimiter: string, lineBreak: LineBreak) {
    this.#options = new ParserOptions({ delimiter, headers: false, ignoreEmpty: false, quote: '"', escape: '"' });
    this.#rowParser = new fastCsvInternals.RowParser(this.#options);
    // fast-csv ends rows at \r\n, \n and \r alike; a row ends at one `lineBreak` unless the other is present.
    this.#breakChar = lineBreak === '\n' ? '\r' : '\n';
  }

  parse(text: string, final: boolean): ParsedText {
    const scanner = new fastCsvInternals.Scanner({ line: text, parserOptions: this.#options, hasMoreData: !final });
    const rows: string[][] = [];
    const oneBreakPerRow = text.indexOf(this.#breakChar) === -1;
    try {
      // fast-csv's Parser loop, minus its BOM strip (the decoder already dropped the one BOM).
      while (scanner.nextNonSpaceToken !== null) {
        const row = this.#rowParser.parse(scanner);
        if (row === null) break;
        rows.push(row);
      }
    } catch (error) {
      const rowStart = text.length - scanner.line.length;
      const message = (error as Error).message ?? '';
      if (message.startsWith('Parse Error: missing closing')) {
        return { rows, consumed: rowStart, oneBreakPerRow, fault: { kind: 'unterminated', at: rowStart + scanner.cursor } };
      }
      if (message.startsWith('Parse Error: expected')) {
        return { rows, consumed: rowStart, oneBreakPerRow, fault: { kind: 'malformed' } };
      }
      throw error;
    }
    return { rows, consumed: text.length - scanner.line.length, oneBreakPerRow };
  }
}

// ---- papaparse -----------------------------------------------------------------------------------

interface PapaError {
  code: string;
  /** Index in `data` of the row being parsed when the error happened. */
  row: number;
  /** Offset just past the opening quote of the faulty field. */
  index: number;
}
interface PapaResult {
  data: string[][];
  errors: PapaError[];
  meta: { cursor: number };
}

/**
 * papaparse's Parser, the tokenizer under its streaming API, fed the decoded text piece by piece
 * (its `ignoreLastRow` leaves an unfinished row for the next piece).
 */
class PapaparseRows implements RowParser {
  readonly #parser: Papa.Parser;
  readonly #stripCarriageReturns: boolean;
  readonly #lineBreak: LineBreak;

  constructor(delimiter: string, lineBreak: LineBreak) {
    this.#lineBreak = lineBreak;
    // Splitting at \n and stripping a trailing \r reads LF, CRLF and mixed files alike, as fast-csv does.
    this.#parser = new Papa.Parser({ delimiter, newline: lineBreak, quoteChar: '"', escapeChar: '"' });
    this.#stripCarriageReturns = lineBreak === '\n';
  }

  parse(text: string, final: boolean): ParsedText {
    const result = this.#parser.parse(text, 0, !final) as PapaResult;
    let rows = result.data;
    let consumed = result.meta.cursor;
    let fault: QuotingFault | undefined;
    const error = result.errors.find((e) => final || e.row < rows.length || !cutOffByWindow(text, e));
    if (error) {
      rows = rows.slice(0, error.row);
      consumed = 0;
      fault = error.code === 'MissingQuotes' ? { kind: 'unterminated', at: error.index - 1 } : { kind: 'malformed' };
    }
    if (this.#stripCarriageReturns) stripCarriageReturns(rows);
    // At the end, papaparse reads the nothing after a final line break as one more row; fast-csv does not.
    if (final && !fault && text.endsWith(this.#lineBreak) && isEmptyRow(rows[rows.length - 1])) rows.pop();
    return { rows, consumed, oneBreakPerRow: true, fault };
  }
}

/**
 * Whether an error in the unfinished last row may only be the end of the text: papaparse calls a
 * closing quote followed by nothing but whitespace (`"x"\r` of a `\r\n` cut in two) malformed.
 * That row is parsed again with more text; text after the quote is a real fault at once.
 */
function cutOffByWindow(text: string, error: PapaError): boolean {
  if (error.code !== 'InvalidQuotes') return true;
  let close = text.indexOf('"', error.index);
  while (close !== -1 && text.charCodeAt(close + 1) === 34) close = text.indexOf('"', close + 2);
  return close === -1 || text.slice(close + 1).trim() === '';
}

function isEmptyRow(row: string[] | undefined): boolean {
  return row !== undefined && row.length === 1 && row[0] === '';
}

/**
 * Removes the \r that a CRLF line end leaves on a row's last, unquoted field (checking each row
 * costs less than searching the text for a \r).
 */
function stripCarriageReturns(rows: string[][]): void {
  for (const row of rows) {
    const last = row.length - 1;
    const field = row[last]!;
    if (field.charCodeAt(field.length - 1) === 13) row[last] = field.slice(0, -1);
  }
}
