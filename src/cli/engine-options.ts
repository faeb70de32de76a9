/** The engine's command-line options, shared by every command that converts; format options come from the registry. */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CSV_PARSERS, DEFAULT_CSV_PARSER } from '../csv/read.js';
import { parsePinnedSchema } from '../csv/pinned.js';
import type { FormatRegistry } from '../formats/registry.js';
import type { FormatOptions } from '../formats/types.js';
import { parseByteSize } from '../config/byte-size.js';
import { DEFAULT_ENGINE_OPTIONS, DEFAULT_ROW_GROUP_BYTES, type EngineOptions } from '../pipeline/convert.js';

export interface EngineFlags {
  formats: string;
  delimiter?: string;
  encoding: 'utf-8' | 'latin1';
  schema?: string;
  rowGroupSize: number;
  rowGroupBytes: number;
  csvParser: (typeof CSV_PARSERS)[number];
  /** Plus one codec flag per registered format, e.g. `avroCodec`, `parquetCompression`. */
  [formatFlag: string]: unknown;
}

const DELIMITER_WORDS: Record<string, string> = { ',': ',', ';': ';', '|': '|', tab: '\t', '\\t': '\t', '\t': '\t' };

export function parseDelimiter(value: string): string {
  const delimiter = DELIMITER_WORDS[value.toLowerCase()];
  if (!delimiter) throw new InvalidArgumentError('must be one of , ; | tab');
  return delimiter;
}

export function parseIntegerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

function parseRowGroupBytes(value: string): number {
  const bytes = parseByteSize(value);
  if (bytes === undefined || bytes < 1024 * 1024) throw new InvalidArgumentError('must be a size of at least 1MiB, e.g. 64MiB');
  return bytes;
}

/** `avro-codec` → `avroCodec`, the key commander gives the flag's value. */
function flagKey(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function addEngineOptions(command: Command, registry: FormatRegistry): Command {
  command
    .option('--formats <list>', `output formats, comma-separated (${registry.names().join(', ')})`, registry.names().join(','))
    .option('--delimiter <char>', 'field delimiter: , ; | or tab (default: detected from the header line)', parseDelimiter)
    .addOption(new Option('--encoding <name>', 'text encoding of the CSV').choices(['utf-8', 'latin1']).default('utf-8'))
    .option('--schema <file>', 'JSON file pinning column types: {"column": "int64", ...}');
  for (const option of registry.compressionOptions()) {
    command.addOption(new Option(`--${option.flag} <codec>`, option.description).choices(option.choices).default(option.choices[0]));
  }
  return command
    .option('--row-group-size <rows>', 'most rows per Parquet row group and per batch', parseIntegerIn(1000, 1_000_000), DEFAULT_ENGINE_OPTIONS.rowGroupSize)
    .option('--row-group-bytes <size>', 'most bytes of typed values per row group and per batch, e.g. 32MiB', parseRowGroupBytes, DEFAULT_ROW_GROUP_BYTES)
    .addOption(new Option('--csv-parser <name>', 'CSV parser').choices([...CSV_PARSERS]).default(DEFAULT_CSV_PARSER));
}

/** Turns validated flags into engine options; `formats` must all be registered. */
export async function engineOptionsFrom(flags: EngineFlags, registry: FormatRegistry): Promise<{ formats: string[]; options: EngineOptions }> {
  const formats = [...new Set(flags.formats.split(',').map((name) => name.trim().toLowerCase()).filter(Boolean))];
  if (formats.length === 0) throw new InvalidArgumentError('--formats names no format');
  for (const name of formats) registry.get(name);
  const pinnedTypes = flags.schema ? parsePinnedSchema(await readFile(flags.schema, 'utf8'), flags.schema) : undefined;
  const formatOptions: Record<string, FormatOptions> = {};
  for (const option of registry.compressionOptions()) formatOptions[option.format] = { compression: flags[flagKey(option.flag)] as string };
  return {
    formats,
    options: {
      parser: flags.csvParser,
      delimiter: flags.delimiter,
      encoding: flags.encoding,
      pinnedTypes,
      rowGroupSize: flags.rowGroupSize,
      rowGroupBytes: flags.rowGroupBytes,
      formatOptions,
    },
  };
}
