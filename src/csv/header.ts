/** Turns the header row into unique, non-empty column names. */

/**
 * An empty cell becomes `column_<n>` (its 1-based position); a repeated name gets `_2`, `_3`…
 * Names written in the header win: a generated name never takes one of them, so
 * `a,a,a_2` gives `a, a_3, a_2`. Names are not trimmed.
 */
export function resolveColumnNames(raw: readonly string[]): string[] {
  const written = new Set(raw.filter((name) => name !== ''));
  const taken = new Set<string>();
  return raw.map((name, i) => {
    const base = name === '' ? `column_${i + 1}` : name;
    // A generated `column_<n>` yields to the same name written elsewhere in the header.
    let resolved = base;
    if (taken.has(base) || (name === '' && written.has(base))) {
      let k = 2;
      while (taken.has(`${base}_${k}`) || written.has(`${base}_${k}`)) k++;
      resolved = `${base}_${k}`;
    }
    taken.add(resolved);
    return resolved;
  });
}
