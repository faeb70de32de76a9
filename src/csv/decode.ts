/**
 * Turns the input bytes into text: gunzips gzip input (known by its magic bytes, not its name),
 * drops a UTF-8 BOM, and decodes strictly.
 */
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { isUtf8 } from 'node:buffer';
import { PermanentError } from '../errors.js';

export type TextEncodingName = 'utf-8' | 'latin1';

/**
 * Raised after the text before the bad bytes, which it carries, so the reader can parse that text
 * and name the line the bad bytes are on.
 */
export class InvalidBytesError extends Error {
  constructor(readonly textBefore: string) {
    super('invalid UTF-8 bytes');
  }
}

/** Yields the decoded text in pieces as the bytes arrive; pulls the source only when pulled. */
export async function* decodeText(bytes: AsyncIterable<Buffer>, encoding: TextEncodingName, maxBytes?: number): AsyncGenerator<string> {
  const source = bytes[Symbol.asyncIterator]();
  try {
    const head = await readAtLeast(source, 2);
    const plain = isGzip(head) ? gunzip(head, source, maxBytes) : rest(head, source);
    yield* decodeWith(plain, encoding);
  } finally {
    await source.return?.();
  }
}

function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

async function* decodeWith(bytes: AsyncIterator<Buffer>, encoding: TextEncodingName): AsyncGenerator<string> {
  let head = await readAtLeast(bytes, 3);
  if (head.length >= 3 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) head = head.subarray(3);
  if (encoding === 'latin1') {
    // As browsers do, latin1 means windows-1252: the same except 0x80-0x9F, which real files use
    // for € “ ” – and the like rather than for C1 control codes. One byte per character: no state.
    const latin1 = new TextDecoder('windows-1252');
    if (head.length > 0) yield latin1.decode(head);
    for (let next = await bytes.next(); !next.done; next = await bytes.next()) yield latin1.decode(next.value);
    return;
  }
  // The 0-3 bytes of a character split across buffers, held until the rest arrives.
  let carry: Buffer | undefined;
  for (let data: Buffer | undefined = head; data !== undefined; ) {
    if (carry) data = Buffer.concat([carry, data]);
    const end = completeLength(data);
    const whole = data.subarray(0, end);
    if (!isUtf8(whole)) {
      throw new InvalidBytesError(data.toString('utf8', 0, firstInvalidUtf8(whole)));
    }
    carry = end < data.length ? Buffer.from(data.subarray(end)) : undefined;
    if (end > 0) yield data.toString('utf8', 0, end);
    const next = await bytes.next();
    data = next.done ? undefined : next.value;
  }
  // A character cut off by the end of the input.
  if (carry) throw new InvalidBytesError('');
}

async function readAtLeast(source: AsyncIterator<Buffer>, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  while (length < size) {
    const next = await source.next();
    if (next.done) break;
    parts.push(asBuffer(next.value));
    length += next.value.length;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

async function* rest(head: Buffer, source: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  for (let next = await source.next(); !next.done; next = await source.next()) yield asBuffer(next.value);
}

/** Some streams deliver plain Uint8Arrays; decoding needs Buffer's methods (no copy made). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

async function* gunzip(head: Buffer, source: AsyncIterator<Buffer>, maxBytes?: number): AsyncGenerator<Buffer> {
  const inflater = createGunzip();
  let inflated = 0;
  // pipeline forwards a source failure to the inflater, so both kinds surface in the loop below.
  pipeline(Readable.from(rest(head, source)), inflater, () => {});
  try {
    for await (const piece of inflater) {
      inflated += (piece as Buffer).length;
      if (maxBytes !== undefined && inflated > maxBytes) {
        throw new PermanentError('OBJECT_TOO_LARGE', `the gzip data expands to more than ${maxBytes} bytes (MAX_OBJECT_BYTES)`);
      }
      yield piece as Buffer;
    }
  } catch (error) {
    if (isZlibError(error)) {
      throw new PermanentError('INVALID_GZIP', `the gzip data is corrupt or truncated (${(error as Error).message})`, {
        cause: error,
      });
    }
    throw error;
  } finally {
    inflater.destroy();
  }
}

function isZlibError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

/** The length of `data` without a trailing, incomplete UTF-8 sequence. */
function completeLength(data: Buffer): number {
  const n = data.length;
  // Walk back over at most three continuation bytes to the lead byte of the last character.
  for (let i = n - 1; i >= 0 && i >= n - 4; i--) {
    const b = data[i]!;
    if ((b & 0xc0) === 0x80) continue;
    const needed = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + needed > n ? i : n;
  }
  return n;
}

/** Byte offset of the first byte that is not part of a valid UTF-8 character (only called on failure). */
function firstInvalidUtf8(data: Buffer): number {
  let i = 0;
  while (i < data.length) {
    const b = data[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let needed: number;
    let min: number;
    let cp: number;
    if (b >= 0xc2 && b <= 0xdf) [needed, min, cp] = [1, 0x80, b & 0x1f];
    else if (b >= 0xe0 && b <= 0xef) [needed, min, cp] = [2, 0x800, b & 0x0f];
    else if (b >= 0xf0 && b <= 0xf4) [needed, min, cp] = [3, 0x10000, b & 0x07];
    else return i;
    if (i + needed >= data.length) return i;
    for (let k = 1; k <= needed; k++) {
      const c = data[i + k]!;
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += needed + 1;
  }
  return data.length;
}
