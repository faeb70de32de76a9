/**
 * Raw (unframed) Snappy compression for Parquet pages and Avro blocks: the native library (napi-rs
 * `snappy`, measured 5-6x faster than JavaScript), or hyparquet-writer's JavaScript port where no
 * prebuilt binary exists for the platform.
 */
import { createRequire } from 'node:module';
import { snappyCompress as snappyInJavaScript } from 'hyparquet-writer/src/snappy.js';

type Compress = (bytes: Uint8Array) => Uint8Array;

function load(): { compress: Compress; native: boolean } {
  try {
    const { compressSync } = createRequire(import.meta.url)('snappy') as { compressSync(input: Uint8Array): Buffer };
    return { compress: (bytes) => compressSync(bytes), native: true };
  } catch {
    return { compress: snappyInJavaScript, native: false };
  }
}

const loaded = load();

export const snappyCompress: Compress = loaded.compress;

/** Whether the native library loaded (the bench reports it). */
export const nativeSnappy: boolean = loaded.native;
