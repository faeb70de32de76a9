/** The formats this service ships with: the one place that names concrete plugins. */
import { avroFormat } from './avro.js';
import { parquetFormat } from './parquet.js';
import type { FormatRegistry } from './registry.js';

export function registerBuiltinFormats(registry: FormatRegistry): FormatRegistry {
  return registry.register(parquetFormat).register(avroFormat);
}
