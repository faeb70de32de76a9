/** Guesses a file's delimiter from its header line. */

/** The delimiters we detect, in the order that breaks ties (comma first). */
export const DETECTABLE_DELIMITERS = [',', ';', '\t', '|'] as const;

/**
 * The candidate occurring most often outside quoted fields; ties and a line with none of them
 * (a one-column file) give a comma. A quote opens a field only at the start of the line or right
 * after a candidate, as in RFC 4180; elsewhere it is an ordinary character.
 */
export function detectDelimiter(headerLine: string): string {
  const counts = [0, 0, 0, 0];
  let inQuotes = false;
  let previous = -1;
  for (let i = 0; i < headerLine.length; i++) {
    const c = headerLine.charCodeAt(i);
    if (inQuotes) {
      if (c === 34) {
        if (headerLine.charCodeAt(i + 1) === 34) i++;
        else inQuotes = false;
      }
    } else if (c === 34 && (previous === -1 || candidateIndex(previous) >= 0)) {
      inQuotes = true;
    } else {
      const k = candidateIndex(c);
      if (k >= 0) counts[k]!++;
    }
    previous = c;
  }
  let best = 0;
  for (let k = 1; k < counts.length; k++) if (counts[k]! > counts[best]!) best = k;
  return DETECTABLE_DELIMITERS[best]!;
}

function candidateIndex(c: number): number {
  switch (c) {
    case 44:
      return 0;
    case 59:
      return 1;
    case 9:
      return 2;
    case 124:
      return 3;
    default:
      return -1;
  }
}

/**
 * Index of the first \n or \r at or after `from` that is outside quotes (same quote rule as
 * detectDelimiter), or -1 when the text ends first.
 */
export function endOfRecord(text: string, from: number): number {
  let inQuotes = false;
  let previous = -1;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inQuotes) {
      if (c === 34) {
        if (text.charCodeAt(i + 1) === 34) i++;
        else inQuotes = false;
      }
    } else if (c === 10 || c === 13) {
      return i;
    } else if (c === 34 && (previous === -1 || candidateIndex(previous) >= 0)) {
      inQuotes = true;
    }
    previous = c;
  }
  return -1;
}
