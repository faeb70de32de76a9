/**
 * Exact schema inference: each column gets the narrowest type that holds every non-empty value of
 * every row (an empty cell is null; every column is nullable).
 */
import type { ColumnType } from '../types.js';
import { DATE, DOUBLE, INT, STRING, TIMESTAMP, classify, type Kind } from './scalars.js';

/** No value seen yet. */
export const NONE = 0;

/** MERGE[a * 7 + b]: int64 ⊂ double and date ⊂ timestamp; any other mix is a string. */
export const MERGE = (() => {
  const table = new Uint8Array(49);
  for (let a = 0; a < 7; a++) {
    for (let b = 0; b < 7; b++) {
      let merged: number = STRING;
      if (a === b || b === NONE) merged = a;
      else if (a === NONE) merged = b;
      else if ((a === INT && b === DOUBLE) || (a === DOUBLE && b === INT)) merged = DOUBLE;
      else if ((a === DATE && b === TIMESTAMP) || (a === TIMESTAMP && b === DATE)) merged = TIMESTAMP;
      table[a * 7 + b] = merged;
    }
  }
  return table;
})();

/** Indexed by Kind; a column that never had a value (NONE) is a string. */
export const TYPE_OF_KIND: readonly ColumnType[] = ['string', 'int64', 'double', 'boolean', 'date', 'timestamp', 'string'];

export class SchemaInference {
  /** Per column: the Kind so far, NONE, or STRING once nothing can narrow it (then skipped). */
  readonly #state: Uint8Array;
  readonly #pinned: readonly (ColumnType | undefined)[];

  /** @param pinned types the user fixed, by column position; those columns are not inferred. */
  constructor(columnCount: number, pinned: readonly (ColumnType | undefined)[] = []) {
    this.#state = new Uint8Array(columnCount);
    this.#pinned = pinned;
    for (let c = 0; c < columnCount; c++) if (pinned[c] !== undefined) this.#state[c] = STRING;
  }

  observe(rows: readonly (readonly string[])[]): void {
    const state = this.#state;
    const rowCount = rows.length;
    for (let c = 0; c < state.length; c++) {
      let kind = state[c]!;
      if (kind === STRING) continue;
      for (let r = 0; r < rowCount; r++) {
        const value = rows[r]![c]!;
        if (value.length === 0) continue;
        const seen: Kind = classify(value);
        if (seen === kind) continue;
        kind = MERGE[kind * 7 + seen]!;
        if (kind === STRING) break;
      }
      state[c] = kind;
    }
  }

  types(): ColumnType[] {
    return Array.from(this.#state, (kind, c) => this.#pinned[c] ?? TYPE_OF_KIND[kind]!);
  }

  /** Per column: true when no row had a value (its type says string, but any type would hold it). */
  emptyColumns(): boolean[] {
    return Array.from(this.#state, (kind, c) => kind === NONE && this.#pinned[c] === undefined);
  }
}

