/** Object keys as they travel in notifications, and which of them are CSV inputs. */
import { PermanentError } from '../errors.js';

/**
 * Decodes a key from an S3 event record (plain or SNS-wrapped). S3 form-encodes it: `+` is a
 * space and everything else is percent-encoded (AWS leaves `/` literal, moto encodes it as `%2F`,
 * LocalStack writes spaces as `%20`); this one rule reads all of them.
 */
export function decodeS3Key(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch (cause) {
    throw new PermanentError('MALFORMED_MESSAGE', `object key ${JSON.stringify(encoded)} has a malformed percent-encoding`, {
      cause,
    });
  }
}

const CSV_SUFFIX = /\.csv(\.gz)?$/i;

/** True for `x.csv` and `x.csv.gz` (any case); not for folder markers or a bare `.csv` file name. */
export function isCsvKey(key: string): boolean {
  const match = CSV_SUFFIX.exec(key);
  if (!match) return false;
  const stem = key.slice(0, match.index);
  // A key like `dir/.csv` has no name to give its outputs.
  return stem !== '' && !stem.endsWith('/');
}

/** The key without its `.csv` or `.csv.gz` suffix (any case); other keys are returned unchanged. */
export function stemOf(key: string): string {
  return key.replace(CSV_SUFFIX, '');
}
