/**
 * Holds the typed batches of the first pass until the second pass writes them. Types come from
 * every row, so nothing can be written before the whole file is read: batches stay in memory up to
 * a budget, and beyond it go to a temporary file as their raw typed arrays (no text, no parsing:
 * written and read back at the speed of the disk cache), one batch in memory at a time.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import type { BuiltBatch } from '../csv/batches.js';
import type { ColumnType, TypedColumn } from '../types.js';

/** What a spilled batch's header records; the arrays follow it, each padded to 8 bytes. */
interface SpilledBatch {
  rowCount: number;
  /** Per column: null when it held only nulls, else its type and its arrays' byte lengths. */
  columns: ({ type: ColumnType; nullCount: number; arrays: number[] } | null)[];
}

export class BatchSpool {
  #memory: BuiltBatch[] = [];
  #memoryBytes = 0;
  #file: { dir: string; path: string; stream: WriteStream } | undefined;

  /**
   * @param tmpDir where to spill; the system's temporary directory when undefined
   * @param memoryBytes bytes of batches kept in memory before spilling
   */
  constructor(
    private readonly tmpDir: string | undefined,
    private readonly memoryBytes: number,
  ) {}

  get spilled(): boolean {
    return this.#file !== undefined;
  }

  async add(batch: BuiltBatch): Promise<void> {
    if (!this.#file) {
      this.#memory.push(batch);
      this.#memoryBytes += batchBytes(batch);
      if (this.#memoryBytes <= this.memoryBytes) return;
      await this.#spill();
      return;
    }
    await this.#append(batch);
  }

  /** Yields the batches in the order they were added, each once. */
  async *batches(): AsyncGenerator<BuiltBatch> {
    if (!this.#file) {
      // Hand each batch over once, so memory is released as the writing pass goes.
      while (this.#memory.length > 0) yield this.#memory.shift()!;
      return;
    }
    const { stream, path: file } = this.#file;
    if (!stream.writableFinished) {
      stream.end();
      await once(stream, 'finish');
    }
    yield* readSpillFile(file);
  }

  /** Drops everything held, in memory and on disk. */
  async dispose(): Promise<void> {
    this.#memory = [];
    this.#memoryBytes = 0;
    if (this.#file) {
      this.#file.stream.destroy();
      await rm(this.#file.dir, { recursive: true, force: true });
      this.#file = undefined;
    }
  }

  async #spill(): Promise<void> {
    const dir = await mkdtemp(path.join(this.tmpDir ?? os.tmpdir(), 's3cc-spool-'));
    const file = path.join(dir, 'batches.bin');
    this.#file = { dir, path: file, stream: createWriteStream(file) };
    const held = this.#memory;
    this.#memory = [];
    for (const batch of held) await this.#append(batch);
  }

  async #append(batch: BuiltBatch): Promise<void> {
    const stream = this.#file!.stream;
    const arrays: Uint8Array[] = [];
    const header: SpilledBatch = {
      rowCount: batch.rowCount,
      columns: batch.columns.map((column) => {
        if (!column) return null;
        const parts = arraysOf(column).map((array) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
        arrays.push(...parts);
        return { type: column.type, nullCount: column.nullCount, arrays: parts.map((part) => part.byteLength) };
      }),
    };
    const json = Buffer.from(JSON.stringify(header));
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32LE(json.length, 0);
    let ok = stream.write(prefix);
    ok = stream.write(padded(json)) && ok;
    for (const array of arrays) ok = stream.write(padded(array)) && ok;
    if (!ok) await once(stream, 'drain');
  }
}

/** Bytes a batch's arrays take. */
export function batchBytes(batch: BuiltBatch): number {
  let bytes = 0;
  for (const column of batch.columns) if (column) for (const array of arraysOf(column)) bytes += array.byteLength;
  return bytes;
}

/** A column's arrays, in the order they are spilled: values (or text and offsets), then nulls. */
function arraysOf(column: TypedColumn): ArrayBufferView[] {
  const values: ArrayBufferView[] = column.type === 'string' ? [column.bytes, column.offsets] : [column.values];
  return column.nulls ? [...values, column.nulls] : values;
}

const PADDING = new Uint8Array(8);

/** The bytes followed by zeros up to a multiple of 8, so every array reads back aligned. */
function padded(bytes: Uint8Array): Uint8Array {
  const rest = bytes.byteLength % 8;
  return rest === 0 ? bytes : Buffer.concat([bytes, PADDING.subarray(0, 8 - rest)]);
}

function paddedLength(length: number): number {
  return Math.ceil(length / 8) * 8;
}

async function* readSpillFile(file: string): AsyncGenerator<BuiltBatch> {
  const handle = await open(file, 'r');
  try {
    let position = 0;
    const read = async (length: number): Promise<Uint8Array> => {
      // A fresh buffer per array: it becomes the batch's own memory (and is aligned for any view).
      const bytes = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(bytes, done, length - done, position + done);
        if (bytesRead === 0) throw new Error(`spool file ${file} ends early`);
        done += bytesRead;
      }
      position += paddedLength(length);
      return bytes;
    };
    for (;;) {
      const prefix = Buffer.alloc(8);
      const { bytesRead } = await handle.read(prefix, 0, 8, position);
      if (bytesRead === 0) return;
      position += 8;
      const header = JSON.parse(Buffer.from(await read(prefix.readUInt32LE(0))).toString('utf8')) as SpilledBatch;
      const columns: (TypedColumn | undefined)[] = [];
      for (const spilled of header.columns) {
        if (!spilled) {
          columns.push(undefined);
          continue;
        }
        const arrays: Uint8Array[] = [];
        for (const length of spilled.arrays) arrays.push(await read(length));
        columns.push(columnFrom(spilled.type, spilled.nullCount, arrays));
      }
      yield { rowCount: header.rowCount, columns };
    }
  } finally {
    await handle.close();
  }
}

function columnFrom(type: ColumnType, nullCount: number, arrays: Uint8Array[]): TypedColumn {
  const [first, second, third] = arrays as [Uint8Array, Uint8Array | undefined, Uint8Array | undefined];
  if (type === 'string') return { type, bytes: first, offsets: new Int32Array(second!.buffer), nulls: third, nullCount };
  const nulls = second;
  switch (type) {
    case 'int64':
    case 'timestamp':
      return { type, values: new BigInt64Array(first.buffer), nulls, nullCount };
    case 'double':
      return { type, values: new Float64Array(first.buffer), nulls, nullCount };
    case 'boolean':
      return { type, values: first, nulls, nullCount };
    case 'date':
      return { type, values: new Int32Array(first.buffer), nulls, nullCount };
  }
}
