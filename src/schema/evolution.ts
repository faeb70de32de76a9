/**
 * The evolution rules of a dataset schema, as pure functions: given the registered columns, the
 * columns pass 1 found in a file and SCHEMA_EVOLUTION, decide what the file is written with and
 * what the dataset registers next, or refuse the file.
 */
import type { Column, ColumnType } from '../types.js';

export const EVOLUTION_MODES = ['add-columns', 'widen', 'strict'] as const;
export type EvolutionMode = (typeof EVOLUTION_MODES)[number];

/** One column of a file, as pass 1 saw it. */
export interface FileColumn {
  name: string;
  /** Inferred, or pinned by SCHEMA_MAP. */
  type: ColumnType;
  /** No row had a value: it fits any type. */
  empty: boolean;
  /** SCHEMA_MAP fixed the type: it wins over the registered one. */
  pinned: boolean;
}

/** One change to a registered schema, as the document's history keeps it. */
export type SchemaChange =
  | { kind: 'registered'; columns: Column[] }
  | { kind: 'column-added'; column: string; type: ColumnType }
  | { kind: 'type-widened'; column: string; from: ColumnType; to: ColumnType }
  | { kind: 'type-pinned'; column: string; from: ColumnType; to: ColumnType };

/** A registered column whose values in the file fit neither its type nor any the mode allows. */
export interface Misfit {
  column: string;
  registered: ColumnType;
  /** What the file's values need. */
  found: ColumnType;
}

export type Evolution =
  /** Write `written`; the dataset registers `registered` (unchanged when `changes` is empty). */
  | { outcome: 'write'; written: Column[]; sourceColumns: number[]; registered: Column[]; changes: SchemaChange[] }
  /**
   * A value will not fit: write with the registered types, so the conversion stops at the first
   * such value and names its line; nothing is registered for a file that fails.
   */
  | { outcome: 'misfit'; written: Column[]; sourceColumns: number[]; misfits: Misfit[] }
  /** The file differs in a way the mode forbids (strict: a new or a missing column). */
  | { outcome: 'refuse'; column: string; reason: string };

/**
 * Whether every value of type `found` is also a value of `registered`: the type lattice of
 * inference (int64 ⊂ double, date ⊂ timestamp, everything ⊂ string). An all-empty column fits any
 * type, but that is the caller's `empty`, not a type.
 */
export function fits(found: ColumnType, registered: ColumnType): boolean {
  return (
    found === registered ||
    registered === 'string' ||
    (found === 'int64' && registered === 'double') ||
    (found === 'date' && registered === 'timestamp')
  );
}

/** The narrowest type holding the values of both: what `widen` registers when `found` does not fit. */
export function widen(registered: ColumnType, found: ColumnType): ColumnType {
  if (fits(found, registered)) return registered;
  if (fits(registered, found)) return found;
  return 'string';
}

/**
 * Decides one file against its dataset's registered columns (`undefined`: the dataset has none
 * yet, and the file registers its own). Columns are matched by exact name; the written order is
 * the registered order, then the file's new columns in the file's order.
 */
export function evolve(registered: readonly Column[] | undefined, file: readonly FileColumn[], mode: EvolutionMode): Evolution {
  if (registered === undefined) {
    const columns = file.map(({ name, type }) => ({ name, type }));
    return { outcome: 'write', written: columns, sourceColumns: file.map((_, i) => i), registered: columns, changes: [{ kind: 'registered', columns }] };
  }

  const position = new Map(file.map((column, i) => [column.name, i]));
  const known = new Set(registered.map((column) => column.name));
  if (mode === 'strict') {
    const added = file.find((column) => !known.has(column.name));
    if (added) return { outcome: 'refuse', column: added.name, reason: `column "${added.name}" is not registered (a new column)` };
    const missing = registered.find((column) => !position.has(column.name));
    if (missing) return { outcome: 'refuse', column: missing.name, reason: `the file has no column "${missing.name}" (registered as ${missing.type})` };
  }

  const written: Column[] = [];
  const sourceColumns: number[] = [];
  const next: Column[] = [];
  const changes: SchemaChange[] = [];
  const misfits: Misfit[] = [];
  for (const column of registered) {
    const at = position.get(column.name);
    const seen = at === undefined ? undefined : file[at]!;
    let type = column.type;
    if (seen?.pinned) {
      if (seen.type !== column.type) changes.push({ kind: 'type-pinned', column: column.name, from: column.type, to: seen.type });
      type = seen.type;
    } else if (seen && !seen.empty && !fits(seen.type, column.type)) {
      if (mode === 'widen') {
        type = widen(column.type, seen.type);
        changes.push({ kind: 'type-widened', column: column.name, from: column.type, to: type });
      } else {
        misfits.push({ column: column.name, registered: column.type, found: seen.type });
      }
    }
    written.push({ name: column.name, type });
    sourceColumns.push(at ?? -1);
    next.push({ name: column.name, type });
  }
  for (const [i, column] of file.entries()) {
    if (known.has(column.name)) continue;
    written.push({ name: column.name, type: column.type });
    sourceColumns.push(i);
    next.push({ name: column.name, type: column.type });
    changes.push({ kind: 'column-added', column: column.name, type: column.type });
  }

  // A misfit column is written with its registered type: its first value that does not fit stops the file.
  if (misfits.length > 0) return { outcome: 'misfit', written, sourceColumns, misfits };
  return { outcome: 'write', written, sourceColumns, registered: next, changes };
}
