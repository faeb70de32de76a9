/**
 * Recognises and converts the text forms of the column types; inference and conversion both call
 * these scanners, so a value is accepted by a type exactly when inference would allow that type.
 */

/** What one non-empty cell looks like, narrowest first (infer.ts merges these through a table). */
export const INT = 1;
export const DOUBLE = 2;
export const BOOL = 3;
export const DATE = 4;
export const TIMESTAMP = 5;
export const STRING = 6;
export type Kind = typeof INT | typeof DOUBLE | typeof BOOL | typeof DATE | typeof TIMESTAMP | typeof STRING;

/** Classifies one non-empty cell. Values are never trimmed: " 5" is a string. */
export function classify(s: string): Kind {
  const c = s.charCodeAt(0);
  if (isDigit(c)) {
    // Only a date or a timestamp has a '-' in position 4 after four digits.
    if (s.length >= 10 && s.charCodeAt(4) === 45) return scanTemporal(s);
    return scanNumber(s);
  }
  if (c === 45 || c === 43 || c === 46) return scanNumber(s);
  if (c === 116 || c === 84 || c === 102 || c === 70) return parseBoolean(s) === undefined ? STRING : BOOL;
  return STRING;
}

// ---- numbers -------------------------------------------------------------------------------------

const INT64_MAX_DIGITS = '9223372036854775807';
const INT64_MIN_DIGITS = '9223372036854775808';

/**
 * The value of the number scanNumber last classified as INT or DOUBLE, when it was computed while
 * scanning; NaN when not (more than 15 digits, or an exponent). Written here, as `temporal` is,
 * so the hot path allocates nothing.
 */
const scanned = { value: NaN };

/** Exact powers of ten: 10^22 is the largest a double holds exactly. */
const POWERS_OF_TEN = Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * INT: optional sign, digits, no leading zero, within signed 64 bits.
 * DOUBLE: decimal point and/or exponent (`2.5`, `.5`, `5.`, `1e5`), finite.
 * STRING otherwise. Leading zeros (`007`) are codes, not numbers. An integer outside 64 bits is a
 * STRING, not a DOUBLE: a double could not hold it exactly. `NaN` and `Infinity` are strings.
 *
 * With at most 15 digits and no exponent it also computes the value, exactly as Number(s) would
 * (see `scannedNumber`): the digits as an integer are below 2^53, so exact, and dividing by an
 * exact power of ten (10^k, k <= 22) rounds once, correctly (Clinger's fast path).
 */
export function scanNumber(s: string): Kind {
  scanned.value = NaN;
  // Every read stays below s.length: charCodeAt past the end is NaN and makes V8 deoptimise.
  const n = s.length;
  let i = 0;
  let c = s.charCodeAt(0);
  const negative = c === 45;
  if (c === 45 || c === 43) i++;
  const intStart = i;
  let digits = 0;
  while (i < n && isDigit((c = s.charCodeAt(i)))) {
    digits = digits * 10 + (c - 48);
    i++;
  }
  const intDigits = i - intStart;
  if (intDigits > 1 && s.charCodeAt(intStart) === 48) return STRING;
  if (i === n) {
    if (intDigits === 0) return STRING;
    if (intDigits <= 15) scanned.value = negative ? -digits : digits;
    if (intDigits < 19) return INT;
    if (intDigits > 19) return STRING;
    const text = intStart === 0 ? s : s.slice(intStart);
    return text <= (negative ? INT64_MIN_DIGITS : INT64_MAX_DIGITS) ? INT : STRING;
  }
  let fracDigits = 0;
  if (c === 46) {
    const fracStart = ++i;
    while (i < n && isDigit((c = s.charCodeAt(i)))) {
      digits = digits * 10 + (c - 48);
      i++;
    }
    fracDigits = i - fracStart;
    if (i === n) {
      if (intDigits + fracDigits === 0) return STRING;
      if (intDigits + fracDigits <= 15) {
        const value = fracDigits === 0 ? digits : digits / POWERS_OF_TEN[fracDigits]!;
        scanned.value = negative ? -value : value;
        return DOUBLE;
      }
      // Only a huge integer part can overflow to Infinity without an exponent.
      return intDigits > 300 && !Number.isFinite(Number(s)) ? STRING : DOUBLE;
    }
  }
  if (intDigits + fracDigits === 0) return STRING;
  if (c !== 101 && c !== 69) return STRING;
  if (++i < n && ((c = s.charCodeAt(i)) === 45 || c === 43)) i++;
  const expStart = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  if (i === expStart || i !== n) return STRING;
  // An exponent can overflow to Infinity, which is not the value written.
  return Number.isFinite(Number(s)) ? DOUBLE : STRING;
}

/**
 * Number(s) of a value scanNumber (or classify) has just found to be INT or DOUBLE: the value
 * computed while scanning when there is one, which saves parsing the text again.
 */
export function scannedNumber(s: string): number {
  const value = scanned.value;
  return value === value ? value : Number(s);
}

// ---- booleans ------------------------------------------------------------------------------------

/** `true` or `false` in any letter case; nothing else (not `yes`, not `1`). */
export function parseBoolean(s: string): boolean | undefined {
  // `| 32` lower-cases an ASCII letter.
  if (s.length === 4) {
    return (s.charCodeAt(0) | 32) === 116 &&
      (s.charCodeAt(1) | 32) === 114 &&
      (s.charCodeAt(2) | 32) === 117 &&
      (s.charCodeAt(3) | 32) === 101
      ? true
      : undefined;
  }
  if (s.length === 5) {
    return (s.charCodeAt(0) | 32) === 102 &&
      (s.charCodeAt(1) | 32) === 97 &&
      (s.charCodeAt(2) | 32) === 108 &&
      (s.charCodeAt(3) | 32) === 115 &&
      (s.charCodeAt(4) | 32) === 101
      ? false
      : undefined;
  }
  return undefined;
}

// ---- dates and timestamps ------------------------------------------------------------------------

/**
 * What scanTemporal found, written here rather than returned so the hot path allocates nothing:
 * days since 1970-01-01, seconds since midnight UTC (offset applied, may leave 0..86399), and
 * microseconds of the fraction.
 */
const temporal = { days: 0, seconds: 0, micros: 0 };

/** What the last `classify` that returned DATE or TIMESTAMP found; read it before classifying again. */
export const lastTemporal: Readonly<typeof temporal> = temporal;

/**
 * DATE: `YYYY-MM-DD`, a real calendar date (proleptic Gregorian, years 0000-9999).
 * TIMESTAMP: a date, `T` or a space, `HH:MM` or `HH:MM:SS` with an optional `.fraction`, then
 * optionally `Z` or an offset `±hh:mm` / `±hhmm`; no offset means UTC. A fraction with non-zero
 * digits past the sixth cannot be stored in microseconds, so such a value is a STRING.
 * STRING otherwise. Fills `temporal` when it returns DATE or TIMESTAMP.
 */
function scanTemporal(s: string): Kind {
  const n = s.length;
  // Callers checked n >= 10, so the date part can be read directly.
  const year = digits4(s, 0);
  const month = digits2(s, 5);
  const day = digits2(s, 8);
  if (year < 0 || month < 1 || month > 12 || day < 1 || s.charCodeAt(7) !== 45) return STRING;
  if (day > daysInMonth(year, month)) return STRING;
  temporal.days = daysFromCivil(year, month, day);
  temporal.seconds = 0;
  temporal.micros = 0;
  if (n === 10) return DATE;

  // The shortest timestamp is `YYYY-MM-DDTHH:MM`.
  const sep = s.charCodeAt(10);
  if (n < 16 || (sep !== 84 && sep !== 32 && sep !== 116)) return STRING;
  const hour = digits2(s, 11);
  const minute = digits2(s, 14);
  if (hour < 0 || hour > 23 || s.charCodeAt(13) !== 58 || minute < 0 || minute > 59) return STRING;
  let second = 0;
  let i = 16;
  if (i < n && s.charCodeAt(i) === 58) {
    if (n < 19) return STRING;
    second = digits2(s, 17);
    if (second < 0 || second > 59) return STRING;
    i = 19;
    if (i < n && s.charCodeAt(i) === 46) {
      const start = ++i;
      let micros = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (!isDigit(c)) break;
        if (i - start < 6) micros = micros * 10 + (c - 48);
        else if (c !== 48) return STRING;
      }
      if (i === start) return STRING;
      for (let place = i - start; place < 6; place++) micros *= 10;
      temporal.micros = micros;
    }
  }
  let offset = 0;
  if (i < n) {
    const c = s.charCodeAt(i);
    if (c === 90 || c === 122) {
      i++;
    } else if (c === 43 || c === 45) {
      // ±hh:mm or ±hhmm, nothing after it.
      const colon = n - i === 6;
      if (!colon && n - i !== 5) return STRING;
      const oh = digits2(s, i + 1);
      const om = digits2(s, colon ? i + 4 : i + 3);
      if (oh < 0 || oh > 23 || om < 0 || om > 59 || (colon && s.charCodeAt(i + 3) !== 58)) return STRING;
      offset = (c === 45 ? -1 : 1) * (oh * 3600 + om * 60);
      i = n;
    } else {
      return STRING;
    }
  }
  if (i !== n) return STRING;
  temporal.seconds = hour * 3600 + minute * 60 + second - offset;
  return TIMESTAMP;
}

/** Days since 1970-01-01 of a `YYYY-MM-DD` value, or undefined unless classify(s) is DATE. */
export function parseDate(s: string): number | undefined {
  return s.length === 10 && isDigit(s.charCodeAt(0)) && s.charCodeAt(4) === 45 && scanTemporal(s) === DATE
    ? temporal.days
    : undefined;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** The two-digit number at `at` (which callers keep inside the string), or -1. */
function digits2(s: string, at: number): number {
  const a = s.charCodeAt(at) - 48;
  const b = s.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

function digits4(s: string, at: number): number {
  const hi = digits2(s, at);
  const lo = digits2(s, at + 2);
  return hi < 0 || lo < 0 ? -1 : hi * 100 + lo;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
