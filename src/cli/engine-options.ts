/** The engine's command-line options, shared by every command that converts. */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CSV_PARSERS } from '../csv/read.js';
import { parsePinnedSchema } from '../csv/pinned.js';
import type { FormatRegistry } from '../formats/registry.js';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../pipeline/convert.js';

export interface EngineFlags {
  formats: string;
  delimiter?: string;
  encoding: 'utf-8' | 'latin1';
  schema?: string;
  parquetCompression: string;
  avroCodec: string;
  rowGroupSize: number;
  csvParser: (typeof CSV_PARSERS)[number];
  parallelFormats?: boolean;
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

export function addEngineOptions(command: Command, registry: FormatRegistry): Command {
  const parquet = registry.has('parquet') ? registry.get('parquet').compressions : [];
  const avro = registry.has('avro') ? registry.get('avro').compressions : [];
  return command
    .option('--formats <list>', `output formats, comma-separated (${registry.names().join(', ')})`, registry.names().join(','))
    .option('--delimiter <char>', 'field delimiter: , ; | or tab (default: detected from the header line)', parseDelimiter)
    .addOption(new Option('--encoding <name>', 'text encoding of the CSV').choices(['utf-8', 'latin1']).default('utf-8'))
    .option('--schema <file>', 'JSON file pinning column types: {"column": "int64", ...}')
    .addOption(new Option('--parquet-compression <codec>', 'Parquet compression').choices(parquet).default(parquet[0]))
    .addOption(new Option('--avro-codec <codec>', 'Avro block codec').choices(avro).default(avro[0]))
    .option('--row-group-size <rows>', 'rows per Parquet row group and per batch', parseIntegerIn(1000, 1_000_000), DEFAULT_ENGINE_OPTIONS.rowGroupSize)
    .addOption(new Option('--csv-parser <name>', 'CSV parser').choices([...CSV_PARSERS]).default('fast-csv'))
    .option('--parallel-formats', 'write each format of a large file on its own thread (helps only on an idle multi-core machine)');
}

/** Turns validated flags into engine options; `formats` must all be registered. */
export async function engineOptionsFrom(flags: EngineFlags, registry: FormatRegistry): Promise<{ formats: string[]; options: EngineOptions }> {
  const formats = [...new Set(flags.formats.split(',').map((name) => name.trim().toLowerCase()).filter(Boolean))];
  if (formats.length === 0) throw new InvalidArgumentError('--formats names no format');
  for (const name of formats) registry.get(name);
  const pinnedTypes = flags.schema ? parsePinnedSchema(await readFile(flags.schema, 'utf8'), flags.schema) : undefined;
  return {
    formats,
    options: {
      parser: flags.csvParser,
      delimiter: flags.delimiter,
      encoding: flags.encoding,
      pinnedTypes,
      rowGroupSize: flags.rowGroupSize,
      parallelFormats: flags.parallelFormats === true,
      formatOptions: { parquet: { compression: flags.parquetCompression }, avro: { compression: flags.avroCodec } },
    },
  };
}
