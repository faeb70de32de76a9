/**
 * Generates, at test time and from a seed, a corpus of malformed and hostile CSV objects and keys:
 * random bytes, truncated and corrupt gzip, ragged rows, broken quoting, bad UTF-8, huge fields,
 * very wide and odd headers, gzip bombs, objects over the size limit, and keys with `../`, control
 * characters, odd Unicode and the longest names S3 allows. Each entry says what the service must
 * do with it: convert it, or dead-letter it with one of the listed codes.
 *
 * Nothing here is committed data: the same seed gives the same corpus, so a failure can be replayed
 * with CORPUS_SEED=<seed>.
 */
import { gzipSync, constants as zlib } from 'node:zlib';
import type { PermanentCode } from '../../src/errors.js';
import { seededRandom } from './random.js';

export type Expectation =
  /** Outputs in every format, with `rows` rows when given. */
  | { outcome: 'converted'; rows?: number }
  /**
   * A dead letter whose `error-code` is one of these (any code when `codes` is empty), with a
   * non-empty `error-message`.
   */
  | { outcome: 'dead-lettered'; codes: PermanentCode[] }
  /** Either of the two (random text may happen to be a valid CSV); never lost, never unexplained. */
  | { outcome: 'either'; codes: PermanentCode[] };

export interface HostileObject {
  key: string;
  body: Buffer;
  /** What kind of hostility this is, for the report. */
  category: string;
  expect: Expectation;
}

export interface CorpusOptions {
  seed: number;
  /** The service's MAX_OBJECT_BYTES: bombs and oversized files are built to pass it. */
  maxObjectBytes: number;
  /** Scales the counts of the cheap categories; 1 gives a little over 1 000 objects. */
  scale?: number;
}

/** S3's limit on key length, in UTF-8 bytes. */
export const S3_MAX_KEY_BYTES = 1024;

class Dice {
  constructor(readonly next: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
  word(min = 1, max = 8): string {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    let text = '';
    for (let i = this.int(min, max); i > 0; i--) text += letters[Math.floor(this.next() * letters.length)];
    return text;
  }
}

// ---------------------------------------------------------------- keys

/** Cuts `text` to at most `bytes` UTF-8 bytes without splitting a character. */
function fitBytes(text: string, bytes: number): string {
  let out = '';
  for (const char of text) {
    if (Buffer.byteLength(out + char) > bytes) break;
    out += char;
  }
  return out;
}

/**
 * Hostile key shapes (the part before `.csv`): path traversal, control characters, odd Unicode,
 * characters that S3 notifications encode, and names as long as S3 allows. `unique` keeps them
 * distinct; `suffix` is the extension that will follow, counted in the length limit.
 */
export function hostileKeyStems(dice: Dice | (() => number), unique: string, suffix = '.csv'): { stem: string; shape: string }[] {
  const d = dice instanceof Dice ? dice : new Dice(dice);
  const longest = (prefix: string, filler: string) => {
    const room = S3_MAX_KEY_BYTES - Buffer.byteLength(prefix) - Buffer.byteLength(suffix);
    return prefix + fitBytes(filler.repeat(Math.ceil(room / Buffer.byteLength(filler)) + 1), room);
  };
  return [
    { shape: 'dotdot', stem: `../../${unique}` },
    { shape: 'dotdot', stem: `corpus/../../../etc/${unique}` },
    { shape: 'dotdot', stem: `corpus/./a/../${unique}` },
    { shape: 'dotdot', stem: `..\\..\\windows\\${unique}` },
    { shape: 'dotdot', stem: `corpus/..%2F..%2F${unique}` },
    { shape: 'slashes', stem: `/leading/${unique}` },
    { shape: 'slashes', stem: `corpus//double//${unique}` },
    { shape: 'control', stem: `corpus/ctl\u0001\u0002\u001f${unique}` },
    // A line feed is left out: moto cannot store such a key (S3 can).
    { shape: 'control', stem: `corpus/tab\there\rcr\u000bvt\u001b[31mansi${unique}` },
    { shape: 'control', stem: `corpus/del\u007f\u0080\u009f${unique}` },
    { shape: 'unicode', stem: `corpus/\u202eevil-rtl\u202c${unique}` },
    { shape: 'unicode', stem: `corpus/emoji-\u{1f4a9}-\u{1f9e8}-${unique}` },
    { shape: 'unicode', stem: `corpus/nfd-e\u0301-nfc-\u00e9-${unique}` },
    { shape: 'unicode', stem: `corpus/zero\u200bwidth\ufeff${unique}` },
    { shape: 'encoding', stem: `corpus/plus+space pct%20${unique}` },
    { shape: 'encoding', stem: `corpus/100%-${unique}` },
    { shape: 'encoding', stem: `corpus/q?x=1&y=2#frag-${unique}` },
    { shape: 'encoding', stem: `corpus/"quotes'<xml>&amp;-${unique}` },
    { shape: 'encoding', stem: `corpus/${d.word()}.csv.${unique}` },
    // Long names: one that leaves room for the output prefix, and the longest S3 accepts.
    { shape: 'long', stem: fitBytes(`corpus/long-${unique}-${'x'.repeat(2000)}`, 900 - Buffer.byteLength(suffix)) },
    { shape: 'longest', stem: longest(`corpus/longest-${unique}-`, 'ü') },
    { shape: 'longest', stem: longest(`corpus/longest-${unique}-`, '\u{1f600}') },
  ];
}

/** Keys for a store that maps them to files: traversal in every spelling, plus the shapes above. */
export function hostileLocalKeys(seed: number): string[] {
  const d = new Dice(seededRandom(seed));
  const keys = [
    '..', '../', '../outside.csv', '../../outside.csv', 'a/../../outside.csv', 'a/b/../../../outside.csv',
    './../outside.csv', '/etc/passwd', '/tmp/outside.csv', '//outside.csv', 'a//../../outside.csv',
    '.', './', '', 'a/..', 'a/../', '....//outside.csv', '..\\outside.csv', 'a\\..\\..\\outside.csv',
    'nul\0byte.csv', '../nul\0.csv', '%2e%2e/outside.csv', '%2e%2e%2foutside.csv', '..%2foutside.csv',
    '\u2024\u2024/outside.csv', '\uff0e\uff0e/outside.csv', 'a/\u0000/b', 'con', 'x'.repeat(300), `${'d/'.repeat(200)}deep.csv`,
    'sentinel', '../sentinel', 'root/../../sentinel', '../root-sibling/file.csv',
  ];
  for (let i = 0; i < 50; i++) {
    const parts: string[] = [];
    for (let p = d.int(1, 6); p > 0; p--) parts.push(d.pick(['..', '.', '', d.word(), '..', `${d.word()}..`, '...', '\t', ' ']));
    keys.push(parts.join(d.pick(['/', '/', '\\', '//'])));
  }
  for (const { stem } of hostileKeyStems(d, 'local')) keys.push(`${stem}.csv`);
  return keys;
}

// ---------------------------------------------------------------- bodies

function csv(rows: string[][]): string {
  return rows.map((row) => row.join(',')).join('\n') + '\n';
}

function validTable(d: Dice, rows: number, columns = d.int(1, 6)): string[][] {
  const header = Array.from({ length: columns }, (_, i) => `c${i}_${d.word(1, 4)}`);
  const out = [header];
  for (let r = 0; r < rows; r++) {
    out.push(header.map((_, c) => (c % 3 === 0 ? String(d.int(-1000, 1000)) : c % 3 === 1 ? `${d.int(0, 99)}.${d.int(0, 99)}` : d.word())));
  }
  return out;
}

function randomText(d: Dice, length: number): string {
  const alphabet = 'abc,,,""\n\r\t ;|\\01234 xyz,"\n';
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[Math.floor(d.next() * alphabet.length)];
  return text;
}

/** `expanded` bytes of `unit` repeated, gzipped at maximum compression, in chunks to bound memory. */
function gzipRepeated(unit: string, expanded: number, header = ''): Buffer {
  const chunk = Buffer.from(unit.repeat(Math.ceil((1 << 20) / unit.length)));
  const pieces: Buffer[] = [Buffer.from(header)];
  let size = pieces[0]!.length;
  // Whole units only, so a bomb of rows ends on a whole row.
  const end = size + Math.ceil((expanded - size) / unit.length) * unit.length;
  while (size < end) {
    const piece = chunk.subarray(0, Math.min(chunk.length, end - size));
    pieces.push(piece);
    size += piece.length;
  }
  return gzipSync(Buffer.concat(pieces), { level: zlib.Z_BEST_COMPRESSION });
}

const DECODE_CODES: PermanentCode[] = ['INVALID_ENCODING', 'INVALID_CSV', 'RAGGED_ROW', 'EMPTY_FILE', 'INVALID_GZIP'];

/**
 * The corpus. Counts at scale 1: ~1 050 objects, ~25 MB in total, most of them small so that the
 * emulator carries them in seconds.
 */
export function generateHostileCorpus(options: CorpusOptions): HostileObject[] {
  const d = new Dice(seededRandom(options.seed));
  const scale = options.scale ?? 1;
  const n = (count: number) => Math.max(1, Math.round(count * scale));
  const limit = options.maxObjectBytes;
  const objects: HostileObject[] = [];
  let serial = 0;
  const add = (category: string, body: Buffer | string, expect: Expectation, gz = false) => {
    const id = `${category}-${String(serial++).padStart(4, '0')}`;
    objects.push({ key: `corpus/${category}/${id}.csv${gz ? '.gz' : ''}`, body: Buffer.isBuffer(body) ? body : Buffer.from(body), category, expect });
  };

  for (let i = 0; i < n(220); i++) add('random-bytes', d.bytes(d.int(1, 32 * 1024)), { outcome: 'either', codes: DECODE_CODES });
  for (let i = 0; i < n(120); i++) add('random-text', randomText(d, d.int(1, 16 * 1024)), { outcome: 'either', codes: DECODE_CODES });

  for (let i = 0; i < n(100); i++) {
    const whole = gzipSync(csv(validTable(d, d.int(50, 2000))));
    const cut = d.int(2, whole.length - 9); // at least the trailer goes
    add('truncated-gzip', whole.subarray(0, cut), { outcome: 'dead-lettered', codes: ['INVALID_GZIP'] }, true);
  }
  for (let i = 0; i < n(50); i++) {
    const whole = Buffer.from(gzipSync(csv(validTable(d, d.int(50, 2000)))));
    for (let k = d.int(1, 8); k > 0; k--) whole[d.int(10, whole.length - 1)] ^= d.int(1, 255);
    add('corrupt-gzip', whole, { outcome: 'either', codes: DECODE_CODES }, true);
  }
  for (let i = 0; i < n(150); i++) {
    const table = validTable(d, d.int(2, 500), d.int(2, 8));
    const victim = d.int(1, table.length - 1);
    const row = table[victim]!;
    table[victim] = d.next() < 0.5 ? row.slice(0, d.int(0, row.length - 1)) : [...row, ...Array.from({ length: d.int(1, 5) }, () => d.word())];
    if (table[victim]!.length === 0) table[victim] = ['lonely', 'extra', ...row];
    add('ragged-rows', csv(table), { outcome: 'dead-lettered', codes: ['RAGGED_ROW'] });
  }
  for (let i = 0; i < n(50); i++) {
    const table = validTable(d, d.int(2, 300), d.int(2, 5));
    table[d.int(1, table.length - 1)]![0] = `"never closed ${d.word()}`;
    add('unterminated-quote', csv(table), { outcome: 'dead-lettered', codes: ['INVALID_CSV'] });
  }
  for (let i = 0; i < n(30); i++) {
    const table = validTable(d, d.int(2, 300), d.int(2, 5));
    table[d.int(1, table.length - 1)]![0] = `"quoted"trailing${d.word()}`;
    add('text-after-quote', csv(table), { outcome: 'dead-lettered', codes: ['INVALID_CSV'] });
  }
  for (let i = 0; i < n(50); i++) {
    const text = Buffer.from(csv(validTable(d, d.int(2, 500))));
    const at = d.int(text.indexOf(10) + 1, text.length - 2);
    const bad = d.pick([[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]]);
    add('invalid-utf8', Buffer.concat([text.subarray(0, at), Buffer.from(bad), text.subarray(at)]), { outcome: 'dead-lettered', codes: ['INVALID_ENCODING'] });
  }
  for (const body of ['', '\n', '\r\n\r\n', '   \n\t\n', '\ufeff', '\ufeff\n\n']) {
    for (let i = 0; i < n(4); i++) add('empty', body, { outcome: 'dead-lettered', codes: ['EMPTY_FILE'] });
  }
  for (let i = 0; i < n(4); i++) add('empty', gzipSync(Buffer.alloc(0)), { outcome: 'dead-lettered', codes: ['EMPTY_FILE'] }, true);
  for (let i = 0; i < n(20); i++) add('header-only', `${validTable(d, 0)[0]!.join(',')}\n`, { outcome: 'converted', rows: 0 });

  // Huge fields: one cell of 1-3 MB (under the limit), quoted, with line breaks and quotes inside.
  for (let i = 0; i < n(8); i++) {
    const size = d.int(1 << 20, 3 << 20);
    const field = 'x'.repeat(size - 20) + '\n""quoted""\r\n' + d.word();
    add('huge-field', `id,blob,tail\n1,"${field}",end\n2,small,end\n`, { outcome: 'converted', rows: 2 });
  }
  // Very wide: 5 000 columns (and one of 20 000 narrow ones), a few rows.
  for (const columns of [5000, 5000, 20_000]) {
    const header = Array.from({ length: columns }, (_, c) => `col_${c}`);
    const rows = [header, ...Array.from({ length: 5 }, (_, r) => header.map((_, c) => String((r * columns + c) % 97)))];
    add('wide-header', csv(rows), { outcome: 'converted', rows: 5 });
  }
  // Header names that are hard for Avro and Parquet: duplicates, empties, control chars, long, reserved.
  const oddNames = [
    ['a', 'a', 'a'], ['', '', 'x'], ['1st', '2nd', '-x'], ['name with space', 'tab\there', 'quote""d'], ['ü', '\u{1f600}', '\u202e'],
    ['x'.repeat(5000), 'y'], ['__proto__', 'constructor', 'toString'], ['null', 'true', 'type'], ['a.b', 'a-b', 'a/b'],
  ];
  for (let i = 0; i < n(30); i++) {
    const names = d.pick(oddNames).map((name) => (/[",\n\t]/.test(name) ? `"${name}"` : name));
    const rows = [names, ...Array.from({ length: d.int(1, 50) }, () => names.map(() => d.word()))];
    add('odd-header', csv(rows), { outcome: 'converted', rows: rows.length - 1 });
  }
  for (let i = 0; i < n(20); i++) {
    const table = validTable(d, d.int(1, 100), 3);
    table[d.int(1, table.length - 1)]![2] = `nul\u0000inside`;
    add('nul-bytes', csv(table), { outcome: 'converted', rows: table.length - 1 });
  }
  for (let i = 0; i < n(20); i++) {
    const table = validTable(d, d.int(1, 200), 3);
    const rows = table.length - 1;
    const text = table.map((row) => row.join(',')).join(d.pick(['\r', '\r\n']));
    add('line-endings', text, { outcome: 'converted', rows });
  }
  for (let i = 0; i < n(20); i++) {
    const header = ['id', 'text'];
    const rows = Array.from({ length: d.int(1, 50) }, (_, r) => [String(r), `"multi\nline, with ""quotes""\r\nand ${d.word()}"`]);
    add('quoted-newlines', csv([header, ...rows]), { outcome: 'converted', rows: rows.length });
  }
  for (let i = 0; i < n(20); i++) {
    const values = ['NaN', '-0', '1e309', '-1e309', '9007199254740993', '99999999999999999999999999', '0x1F', '1_000', '١٢٣', 'Infinity', '=cmd|"/c calc"!A1', '+1', '00123'];
    const rows = values.map((value, r) => [String(r), `"${value.replace(/"/g, '""')}"`, value.startsWith('=') ? 'x' : value]);
    add('edge-values', csv([['id', 'quoted', 'bare'], ...rows]), { outcome: 'converted', rows: rows.length });
  }

  // Size limits: stored bytes over the limit, and gzip bombs that are small stored but expand past it.
  for (let i = 0; i < n(2); i++) {
    const body = Buffer.alloc(limit + d.int(1, 1 << 20), 'a,b\n1,2\n');
    add('over-limit', body, { outcome: 'dead-lettered', codes: ['OBJECT_TOO_LARGE'] });
  }
  // The classic bomb: zeros, ~1000:1.
  add('gzip-bomb', gzipRepeated('\0', Math.max(limit * 8, 64 << 20)), { outcome: 'dead-lettered', codes: ['OBJECT_TOO_LARGE'] }, true);
  // A bomb of valid rows: without a check of the decompressed size, it converts.
  add('gzip-bomb', gzipRepeated('0\n', Math.round(limit * 1.25), 'n\n'), { outcome: 'dead-lettered', codes: ['OBJECT_TOO_LARGE'] }, true);
  add('gzip-bomb', gzipRepeated('1,2,3,4,5,6,7,8,9\n', Math.round(limit * 1.5), 'a,b,c,d,e,f,g,h,i\n'), { outcome: 'dead-lettered', codes: ['OBJECT_TOO_LARGE'] }, true);
  // gzip inside gzip: decompressed once, the text is gzip bytes.
  add('gzip-nested', gzipSync(gzipSync(csv(validTable(d, 20)))), { outcome: 'either', codes: DECODE_CODES }, true);

  // Valid small files under hostile keys: they must convert, outputs under the same hostile stems.
  const valid = (rows: number) => csv(validTable(d, rows));
  for (let round = 0; round < n(4); round++) {
    for (const { stem, shape } of hostileKeyStems(d, `k${round}`)) {
      const rows = d.int(1, 30);
      // The longest input keys leave no room for `parquet/…parquet`: S3 refuses such an output key,
      // so the only right ending is a dead letter that says so (no code exists for it yet).
      const expect: Expectation = shape === 'longest' ? { outcome: 'dead-lettered', codes: [] } : { outcome: 'converted', rows };
      objects.push({ key: `${stem}.csv`, body: Buffer.from(valid(rows)), category: `key-${shape}`, expect });
    }
  }
  // Shuffled, so the few heavy objects are spread through the run instead of arriving together.
  for (let i = objects.length - 1; i > 0; i--) {
    const j = d.int(0, i);
    [objects[i], objects[j]] = [objects[j]!, objects[i]!];
  }
  return objects;
}

export { Dice };
