/** In-memory ByteSinks for format tests, and a helper that writes batches through a plugin to a temp file. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ByteSink, FormatOptions, FormatPlugin } from '../../src/formats/types.js';
import type { TableSchema, TypedBatch } from '../../src/types.js';

/** Keeps every chunk it is given; optionally slow, and counts writes in flight to prove back-pressure. */
export class MemorySink implements ByteSink {
  readonly chunks: Uint8Array[] = [];
  inFlight = 0;
  maxInFlight = 0;

  constructor(private readonly delayMs = 0) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.chunks.push(chunk);
    this.inFlight--;
  }

  get byteLength(): number {
    return this.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** A temp directory removed by `cleanup()`; one per test file. */
export class TempDir {
  #dir: string | undefined;
  #files = 0;

  async file(name: string, bytes: Uint8Array): Promise<string> {
    this.#dir ??= await mkdtemp(join(tmpdir(), 's3cc-formats-'));
    const path = join(this.#dir, `${this.#files++}-${name}`);
    await writeFile(path, bytes);
    return path;
  }

  async cleanup(): Promise<void> {
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }
}

/** Writes `batches` through the plugin into `sink` and returns the sink. */
export async function writeBatches(
  plugin: FormatPlugin,
  schema: TableSchema,
  batches: Iterable<TypedBatch>,
  options: FormatOptions,
  sink: MemorySink = new MemorySink(),
): Promise<MemorySink> {
  const writer = plugin.createWriter(schema, sink, options);
  for (const batch of batches) await writer.write(batch);
  await writer.finish();
  return sink;
}
