/**
 * Holds parsed rows between the inference pass and the writing pass. Types come from every row, so
 * nothing can be written until the whole file is read: small files stay in memory, larger ones are
 * spilled to a temporary file as one JSON line per chunk (re-reading JSON is far cheaper than
 * re-parsing CSV, and memory stays bounded by one chunk).
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import path from 'node:path';
import type { CsvChunk } from '../csv/read.js';

export class RowSpool {
  #memory: CsvChunk[] = [];
  #memoryBytes = 0;
  #file: { dir: string; path: string; stream: WriteStream } | undefined;

  /** @param memoryBytes source bytes kept in memory before spilling to `tmpDir`. */
  constructor(
    private readonly tmpDir: string,
    private readonly memoryBytes: number,
  ) {}

  get spilled(): boolean {
    return this.#file !== undefined;
  }

  /** @param sourceBytes how many input bytes this chunk came from, the measure of its weight. */
  async add(chunk: CsvChunk, sourceBytes: number): Promise<void> {
    if (!this.#file) {
      this.#memory.push(chunk);
      this.#memoryBytes += sourceBytes;
      if (this.#memoryBytes <= this.memoryBytes) return;
      await this.#spill();
      return;
    }
    await this.#append(chunk);
  }

  async #spill(): Promise<void> {
    const dir = await mkdtemp(path.join(this.tmpDir, 's3cc-spool-'));
    const file = path.join(dir, 'rows.jsonl');
    this.#file = { dir, path: file, stream: createWriteStream(file) };
    const held = this.#memory;
    this.#memory = [];
    for (const chunk of held) await this.#append(chunk);
  }

  async #append(chunk: CsvChunk): Promise<void> {
    const stream = this.#file!.stream;
    if (!stream.write(JSON.stringify(chunk) + '\n')) await once(stream, 'drain');
  }

  /**
   * Completes the spill file and returns its path, so readers on other threads can replay the rows
   * with `readSpoolFile`; undefined while the rows are in memory. Nothing may be added afterwards.
   */
  async file(): Promise<string | undefined> {
    if (!this.#file) return undefined;
    const { stream, path: file } = this.#file;
    if (!stream.writableFinished) {
      stream.end();
      await once(stream, 'finish');
    }
    return file;
  }

  /** Yields the chunks in the order they were added. */
  async *chunks(): AsyncGenerator<CsvChunk> {
    const file = await this.file();
    if (file === undefined) {
      // Hand each chunk over once, so memory is released as the writing pass goes.
      while (this.#memory.length > 0) yield this.#memory.shift()!;
      return;
    }
    yield* readSpoolFile(file);
  }

  async dispose(): Promise<void> {
    this.#memory = [];
    if (this.#file) {
      this.#file.stream.destroy();
      await rm(this.#file.dir, { recursive: true, force: true });
      this.#file = undefined;
    }
  }
}

/** Replays a completed spill file (see `RowSpool.file`) chunk by chunk, in the order written. */
export async function* readSpoolFile(file: string): AsyncGenerator<CsvChunk> {
  // Not readline: its async iterator buffers up to 1024 lines before pausing the file, and a line
  // here is a whole row group, so it would read a large spool into memory at once.
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const bytes of createReadStream(file, { highWaterMark: 1 << 20 })) {
    pending += decoder.write(bytes as Buffer);
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      yield JSON.parse(line) as CsvChunk;
    }
  }
  pending += decoder.end();
  if (pending.length > 0) yield JSON.parse(pending) as CsvChunk;
}
