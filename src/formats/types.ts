/** The contract between the engine and an output format: what a plugin is and how it writes. */
import type { TableSchema, TypedBatch } from '../types.js';

/** Where a writer's bytes go. Awaiting `write` is how a writer honours back-pressure. */
export interface ByteSink {
  write(chunk: Uint8Array): Promise<void>;
}

/** Options a plugin may read; each plugin validates the ones it understands. */
export interface FormatOptions {
  /** Codec name, plugin-specific (Parquet: snappy|none|gzip|zstd, Avro: deflate|null|snappy). */
  compression?: string;
}

/** Writes one output file: typed batches in, in order; `finish` writes the trailer. */
export interface FormatWriter {
  write(batch: TypedBatch): Promise<void>;
  finish(): Promise<void>;
}

export interface FormatPlugin {
  /** Registry key and the name users type in `--formats` (lower case). */
  readonly name: string;
  /** File extension without the dot, e.g. `parquet`. */
  readonly extension: string;
  readonly contentType: string;
  /** Codec names this plugin accepts in `FormatOptions.compression`, default first. */
  readonly compressions: readonly string[];
  /**
   * How users choose the codec: the environment variable (`serve`) and the flag (`convert`), named
   * `<NAME>_COMPRESSION` and `--<name>-compression` unless given here, and a one-line description.
   */
  readonly compressionOption?: { setting?: string; flag?: string; description?: string };
  createWriter(schema: TableSchema, sink: ByteSink, options: FormatOptions): FormatWriter;
}
