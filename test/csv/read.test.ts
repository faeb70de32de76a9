/** Reading conformance: every case runs over both parsers, which must give identical results. */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { CSV_PARSERS, MAX_ROW_CHARS, openCsv, rowCharLimit, type CsvParserName } from '../../src/csv/read.js';
import { permanentFailure, readAll, streamOf } from './csv-input.js';

for (const parser of CSV_PARSERS) {
  const read = (input: string | Buffer, options: Parameters<typeof readAll>[2] = {}) => readAll(input, parser, options);
  const failure = async (input: string | Buffer, options: Parameters<typeof readAll>[2] = {}) =>
    permanentFailure(readAll(input, parser, options));

  describe(`openCsv with ${parser}`, () => {
    describe('rows and lines', () => {
      it('reads the header and the rows, each with its physical line', async () => {
        const result = await read('id,name\n1,ann\n2,bob\n');
        expect(result.columns).to.deep.equal(['id', 'name']);
        expect(result.rawHeader).to.deep.equal(['id', 'name']);
        expect(result.delimiter).to.equal(',');
        expect(result.rows).to.deep.equal([['1', 'ann'], ['2', 'bob']]);
        expect(result.lines).to.deep.equal([2, 3]);
      });

      it('reads a last row that has no line break', async () => {
        const result = await read('a,b\n1,2\n3,4');
        expect(result.rows).to.deep.equal([['1', '2'], ['3', '4']]);
        expect(result.lines).to.deep.equal([2, 3]);
      });

      it('returns no chunks for a header-only file', async () => {
        const result = await read('a,b\n');
        expect(result.columns).to.deep.equal(['a', 'b']);
        expect(result.chunks).to.deep.equal([]);
      });

      it('cuts rows into chunks of chunkRows, numbering data rows from 1', async () => {
        const result = await read('n\n1\n2\n3\n4\n5\n', { chunkRows: 2 });
        expect(result.chunks).to.deep.equal([
          { rows: [['1'], ['2']], firstRow: 1, lines: [2, 3] },
          { rows: [['3'], ['4']], firstRow: 3, lines: [4, 5] },
          { rows: [['5']], firstRow: 5, lines: [6] },
        ]);
      });

      it('keeps empty fields as empty strings, including a trailing one', async () => {
        const result = await read('a,b,c\n,,\n1,,\n,2,\n');
        expect(result.rows).to.deep.equal([['', '', ''], ['1', '', ''], ['', '2', '']]);
      });

      it('keeps spaces around unquoted values', async () => {
        const result = await read('a,b\n 1 ,x y\n');
        expect(result.rows).to.deep.equal([[' 1 ', 'x y']]);
      });
    });

    describe('line breaks', () => {
      it('reads CRLF files without leaving \\r in values', async () => {
        const result = await read('a,b\r\n1,2\r\n"q",\r\n');
        expect(result.rows).to.deep.equal([['1', '2'], ['q', '']]);
        expect(result.lines).to.deep.equal([2, 3]);
      });

      it('reads files mixing LF and CRLF', async () => {
        const result = await read('a,b\n1,2\r\n3,4\n');
        expect(result.rows).to.deep.equal([['1', '2'], ['3', '4']]);
      });

      it('reads classic Mac files with lone \\r line breaks', async () => {
        const result = await read('a,b\r1,2\r3,4\r');
        expect(result.rows).to.deep.equal([['1', '2'], ['3', '4']]);
        expect(result.lines).to.deep.equal([2, 3]);
      });
    });

    describe('RFC 4180 quoting', () => {
      it('reads delimiters, doubled quotes and empty strings inside quotes', async () => {
        const result = await read('a,b,c\n"x, y","say ""hi""",""\n');
        expect(result.rows).to.deep.equal([['x, y', 'say "hi"', '']]);
      });

      it('keeps line breaks inside quoted fields and counts them in the line numbers', async () => {
        const result = await read('a,b\n"line one\nline two",1\n"x\r\ny\r\nz",2\n3,4\n');
        expect(result.rows).to.deep.equal([
          ['line one\nline two', '1'],
          ['x\r\ny\r\nz', '2'],
          ['3', '4'],
        ]);
        expect(result.lines).to.deep.equal([2, 4, 7]);
      });

      it('reads quoted header cells', async () => {
        const result = await read('"first, name","b"\n1,2\n');
        expect(result.columns).to.deep.equal(['first, name', 'b']);
        expect(result.delimiter).to.equal(',');
      });

      it('accepts spaces between a closing quote and the delimiter', async () => {
        const result = await read('a,b\n"x"  ,"y" \n');
        expect(result.rows).to.deep.equal([['x', 'y']]);
      });

      it('reports a quote that is never closed, naming the line it opens on', async () => {
        const error = await failure('a,b\n"multi\nline",1\n2,"never closed\n3,4\n5,6\n');
        expect(error.code).to.equal('INVALID_CSV');
        expect(error.message).to.equal('line 4: a quoted field is never closed (missing closing quote)');
      });

      it('reports text after a closing quote, naming the line of the row', async () => {
        const error = await failure('a,b\n1,2\n3,"x"y\n');
        expect(error.code).to.equal('INVALID_CSV');
        expect(error.message).to.match(/^line 3: a closing quote is followed by text/);
      });
    });

    describe('blank lines', () => {
      it('ignores the trailing line break and any blank lines at the end', async () => {
        const result = await read('a,b\n1,2\n\n\n  \n');
        expect(result.rows).to.deep.equal([['1', '2']]);
      });

      it('skips blank and whitespace-only lines in the middle, as pandas does, keeping line numbers physical', async () => {
        const result = await read('a,b\n1,2\n\n   \n\t\n3,4\r\n\r\n5,6\n');
        expect(result.rows).to.deep.equal([['1', '2'], ['3', '4'], ['5', '6']]);
        expect(result.lines).to.deep.equal([2, 6, 8]);
        expect(result.chunks[0]!.firstRow).to.equal(1);
      });

      it('skips blank lines before the header', async () => {
        const result = await read('\n\n a , b \n1,2\n');
        expect(result.columns).to.deep.equal([' a ', ' b ']);
        expect(result.lines).to.deep.equal([4]);
      });

      it('treats an empty value in a one-column file as a blank line', async () => {
        const result = await read('n\n1\n\n2\n');
        expect(result.rows).to.deep.equal([['1'], ['2']]);
        expect(result.lines).to.deep.equal([2, 4]);
      });
    });

    describe('ragged rows', () => {
      it('names the physical line and both field counts', async () => {
        const error = await failure('a,b,c,d\n1,2,3,4\n1,2,3,4,5\n');
        expect(error.code).to.equal('RAGGED_ROW');
        expect(error.message).to.equal('line 3: row has 5 fields, the header has 4');
      });

      it('counts lines inside quoted fields and blank lines before the ragged row', async () => {
        const error = await failure('a,b\n"one\ntwo\nthree",1\n\n4\n');
        expect(error.message).to.equal('line 6: row has 1 field, the header has 2');
      });

      it('finds the line of a ragged row far into a large file', async () => {
        const rows = Array.from({ length: 30_000 }, (_, i) => (i % 1000 === 0 ? `"quoted\n${i}",${i}` : `${i},x`));
        rows.push('1,2,3');
        // Header 1 line, 30 000 rows of which 30 take two lines.
        const error = await failure(`a,b\n${rows.join('\n')}\n`, { pieces: [4093, 65536, 17] });
        expect(error.message).to.equal(`line ${1 + 30_000 + 30 + 1}: row has 3 fields, the header has 2`);
      });
    });

    describe('header', () => {
      it('names empty header cells column_<n> and numbers duplicates', async () => {
        const result = await read('id,,name,name,\n1,2,3,4,5\n');
        expect(result.rawHeader).to.deep.equal(['id', '', 'name', 'name', '']);
        expect(result.columns).to.deep.equal(['id', 'column_2', 'name', 'name_2', 'column_5']);
      });

      for (const [name, input] of [
        ['an empty file', ''],
        ['a file of blank lines', '\n\r\n   \n\t\n'],
        ['a file holding only a BOM', '\ufeff'],
      ] as const) {
        it(`rejects ${name} as EMPTY_FILE`, async () => {
          const error = await failure(input);
          expect(error.code).to.equal('EMPTY_FILE');
          expect(error.message).to.equal('the file is empty: a header row is required');
        });
      }
    });

    describe('delimiters', () => {
      for (const [delimiter, name] of [
        [',', 'comma'],
        [';', 'semicolon'],
        ['\t', 'tab'],
        ['|', 'pipe'],
      ] as const) {
        it(`detects a ${name} and parses with it`, async () => {
          const text = `id${delimiter}city${delimiter}note\n1${delimiter}"a${delimiter}b"${delimiter}x\n`;
          const result = await read(text);
          expect(result.delimiter).to.equal(delimiter);
          expect(result.columns).to.deep.equal(['id', 'city', 'note']);
          expect(result.rows).to.deep.equal([['1', `a${delimiter}b`, 'x']]);
        });
      }

      it('ignores delimiters inside quoted header cells', async () => {
        const result = await read('"a,b,c";"d,e"\n1;2\n');
        expect(result.delimiter).to.equal(';');
        expect(result.columns).to.deep.equal(['a,b,c', 'd,e']);
      });

      it('uses a given delimiter instead of detecting one', async () => {
        const result = await read('a;b,c\n1;2,3\n', { delimiter: ',' });
        expect(result.columns).to.deep.equal(['a;b', 'c']);
        expect(result.rows).to.deep.equal([['1;2', '3']]);
      });

      it('refuses a delimiter that is not one usable character', async () => {
        for (const delimiter of ['', ';;', '"', '\n']) {
          let caught: unknown;
          try {
            await openCsv(streamOf('a\n'), { encoding: 'utf-8', parser, delimiter });
          } catch (error) {
            caught = error;
          }
          expect(caught, JSON.stringify(delimiter)).to.be.instanceOf(RangeError);
        }
      });
    });

    describe('encodings', () => {
      it('drops a UTF-8 BOM', async () => {
        const result = await read('\ufeffid,name\n1,é\n');
        expect(result.columns).to.deep.equal(['id', 'name']);
        expect(result.rows).to.deep.equal([['1', 'é']]);
      });

      it('decodes UTF-8 characters split across the pieces of the stream', async () => {
        const result = await read('\ufeffname,emoji\nZoë,🙂\n日本,€\n', { pieces: [1] });
        expect(result.columns).to.deep.equal(['name', 'emoji']);
        expect(result.rows).to.deep.equal([['Zoë', '🙂'], ['日本', '€']]);
      });

      it('rejects invalid UTF-8, naming the line of the bad bytes', async () => {
        const bytes = Buffer.concat([Buffer.from('a,b\n1,2\n"multi\nline",3\n4,'), Buffer.from([0xe9]), Buffer.from('t\n5,6\n')]);
        const error = await failure(bytes);
        expect(error.code).to.equal('INVALID_ENCODING');
        expect(error.message).to.match(/^line 5: /);
        expect(error.message).to.contain('UTF-8');
      });

      it('names the line of bad bytes far into one large piece, after the rows before them', async () => {
        const bytes = Buffer.concat([Buffer.from('a,b\n' + '1,2\n'.repeat(100_000) + '3,'), Buffer.from([0xe9]), Buffer.from('\n')]);
        const table = await openCsv(streamOf(bytes, [1 << 22]), { encoding: 'utf-8', parser });
        let rows = 0;
        const error = await permanentFailure(
          (async () => {
            for await (const chunk of table.chunks) rows += chunk.rows.length;
          })(),
        );
        expect(error.code).to.equal('INVALID_ENCODING');
        expect(error.message).to.match(/^line 100002: /);
        expect(rows).to.equal(100_000);
      });

      it('rejects invalid UTF-8 in the header as line 1, and in pieces of one byte', async () => {
        const bytes = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(',b\n1,2\n')]);
        expect((await failure(bytes)).message).to.match(/^line 1: /);
        expect((await failure(bytes, { pieces: [1] })).message).to.match(/^line 1: /);
      });

      it('rejects overlong encodings, surrogates and a character cut off at the end', async () => {
        for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
          const error = await failure(Buffer.concat([Buffer.from('a\n1\nx'), Buffer.from(bad)]));
          expect(error.code, bad.join(',')).to.equal('INVALID_ENCODING');
          expect(error.message).to.match(/^line 3: /);
        }
      });

      it('decodes latin1 when asked', async () => {
        const bytes = Buffer.from('nom;ville\nJosé;Besançon\nÆ;ÿ\n', 'latin1');
        const result = await read(bytes, { encoding: 'latin1' });
        expect(result.rows).to.deep.equal([['José', 'Besançon'], ['Æ', 'ÿ']]);
      });

      it('reads latin1 bytes 0x80-0x9F as windows-1252 punctuation, as browsers do', async () => {
        const bytes = Buffer.concat([Buffer.from('price;note\n5'), Buffer.from([0x80]), Buffer.from(';'), Buffer.from([0x93, 0x61, 0x94, 0x96, 0x85])]);
        const result = await read(bytes, { encoding: 'latin1' });
        expect(result.rows).to.deep.equal([['5€', '“a”–…']]);
      });
    });

    describe('gzip', () => {
      const csv = '\ufeffa;b\r\n1;"x\r\ny"\r\n2;z\r\n';

      it('gunzips input recognised by its magic bytes', async () => {
        const result = await read(gzipSync(csv), { pieces: [1, 7, 300] });
        expect(result.delimiter).to.equal(';');
        expect(result.rows).to.deep.equal([['1', 'x\r\ny'], ['2', 'z']]);
        expect(result.lines).to.deep.equal([2, 4]);
      });

      it('reads an empty gzip member as an empty file', async () => {
        expect((await failure(gzipSync(''))).code).to.equal('EMPTY_FILE');
      });

      it('rejects corrupt gzip', async () => {
        const bytes = gzipSync(csv.repeat(50));
        bytes.fill(0x55, 12, 40);
        const error = await failure(bytes);
        expect(error.code).to.equal('INVALID_GZIP');
      });

      it('rejects truncated gzip', async () => {
        const bytes = gzipSync(csv.repeat(50));
        const error = await failure(bytes.subarray(0, bytes.length - 10));
        expect(error.code).to.equal('INVALID_GZIP');
      });
    });

    describe('streaming', () => {
      it('gives the same rows and lines whatever the piece sizes', async () => {
        const { text, rows, lines } = tricky(4000);
        for (const pieces of [[1 << 16], [1], [3, 5000, 7], [65535, 2]]) {
          const result = await read(text, { pieces, chunkRows: 999 });
          expect(result.rows.length, String(pieces)).to.equal(rows.length);
          expect(result.rows, String(pieces)).to.deep.equal(rows);
          expect(result.lines, String(pieces)).to.deep.equal(lines);
        }
      });

      it('gives the same rows and lines when the source hands over a MiB at a time, as a local file does', async () => {
        // Text far longer than the parse window is parsed a window at a time (so parsed rows die young).
        const { text, rows, lines } = tricky(20_000);
        expect(text.length).to.be.above(4 << 16);
        const result = await read(text, { pieces: [1 << 20], chunkRows: 999 });
        expect(result.rows.length).to.equal(rows.length);
        expect(result.rows).to.deep.equal(rows);
        expect(result.lines).to.deep.equal(lines);
      });

      it('gives the right rows and lines wherever the parse windows end', async () => {
        const { text, rows, lines } = tricky(3000);
        // Widening the header shifts every later character across the reader's fixed-size parse windows.
        for (let shift = 0; shift < 48; shift++) {
          const result = await read(text.replace('id,', `id${'_'.repeat(shift)},`), { pieces: [1000 + shift * 37] });
          expect(result.rows, `shift ${shift}`).to.deep.equal(rows);
          expect(result.lines, `shift ${shift}`).to.deep.equal(lines);
        }
      });

      it('reads only as far as the consumer pulls', async () => {
        let produced = 0;
        const source = Readable.from(
          (function* () {
            yield Buffer.from('a,b\n');
            for (let i = 0; i < 2000; i++) {
              const piece = Buffer.from('1,2\n'.repeat(2500));
              produced += piece.length;
              yield piece;
            }
          })(),
          { objectMode: false },
        );
        const table = await openCsv(source, { encoding: 'utf-8', parser, chunkRows: 1000 });
        const iterator = table.chunks[Symbol.asyncIterator]();
        const first = await iterator.next();
        expect(first.value!.rows.length).to.equal(1000);
        // 20 MB are on offer; a few pieces were read.
        expect(produced).to.be.below(2_000_000);
        await iterator.return!(undefined);
        expect(source.destroyed).to.equal(true);
      });

      it('passes a failure of the source through unchanged, gzip or not', async () => {
        for (const gzip of [false, true]) {
          const body = Buffer.from('a,b\n' + '1,2\n'.repeat(100_000));
          const bytes = gzip ? gzipSync(body) : body;
          const source = Readable.from(
            (function* () {
              yield bytes.subarray(0, 1000);
              throw new Error('connection reset');
            })(),
            { objectMode: false },
          );
          let caught: unknown;
          try {
            const table = await openCsv(source, { encoding: 'utf-8', parser });
            for await (const chunk of table.chunks) void chunk;
          } catch (error) {
            caught = error;
          }
          expect((caught as Error).message, `gzip: ${gzip}`).to.equal('connection reset');
        }
      });

      it('releases a gzip source when the consumer stops early', async () => {
        const source = streamOf(gzipSync('a,b\n' + '1,2\n'.repeat(200_000)), [4096]);
        const table = await openCsv(source, { encoding: 'utf-8', parser, chunkRows: 100 });
        for await (const chunk of table.chunks) {
          expect(chunk.rows[0]).to.deep.equal(['1', '2']);
          break;
        }
        expect(source.destroyed).to.equal(true);
      });

      // The limit lives in the reader, not the parser; fast-csv needs ~10 s to scan 32 MiB one character at a time.
      if (parser === 'papaparse') it('rejects a row longer than MAX_ROW_CHARS, the sign of a quote left open', async () => {
        const filler = Buffer.alloc(1 << 20, 'x');
        const source = Readable.from(
          (function* () {
            yield Buffer.from('a,b\n1,2\n3,"open\n');
            for (let i = 0; i < (MAX_ROW_CHARS >> 20) + 2; i++) yield filler;
          })(),
          { objectMode: false },
        );
        const error = await permanentFailure(
          openCsv(source, { encoding: 'utf-8', parser }).then(async (table) => {
            for await (const chunk of table.chunks) void chunk;
          }),
        );
        expect(error.code).to.equal('INVALID_CSV');
        expect(error.message).to.match(/^line 3: a row runs past/);
      });
    });
  });
}

describe('the longest row a thread reads', () => {
  it('is MAX_ROW_CHARS with the default worker heap (384 MiB: a heap limit of 432 MiB) and on the main thread', () => {
    expect(rowCharLimit(432 * 2 ** 20)).to.equal(MAX_ROW_CHARS);
    expect(rowCharLimit(4144 * 2 ** 20)).to.equal(MAX_ROW_CHARS);
  });

  it('shrinks with a small heap, so a huge field is refused before it can abort the process (WORKER_HEAP_MB=64: a limit of 112 MiB)', () => {
    const limit = rowCharLimit(112 * 2 ** 20);
    expect(limit).to.be.below(MAX_ROW_CHARS);
    // A 30 MB field, measured to need about 80 MB of heap, is over it.
    expect(limit).to.be.below(30_000_000).and.above(10_000_000);
  });
});

describe('openCsv: both parsers agree', () => {
  it('on a file exercising quoting, CRLF, blank lines and multi-line fields', async () => {
    const { text } = tricky(3000);
    const results = await Promise.all(CSV_PARSERS.map((parser: CsvParserName) => readAll(text, parser, { pieces: [777] })));
    expect(results[0]).to.deep.equal(results[1]);
  });
});

/** A generated file with quoting, CRLF, blank lines and multi-line fields, and what reading it must give. */
function tricky(count: number): { text: string; rows: string[][]; lines: number[] } {
  const parts = ['id,text,n\r\n'];
  const rows: string[][] = [];
  const lines: number[] = [];
  let line = 2;
  for (let i = 0; i < count; i++) {
    switch (i % 7) {
      case 0:
        parts.push(`${i},"multi\r\nline, with ""quotes""\nand more",${i}\r\n`);
        rows.push([String(i), `multi\r\nline, with "quotes"\nand more`, String(i)]);
        lines.push(line);
        line += 3;
        break;
      case 1:
        parts.push('\r\n');
        line += 1;
        break;
      case 2:
        parts.push(`${i},"",\n`);
        rows.push([String(i), '', '']);
        lines.push(line);
        line += 1;
        break;
      default:
        parts.push(`${i},plain ${'v'.repeat(i % 40)},${i * 3}\r\n`);
        rows.push([String(i), `plain ${'v'.repeat(i % 40)}`, String(i * 3)]);
        lines.push(line);
        line += 1;
    }
  }
  return { text: parts.join(''), rows, lines };
}
