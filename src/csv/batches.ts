/**
 * Turns parsed rows into typed, columnar batches bounded by rows and by bytes. In the first pass
 * each column's type is inferred while its values go straight into typed arrays in the type seen
 * so far; a column with a type fixed in advance (pinned, or the written schema when a file is read
 * a second time) is converted and checked instead.
 */
import { PermanentError, type PermanentCode } from '../errors.js';
import type { ColumnType, TypedBatch, TypedColumn } from '../types.js';
import { ColumnBuffer } from './columns.js';
import { MERGE, NONE, TYPE_OF_KIND } from './infer.js';
import type { CsvChunk } from './read.js';
import { BOOL, DATE, DOUBLE, INT, STRING, TIMESTAMP, classify, lastTemporal, parseBoolean, parseDate, scanNumber, scannedNumber } from './scalars.js';

/** Where one built column comes from, and its type when it is fixed rather than inferred. */
export interface ColumnPlan {
  /** The index of the file column it reads, or -1: every value null. */
  source: number;
  type?: ColumnType;
}

/** A batch is sealed when it reaches either bound. */
export interface BatchLimits {
  rows: number;
  /** Bytes its typed arrays take (the text of strings included). */
  bytes: number;
}

/**
 * A batch in the types its columns had when it was sealed: an inferred column may still widen
 * later (see `BatchBuilder.writtenFrom`); undefined is a column with only nulls so far.
 */
export interface BuiltBatch {
  rowCount: number;
  columns: (TypedColumn | undefined)[];
}

const KIND_OF_TYPE: Record<ColumnType, number> = { int64: INT, double: DOUBLE, boolean: BOOL, date: DATE, timestamp: TIMESTAMP, string: STRING };

export class BatchBuilder {
  readonly #names: readonly string[];
  readonly #plan: readonly ColumnPlan[];
  readonly #limits: BatchLimits;
  readonly #violationCode: PermanentCode;
  readonly #buffers: ColumnBuffer[];
  /** Per inferred column: the kind merged over every value so far (a number from scalars.ts, or NONE). */
  readonly #kinds: Uint8Array;
  /** Per column: the types it was sealed in, so the caller can tell whether they widen to the final type. */
  readonly #sealedTypes: Set<ColumnType>[];
  #rows = 0;
  #textLost = false;

  /** @param names the file's column names (for error messages), by source index */
  constructor(names: readonly string[], plan: readonly ColumnPlan[], limits: BatchLimits, violationCode: PermanentCode = 'SCHEMA_VIOLATION') {
    if (!(limits.rows >= 1) || !(limits.bytes >= 1)) throw new RangeError('batch limits must be positive');
    this.#names = names;
    this.#plan = plan;
    this.#limits = limits;
    this.#violationCode = violationCode;
    this.#buffers = plan.map((column) => new ColumnBuffer(column.type));
    this.#kinds = new Uint8Array(plan.length);
    for (const [c, column] of plan.entries()) if (column.type) this.#kinds[c] = KIND_OF_TYPE[column.type];
    this.#sealedTypes = plan.map(() => new Set());
  }

  /** Plans the first pass: every file column, inferred unless its type is pinned. */
  static inferring(names: readonly string[], pinned: readonly (ColumnType | undefined)[], limits: BatchLimits): BatchBuilder {
    return new BatchBuilder(names, names.map((_, source) => ({ source, type: pinned[source] })), limits);
  }

  /**
   * True once an inferred column turned out to be text after values of another type were stored
   * as numbers, dates or booleans in an earlier chunk: their text is gone, so the batches are
   * dropped, inference goes on alone, and the caller reads the file again with the final types.
   */
  get textLost(): boolean {
    return this.#textLost;
  }

  /** Stops building batches (they are of no use to the caller any more); inference goes on. */
  stopBuilding(): void {
    this.#loseText();
  }

  /** Adds a chunk's rows; returns the batches it completed. */
  add(chunk: CsvChunk): BuiltBatch[] {
    const sealed: BuiltBatch[] = [];
    const total = chunk.rows.length;
    for (let start = 0; start < total; ) {
      const end = Math.min(total, start + this.#limits.rows - this.#rows);
      for (let c = 0; c < this.#plan.length; c++) this.#appendColumn(c, chunk, start, end);
      this.#rows += end - start;
      start = end;
      if (this.#textLost) {
        this.#rows = 0;
        continue;
      }
      if (this.#rows >= this.#limits.rows || this.#weight() >= this.#limits.bytes) sealed.push(this.#seal());
    }
    return sealed;
  }

  /** The last, partial batch, if any rows are left. */
  finish(): BuiltBatch | undefined {
    return this.#rows > 0 && !this.#textLost ? this.#seal() : undefined;
  }

  /** The type of every column: inferred over all rows so far, or as fixed. */
  types(): ColumnType[] {
    return this.#plan.map((column, c) => column.type ?? TYPE_OF_KIND[this.#kinds[c]!]!);
  }

  /** Per column: true when it is inferred and no row so far held a value in it (its type says string). */
  emptyColumns(): boolean[] {
    return this.#plan.map((column, c) => column.type === undefined && this.#kinds[c] === NONE);
  }

  /**
   * Whether the batches sealed so far can become `written` columns of `types` read from `sources`
   * without the text: each column was sealed in its final type, a narrower one that widens exactly
   * (int64 to double, date to timestamp), or holds only nulls.
   */
  canWrite(types: readonly ColumnType[], sources: readonly number[]): boolean {
    if (this.#textLost) return false;
    return types.every((type, c) => {
      const source = sources[c]!;
      if (source < 0) return true;
      for (const sealedType of this.#sealedTypes[source]!) if (!widensTo(sealedType, type)) return false;
      return true;
    });
  }

  #weight(): number {
    let weight = 0;
    for (const buffer of this.#buffers) weight += buffer.weight;
    return weight;
  }

  #seal(): BuiltBatch {
    const columns = this.#buffers.map((buffer, c) => {
      const column = buffer.seal();
      if (column) this.#sealedTypes[c]!.add(column.type);
      return column;
    });
    const batch = { rowCount: this.#rows, columns };
    this.#rows = 0;
    return batch;
  }

  #appendColumn(c: number, chunk: CsvChunk, start: number, end: number): void {
    const { source, type } = this.#plan[c]!;
    const buffer = this.#buffers[c]!;
    if (source < 0) return this.#textLost ? undefined : buffer.pushNulls(end - start);
    if (type !== undefined) return this.#textLost ? undefined : this.#appendFixed(c, type, chunk, start, end);
    if (this.#textLost) return this.#inferOnly(c, chunk.rows, start, end);

    const rows = chunk.rows;
    let kind = this.#kinds[c]!;
    if (kind === STRING) {
      for (let r = start; r < end; r++) {
        const text = rows[r]![source]!;
        if (text.length === 0) buffer.pushNull();
        else buffer.pushString(text);
      }
      return;
    }
    const typedBefore = buffer.length - buffer.nullCount > 0 || this.#sealedTypes[c]!.size > 0;
    const lengthBefore = buffer.length;
    for (let r = start; r < end; r++) {
      const text = rows[r]![source]!;
      if (text.length === 0) {
        buffer.pushNull();
        continue;
      }
      const seen = classify(text);
      if (seen !== kind) {
        const merged = MERGE[kind * 7 + seen]!;
        if (merged === STRING) {
          this.#kinds[c] = STRING;
          if (typedBefore) {
            this.#loseText();
            return;
          }
          // This chunk's text is still at hand: redo its rows as text.
          buffer.truncate(lengthBefore);
          buffer.widen('string');
          this.#appendColumn(c, chunk, start, end);
          return;
        }
        if (merged !== kind) {
          kind = merged;
          this.#kinds[c] = kind;
          buffer.widen(TYPE_OF_KIND[kind]!);
        }
      }
      switch (kind) {
        case INT:
          // Up to 15 digits a double is exact, and cheaper than a BigInt.
          if (text.length <= 15) buffer.pushSafeInteger(scannedNumber(text));
          else buffer.pushBigInt(BigInt(text));
          break;
        case DOUBLE:
          buffer.pushDouble(scannedNumber(text));
          break;
        case BOOL:
          buffer.pushBoolean((text.charCodeAt(0) | 32) === 116);
          break;
        case DATE:
          buffer.pushDate(lastTemporal.days);
          break;
        default:
          // TIMESTAMP, from a timestamp or a date (its midnight UTC).
          buffer.pushMicros(lastTemporal.days * 86_400 + lastTemporal.seconds, lastTemporal.micros);
      }
    }
  }

  #appendFixed(c: number, type: ColumnType, chunk: CsvChunk, start: number, end: number): void {
    const rows = chunk.rows;
    const source = this.#plan[c]!.source;
    const buffer = this.#buffers[c]!;
    for (let r = start; r < end; r++) {
      const text = rows[r]![source]!;
      if (text.length === 0) {
        buffer.pushNull();
        continue;
      }
      let fits = true;
      switch (type) {
        case 'string':
          buffer.pushString(text);
          break;
        case 'int64':
          if ((fits = scanNumber(text) === INT)) {
            if (text.length <= 15) buffer.pushSafeInteger(scannedNumber(text));
            else buffer.pushBigInt(BigInt(text));
          }
          break;
        case 'double': {
          const kind = scanNumber(text);
          if ((fits = kind === INT || kind === DOUBLE)) buffer.pushDouble(scannedNumber(text));
          break;
        }
        case 'boolean': {
          const value = parseBoolean(text);
          if ((fits = value !== undefined)) buffer.pushBoolean(value);
          break;
        }
        case 'date': {
          const days = parseDate(text);
          if ((fits = days !== undefined)) buffer.pushDate(days);
          break;
        }
        case 'timestamp': {
          const kind = classify(text);
          if ((fits = kind === TIMESTAMP || kind === DATE)) buffer.pushMicros(lastTemporal.days * 86_400 + lastTemporal.seconds, lastTemporal.micros);
          break;
        }
      }
      if (!fits) throw this.#violation(chunk.lines[r]!, this.#names[source] ?? `column_${source + 1}`, text, type);
    }
  }

  #inferOnly(c: number, rows: readonly (readonly string[])[], start: number, end: number): void {
    const source = this.#plan[c]!.source;
    let kind = this.#kinds[c]!;
    if (kind === STRING) return;
    for (let r = start; r < end; r++) {
      const text = rows[r]![source]!;
      if (text.length === 0) continue;
      const seen = classify(text);
      if (seen === kind) continue;
      kind = MERGE[kind * 7 + seen]!;
      if (kind === STRING) break;
    }
    this.#kinds[c] = kind;
  }

  #loseText(): void {
    this.#textLost = true;
    // Nothing built is of use any more; let the memory go.
    for (let c = 0; c < this.#buffers.length; c++) this.#buffers[c] = new ColumnBuffer();
  }

  #violation(line: number, column: string, text: string, type: ColumnType): PermanentError {
    const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
    const kind = this.#violationCode === 'SCHEMA_MISMATCH' ? `the registered type ${type}` : `a valid ${type}`;
    return new PermanentError(this.#violationCode, `line ${line}, column "${column}": ${JSON.stringify(shown)} is not ${kind}`);
  }
}

/** Whether every column of the batch can be written as `types` (see `writtenBatch`), column c from column c. */
export function fitsTypes(batch: BuiltBatch, types: readonly ColumnType[]): boolean {
  return batch.columns.every((column, c) => column === undefined || widensTo(column.type, types[c]!));
}

/** A column sealed as `from` holds exactly the values of `to` (same type, or an exact widening). */
export function widensTo(from: ColumnType, to: ColumnType): boolean {
  return from === to || (from === 'int64' && to === 'double') || (from === 'date' && to === 'timestamp');
}

/**
 * The batch in the written schema: each written column is its source column, widened when the
 * final type is wider than the one it was sealed in, or all nulls. Callers check `canWrite` first.
 */
export function writtenBatch(batch: BuiltBatch, types: readonly ColumnType[], sources: readonly number[]): TypedBatch {
  const n = batch.rowCount;
  return {
    rowCount: n,
    columns: types.map((type, c) => {
      const source = sources[c]!;
      const column = source < 0 ? undefined : batch.columns[source];
      if (column === undefined) return nullColumn(type, n);
      if (column.type === type) return column;
      if (column.type === 'int64' && type === 'double') {
        const values = new Float64Array(n);
        const words = new Int32Array(column.values.buffer, column.values.byteOffset, 2 * n);
        for (let r = 0; r < n; r++) {
          const value = words[2 * r + 1]! * 4294967296 + (words[2 * r]! >>> 0);
          values[r] = Number.isSafeInteger(value) ? value : Number(column.values[r]!);
        }
        return { type, values, nulls: column.nulls, nullCount: column.nullCount };
      }
      if (column.type === 'date' && type === 'timestamp') {
        const buffer = new ColumnBuffer('timestamp');
        for (let r = 0; r < n; r++) {
          if (column.nulls?.[r] === 1) buffer.pushNull();
          else buffer.pushMicros(column.values[r]! * 86_400, 0);
        }
        return buffer.seal()!;
      }
      throw new Error(`a ${column.type} column cannot be written as ${type}`);
    }),
  };
}

/** A column of `rows` nulls. */
export function nullColumn(type: ColumnType, rows: number): TypedColumn {
  const nulls = new Uint8Array(rows).fill(1);
  switch (type) {
    case 'int64':
    case 'timestamp':
      return { type, values: new BigInt64Array(rows), nulls, nullCount: rows };
    case 'double':
      return { type, values: new Float64Array(rows), nulls, nullCount: rows };
    case 'boolean':
      return { type, values: new Uint8Array(rows), nulls, nullCount: rows };
    case 'date':
      return { type, values: new Int32Array(rows), nulls, nullCount: rows };
    case 'string':
      return { type, bytes: new Uint8Array(0), offsets: new Int32Array(rows + 1), nulls, nullCount: rows };
  }
}
