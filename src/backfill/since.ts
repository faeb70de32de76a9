/**
 * `--modified-since`: an ISO 8601 date or date-time (no offset means UTC, as in the CSV rules), or
 * an ISO 8601 duration counted back from now (`P2D`, `PT6H`), which suits a schedule.
 */

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;
const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i;

/** The instant `text` names, or a reason it names none. */
export function parseModifiedSince(text: string, now = new Date()): Date | { problem: string } {
  const value = text.trim();
  const duration = DURATION.exec(value);
  if (duration && value.length > 1 && !/T$/i.test(value)) {
    const [weeks, days, hours, minutes, seconds] = duration.slice(1).map((part) => Number(part ?? 0));
    const ms = ((((weeks! * 7 + days!) * 24 + hours!) * 60 + minutes!) * 60 + seconds!) * 1000;
    return new Date(now.getTime() - ms);
  }
  const match = DATE_TIME.exec(value);
  if (match) {
    const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', offset = 'Z'] = match;
    const iso = `${year}-${month}-${day}T${hour}:${minute}:${second}${fraction}${offset.length === 5 ? `${offset.slice(0, 3)}:${offset.slice(3)}` : offset.toUpperCase()}`;
    const date = new Date(iso);
    // Date accepts 2024-02-30 as March 1st: a date that does not round-trip is not a date.
    const calendar = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
    const real = calendar.getUTCFullYear() === Number(year) && calendar.getUTCMonth() === Number(month) - 1 && calendar.getUTCDate() === Number(day);
    if (!Number.isNaN(date.getTime()) && real && Number(hour) < 24 && Number(minute) < 60 && Number(second) < 60) return date;
  }
  return { problem: 'expected an ISO 8601 date or date-time (2024-05-01, 2024-05-01T12:00:00Z) or a duration back from now (P2D, PT6H)' };
}
