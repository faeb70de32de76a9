/** Reads a user's pinned schema: a JSON object of column name to type, which overrides inference. */
import { PermanentError } from '../errors.js';
import { COLUMN_TYPES, type ColumnType } from '../types.js';

/**
 * Accepts `{ "amount": "double", ... }` or the same object under `"columns"`. Type names are
 * matched case-insensitively. Any fault is INVALID_SCHEMA_FILE naming `source` and the entry.
 */
export function parsePinnedSchema(text: string, source: string): Map<string, ColumnType> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalid(source, `is not valid JSON (${(error as Error).message})`, error);
  }
  if (!isPlainObject(parsed)) {
    throw invalid(source, 'must be a JSON object of column name to type, e.g. {"amount": "double"}');
  }
  // `{"columns": {...}}` is the wrapped form; `{"columns": "int64"}` pins a column named "columns".
  const entries = isPlainObject(parsed.columns) && Object.keys(parsed).length === 1 ? parsed.columns : parsed;

  const pinned = new Map<string, ColumnType>();
  for (const [name, value] of Object.entries(entries)) {
    if (name === '') {
      throw invalid(source, 'has an empty column name (an empty header cell is named column_<n>, its 1-based position)');
    }
    const type = typeof value === 'string' ? COLUMN_TYPES.find((known) => known === value.toLowerCase()) : undefined;
    if (type === undefined) {
      throw invalid(
        source,
        `gives column ${JSON.stringify(name)} the type ${JSON.stringify(value)}; allowed types: ${COLUMN_TYPES.join(', ')}`,
      );
    }
    pinned.set(name, type);
  }
  return pinned;
}

function invalid(source: string, problem: string, cause?: unknown): PermanentError {
  return new PermanentError('INVALID_SCHEMA_FILE', `schema file ${source} ${problem}`, { cause });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
