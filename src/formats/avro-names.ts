/** Turns CSV header names into valid, unique Avro field names. */

const VALID_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** True when `name` is a valid Avro name: `[A-Za-z_][A-Za-z0-9_]*`. */
export function isValidAvroName(name: string): boolean {
  return VALID_NAME.test(name);
}

/**
 * Makes one name valid: accents are dropped (`é` → `e`), each run of other invalid
 * characters becomes one `_`, and a leading digit gets a `_` prefix.
 */
export function sanitizeAvroName(name: string): string {
  const ascii = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
  const replaced = ascii.replace(/[^A-Za-z0-9_]+/g, '_');
  if (replaced === '') return '_';
  return /^[0-9]/.test(replaced) ? `_${replaced}` : replaced;
}

/**
 * Avro field names for a list of column names, in the same order.
 * Names that are already valid keep their spelling, so a valid header is never renamed;
 * the others are sanitized and, on a collision, get the first free suffix `_2`, `_3`, …
 */
export function avroFieldNames(columnNames: readonly string[]): string[] {
  const taken = new Set<string>(Object.getOwnPropertyNames(Object.prototype));
  const result: (string | undefined)[] = columnNames.map((name) => {
    if (!isValidAvroName(name) || taken.has(name)) return undefined;
    taken.add(name);
    return name;
  });
  return result.map((kept, i) => {
    if (kept !== undefined) return kept;
    const base = sanitizeAvroName(columnNames[i]!);
    let candidate = base;
    for (let n = 2; taken.has(candidate); n++) candidate = `${base}_${n}`;
    taken.add(candidate);
    return candidate;
  });
}
