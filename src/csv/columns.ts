/**
 * Growable typed columns: the values of one column of the batch being built, in the typed array its
 * type implies, so a batch costs its bytes and not one heap object per cell.
 */
import type { ColumnType, TypedColumn } from '../types.js';

const TWO_32 = 4294967296;
const INITIAL_ROWS = 256;
const INITIAL_TEXT_BYTES = 4096;

/** How many bytes a row takes in each kind of column, besides a string's text. */
const ROW_BYTES: Record<ColumnType, number> = { int64: 8, double: 8, boolean: 1, date: 4, timestamp: 8, string: 4 };

/**
 * One column under construction. Its type may widen while rows are added (int64 to double, date to
 * timestamp, or from "only nulls so far" to anything); `seal` copies out exactly the rows added.
 */
export class ColumnBuffer {
  /** Undefined while every row so far is null and no type was chosen. */
  type: ColumnType | undefined;
  length = 0;
  nullCount = 0;
  #capacity = 0;
  #nulls = new Uint8Array(0);
  /** int64 and timestamp: the 64-bit values, and the same bytes as 32-bit words (low word first). */
  #big = new BigInt64Array(0);
  #words = new Int32Array(0);
  #f64 = new Float64Array(0);
  #u8 = new Uint8Array(0);
  #i32 = new Int32Array(0);
  /** string: UTF-8 text and the offset where each row's text ends (offsets[0] is 0). */
  #bytes = new Uint8Array(0);
  #text: Buffer = Buffer.alloc(0);
  #offsets = new Int32Array(1);
  #textLength = 0;

  constructor(type?: ColumnType) {
    this.type = type;
  }

  /** Bytes the rows added so far take. */
  get weight(): number {
    return this.length * (1 + (this.type ? ROW_BYTES[this.type] : 0)) + this.#textLength;
  }

  pushNull(): void {
    const row = this.#next();
    this.#nulls[row] = 1;
    this.nullCount++;
    // A slot may hold a value of the previous batch: a null reads 0.
    if (this.type === 'string') this.#offsets[row + 1] = this.#textLength;
    else this.#clearSlot(row);
  }

  pushNulls(count: number): void {
    for (let i = 0; i < count; i++) this.pushNull();
  }

  /** int64 or timestamp: a safe integer. */
  pushSafeInteger(value: number): void {
    this.#setSafeInteger(this.#next(), value);
  }

  /** timestamp: whole seconds since the epoch and microseconds past them. */
  pushMicros(seconds: number, micros: number): void {
    this.#setMicros(this.#next(), seconds, micros);
  }

  /** int64 or timestamp: any 64-bit value. */
  pushBigInt(value: bigint): void {
    const row = this.#next();
    this.#big[row] = value;
  }

  // The row is reserved first: reserving may replace the arrays.
  pushDouble(value: number): void {
    const row = this.#next();
    this.#f64[row] = value;
  }

  pushBoolean(value: boolean): void {
    const row = this.#next();
    this.#u8[row] = value ? 1 : 0;
  }

  pushDate(days: number): void {
    const row = this.#next();
    this.#i32[row] = days;
  }

  pushString(value: string): void {
    const row = this.#next();
    const n = value.length;
    if (this.#textLength + 3 * n > this.#bytes.length) this.#growText(this.#textLength + 3 * n);
    const bytes = this.#bytes;
    let at = this.#textLength;
    // Most cells are ASCII, which a plain loop copies faster than an encoder call.
    let i = 0;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) break;
      bytes[at++] = c;
    }
    if (i < n) at = this.#textLength + this.#text.write(value, this.#textLength);
    this.#textLength = at;
    this.#offsets[row + 1] = at;
  }

  /** Changes the type, converting the rows already added: only widenings inference makes. */
  widen(type: ColumnType): void {
    const from = this.type;
    if (from === type) return;
    const hasValues = from !== undefined && this.length > this.nullCount;
    if (hasValues && !((from === 'int64' && type === 'double') || (from === 'date' && type === 'timestamp'))) {
      throw new Error(`cannot widen a ${from} column holding values to ${type}`);
    }
    const old = { words: this.#words, big: this.#big, i32: this.#i32 };
    this.type = type;
    this.#allocate(this.#capacity);
    if (!hasValues) return; // rows so far are all null: their slots read 0, a string's offsets 0
    for (let row = 0; row < this.length; row++) {
      if (this.#nulls[row] === 1) continue;
      if (from === 'int64') {
        const value = old.words[2 * row + 1]! * TWO_32 + (old.words[2 * row]! >>> 0);
        this.#f64[row] = Number.isSafeInteger(value) ? value : Number(old.big[row]!);
      } else {
        this.#setMicros(row, old.i32[row]! * 86_400, 0);
      }
    }
  }

  /** Drops the rows after the first `length`. */
  truncate(length: number): void {
    for (let row = length; row < this.length; row++) {
      if (this.#nulls[row] === 1) this.nullCount--;
      this.#nulls[row] = 0;
      this.#clearSlot(row);
    }
    this.length = Math.min(this.length, length);
    if (this.type === 'string') this.#textLength = this.#offsets[this.length]!;
  }

  /**
   * The rows added so far as a column of exactly their size (copied), or undefined when they are
   * all null and no type was chosen; then empties the buffer, keeping its type and its memory.
   */
  seal(): TypedColumn | undefined {
    const n = this.length;
    const nulls = this.nullCount > 0 ? this.#nulls.slice(0, n) : undefined;
    const nullCount = this.nullCount;
    let column: TypedColumn | undefined;
    switch (this.type) {
      case undefined:
        column = undefined;
        break;
      case 'int64':
      case 'timestamp':
        column = { type: this.type, values: this.#big.slice(0, n), nulls, nullCount };
        break;
      case 'double':
        column = { type: 'double', values: this.#f64.slice(0, n), nulls, nullCount };
        break;
      case 'boolean':
        column = { type: 'boolean', values: this.#u8.slice(0, n), nulls, nullCount };
        break;
      case 'date':
        column = { type: 'date', values: this.#i32.slice(0, n), nulls, nullCount };
        break;
      case 'string':
        column = { type: 'string', bytes: this.#bytes.slice(0, this.#textLength), offsets: this.#offsets.slice(0, n + 1), nulls, nullCount };
        break;
    }
    this.#clear();
    return column;
  }

  #clear(): void {
    if (this.nullCount > 0) this.#nulls.fill(0, 0, this.length);
    this.length = 0;
    this.nullCount = 0;
    this.#textLength = 0;
  }

  #clearSlot(row: number): void {
    switch (this.type) {
      case 'int64':
      case 'timestamp':
        this.#big[row] = 0n;
        break;
      case 'double':
        this.#f64[row] = 0;
        break;
      case 'boolean':
        this.#u8[row] = 0;
        break;
      case 'date':
        this.#i32[row] = 0;
        break;
      default:
        break;
    }
  }

  #setSafeInteger(row: number, value: number): void {
    const high = Math.floor(value / TWO_32);
    // Int32Array stores wrap to the same 32 bits, so the low word may be above 2^31.
    this.#words[2 * row] = value - high * TWO_32;
    this.#words[2 * row + 1] = high;
  }

  #setMicros(row: number, seconds: number, micros: number): void {
    const value = seconds * 1e6 + micros;
    // Beyond 2^53 microseconds (about 285 years from 1970) a double is no longer exact.
    if (Number.isSafeInteger(value)) this.#setSafeInteger(row, value);
    else this.#big[row] = BigInt(seconds) * 1_000_000n + BigInt(micros);
  }

  /** Reserves the next row and returns its index; a null row's slot must already read 0. */
  #next(): number {
    if (this.length === this.#capacity) this.#grow();
    return this.length++;
  }

  #grow(): void {
    const capacity = Math.max(INITIAL_ROWS, this.#capacity * 2);
    const nulls = new Uint8Array(capacity);
    nulls.set(this.#nulls);
    this.#nulls = nulls;
    const old = { big: this.#big, f64: this.#f64, u8: this.#u8, i32: this.#i32, offsets: this.#offsets };
    this.#allocate(capacity);
    switch (this.type) {
      case 'int64':
      case 'timestamp':
        this.#big.set(old.big);
        break;
      case 'double':
        this.#f64.set(old.f64);
        break;
      case 'boolean':
        this.#u8.set(old.u8);
        break;
      case 'date':
        this.#i32.set(old.i32);
        break;
      case 'string':
        this.#offsets.set(old.offsets);
        break;
      default:
        break;
    }
    this.#capacity = capacity;
  }

  /** Fresh value arrays of `capacity` rows for the current type (the others are released). */
  #allocate(capacity: number): void {
    this.#big = new BigInt64Array(0);
    this.#words = new Int32Array(0);
    this.#f64 = new Float64Array(0);
    this.#u8 = new Uint8Array(0);
    this.#i32 = new Int32Array(0);
    switch (this.type) {
      case 'int64':
      case 'timestamp':
        this.#big = new BigInt64Array(capacity);
        this.#words = new Int32Array(this.#big.buffer);
        break;
      case 'double':
        this.#f64 = new Float64Array(capacity);
        break;
      case 'boolean':
        this.#u8 = new Uint8Array(capacity);
        break;
      case 'date':
        this.#i32 = new Int32Array(capacity);
        break;
      case 'string':
        this.#offsets = new Int32Array(capacity + 1);
        if (this.#bytes.length === 0) this.#growText(INITIAL_TEXT_BYTES);
        break;
      default:
        break;
    }
  }

  #growText(atLeast: number): void {
    let size = Math.max(INITIAL_TEXT_BYTES, this.#bytes.length * 2);
    while (size < atLeast) size *= 2;
    const bytes = new Uint8Array(size);
    bytes.set(this.#bytes.subarray(0, this.#textLength));
    this.#bytes = bytes;
    this.#text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}
